import QuarryRPCTestSupport
import Testing
@testable import QuarryRPC

/// The examples of the JSON-RPC 2.0 specification (section 7), with test-only methods named
/// as there. Replies are compared without the `data` member Quarry adds to errors.
@Suite("JSON-RPC 2.0 specification examples")
struct SpecificationExamplesTests {
    static func register(_ server: RPCServer) {
        @Sendable func integer(_ p: RPCParams, _ name: String) throws -> Int64 {
            guard let n = p.value(name)?.numberValue?.int64Value else { throw RPCError.invalidParams("\(name) must be an integer") }
            return n
        }
        server.register(method: "subtract", summary: "minuend - subtrahend",
                        params: [RPCParamSpec("minuend", .any), RPCParamSpec("subtrahend", .any)]) { p in
            .integer(try integer(p, "minuend") - integer(p, "subtrahend"))
        }
        server.register(method: "sum", summary: "a + b + c",
                        params: [RPCParamSpec("a", .any), RPCParamSpec("b", .any, required: false),
                                 RPCParamSpec("c", .any, required: false)]) { p in
            var total: Int64 = 0
            for name in ["a", "b", "c"] where p.has(name) { total += try integer(p, name) }
            return .integer(total)
        }
        server.register(method: "update", summary: "", params: (1...5).map { RPCParamSpec("p\($0)", .any) }) { _ in .null }
        server.register(method: "notify_hello", summary: "", params: [RPCParamSpec("n", .any)]) { _ in .null }
        server.register(method: "notify_sum", summary: "", params: (1...3).map { RPCParamSpec("p\($0)", .any) }) { _ in .null }
        server.register(method: "get_data", summary: "") { _ in ["hello", 5] }
    }

    /// `reply` with every error's `data` removed.
    static func withoutData(_ reply: JSONValue) -> JSONValue {
        switch reply {
        case .array(let items): return .array(items.map(withoutData))
        case .object(let members):
            return .object(members.map { key, value in
                guard key == "error", case .object(let e) = value else { return (key, value) }
                return (key, .object(e.filter { $0.0 != "data" }))
            })
        default: return reply
        }
    }

    static let examples: [(request: String, reply: String?)] = [
        (#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#,
         #"{"jsonrpc": "2.0", "result": 19, "id": 1}"#),
        (#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#,
         #"{"jsonrpc": "2.0", "result": -19, "id": 2}"#),
        (#"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#,
         #"{"jsonrpc": "2.0", "result": 19, "id": 3}"#),
        (#"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#,
         #"{"jsonrpc": "2.0", "result": 19, "id": 4}"#),
        (#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#, nil),
        (#"{"jsonrpc": "2.0", "method": "foobar"}"#, nil),
        (#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#,
         #"{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}"#),
        (#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#,
         #"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#),
        (#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#,
         #"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#),
        (#"[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method""#,
         #"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#),
        ("[]", #"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#),
        ("[1]", #"[{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}]"#),
        ("[1,2,3]", """
         [{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
          {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
          {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}]
         """),
        ("""
         [{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
          {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
          {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
          {"foo": "boo"},
          {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
          {"jsonrpc": "2.0", "method": "get_data", "id": "9"}]
         """, """
         [{"jsonrpc": "2.0", "result": 7, "id": "1"},
          {"jsonrpc": "2.0", "result": 19, "id": "2"},
          {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
          {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
          {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}]
         """),
        (#"[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]"#, nil),
    ]

    @Test func everyExampleOverHTTP() async throws {
        try await withDemoServer { server, port in
            Self.register(server)
            for (request, expected) in Self.examples {
                let r = try await post(port, request)
                if let expected {
                    #expect(r.status == 200, "\(request)")
                    let reply = try #require(r.json, "\(request) -> \(r.text)")
                    #expect(Self.withoutData(reply) == (try JSONValue.parse(expected)), "\(request) -> \(r.text)")
                } else {
                    #expect(r.status == 204, "\(request) -> \(r.status) \(r.text)")
                    #expect(r.body.isEmpty)
                }
            }
        }
    }
}
