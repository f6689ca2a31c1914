import QuarryCore
@testable import QuarryRPC

// TEST-ONLY demo methods. They exercise the server machinery; the real methods of issue 6
// are registered by the node.

struct DemoRejection: QuarryError {
    var code: String { "claim.span_overlap" }
    var description: String { "odometer span overlaps the previous claim" }
}

struct DemoMissing: QuarryError, RPCErrorConvertible {
    var code: String { "demo.not_found" }
    var description: String { "no such thing" }
    var rpcError: RPCError { .notFound(code: code, description) }
}

struct DemoCrash: Error {}

let demoTopicBlocks = RPCTopic(name: "demo_blocks", summary: "Test-only block events.",
                               payloadSchema: ["type": "object"])
let demoTopicTransfers = RPCTopic(
    name: "demo_transfers", summary: "Test-only events filtered by account.",
    filter: [RPCParamSpec("account", .address, required: false),
             RPCParamSpec("minimum", .amount, required: false)],
    payloadSchema: ["type": "object"])

/// Registers the test-only demo methods and topics on `server`.
func registerDemo(_ server: RPCServer) {
    server.register(method: "echo", summary: "Returns its value.",
                    params: [RPCParamSpec("value", .any)], result: [:]) { p in
        p.value("value") ?? .null
    }
    server.register(method: "add", summary: "Adds two amounts of grains.",
                    params: [RPCParamSpec("a", .amount), RPCParamSpec("b", .amount)],
                    result: ["type": "string"]) { p in
        let (sum, overflow) = try p.amount("a").addingReportingOverflow(try p.amount("b"))
        guard !overflow else { throw RPCError.invalidParams("sum exceeds 2^64") }
        return .amount(sum)
    }
    server.register(method: "describe", summary: "Echoes typed params.",
                    params: [RPCParamSpec("height", .unsignedInteger),
                             RPCParamSpec("hash", .hash, required: false),
                             RPCParamSpec("account", .address, required: false),
                             RPCParamSpec("wait", .oneOf(["none", "checked", "committed"]), required: false),
                             RPCParamSpec("flag", .boolean, required: false),
                             RPCParamSpec("note", .string(lengthMax: 8), required: false)]) { p in
        var out: [(String, JSONValue)] = [("height", .integer(try p.uint64("height")))]
        if p.has("hash") { out.append(("hash", .string(try p.hash("hash").hex))) }
        if p.has("account") { out.append(("account", .string(try p.address("account").text))) }
        if p.has("wait") { out.append(("wait", .string(try p.string("wait")))) }
        if p.has("flag") { out.append(("flag", .bool(try p.bool("flag")))) }
        return .object(out)
    }
    server.register(method: "reject", summary: "Fails like the ledger would.") { _ in throw DemoRejection() }
    server.register(method: "missing", summary: "Fails with not found.") { _ in throw DemoMissing() }
    server.register(method: "crash", summary: "Fails with an internal error.") { _ in throw DemoCrash() }
    server.register(method: "sleep", summary: "Waits, then returns true.",
                    params: [RPCParamSpec("milliseconds", .unsignedInteger)]) { p in
        try await Task.sleep(nanoseconds: try p.uint64("milliseconds") * 1_000_000)
        return true
    }
    server.register(method: "big", summary: "Returns a string of n bytes.",
                    params: [RPCParamSpec("bytes", .unsignedInteger)]) { p in
        .string(String(repeating: "x", count: Int(min(try p.uint64("bytes"), 4 << 20))))
    }
    server.register(topic: demoTopicBlocks)
    server.register(topic: demoTopicTransfers)
}

/// Starts a demo server on an ephemeral loopback port, runs `body`, and always shuts the
/// server down.
func withDemoServer<T>(_ adjust: (inout RPCServerConfiguration) -> Void = { _ in },
                       _ body: (RPCServer, Int) async throws -> T) async throws -> T {
    var config = RPCServerConfiguration()
    config.host = "127.0.0.1"
    config.port = 0
    config.shutdownGraceMilliseconds = 2_000
    adjust(&config)
    let server = RPCServer(configuration: config)
    registerDemo(server)
    try await server.start()
    do {
        let port = try #require(server.port)
        let result = try await body(server, port)
        await server.shutdown()
        return result
    } catch {
        await server.shutdown()
        throw error
    }
}

import QuarryRPCTestSupport
import Testing
