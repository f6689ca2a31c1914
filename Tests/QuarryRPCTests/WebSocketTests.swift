import QuarryCore
import QuarryRPCTestSupport
import Testing
@testable import QuarryRPC

/// WebSocket requests and subscriptions over real sockets on 127.0.0.1.
@Suite("WebSocket and subscriptions")
struct WebSocketTests {
    static let alice = Address(scheme: .sm2, digest20: [UInt8](repeating: 1, count: 20)).text
    static let bob = Address(scheme: .secp256k1, digest20: [UInt8](repeating: 2, count: 20)).text

    /// Opens an upgraded connection.
    func connect(_ port: Int, timeoutMilliseconds: Int = 5_000) async throws -> RawClient {
        try await onPool {
            let c = try RawClient(port: port, timeoutMilliseconds: timeoutMilliseconds)
            let r = try c.upgradeToWebSocket()
            guard r.status == 101 else { throw RawClient.Failure(description: "upgrade answered \(r.status)") }
            return c
        }
    }

    func request(_ c: RawClient, _ text: String) async throws -> JSONValue {
        try await onPool {
            try c.sendText(text)
            let f = try c.readMessage()
            guard f.opcode == 1, let json = f.json else { throw RawClient.Failure(description: "got opcode \(f.opcode): \(f.text)") }
            return json
        }
    }

    func next(_ c: RawClient) async throws -> RawClient.Frame { try await onPool { try c.readMessage() } }

