import ArgumentParser
import Foundation
import NIOPosix
import QuarryConsensus
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryNetwork
import QuarryNode
import QuarryRPC
import QuarryStore

/// Files of a node home (docs/spec/config.md).
struct NodeHome {
    let url: URL
    var config: URL { url.appendingPathComponent("config.toml") }
    var genesis: URL { url.appendingPathComponent("genesis.json") }
    var keys: URL { url.appendingPathComponent("keys") }
    var data: URL { url.appendingPathComponent("data") }
}

struct TestnetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "testnet",
        abstract: "Write a complete local network: a genesis and one node home per validator and read-only node.",
        discussion: """
            Every node listens on 127.0.0.1 with its own ports (P2P base-port + 10*i, RPC +1, metrics +2). \
            Keys are generated fresh and stored UNENCRYPTED: the result is for throwaway development \
            networks only. Start each node with 'quarry node start --home DIR/nodeN'.
            """)

    @Option(help: "Number of validators.") var validators: Int = 4
    @Option(name: .customLong("read-only"), help: "Number of read-only (auditor) nodes.") var readOnly: Int = 1
    @Option(help: ArgumentHelp("Directory to create.", valueName: "dir")) var output: String
    @Option(help: "First P2P port.") var basePort: Int = 26_600
    @Option(help: "Chain id.") var chainID: String = "quarry-local"
    @Option(help: "Mileage batch length in seconds.") var batchSeconds: UInt64 = 5

    func validate() throws {
        guard (1...32).contains(validators) else { throw ValidationError("--validators must be 1 to 32") }
        guard (0...8).contains(readOnly) else { throw ValidationError("--read-only must be 0 to 8") }
        guard basePort >= 1_024, basePort + 10 * (validators + readOnly) < 65_535 else {
            throw ValidationError("--base-port leaves no room for \(validators + readOnly) nodes")
        }
    }

    func run() throws {
        let root = URL(fileURLWithPath: (output as NSString).expandingTildeInPath)
        let fm = FileManager.default
        if fm.fileExists(atPath: root.appendingPathComponent("genesis.json").path) {
            throw CLIError("\(root.path) already holds a network; remove it or choose another --output")
        }
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        let count = validators + readOnly
        let nodeKeys = (0..<count).map { _ in SM2PrivateKey() }
        let roleKeys = ["registrar", "crystal-issuer", "box-operator", "merchant"].map { ($0, SigningKey(scheme: .sm2)) }
        let roleStore = Keystore(directory: root.appendingPathComponent("role-keys"))
        for (name, key) in roleKeys { try roleStore.save(key, name: name, passphrase: nil) }
        var economics = EconomicParameters()
        economics.batchSeconds = batchSeconds
        economics.claimStalenessSeconds = 3_600
        // A settlement block at a million participants stays near 250 ms with 2,000 payouts
        // (docs/performance.md); the block transaction limit may not exceed the chunk.
        economics.settlementChunkMax = 2_000
        var consensus = ConsensusParameters()
        consensus.blockTransactionsMax = 2_000
        consensus.timeoutProposeMilliseconds = 1_000
        consensus.timeoutPrevoteMilliseconds = 500
        consensus.timeoutPrecommitMilliseconds = 500
        let genesis = Genesis(
            chainID: chainID, genesisTime: UInt64(Date().timeIntervalSince1970),
            validators: (0..<validators).map {
                GenesisValidator(name: "validator-\($0)", publicKey: try! PublicKeyBytes(scheme: .sm2, bytes: nodeKeys[$0].publicKey.rawRepresentation), power: 10)
            },
            roles: Roles(registrar: roleKeys[0].1.address, crystalIssuer: roleKeys[1].1.address,
                         boxOperator: roleKeys[2].1.address, merchants: [roleKeys[3].1.address]),
            economics: economics, consensus: consensus)
        try genesis.validate()
        let genesisJSON = Data(genesis.json())
        try genesisJSON.write(to: root.appendingPathComponent("genesis.json"))
        let members = nodeKeys.map { Hex.encode($0.publicKey.rawRepresentation) }
        func p2pPort(_ i: Int) -> Int { basePort + 10 * i }
        for i in 0..<count {
            let home = NodeHome(url: root.appendingPathComponent("node\(i)"))
            try fm.createDirectory(at: home.data, withIntermediateDirectories: true)
            try genesisJSON.write(to: home.genesis)
            try Keystore(directory: home.keys).save(.sm2(nodeKeys[i]), name: "node", passphrase: nil)
            // Each node dials the nodes before it; together that is a full mesh.
            let peers = (0..<i).map { "\(NodeID(publicKey: nodeKeys[$0].publicKey).hex)@127.0.0.1:\(p2pPort($0))" }
            var config = NodeConfig(moniker: i < validators ? "validator-\(i)" : "auditor-\(i - validators)",
                                    role: i < validators ? .validator : .readOnly,
                                    p2pListen: "127.0.0.1:\(p2pPort(i))", peers: peers, members: members,
                                    rpcListen: "127.0.0.1:\(p2pPort(i) + 1)", metricsListen: "127.0.0.1:\(p2pPort(i) + 2)")
            config.timeoutProposeMilliseconds = consensus.timeoutProposeMilliseconds
            config.timeoutPrevoteMilliseconds = consensus.timeoutPrevoteMilliseconds
            config.timeoutPrecommitMilliseconds = consensus.timeoutPrecommitMilliseconds
            try Data(config.toml.utf8).write(to: home.config)
        }
        try Data("""
            UNSAFE DEVELOPMENT NETWORK: every private key under this directory is stored in plain text.
            Never reuse these keys or this genesis for anything that matters.

            """.utf8).write(to: root.appendingPathComponent("UNSAFE-DEV-KEYS.txt"))
        print("wrote \(validators) validator(s) and \(readOnly) read-only node(s) to \(root.path)")
        print("chain \(chainID), genesis \(genesis.hash.hex)")
        for i in 0..<count { print("  quarry node start --home \(root.path)/node\(i)") }
    }
}

