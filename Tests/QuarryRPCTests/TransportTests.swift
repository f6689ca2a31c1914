import QuarryCore
import QuarryRPCTestSupport
import Testing
@testable import QuarryRPC

/// HTTP transport, limits and lifecycle, over real sockets on 127.0.0.1.
@Suite("HTTP transport and limits")
struct TransportTests {
    static let good = #"{"jsonrpc":"2.0","method":"echo","params":["ok"],"id":1}"#
    static let goodReply = #"{"jsonrpc":"2.0","id":1,"result":"ok"}"#

    func expectServing(_ port: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let r = try await post(port, Self.good)
        #expect(r.status == 200, sourceLocation: sourceLocation)
        #expect(r.text == Self.goodReply, sourceLocation: sourceLocation)
    }

    @Test func healthAndHTTPErrors() async throws {
        try await withDemoServer { _, port in
            let health = try await raw(port, Array("GET /health HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            #expect(health.status == 200)
            #expect(health.json == ["status": "ok"])
            let head = try await onPool {
                let c = try RawClient(port: port)
                defer { c.close() }
                try c.send("HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                let r = try c.readResponse(noBody: true)
                return (r.status, c.waitForClose())
            }
            #expect(head == (200, true))
            let cases: [(String, Int, String)] = [
                ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 405, "rpc.method_not_allowed"),
                ("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, "rpc.method_not_allowed"),
                ("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", 404, "rpc.not_found"),
                ("POST /other HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 404, "rpc.not_found"),
                ("GET /websocket HTTP/1.1\r\nHost: x\r\n\r\n", 426, "rpc.upgrade_required"),
                ("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}", 415, "rpc.unsupported_media_type"),
                ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 415, "rpc.unsupported_media_type"),
            ]
            for (request, status, code) in cases {
                let r = try await raw(port, Array(request.utf8))
                #expect(r.status == status, "\(request)")
                #expect(r.json?["error"]?["data"]?["code"] == .string(code), "\(r.text)")
            }
            // Media type parameters and case are accepted.
            let charset = try await post(port, Self.good, contentType: "Application/JSON; charset=utf-8")
            #expect(charset.status == 200)
            try await expectServing(port)
        }
    }

    @Test func oversizedBodiesAreRefused() async throws {
        try await withDemoServer({ $0.bodyBytesMax = 1000 }) { _, port in
            // Announced by content-length: refused before the body is read.
            let announced = try await raw(port, Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n".utf8))
            #expect(announced.status == 413)
            #expect(announced.json?["error"]?["code"] == -32002)
            #expect(announced.json?["error"]?["data"]?["code"] == "rpc.body_too_large")
            #expect(announced.header("connection") == "close")
            // Streamed in chunks without a length: refused once it passes the limit.
            let chunk = String(repeating: " ", count: 600)
            let chunked = "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "258\r\n\(chunk)\r\n258\r\n\(chunk)\r\n0\r\n\r\n"
            let streamed = try await raw(port, Array(chunked.utf8))
            #expect(streamed.status == 413)
            // Exactly at the limit is fine.
            let padded = Self.good + String(repeating: " ", count: 1000 - Self.good.utf8.count)
            let atLimit = try await post(port, padded)
            #expect(atLimit.status == 200)
            // A small chunked body works.
            let small = "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + String(Self.good.utf8.count, radix: 16) + "\r\n" + Self.good + "\r\n0\r\n\r\n"
            let smallReply = try await raw(port, Array(small.utf8))
            #expect(smallReply.text == Self.goodReply)
            // A large reply is fine (limits are on requests).
            let big = try await post(port, #"{"jsonrpc":"2.0","method":"big","params":[2000000],"id":1}"#)
            #expect(big.status == 200)
            #expect(big.json?["result"]?.stringValue?.utf8.count == 2_000_000)
            try await expectServing(port)
        }
    }

    @Test func malformedHTTPGetsACleanErrorAndTheServerGoesOn() async throws {
        try await withDemoServer { _, port in
            for garbage in ["HELLO\r\n\r\n", "POST / HTTP/9.9\r\n\r\n", "\u{0}\u{1}\u{2}\r\n\r\n",
                            "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                            "POST / HTTP/1.1\r\nBad Header\r\n\r\n"] {
                let status: Int? = try await onPool {
                    let c = try RawClient(port: port, timeoutMilliseconds: 3_000)
                    defer { c.close() }
                    try c.send(garbage)
                    return (try? c.readResponse())?.status
                }
                // Either a 400 or a plain close; never a hang (the read would time out).
                if let status { #expect(status == 400, "\(garbage.debugDescription) -> \(status)") }
            }
            try await expectServing(port)
        }
    }

    @Test func keepAliveAndPipelining() async throws {
        try await withDemoServer { _, port in
            try await onPool {
                let c = try RawClient(port: port)
                defer { c.close() }
                let one = "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(Self.good.utf8.count)\r\n\r\n\(Self.good)"
                for _ in 0..<3 {
                    try c.send(one)
                    #expect(try c.readResponse().text == Self.goodReply)
                }
                // Three pipelined requests in one write: three replies in order.
                let slow = #"{"jsonrpc":"2.0","method":"sleep","params":[50],"id":"s"}"#
                let slowRequest = "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(slow.utf8.count)\r\n\r\n\(slow)"
                try c.send(slowRequest + one + "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try c.readResponse().json?["id"] == "s")
                #expect(try c.readResponse().text == Self.goodReply)
                #expect(try c.readResponse().json == ["status": "ok"])
                // Connection: close is honoured.
                try c.send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                let last = try c.readResponse()
                #expect(last.header("connection") == "close")
                #expect(c.waitForClose())
            }
        }
    }

    @Test func expectContinue() async throws {
        try await withDemoServer({ $0.bodyBytesMax = 1000 }) { _, port in
            try await onPool {
                let c = try RawClient(port: port)
                defer { c.close() }
                try c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: \(Self.good.utf8.count)\r\n\r\n")
                #expect(try c.readResponse().status == 100)
                try c.send(Self.good)
                #expect(try c.readResponse().text == Self.goodReply)
                // Too large: refused without a 100, so the body is never sent.
                let d = try RawClient(port: port)
                defer { d.close() }
                try d.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
                #expect(try d.readResponse().status == 413)
            }
        }
    }

    @Test func slowAndIdleClientsAreTimedOut() async throws {
        try await withDemoServer({ $0.requestTimeoutMilliseconds = 300 }) { _, port in
            try await onPool {
                // Slow-loris body: head sent, body never completes -> 408 and close.
                let c = try RawClient(port: port, timeoutMilliseconds: 3_000)
                defer { c.close() }
                try c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"js")
                let r = try c.readResponse()
                #expect(r.status == 408)
                #expect(r.json?["error"]?["data"]?["code"] == "rpc.request_timeout")
                #expect(c.waitForClose())
                // Headers dribbled forever: closed at the deadline.
                let d = try RawClient(port: port, timeoutMilliseconds: 3_000)
                defer { d.close() }
                try d.send("POST / HTTP/1.1\r\nHost: x\r\n")
                for _ in 0..<3 {
                    Thread_sleep(milliseconds: 50)
                    try? d.send("X-Slow: 1\r\n")
                }
                #expect(d.waitForClose())
                // An idle keep-alive connection is closed too.
                let e = try RawClient(port: port, timeoutMilliseconds: 3_000)
                defer { e.close() }
                #expect(e.waitForClose())
            }
            // A handler slower than the request timeout is not cut off.
            let slow = try await post(port, #"{"jsonrpc":"2.0","method":"sleep","params":[600],"id":1}"#)
            #expect(slow.json?["result"] == true)
            try await expectServing(port)
        }
    }

    @Test func connectionLimit() async throws {
        try await withDemoServer({ $0.connectionsMax = 2 }) { _, port in
            try await onPool {
                let a = try RawClient(port: port)
                let b = try RawClient(port: port)
                try a.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try a.readResponse().status == 200)
                try b.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try b.readResponse().status == 200)
                let c = try RawClient(port: port)
                let refused = try c.readResponse()
                #expect(refused.status == 503)
                #expect(refused.json?["error"]?["code"] == -32002)
                #expect(refused.json?["error"]?["data"]?["code"] == "rpc.too_many_connections")
                #expect(c.waitForClose())
                c.close()
                a.close()
                b.close()
            }
            // Once they are gone, new connections are served again.
            var served = false
            for _ in 0..<50 where !served {
                if let r = try? await post(port, Self.good), r.status == 200 { served = true } else {
                    try await Task.sleep(nanoseconds: 20_000_000)
                }
            }
            #expect(served)
        }
    }

    @Test func gracefulShutdownFinishesInFlightRequests() async throws {
        var config = RPCServerConfiguration()
        config.port = 0
        let server = RPCServer(configuration: config)
        let (entered, signal) = AsyncStream<Void>.makeStream()
        server.register(method: "hold", summary: "Signals, waits 300 ms, returns true.") { _ in
            signal.yield()
            try await Task.sleep(nanoseconds: 300_000_000)
            return true
        }
        try await server.start()
        let port = try #require(server.port)
        let client = try await onPool {
            let c = try RawClient(port: port)
            let body = #"{"jsonrpc":"2.0","method":"hold","id":"late"}"#
            try c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            return c
        }
        defer { client.close() }
        var iterator = entered.makeAsyncIterator()
        _ = await iterator.next()  // the request is being handled
        await server.shutdown()
        let reply = try await onPool { try client.readResponse() }
        #expect(reply.status == 200)
        #expect(reply.json?["id"] == "late")
        #expect(reply.json?["result"] == true)
        #expect(reply.header("connection") == "close")
        // The listener is gone.
        await #expect(throws: (any Error).self) { try await post(port, Self.good) }
        await server.shutdown()  // a second call is harmless
    }
}

extension TransportTests {
    @Test func bindingABusyPortFails() async throws {
        try await withDemoServer { _, port in
            var config = RPCServerConfiguration()
            config.port = port
            let second = RPCServer(configuration: config)
            await #expect(throws: (any Error).self) { try await second.start() }
            await second.shutdown()
            try await expectServing(port)
        }
    }

    @Test func runServesUntilCancelled() async throws {
        var config = RPCServerConfiguration()
        config.port = 0
        let server = RPCServer(configuration: config)
        registerDemo(server)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            var port: Int? = nil
            for _ in 0..<200 where port == nil {
                port = server.port
                if port == nil { try await Task.sleep(nanoseconds: 5_000_000) }
            }
            let p = try #require(port)
            let r = try await post(p, Self.good)
            #expect(r.text == Self.goodReply)
            group.cancelAll()
            try await group.waitForAll()
            await #expect(throws: (any Error).self) { try await post(p, Self.good) }
        }
    }
}

func Thread_sleep(milliseconds: Int) {
    var ts = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
    nanosleep(&ts, nil)
}

#if canImport(Glibc)
import Glibc
#endif
