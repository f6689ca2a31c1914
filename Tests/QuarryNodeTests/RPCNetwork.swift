import Foundation
import NIOPosix
import Testing
import QuarryConsensus
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryNetwork
import QuarryRPC
import QuarryRPCTestSupport
import QuarryStore
@testable import QuarryNode

/// Validators in this process, each a real `NodeRuntime` over RocksDB, linked by the P2P
/// transport on 127.0.0.1, each serving JSON-RPC on its own loopback port as
/// `quarry node start` does. `run` starts everything, runs the body, and stops everything.
final class RPCNetwork: @unchecked Sendable {
    let genesis: Genesis
    let runtimes: [NodeRuntime]
    let servers: [RPCServer]
    let rpcs: [NodeRPC]
    let services: [P2PService]
    let stores: [RocksDBStore]
    let group: MultiThreadedEventLoopGroup
    let base: String
    private(set) var ports: [Int] = []

    /// Nodes that run without a consensus key (they follow), and nodes whose runtime starts
    /// only at `startLate` (their transport and RPC server run from the start).
    let readOnly: Set<Int>
    let late: Set<Int>
    private let gates: [Int: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)]

    init(genesis: Genesis, keys: [SM2PrivateKey], readOnly: Set<Int> = [], late: Set<Int> = [],
         configure: (Int, inout NodeRPCConfiguration) -> Void = { _, _ in }) async throws {
        self.readOnly = readOnly
        self.late = late
        var gates: [Int: (AsyncStream<Void>, AsyncStream<Void>.Continuation)] = [:]
        for i in late { gates[i] = AsyncStream<Void>.makeStream() }
        self.gates = gates
        self.genesis = genesis
        base = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-rpc-\(UUID().uuidString)").path
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let membership = Membership(keys.map(\.publicKey))
        var services: [P2PService] = []
        var p2pPorts: [Int] = []
        for k in keys {
            var c = P2PConfiguration(identity: NodeIdentity(privateKey: k), membership: membership, chainID: genesis.chainID)
            c.reconnectDelayMinMilliseconds = 20
            c.reconnectDelayMaxMilliseconds = 200
            let s = P2PService(configuration: c, group: group)
            p2pPorts.append(try await s.start().port ?? 0)
            services.append(s)
        }
        for (i, s) in services.enumerated() {
            for (j, k) in keys.enumerated() where j > i {
                s.addPeer(PeerAddress(host: "127.0.0.1", port: p2pPorts[j], nodeID: NodeID(publicKey: k.publicKey)))
            }
        }
        var runtimes: [NodeRuntime] = [], stores: [RocksDBStore] = [], servers: [RPCServer] = [], rpcs: [NodeRPC] = []
        for (i, k) in keys.enumerated() {
            let dir = base + "/node\(i)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let store = try RocksDBStore(path: dir + "/db", columns: Ledger.columns + BlockStore.columns)
            stores.append(store)
            let app = try ChainApplication(ledger: Ledger(store: store, genesis: genesis), chain: BlockStore(store: store))
            let timeouts = TimeoutConfig(proposeBase: 1_000, proposeDelta: 500, prevoteBase: 300, prevoteDelta: 200,
                                         precommitBase: 300, precommitDelta: 200)
            let runtime = try NodeRuntime(app: app, config: ConsensusConfig(chainID: genesis.chainID, timeouts: timeouts),
                                          signer: readOnly.contains(i) ? nil : SM2ConsensusSigner(key: k),
                                          wal: FileWAL(path: dir + "/consensus.wal"),
                                          signedFile: readOnly.contains(i) ? nil : SignedStateFile(path: dir + "/signed_state"),
                                          p2p: services[i])
            runtimes.append(runtime)
            var serverConfig = RPCServerConfiguration()
            serverConfig.port = 0
            let server = RPCServer(configuration: serverConfig, group: group)
            var rpcConfig = NodeRPCConfiguration()
            configure(i, &rpcConfig)
            let rpc = NodeRPC(runtime: runtime, configuration: rpcConfig)
            rpc.register(on: server)
            servers.append(server)
            rpcs.append(rpc)
        }
        self.services = services
        self.runtimes = runtimes
        self.stores = stores
        self.servers = servers
        self.rpcs = rpcs
    }

    /// Starts the nodes and their RPC servers, runs `body`, then stops everything in the order
    /// `quarry node start` does and removes the data.
    func run(_ body: (RPCNetwork) async throws -> Void) async throws {
        for s in servers { try await s.start() }
        ports = servers.map { $0.port ?? 0 }
        defer { stop() }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for (i, r) in runtimes.enumerated() {
                if let gate = gates[i]?.stream {
                    tasks.addTask {
                        for await _ in gate { break }
                        guard !Task.isCancelled else { return }
                        try await r.run()
                    }
                } else {
                    tasks.addTask { try await r.run() }
                }
            }
            for (rpc, server) in zip(rpcs, servers) { tasks.addTask { await rpc.run(publishingTo: server) } }
            var failure: (any Error)?
            do { try await body(self) } catch { failure = error }
            // Closing the transports ends the runtimes' loops; then the rest is cancelled.
            for s in servers { await s.shutdown() }
            for s in services { await s.shutdown() }
            for gate in gates.values { gate.continuation.finish() }
            tasks.cancelAll()
            if let failure { throw failure }
        }
    }

    /// Starts the runtime of a node created with `late`.
    func startLate(_ i: Int) {
        precondition(late.contains(i), "node \(i) was not created late")
        gates[i]?.continuation.yield(())
    }

    private func stop() {
        for s in stores { s.close() }
        try? group.syncShutdownGracefully()
        try? FileManager.default.removeItem(atPath: base)
    }

    // MARK: Client side

    /// Calls `method` on node `node` over HTTP and returns the whole response object.
    func call(_ node: Int, _ method: String, _ params: JSONValue? = nil) async throws -> JSONValue {
        var request: [(String, JSONValue)] = [("jsonrpc", "2.0"), ("method", .string(method))]
        if let params { request.append(("params", params)) }
        request.append(("id", 1))
        let response = try await post(ports[node], JSONValue.object(request).encoded)
        #expect(response.status == 200, "\(method): HTTP \(response.status)")
        return try #require(response.json, "\(method): body is not JSON: \(response.text.prefix(200))")
    }

    /// The result of a call that must succeed; checked against the method's result schema.
    func result(_ node: Int, _ method: String, _ params: JSONValue? = nil,
                sourceLocation: SourceLocation = #_sourceLocation) async throws -> JSONValue {
        let response = try await call(node, method, params)
        guard let result = response["result"] else {
            Issue.record("\(method) failed: \(response)", sourceLocation: sourceLocation)
            throw RawClient.Failure(description: "\(method) failed")
        }
        let schema = try #require(NodeRPC.methods.first { $0.name == method }?.result)
        let problems = SchemaChecker.problems(result, schema)
        #expect(problems.isEmpty, "\(method) result breaks its schema: \(problems)", sourceLocation: sourceLocation)
        return result
    }

    /// The error object of a call that must fail with `code` (and `dataCode` when given).
    @discardableResult
    func error(_ node: Int, _ method: String, _ params: JSONValue?, code: Int, dataCode: String? = nil,
               sourceLocation: SourceLocation = #_sourceLocation) async throws -> JSONValue {
        let response = try await call(node, method, params)
        let error = response["error"] ?? .null
        #expect(error["code"]?.numberValue?.int64Value == Int64(code), "\(method): expected \(code), got \(response)",
                sourceLocation: sourceLocation)
        if let dataCode {
            #expect(error["data"]?["code"]?.stringValue == dataCode, "\(method): expected \(dataCode), got \(error)",
                    sourceLocation: sourceLocation)
        }
        #expect(error["data"]?["reason"]?.stringValue?.isEmpty == false, "\(method): no reason", sourceLocation: sourceLocation)
        return error
    }

    /// Polls until `check` holds (at most `seconds`).
    func eventually(_ what: String, seconds: Int = 30, sourceLocation: SourceLocation = #_sourceLocation,
                    _ check: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await check() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation)
        throw RawClient.Failure(description: "timed out waiting for \(what)")
    }
}