struct NodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run a node.",
        subcommands: [StartNode.self])
}

struct StartNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Run the node in the foreground until SIGINT or SIGTERM.",
        discussion: "Reads <home>/config.toml, <home>/genesis.json and <home>/keys/node.json; data goes to <home>/data.")

    @OptionGroup var home: HomeOptions
    @OptionGroup var secret: PassphraseOptions

    func log(_ message: String) {
        let line = "\(ISO8601DateFormatter().string(from: Date())) \(message)\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    func run() async throws {
        let paths = NodeHome(url: home.homeURL)
        guard let configText = try? String(contentsOf: paths.config, encoding: .utf8) else {
            throw CLIError("no config at \(paths.config.path): create a node home with 'quarry testnet' first")
        }
        let config: NodeConfig
        do { config = try NodeConfig(toml: configText) } catch { throw CLIError("\(paths.config.path): \(error)") }
        guard let genesisBytes = FileManager.default.contents(atPath: paths.genesis.path) else {
            throw CLIError("no genesis at \(paths.genesis.path)")
        }
        let genesis: Genesis
        do { genesis = try Genesis.load(json: Array(genesisBytes)) } catch { throw CLIError("\(paths.genesis.path): \(error)") }
        let keystore = Keystore(directory: paths.keys)
        let info = try keystore.info(name: "node")
        guard case .sm2(let nodeKey) = try keystore.load(name: "node", passphrase: info.encrypted ? secret.passphrase(confirm: false) : nil) else {
            throw CLIError("the node key must be an SM2 key")
        }
        try FileManager.default.createDirectory(at: paths.data, withIntermediateDirectories: true)
        let store = try RocksDBStore(path: paths.data.appendingPathComponent("db").path, columns: Ledger.columns + BlockStore.columns)
        defer { store.close() }
        let app = try ChainApplication(ledger: Ledger(store: store, genesis: genesis), chain: BlockStore(store: store))

        let members = try config.members.map { try SM2PublicKey(rawRepresentation: Hex.decode($0)) }
        let listen = try NodeConfig.hostPort(config.p2pListen, key: "p2p.listen")
        let peers = try config.peers.map { try PeerAddress(parsing: $0) }
        var p2pConfig = P2PConfiguration(identity: NodeIdentity(privateKey: nodeKey), membership: Membership(members),
                                         chainID: genesis.chainID, listenHost: listen.host, listenPort: listen.port, peers: peers)
        // log_level: the transport's lines at or above it are printed (trace < debug < info < warning).
        let threshold: P2PLogLevel = switch config.logLevel {
        case "trace": .trace
        case "debug": .debug
        case "info", "notice": .info
        default: .warning
        }
        p2pConfig.log = { level, message, metadata in
            guard level >= threshold else { return }
            let fields = metadata.keys.sorted().map { "\($0)=\(metadata[$0]!)" }.joined(separator: " ")
            FileHandle.standardError.write(Data("p2p \(level): \(message) \(fields)\n".utf8))
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let p2p = P2PService(configuration: p2pConfig, group: group)
        let bound = try await p2p.start()
        let isValidator = config.role == .validator
        if isValidator && !genesis.validators.contains(where: { $0.publicKey.bytes == nodeKey.publicKey.rawRepresentation }) {
            log("warning: role is validator but this node's key is not in the genesis validator set; it will only follow")
        }
        let timeouts = TimeoutConfig(proposeBase: config.timeoutProposeMilliseconds, proposeDelta: config.timeoutProposeMilliseconds / 2,
                                     prevoteBase: config.timeoutPrevoteMilliseconds, prevoteDelta: config.timeoutPrevoteMilliseconds / 2,
                                     precommitBase: config.timeoutPrecommitMilliseconds, precommitDelta: config.timeoutPrecommitMilliseconds / 2)
        log("\(config.moniker): \(config.role.rawValue) node \(NodeID(publicKey: nodeKey.publicKey).hex) of chain \(genesis.chainID) at height \(app.height), P2P on \(bound)")
        let runtime = try NodeRuntime(
            app: app, config: ConsensusConfig(chainID: genesis.chainID, timeouts: timeouts),
            signer: isValidator ? SM2ConsensusSigner(key: nodeKey) : nil,
            wal: FileWAL(path: paths.data.appendingPathComponent("consensus.wal").path),
            signedFile: isValidator ? SignedStateFile(path: paths.data.appendingPathComponent("signed_state").path) : nil,
            p2p: p2p, log: { line in
                FileHandle.standardError.write(Data("\(ISO8601DateFormatter().string(from: Date())) \(line)\n".utf8))
            })

        // JSON-RPC on its own event loop, reading committed snapshots (ADR 0076).
        let rpcListen = try NodeConfig.hostPort(config.rpcListen, key: "rpc.listen")
        var rpcConfig = RPCServerConfiguration()
        rpcConfig.host = rpcListen.host
        rpcConfig.port = rpcListen.port
        let rpcGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let rpcServer = RPCServer(configuration: rpcConfig, group: rpcGroup) { method, error in
            FileHandle.standardError.write(Data("rpc: internal error in \(method): \(error)\n".utf8))
        }
        let nodeRPC = NodeRPC(runtime: runtime)
        nodeRPC.register(on: rpcServer)
        do { try await rpcServer.start() } catch {
            await p2p.shutdown()
            throw CLIError("cannot listen for JSON-RPC on \(config.rpcListen): \(error)")
        }
        log("JSON-RPC on \(rpcListen.host):\(rpcServer.port ?? rpcListen.port)")

        // Run until SIGINT or SIGTERM, then shut down in order: stop serving clients, stop
        // consensus, close peers, close the store (deferred above).
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let (signals, continuation) = AsyncStream<Int32>.makeStream()
        let sources = [SIGINT, SIGTERM].map { sig in
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { continuation.yield(sig) }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await runtime.run() }
            tasks.addTask { await nodeRPC.run(publishingTo: rpcServer) }
            tasks.addTask {
                for await sig in signals {
                    FileHandle.standardError.write(Data("received signal \(sig), shutting down\n".utf8))
                    return
                }
            }
            try await tasks.next()
            await rpcServer.shutdown()
            // Closing the transport ends its inbound and event streams, which ends the
            // runtime's loops; then the timer loop is cancelled.
            await p2p.shutdown()
            tasks.cancelAll()
        }
        try await group.shutdownGracefully()
        try await rpcGroup.shutdownGracefully()
        log("stopped at height \(await runtime.height)")
    }
}
