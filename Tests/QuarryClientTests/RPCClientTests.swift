import Foundation
import NIOPosix
import QuarryCore
import QuarryRPC
import Testing
@testable import QuarryClient

enum FileManagerSupport {
    static func temporaryDirectory() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-client-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func remove(_ url: URL) { try? FileManager.default.removeItem(at: url) }
}

struct SampleError: QuarryError {
    var code: String { "claim.odometer_overlap" }
    var description: String { "odometer span overlaps the previous claim" }
}

/// The client against the project's real JSON-RPC server (QuarryRPC) on 127.0.0.1, with
/// methods registered for the test: results, the server's error objects, HTTP errors,
/// deadlines, and a port where nothing listens.
@Suite(.serialized) struct RPCClientTests {
    static func withServer(_ body: (RPCServer, RPCEndpoint) async throws -> Void) async throws {
        var configuration = RPCServerConfiguration()
        configuration.port = 0
        let server = RPCServer(configuration: configuration)
        server.register(method: "echo", summary: "returns its params", params: [RPCParamSpec("value", .any)]) { params in
            ["value": params.value("value") ?? .null, "big": .amount(UInt64.max)]
        }
        server.register(method: "refuse", summary: "a ledger refusal") { _ in throw SampleError() }
        server.register(method: "slow", summary: "answers after 3 s") { _ in
            try await Task.sleep(nanoseconds: 3_000_000_000)
            return true
        }
        try await server.start()
        let endpoint = RPCEndpoint(host: "127.0.0.1", port: try #require(server.port))
        do {
            try await body(server, endpoint)
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
    }

    @Test(.timeLimit(.minutes(1))) func resultsAndExactNumbers() async throws {
        try await Self.withServer { _, endpoint in
            let client = RPCClient(endpoint: endpoint, timeoutMilliseconds: 5_000)
            let result = try await client.call("echo", [("value", ["n": .integer(UInt64.max), "s": "ünïcode \"q\""])])
            #expect(result["value"]?["n"]?.numberValue?.uint64Value == UInt64.max)
            #expect(result["value"]?["s"]?.stringValue == "ünïcode \"q\"")
            #expect(result["big"]?.stringValue == String(UInt64.max))
            // Concurrent calls on one client each get their own answer.
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<20 {
                    group.addTask { try await client.call("echo", [("value", .integer(UInt64(i)))])["value"]?.numberValue?.uint64Value == UInt64(i) }
                }
                for try await ok in group { #expect(ok) }
            }
        }
    }

    @Test(.timeLimit(.minutes(1))) func batchesAnswerEachCallInOrder() async throws {
        try await Self.withServer { _, endpoint in
            let client = RPCClient(endpoint: endpoint, timeoutMilliseconds: 5_000)
            #expect(try await client.batch([]).isEmpty)
            var calls: [(method: String, params: [(String, JSONValue)])] = []
            for i in 0..<30 {
                calls.append(i % 3 == 2 ? ("refuse", []) : ("echo", [("value", .integer(UInt64(i)))]))
            }
            calls.append(("no_such_method", []))
            // A plain call on the same client meanwhile: ids of the two never collide.
            async let plain = client.call("echo", [("value", "alone")])
            let answers = try await client.batch(calls)
            #expect(try await plain["value"]?.stringValue == "alone")
            #expect(answers.count == 31)
            for (i, answer) in answers.enumerated() {
                switch answer {
                case .success(let result):
                    #expect(i % 3 != 2 && i < 30)
                    #expect(result["value"]?.numberValue?.uint64Value == UInt64(i))
                case .failure(let error):
                    if i == 30 {
                        #expect(error.code == -32601)
                    } else {
                        #expect(i % 3 == 2)
                        #expect(error.dataCode == "claim.odometer_overlap")
                        #expect(error.reason == "odometer span overlaps the previous claim")
                    }
                }
            }
            // Longer than the server's batch limit (100): the whole batch is refused.
            let tooMany = [(method: String, params: [(String, JSONValue)])](repeating: ("echo", []), count: 101)
            do {
                _ = try await client.batch(tooMany)
                Issue.record("a batch of 101 was accepted")
            } catch {
                #expect((error as? ClientError)?.remote?.dataCode == "rpc.batch_too_long")
            }
        }
    }

    @Test(.timeLimit(.minutes(1))) func serverErrorsKeepTheirCodeAndReason() async throws {
        try await Self.withServer { _, endpoint in
            let client = RPCClient(endpoint: endpoint, timeoutMilliseconds: 5_000)
            do {
                _ = try await client.call("refuse")
                Issue.record("expected an error")
            } catch let error as ClientError {
                guard case .remote(let remote) = error else { Issue.record("got \(error)"); return }
                #expect(remote.code == -32000)
                #expect(remote.dataCode == "claim.odometer_overlap")
                #expect(remote.reason == "odometer span overlaps the previous claim")
                #expect(error.code == "claim.odometer_overlap")
                #expect(error.description.contains("odometer span overlaps the previous claim"))
            }
            do {
                _ = try await client.call("no_such_method")
                Issue.record("expected an error")
            } catch let error as ClientError {
                #expect(error.remote?.code == -32601)
                #expect(error.code == "rpc.method_not_found")
            }
            do {
                _ = try await client.call("echo", [("nonsense", true)])
                Issue.record("expected an error")
            } catch let error as ClientError {
                #expect(error.remote?.code == -32602)
                #expect(error.description.contains("nonsense"))
            }
        }
    }

    @Test(.timeLimit(.minutes(1))) func httpErrorsAreReported() async throws {
        try await Self.withServer { _, endpoint in
            let client = RPCClient(endpoint: RPCEndpoint(host: endpoint.host, port: endpoint.port, path: "/elsewhere"), timeoutMilliseconds: 5_000)
            do {
                _ = try await client.call("echo")
                Issue.record("expected an error")
            } catch let error as ClientError {
                guard case .httpStatus(404, let remote) = error else { Issue.record("got \(error)"); return }
                #expect(remote?.dataCode == "rpc.not_found")
            }
        }
    }

    @Test(.timeLimit(.minutes(1))) func deadlineAndUnreachable() async throws {
        try await Self.withServer { _, endpoint in
            let client = RPCClient(endpoint: endpoint, timeoutMilliseconds: 300)
            let started = ContinuousClock.now
            do {
                _ = try await client.call("slow")
                Issue.record("expected a timeout")
            } catch let error as ClientError {
                guard case .timedOut = error else { Issue.record("got \(error)"); return }
                #expect(error.code == "client.timeout")
            }
            #expect(ContinuousClock.now - started < .seconds(3))
            // The server is still fine afterwards.
            #expect(try await client.call("echo", [("value", 1)])["value"] == 1)
        }
        // A port nobody listens on (bound, then closed).
        let port = try await Self.closedPort()
        let outcome = await Self.attempt(RPCClient(endpoint: RPCEndpoint(host: "127.0.0.1", port: port), timeoutMilliseconds: 2_000), "node_status")
        guard case .failure(let failure) = outcome, case .unreachable(let endpointText, _) = failure else {
            Issue.record("expected unreachable, got \(outcome)")
            return
        }
        #expect(endpointText.contains("\(port)"))
        #expect(failure.description.contains("--rpc"))
    }

    static func attempt(_ client: RPCClient, _ method: String) async -> Result<JSONValue, ClientError> {
        do { return .success(try await client.call(method)) } catch { return .failure(error) }
    }

    static func closedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        try await channel.close()
        return port
    }

    @Test func resultShapesAreChecked() throws {
        let hash = String(repeating: "ab", count: 32)
        let ok: JSONValue = ["hash": .string(hash), "status": "committed", "height": 12, "result": ["events": []]]
        let s = try TransactionStatus(ok, method: "tx_get")
        #expect(s.succeeded && s.height == 12)
        let refused: JSONValue = ["hash": .string(hash), "status": "committed", "height": 12,
                                  "error": ["code": "claim.stale", "reason": "the span ended too long ago"]]
        let r = try TransactionStatus(refused, method: "tx_get")
        #expect(!r.succeeded)
        #expect(r.failure == LedgerFailure(code: "claim.stale", reason: "the span ended too long ago"))
        #expect(throws: ClientError.self) { try TransactionStatus(["hash": .string(hash), "status": "lost"], method: "tx_get") }
        #expect(throws: ClientError.self) { try TransactionStatus(["status": "pending"], method: "tx_get") }
        #expect(throws: ClientError.self) {
            try AccountState(["address": "quarry1x", "height": 1, "balanceGrains": "0", "nonce": 0])
        }
        #expect(throws: ClientError.self) {
            try AccountState(["address": .string(SigningKeyFixture.address.text), "height": 1, "balanceGrains": "01", "nonce": 0])
        }
        let account = try AccountState(["address": .string(SigningKeyFixture.address.text), "height": 1,
                                        "balanceGrains": "18446744073709551615", "nonce": 7])
        #expect(account.balanceGrains == UInt64.max && account.nonce == 7)
        #expect(JSONValue.parseGrains("18446744073709551616") == nil)
        #expect(JSONValue.parseGrains("-1") == nil)
        #expect(JSONValue.parseGrains("0") == 0)
    }
}

import QuarryCrypto

enum SigningKeyFixture {
    static let address = SigningKey(scheme: .sm2).address
}