/// Builds, signs and encodes transactions for tests, keeping each sender's nonce.
final class TestSigner: @unchecked Sendable {
    let chainID: String
    private var nonces: [Address: UInt64] = [:]

    init(chainID: String) { self.chainID = chainID }

    func tx(_ key: SigningKey, _ payload: Payload, nonce: UInt64? = nil) throws -> [UInt8] {
        let n = nonce ?? nonces[key.address, default: 0]
        if nonce == nil { nonces[key.address] = n + 1 }
        let body = TransactionBody(chainID: chainID, nonce: n, signer: key.publicKeyBytes, payload: payload)
        return try SignedTransaction(body: body, key: key).canonicalBytes
    }

    func hex(_ key: SigningKey, _ payload: Payload, nonce: UInt64? = nil) throws -> JSONValue {
        .hex(try tx(key, payload, nonce: nonce))
    }
}

/// A subscriber over a real WebSocket connection.
final class TestSubscriber: @unchecked Sendable {
    let client: RawClient
    private var nextID = 1

    init(port: Int) async throws {
        client = try await onPool { try RawClient(port: port, timeoutMilliseconds: 10_000) }
        let response = try await onPool { [client] in try client.upgradeToWebSocket() }
        #expect(response.status == 101)
    }

    /// Subscribes and returns the subscription id.
    func subscribe(_ topic: String, filter: JSONValue? = nil) async throws -> String {
        var params: [(String, JSONValue)] = [("topic", .string(topic))]
        if let filter { params.append(("filter", filter)) }
        let id = nextID
        nextID += 1
        let request = JSONValue.object([("jsonrpc", "2.0"), ("method", "subscribe"), ("params", .object(params)), ("id", .integer(Int64(id)))])
        try await onPool { [client] in try client.sendText(request.description) }
        // Notifications of earlier subscriptions may come first: keep them for `collect`.
        for _ in 0..<1_000 {
            let message = try await read()
            if message["method"] == "subscription" { early.append(message); continue }
            return try #require(message["result"]?.stringValue, "subscribe \(topic): \(message)")
        }
        throw RawClient.Failure(description: "no reply to subscribe \(topic)")
    }

    private var early: [JSONValue] = []

    private func read() async throws -> JSONValue {
        let frame = try await onPool { [client] in try client.readMessage() }
        return try #require(frame.json, "not JSON: \(frame.text.prefix(200))")
    }

    /// The next JSON message.
    func next() async throws -> JSONValue {
        if !early.isEmpty { return early.removeFirst() }
        return try await read()
    }

    /// Reads notifications until `done` has seen what it wants or `limit` messages went by.
    func collect(limit: Int = 5_000, until done: (_ topic: String, _ payload: JSONValue) -> Bool) async throws {
        for _ in 0..<limit {
            let message = try await next()
            guard message["method"] == "subscription", let params = message["params"],
                  let topic = params["topic"]?.stringValue, let payload = params["result"] else { continue }
            let schema = try #require(NodeRPC.topics.first { $0.name == topic }?.payloadSchema)
            let problems = SchemaChecker.problems(payload, schema)
            #expect(problems.isEmpty, "\(topic) notification breaks its schema: \(problems)")
            if done(topic, payload) { return }
        }
        Issue.record("the awaited notifications did not arrive within \(limit) messages")
    }

    func close() { client.close() }
}