    /// Publishes until `count` deliveries happened (a subscribe is registered before its
    /// reply is written, so this is immediate; the loop only guards the test).
    func subscribe(_ c: RawClient, _ params: String, id: Int = 1) async throws -> String {
        let r = try await request(c, #"{"jsonrpc":"2.0","method":"subscribe","params":\#(params),"id":\#(id)}"#)
        return try #require(r["result"]?.stringValue, "\(r)")
    }

    @Test func requestsAndBatchesOverWebSocket() async throws {
        try await withDemoServer { _, port in
            let c = try await connect(port)
            defer { c.close() }
            let r = try await request(c, #"{"jsonrpc":"2.0","method":"add","params":["1","2"],"id":"w"}"#)
            #expect(r == ["jsonrpc": "2.0", "id": "w", "result": "3"])
            let batch = try await request(c, #"[{"jsonrpc":"2.0","method":"echo","params":[1],"id":1},{"jsonrpc":"2.0","method":"nope","id":2}]"#)
            #expect(batch.arrayValue?.count == 2)
            #expect(batch.arrayValue?[1]["error"]?["code"] == -32601)
            let parse = try await request(c, "{oops")
            #expect(parse["error"]?["code"] == -32700)
            // A notification gets no reply: the next reply is for the following request.
            let after = try await onPool { () -> JSONValue? in
                try c.sendText(#"{"jsonrpc":"2.0","method":"echo","params":[1]}"#)
                try c.sendText(#"{"jsonrpc":"2.0","method":"echo","params":[2],"id":2}"#)
                return try c.readMessage().json
            }
            #expect(after == ["jsonrpc": "2.0", "id": 2, "result": 2])
            // A message split into fragments is reassembled.
            let fragmented = try await onPool { () -> JSONValue? in
                let text = Array(#"{"jsonrpc":"2.0","method":"echo","params":["frag"],"id":3}"#.utf8)
                try c.sendFrame(opcode: 1, Array(text[0..<10]), fin: false)
                try c.sendFrame(opcode: 9, Array("ping".utf8))  // a control frame may interleave
                try c.sendFrame(opcode: 0, Array(text[10..<30]), fin: false)
                try c.sendFrame(opcode: 0, Array(text[30...]), fin: true)
                var frame = try c.readFrame()
                if frame.opcode == 10 { frame = try c.readFrame() }  // the pong
                return frame.json
            }
            #expect(fragmented?["result"] == "frag")
            // Ping is answered with a pong carrying the same data.
            let pong = try await onPool { () -> RawClient.Frame in
                try c.sendFrame(opcode: 9, Array("hello".utf8))
                return try c.readFrame()
            }
            #expect(pong.opcode == 10)
            #expect(pong.text == "hello")
        }
    }

    /// A client may send its first message in the same write as the upgrade request.
    @Test func messageRightBehindTheUpgrade() async throws {
        try await withDemoServer { _, port in
            let reply = try await onPool { () -> JSONValue? in
                let c = try RawClient(port: port)
                defer { c.close() }
                let upgrade = "GET /websocket?x=1 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                let payload = Array(#"{"jsonrpc":"2.0","method":"echo","params":["early"],"id":1}"#.utf8)
                let mask: [UInt8] = [1, 2, 3, 4]
                var frame: [UInt8] = [0x81, 0x80 | UInt8(payload.count)] + mask
                for (i, b) in payload.enumerated() { frame.append(b ^ mask[i % 4]) }
                try c.send(Array(upgrade.utf8) + frame)
                let r = try c.readResponse()
                guard r.status == 101, r.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" else { return nil }
                return try c.readMessage().json
            }
            #expect(reply == ["jsonrpc": "2.0", "id": 1, "result": "early"])
        }
    }

    @Test func subscribePublishUnsubscribe() async throws {
        try await withDemoServer { server, port in
            let c = try await connect(port)
            defer { c.close() }
            let blocks = try await subscribe(c, #"{"topic":"demo_blocks"}"#)
            let aliceOnly = try await subscribe(c, #"{"topic":"demo_transfers","filter":{"account":"\#(Self.alice)"}}"#, id: 2)
            #expect(blocks != aliceOnly)
            #expect(server.subscriptions.count == 2)

            #expect(server.publish(topic: "demo_blocks", payload: ["height": 1]) == 1)
            let n1 = try await next(c)
            #expect(n1.json == ["jsonrpc": "2.0", "method": "subscription",
                                "params": ["subscription": .string(blocks), "topic": "demo_blocks", "result": ["height": 1]]])

            // The filter decides: bob's transfer is not sent, alice's is.
            let forAccount = { (account: String) in
                { (f: RPCParams) in !f.has("account") || f.value("account") == .string(account) }
            }
            #expect(server.publish(topic: "demo_transfers", matching: forAccount(Self.bob), payload: ["to": .string(Self.bob)]) == 0)
            #expect(server.publish(topic: "demo_transfers", matching: forAccount(Self.alice), payload: ["to": .string(Self.alice)]) == 1)
            let n2 = try await next(c)
            #expect(n2.json?["params"]?["subscription"] == .string(aliceOnly))
            #expect(n2.json?["params"]?["result"]?["to"] == .string(Self.alice))

            // Unsubscribe stops delivery; a second unsubscribe is -32001.
            let u = try await request(c, #"{"jsonrpc":"2.0","method":"unsubscribe","params":{"subscription":"\#(blocks)"},"id":5}"#)
            #expect(u["result"] == true)
            #expect(server.publish(topic: "demo_blocks", payload: ["height": 2]) == 0)
            let again = try await request(c, #"{"jsonrpc":"2.0","method":"unsubscribe","params":["\#(blocks)"],"id":6}"#)
            #expect(again["error"]?["code"] == -32001)
            #expect(again["error"]?["data"]?["code"] == "rpc.subscription_not_found")

            // Another connection cannot cancel this one's subscription.
            let other = try await connect(port)
            defer { other.close() }
            let foreign = try await request(other, #"{"jsonrpc":"2.0","method":"unsubscribe","params":["\#(aliceOnly)"],"id":7}"#)
            #expect(foreign["error"]?["code"] == -32001)

            // Closing the connection drops its subscriptions.
            c.close()
            var remaining = server.subscriptions.count
            for _ in 0..<100 where remaining > 0 {
                try await Task.sleep(nanoseconds: 10_000_000)
                remaining = server.subscriptions.count
            }
            #expect(remaining == 0)
        }
    }

    @Test func subscriptionErrorsAndLimits() async throws {
        try await withDemoServer({ $0.subscriptionsPerConnectionMax = 3 }) { _, port in
            let c = try await connect(port)
            defer { c.close() }
            let unknown = try await request(c, #"{"jsonrpc":"2.0","method":"subscribe","params":{"topic":"weather"},"id":1}"#)
            #expect(unknown["error"]?["code"] == -32602)
            #expect(unknown["error"]?["data"]?["reason"]?.stringValue?.contains("unknown topic \"weather\"") == true)
            let badFilter = try await request(c, #"{"jsonrpc":"2.0","method":"subscribe","params":{"topic":"demo_transfers","filter":{"account":"nope"}},"id":2}"#)
            #expect(badFilter["error"]?["code"] == -32602)
            #expect(badFilter["error"]?["data"]?["reason"]?.stringValue?.contains("filter field \"account\"") == true)
            let unknownField = try await request(c, #"{"jsonrpc":"2.0","method":"subscribe","params":{"topic":"demo_blocks","filter":{"x":1}},"id":3}"#)
            #expect(unknownField["error"]?["code"] == -32602)
            let notObject = try await request(c, #"{"jsonrpc":"2.0","method":"subscribe","params":{"topic":"demo_blocks","filter":[1]},"id":4}"#)
            #expect(notObject["error"]?["code"] == -32602)
            for i in 0..<3 { _ = try await subscribe(c, #"{"topic":"demo_blocks"}"#, id: 10 + i) }
            let fourth = try await request(c, #"{"jsonrpc":"2.0","method":"subscribe","params":["demo_blocks"],"id":20}"#)
            #expect(fourth["error"]?["code"] == -32002)
            #expect(fourth["error"]?["data"]?["code"] == "rpc.too_many_subscriptions")
            #expect(fourth["error"]?["data"]?["limit"] == 3)
            // The connection keeps working.
            let ok = try await request(c, #"{"jsonrpc":"2.0","method":"echo","params":[1],"id":21}"#)
            #expect(ok["result"] == 1)
        }
    }

    @Test func serverWideSubscriptionLimit() async throws {
        try await withDemoServer({ $0.subscriptionsMax = 2 }) { server, port in
            let a = try await connect(port)
            defer { a.close() }
            let b = try await connect(port)
            defer { b.close() }
            _ = try await subscribe(a, #"{"topic":"demo_blocks"}"#)
            _ = try await subscribe(b, #"{"topic":"demo_blocks"}"#)
            let third = try await request(b, #"{"jsonrpc":"2.0","method":"subscribe","params":["demo_blocks"],"id":3}"#)
            #expect(third["error"]?["code"] == -32002)
            #expect(third["error"]?["data"]?["limit"] == 2)
            #expect(server.publish(topic: "demo_blocks", payload: 1) == 2)
        }
    }

    @Test func binaryAndOversizedMessagesCloseTheConnection() async throws {
        try await withDemoServer({ $0.bodyBytesMax = 4096 }) { _, port in
            let c = try await connect(port)
            defer { c.close() }
            let close = try await onPool { () -> RawClient.Frame in
                try c.sendFrame(opcode: 2, [1, 2, 3])
                return try c.readMessage()
            }
            #expect(close.opcode == 8)
            #expect(close.closeCode == 1003)
            #expect(try await onPool { c.waitForClose() })

            let d = try await connect(port)
            defer { d.close() }
            let tooBig = try await onPool { () -> Int? in
                try d.sendText(String(repeating: " ", count: 5000))
                let f = try? d.readMessage()
                return f?.opcode == 8 ? f?.closeCode : nil
            }
            #expect(tooBig == 1009)  // message too big
            // The same when the message comes in fragments.
            let e = try await connect(port)
            defer { e.close() }
            let fragmentsTooBig = try await onPool { () -> Int? in
                try e.sendFrame(opcode: 1, Array(repeating: 32, count: 3000), fin: false)
                try e.sendFrame(opcode: 0, Array(repeating: 32, count: 3000), fin: true)
                let f = try? e.readMessage()
                return f?.opcode == 8 ? f?.closeCode : nil
            }
            #expect(fragmentsTooBig == 1009)
            try await expectHTTPServing(port)
        }
    }

    @Test func slowConsumerIsDisconnected() async throws {
        try await withDemoServer({ $0.notificationQueueMax = 4 }) { server, port in
            let c = try await connect(port)
            defer { c.close() }
            _ = try await subscribe(c, #"{"topic":"demo_blocks"}"#)
            // The client reads nothing; large notifications fill the socket buffers, the
            // queue passes its limit and the server closes the connection.
            let payload: JSONValue = ["blob": .string(String(repeating: "z", count: 256 * 1024))]
            var published = 0
            for _ in 0..<400 {
                published += server.publish(topic: "demo_blocks", payload: payload)
                if server.subscriptions.count == 0 { break }
                try await Task.sleep(nanoseconds: 1_000_000)
            }
            #expect(server.subscriptions.count == 0, "still subscribed after \(published) notifications")
            // Read what arrived: notifications, then a close frame 1008.
            let closeCode = try await onPool { () -> Int? in
                while true {
                    guard let f = try? c.readFrame() else { return nil }
                    if f.opcode == 8 { return f.closeCode }
                }
            }
            #expect(closeCode == 1008)
            try await expectHTTPServing(port)
        }
    }

    @Test func shutdownClosesWebSocketsWithGoingAway() async throws {
        var config = RPCServerConfiguration()
        config.port = 0
        let server = RPCServer(configuration: config)
        registerDemo(server)
        try await server.start()
        let port = try #require(server.port)
        let c = try await connect(port)
        defer { c.close() }
        _ = try await subscribe(c, #"{"topic":"demo_blocks"}"#)
        await server.shutdown()
        let code = try await onPool { () -> Int? in
            while true {
                guard let f = try? c.readFrame() else { return nil }
                if f.opcode == 8 { return f.closeCode }
            }
        }
        #expect(code == 1001)
    }

    @Test func idleWebSocketIsPingedThenClosed() async throws {
        try await withDemoServer({ $0.webSocketIdleMilliseconds = 200 }) { _, port in
            let c = try await connect(port)
            defer { c.close() }
            let frames = try await onPool { () -> [UInt8] in
                var opcodes: [UInt8] = []
                while let f = try? c.readFrame() {
                    opcodes.append(f.opcode)
                    if f.opcode == 8 { break }
                }
                return opcodes
            }
            #expect(frames == [9, 8])  // a ping, then (no answer) a close
        }
    }

    @Test func inFlightLimitPerConnection() async throws {
        try await withDemoServer({ $0.webSocketInFlightMax = 2 }) { _, port in
            let c = try await connect(port)
            defer { c.close() }
            let replies = try await onPool { () -> [JSONValue] in
                for i in 0..<3 { try c.sendText(#"{"jsonrpc":"2.0","method":"sleep","params":[300],"id":\#(i)}"#) }
                return try (0..<3).map { _ in try c.readMessage().json ?? .null }
            }
            // The third arrives while two are running: refused at once, the two finish.
            #expect(replies[0]["error"]?["code"] == -32002)
            #expect(replies[0]["error"]?["data"]?["code"] == "rpc.too_many_in_flight")
            #expect(Set(replies[1...].map { $0["id"] }) == [0, 1])
            #expect(replies[1...].allSatisfy { $0["result"] == true })
        }
    }

    func expectHTTPServing(_ port: Int) async throws {
        let r = try await post(port, #"{"jsonrpc":"2.0","method":"echo","params":["ok"],"id":1}"#)
        #expect(r.text == #"{"jsonrpc":"2.0","id":1,"result":"ok"}"#)
    }
}
