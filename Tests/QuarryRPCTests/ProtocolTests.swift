import QuarryCore
import QuarryRPCTestSupport
import Testing
@testable import QuarryRPC

/// JSON-RPC 2.0 semantics over real HTTP on 127.0.0.1.
@Suite("JSON-RPC protocol over HTTP")
struct ProtocolTests {
    static let account = Address(scheme: .sm2, digest20: [UInt8](repeating: 7, count: 20)).text

    /// Posts `body`, expects HTTP 200 and returns the parsed reply.
    func call(_ port: Int, _ body: String) async throws -> JSONValue {
        let r = try await post(port, body)
        #expect(r.status == 200, "\(r.status) \(r.text)")
        #expect(r.header("content-type") == "application/json")
        return try #require(r.json, "reply is not JSON: \(r.text)")
    }

    func expectError(_ reply: JSONValue, code: Int, dataCode: String? = nil, id: JSONValue = .null,
                     reasonContains: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply["jsonrpc"] == "2.0", sourceLocation: sourceLocation)
        #expect(reply["id"] == id, "id of \(reply)", sourceLocation: sourceLocation)
        #expect(reply["result"] == nil, sourceLocation: sourceLocation)
        #expect(reply["error"]?["code"] == .integer(Int64(code)), "\(reply)", sourceLocation: sourceLocation)
        #expect(reply["error"]?["message"]?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
        if let dataCode {
            #expect(reply["error"]?["data"]?["code"] == .string(dataCode), "\(reply)", sourceLocation: sourceLocation)
        }
        if let reasonContains {
            let reason = reply["error"]?["data"]?["reason"]?.stringValue ?? ""
            #expect(reason.contains(reasonContains), "reason: \(reason)", sourceLocation: sourceLocation)
        }
    }

    @Test func singleRequestsAndIDsAreEchoedExactly() async throws {
        try await withDemoServer { _, port in
            let r = try await call(port, #"{"jsonrpc":"2.0","method":"add","params":["20999999996850000","3150000"],"id":1}"#)
            #expect(r == ["jsonrpc": "2.0", "id": 1, "result": "21000000000000000"])
            // ids: strings, big and fractional numbers, null: echoed byte for byte.
            for id in [#""abc""#, #""""#, "123456789012345678901234567890", "-9007199254740993", "1.50", "-0",
                       "1e400", "null", #""\u00e9\ud83d\ude00""#] {
                let reply = try await post(port, #"{"jsonrpc":"2.0","method":"echo","params":{"value":1},"id":\#(id)}"#)
                let expectedID = try JSONValue.parse(id).description
                #expect(reply.text == #"{"jsonrpc":"2.0","id":\#(expectedID),"result":1}"#)
            }
            // Numbers in params and results keep their exact text too.
            let big = try await post(port, #"{"jsonrpc":"2.0","method":"echo","params":[123456789012345678901234567890.000],"id":2}"#)
            #expect(big.text == #"{"jsonrpc":"2.0","id":2,"result":123456789012345678901234567890.000}"#)
        }
    }

    @Test func namedAndPositionalParams() async throws {
        try await withDemoServer { _, port in
            let hash = String(repeating: "ab", count: 32)
            let named = try await call(port, #"{"jsonrpc":"2.0","method":"describe","params":{"height":18446744073709551615,"hash":"\#(hash)","account":"\#(Self.account)","wait":"committed","flag":false},"id":1}"#)
            #expect(named["result"] == ["height": .integer(UInt64.max), "hash": .string(hash),
                                         "account": .string(Self.account), "wait": "committed", "flag": false])
            let positional = try await call(port, #"{"jsonrpc":"2.0","method":"describe","params":[5,null,"\#(Self.account)"],"id":2}"#)
            #expect(positional["result"] == ["height": 5, "account": .string(Self.account)])
            let nullOptional = try await call(port, #"{"jsonrpc":"2.0","method":"describe","params":{"height":0,"hash":null},"id":3}"#)
            #expect(nullOptional["result"] == ["height": 0])
            let none = try await call(port, #"{"jsonrpc":"2.0","method":"rpc.discover","id":4}"#)
            #expect(none["result"]?["openrpc"] == "1.3.2")
        }
    }

    @Test func invalidParamsSayPreciselyWhatIsWrong() async throws {
        try await withDemoServer { _, port in
            let cases: [(String, String)] = [
                (#"{"height":-1}"#, "param \"height\" of describe must be a non-negative integer"),
                (#"{"height":1.5}"#, "non-negative integer"),
                (#"{"height":18446744073709551616}"#, "below 2^64"),
                (#"{"height":"5"}"#, "non-negative integer"),
                (#"{}"#, "missing required param \"height\""),
                (#"[]"#, "missing required param \"height\""),
                (#"{"height":1,"extra":2}"#, "unknown param \"extra\""),
                (#"[1,null,null,null,null,null,7]"#, "at most 6 positional params, got 7"),
                (#"{"height":1,"hash":"AB"}"#, "lowercase hex"),
                (#"{"height":1,"hash":"0xab"}"#, "lowercase hex"),
                (#"{"height":1,"hash":"abc"}"#, "even number of hex digits"),
                (#"{"height":1,"hash":"abab"}"#, "must be 32 bytes"),
                (#"{"height":1,"account":"quarry1xyz"}"#, "must be a valid address"),
                (#"{"height":1,"account":5}"#, "must be an address string"),
                (#"{"height":1,"wait":"soon"}"#, "must be one of \"none\", \"checked\", \"committed\""),
                (#"{"height":1,"flag":"yes"}"#, "must be true or false"),
                (#"{"height":1,"note":"123456789"}"#, "at most 8 bytes"),
            ]
            for (params, reason) in cases {
                let r = try await call(port, #"{"jsonrpc":"2.0","method":"describe","params":\#(params),"id":"p"}"#)
                expectError(r, code: -32602, dataCode: "rpc.invalid_params", id: "p", reasonContains: reason)
            }
            for amount in ["\"01\"", "\"-1\"", "\"1.0\"", "\"\"", "1", "\"18446744073709551616\"", "\" 1\"", "\"1e3\""] {
                let r = try await call(port, #"{"jsonrpc":"2.0","method":"add","params":[\#(amount),"1"],"id":9}"#)
                expectError(r, code: -32602, id: 9, reasonContains: "param \"a\" of add must be a decimal string of grains")
            }
            // The handler's own check, also -32602.
            let overflow = try await call(port, #"{"jsonrpc":"2.0","method":"add","params":["18446744073709551615","1"],"id":10}"#)
            expectError(overflow, code: -32602, id: 10, reasonContains: "sum exceeds")
        }
    }

    @Test func standardErrors() async throws {
        try await withDemoServer { _, port in
            // -32700: not JSON, bad UTF-8, too deep, duplicate keys.
            expectError(try await call(port, #"{"jsonrpc":"2.0","method":"echo""#), code: -32700, dataCode: "json.invalid")
            let badUTF8 = try await post(port, Array(#"{"jsonrpc":"2.0","method":""#.utf8) + [0xC0, 0x80] + Array(#""}"#.utf8))
            expectError(try #require(badUTF8.json), code: -32700, dataCode: "json.invalid", reasonContains: "UTF-8")
            let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
            expectError(try await call(port, deep), code: -32700, dataCode: "json.too_deep")
            expectError(try await call(port, #"{"jsonrpc":"2.0","method":"echo","method":"add","id":1}"#),
                        code: -32700, dataCode: "json.duplicate_key")
            expectError(try await call(port, ""), code: -32700)
            // -32600: not a valid request object. A valid id is still echoed.
            let invalid: [(String, JSONValue, String)] = [
                ("1", .null, "must be an object"),
                (#""x""#, .null, "must be an object"),
                (#"{"method":"echo","id":1}"#, 1, "\"jsonrpc\" must be exactly \"2.0\""),
                (#"{"jsonrpc":"1.0","method":"echo","id":1}"#, 1, "exactly \"2.0\""),
                (#"{"jsonrpc":2.0,"method":"echo","id":1}"#, 1, "exactly \"2.0\""),
                (#"{"jsonrpc":"2.0","id":"a"}"#, "a", "\"method\" must be a string"),
                (#"{"jsonrpc":"2.0","method":5,"id":"a"}"#, "a", "\"method\" must be a string"),
                (#"{"jsonrpc":"2.0","method":"echo","params":"bar","id":3}"#, 3, "\"params\" must be an array or an object"),
                (#"{"jsonrpc":"2.0","method":"echo","params":1}"#, .null, "\"params\" must be"),
                (#"{"jsonrpc":"2.0","method":"echo","id":[1]}"#, .null, "id must be a string, a number or null"),
                (#"{"jsonrpc":"2.0","method":"echo","id":{}}"#, .null, "id must be"),
                (#"{"jsonrpc":"2.0","method":"echo","id":true}"#, .null, "id must be"),
                (#"{"jsonrpc":"2.0","method":"echo","id":1,"param":[]}"#, 1, "unknown member \"param\""),
                (#"{}"#, .null, "exactly \"2.0\""),
            ]
            for (body, id, reason) in invalid {
                expectError(try await call(port, body), code: -32600, dataCode: "rpc.invalid_request", id: id,
                            reasonContains: reason)
            }
            // -32601
            expectError(try await call(port, #"{"jsonrpc":"2.0","method":"nope","id":7}"#), code: -32601,
                        dataCode: "rpc.method_not_found", id: 7, reasonContains: "\"nope\"")
            expectError(try await call(port, #"{"jsonrpc":"2.0","method":"rpc.other","id":7}"#), code: -32601, id: 7)
            // -32602 on a built-in
            expectError(try await call(port, #"{"jsonrpc":"2.0","method":"rpc.discover","params":[1],"id":8}"#),
                        code: -32602, id: 8)
            // -32603: an unexpected error reveals nothing.
            let crash = try await call(port, #"{"jsonrpc":"2.0","method":"crash","id":"c"}"#)
            expectError(crash, code: -32603, dataCode: "rpc.internal", id: "c")
            #expect(!crash.description.contains("DemoCrash"))
        }
    }

    @Test func internalErrorsReachTheObserverNotTheClient() async throws {
        let seen = Lock()
        nonisolated(unsafe) var reports: [String] = []
        let server = RPCServer(configuration: RPCServerConfiguration()) { method, error in
            seen.withLock { reports.append("\(method): \(error)") }
        }
        registerDemo(server)
        let reply = await server.dispatcher.handle(body: Array(#"{"jsonrpc":"2.0","method":"crash","id":1}"#.utf8),
                                                   transport: .http)
        let json = try JSONValue.parse(try #require(reply))
        expectError(json, code: -32603, id: 1)
        _ = await server.dispatcher.handle(body: Array(#"{"jsonrpc":"2.0","method":"reject","id":2}"#.utf8), transport: .http)
        #expect(seen.withLock { reports } == ["crash: DemoCrash()"])
        await server.shutdown()
    }

    @Test func applicationErrorsCarryTheLedgerReason() async throws {
        try await withDemoServer { _, port in
            let r = try await call(port, #"{"jsonrpc":"2.0","method":"reject","id":1}"#)
            #expect(r == ["jsonrpc": "2.0", "id": 1, "error": [
                "code": -32000, "message": "Application error",
                "data": ["code": "claim.span_overlap", "reason": "odometer span overlaps the previous claim"]]])
            let missing = try await call(port, #"{"jsonrpc":"2.0","method":"missing","id":2}"#)
            expectError(missing, code: -32001, dataCode: "demo.not_found", id: 2, reasonContains: "no such thing")
            let wrongTransport = try await call(port, #"{"jsonrpc":"2.0","method":"subscribe","params":{"topic":"demo_blocks"},"id":3}"#)
            expectError(wrongTransport, code: -32004, dataCode: "rpc.wrong_transport", id: 3)
            let unsubscribe = try await call(port, #"{"jsonrpc":"2.0","method":"unsubscribe","params":["x"],"id":4}"#)
            expectError(unsubscribe, code: -32004, id: 4)
        }
    }

    @Test func notificationsGetNoReply() async throws {
        try await withDemoServer { _, port in
            for body in [#"{"jsonrpc":"2.0","method":"echo","params":[1]}"#,
                         #"{"jsonrpc":"2.0","method":"nope"}"#,              // even an unknown method
                         #"{"jsonrpc":"2.0","method":"add","params":["x"]}"#,  // or bad params
                         #"{"jsonrpc":"2.0","method":"crash"}"#,
                         #"[{"jsonrpc":"2.0","method":"echo","params":[1]},{"jsonrpc":"2.0","method":"nope"}]"#] {
                let r = try await post(port, body)
                #expect(r.status == 204, "\(body) -> \(r.status) \(r.text)")
                #expect(r.body.isEmpty)
            }
            // A notification is still executed: the handler runs (observed through sleep's delay).
            let clock = ContinuousClock()
            let start = clock.now
            let r = try await post(port, #"{"jsonrpc":"2.0","method":"sleep","params":[150]}"#)
            #expect(r.status == 204)
            #expect(clock.now - start >= .milliseconds(150))
            // "id": null is a request, not a notification.
            let withNull = try await call(port, #"{"jsonrpc":"2.0","method":"echo","params":[1],"id":null}"#)
            #expect(withNull == ["jsonrpc": "2.0", "id": nil, "result": 1])
        }
    }

    @Test func batches() async throws {
        try await withDemoServer { server, port in
            let body = """
            [{"jsonrpc":"2.0","method":"add","params":["1","2"],"id":"1"},
             {"jsonrpc":"2.0","method":"echo","params":[7]},
             {"jsonrpc":"2.0","method":"nope","id":"2"},
             {"foo":"boo"},
             1,
             {"jsonrpc":"2.0","method":"reject","id":3},
             {"jsonrpc":"2.0","method":"sleep","params":[50],"id":4},
             {"jsonrpc":"2.0","method":"echo","params":{"value":"x"},"id":5}]
            """
            let r = try await call(port, body)
            let replies = try #require(r.arrayValue)
            #expect(replies.count == 7)  // one notification left out
            #expect(replies[0] == ["jsonrpc": "2.0", "id": "1", "result": "3"])
            expectError(replies[1], code: -32601, id: "2")
            expectError(replies[2], code: -32600)
            expectError(replies[3], code: -32600)
            expectError(replies[4], code: -32000, dataCode: "claim.span_overlap", id: 3)
            #expect(replies[5] == ["jsonrpc": "2.0", "id": 4, "result": true])
            #expect(replies[6] == ["jsonrpc": "2.0", "id": 5, "result": "x"])
            // Empty batch: one Invalid Request error, not an array.
            expectError(try await call(port, "[]"), code: -32600, reasonContains: "empty batch")
            expectError(try await call(port, " [ ] "), code: -32600)
            // A batch of invalid entries: an array of errors.
            let ones = try await call(port, "[1,2,3]")
            #expect(ones.arrayValue?.count == 3)
            for e in ones.arrayValue ?? [] { expectError(e, code: -32600) }
            // A nested batch is an invalid entry.
            let nested = try await call(port, #"[[{"jsonrpc":"2.0","method":"echo","params":[1],"id":1}]]"#)
            #expect(nested.arrayValue?.count == 1)
            expectError(try #require(nested.arrayValue?.first), code: -32600)
            // Batch entries run concurrently: each "meet" call waits (up to 5 s) until all
            // three have started, which only happens if they run at the same time.
            let barrier = Barrier(parties: 3)
            server.register(method: "meet", summary: "Test-only rendezvous.") { _ in .bool(await barrier.arrive()) }
            let meet = (0..<3).map { #"{"jsonrpc":"2.0","method":"meet","id":\#($0)}"# }
            let met = try await call(port, "[" + meet.joined(separator: ",") + "]")
            #expect(met == [["jsonrpc": "2.0", "id": 0, "result": true], ["jsonrpc": "2.0", "id": 1, "result": true],
                            ["jsonrpc": "2.0", "id": 2, "result": true]])
        }
    }

    @Test func batchLengthLimit() async throws {
        try await withDemoServer({ $0.batchLengthMax = 5 }) { _, port in
            let entry = #"{"jsonrpc":"2.0","method":"echo","params":[1],"id":1}"#
            let ok = try await call(port, "[" + Array(repeating: entry, count: 5).joined(separator: ",") + "]")
            #expect(ok.arrayValue?.count == 5)
            let tooLong = try await call(port, "[" + Array(repeating: entry, count: 6).joined(separator: ",") + "]")
            expectError(tooLong, code: -32002, dataCode: "rpc.batch_too_long", reasonContains: "6 requests")
            #expect(tooLong["error"]?["data"]?["limit"] == 5)
        }
    }
}

/// Lets `parties` tasks wait for each other; `arrive` returns false after 5 s without all.
actor Barrier {
    private let parties: Int
    private var arrived = 0

    init(parties: Int) { self.parties = parties }

    func arrive() async -> Bool {
        arrived += 1
        if arrived >= parties { return true }
        let deadline = ContinuousClock.now + .seconds(5)
        while arrived < parties, ContinuousClock.now < deadline {
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        return arrived >= parties
    }
}
