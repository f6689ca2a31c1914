import Testing
@testable import QuarryClient

@Suite struct EndpointTests {
    @Test func parsesTheForms() throws {
        #expect(try RPCEndpoint(parsing: "http://127.0.0.1:26657") == RPCEndpoint(host: "127.0.0.1", port: 26_657, path: "/"))
        #expect(try RPCEndpoint(parsing: "127.0.0.1:26601") == RPCEndpoint(host: "127.0.0.1", port: 26_601, path: "/"))
        #expect(try RPCEndpoint(parsing: ":9000") == RPCEndpoint(host: "127.0.0.1", port: 9_000, path: "/"))
        #expect(try RPCEndpoint(parsing: "http://node.example/rpc") == RPCEndpoint(host: "node.example", port: 26_657, path: "/rpc"))
        #expect(try RPCEndpoint(parsing: "http://[::1]:8080/") == RPCEndpoint(host: "::1", port: 8_080, path: "/"))
        #expect(RPCEndpoint(host: "::1", port: 8_080).description == "http://[::1]:8080/")
    }

    @Test(arguments: ["https://127.0.0.1:1", "ws://x:1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:abc", "http://a b:1"])
    func rejectsBadAddresses(text: String) {
        #expect(throws: ClientError.self) { try RPCEndpoint(parsing: text) }
    }
}
