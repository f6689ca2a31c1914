import ArgumentParser
import Foundation
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryNetwork
import QuarryNode

/// `quarry init`: one node home for a real consortium network (docs/operators.md).
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a node home for a consortium network: config, node key, data directory, genesis.",
        discussion: """
            Writes <home>/config.toml, <home>/keys/node.json (an SM2 node key, encrypted under a \
            passphrase unless --insecure-plaintext), <home>/data/ and <home>/genesis.json (a copy of \
            --genesis, checked first). Prints the node id and public key to send to the consortium: \
            the other operators add the public key to their p2p.members and the id to their \
            p2p.peers. A key made beforehand with 'quarry keys new node --home DIR' (for a genesis \
            ceremony, where validator keys go into the genesis) is used instead of a new one. \
            Refuses to touch a home that already has a config, a genesis or data.
            """)

    @OptionGroup var home: HomeOptions
    @OptionGroup var secret: PassphraseOptions
    @Option(help: ArgumentHelp("The consortium's genesis file.", valueName: "file")) var genesis: String
    @Option(help: "A name for this node in logs and metrics (default: this machine's host name).") var moniker: String?
    @Option(help: ArgumentHelp("validator or read-only (default: validator when the node key is a genesis validator, else read-only).",
                               valueName: "role"))
    var role: String?
    @Option(name: .customLong("p2p-listen"), help: ArgumentHelp("P2P listen address.", valueName: "host:port"))
    var p2pListen: String = "0.0.0.0:26656"
    @Option(name: .customLong("rpc-listen"), help: ArgumentHelp("JSON-RPC listen address.", valueName: "host:port"))
    var rpcListen: String = "127.0.0.1:26657"
    @Option(name: .customLong("metrics-listen"), help: ArgumentHelp("Prometheus metrics and health listen address.", valueName: "host:port"))
    var metricsListen: String = "127.0.0.1:26660"
    @Option(name: .customLong("peer"), help: ArgumentHelp("A peer to dial, NODEID@host:port (repeatable).", valueName: "peer"))
    var peers: [String] = []
    @Option(name: .customLong("member"),
            help: ArgumentHelp("An SM2 public key (hex) admitted to the P2P network besides the genesis validators and this node (repeatable): the consortium's read-only nodes.",
                               valueName: "pubkey"))
    var members: [String] = []
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"
    @Flag(help: "Store the node key UNENCRYPTED. Only for throwaway development networks.")
    var insecurePlaintext = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        let paths = NodeHome(url: home.homeURL)
        let fm = FileManager.default

        // 1. Check everything before writing anything.
        for (what, url) in [("config.toml", paths.config), ("genesis.json", paths.genesis), ("data", paths.data)]
        where fm.fileExists(atPath: url.path) {
            throw CLIError("\(paths.url.path) already holds a node home (\(what) exists); choose another --home or remove it")
        }
        guard let genesisBytes = fm.contents(atPath: (genesis as NSString).expandingTildeInPath) else {
            throw CLIError("cannot read genesis '\(genesis)'")
        }
        let chain: Genesis
        do { chain = try Genesis.load(json: Array(genesisBytes)) } catch {
            throw CLIError("genesis '\(genesis)' is not valid: \(error)")
        }
        for (flag, address) in [("--p2p-listen", p2pListen), ("--rpc-listen", rpcListen), ("--metrics-listen", metricsListen)] {
            guard let parsed = try? NodeConfig.hostPort(address, key: flag), !parsed.host.isEmpty, (1...65_535).contains(parsed.port) else {
                throw ValidationError("\(flag) '\(address)' is not host:port with a port from 1 to 65535")
            }
        }
        let ports = [p2pListen, rpcListen, metricsListen].map { try! NodeConfig.hostPort($0, key: "").port }
        guard Set(ports).count == 3 else {
            throw ValidationError("--p2p-listen, --rpc-listen and --metrics-listen need three different ports")
        }
        var memberKeys: [String] = []
        func admit(_ hex: String) { if !memberKeys.contains(hex) { memberKeys.append(hex) } }
        for v in chain.validators where v.publicKey.scheme == .sm2 { admit(Hex.encode(v.publicKey.bytes)) }
        for m in members {
            let hex = m.lowercased()
            guard let bytes = try? Hex.decode(hex), (try? SM2PublicKey(rawRepresentation: bytes)) != nil else {
                throw ValidationError("--member '\(m.prefix(24))...' is not an SM2 public key in hex (65 bytes, 04 || X || Y)")
            }
            admit(hex)
        }
        guard NodeLoggers.level(named: logLevel) != nil else {
            throw ValidationError("--log-level must be trace, debug, info, notice, warning, error or critical, not '\(logLevel)'")
        }

        // 2. The node key: the one made beforehand, or a new one.
        let keystore = Keystore(directory: paths.keys)
        let existing = fm.fileExists(atPath: paths.keys.appendingPathComponent("node.json").path)
        var newKey: SigningKey?
        var passphrase: String?
        let publicKey: SM2PublicKey
        let encrypted: Bool
        if existing {
            let info = try keystore.info(name: "node")
            guard info.scheme == .sm2, let key = try? SM2PublicKey(rawRepresentation: info.publicKey.bytes) else {
                throw CLIError("\(paths.keys.path)/node.json is a \(info.scheme.name) key; a node key must be SM2")
            }
            publicKey = key
            encrypted = info.encrypted
        } else {
            let key = SigningKey(scheme: .sm2)
            guard case .sm2(let sm2) = key else { preconditionFailure("an SM2 signing key is not SM2") }
            publicKey = sm2.publicKey
            newKey = key
            encrypted = !insecurePlaintext
            passphrase = insecurePlaintext ? nil : try secret.passphrase(confirm: true)
        }
        let publicHex = Hex.encode(publicKey.rawRepresentation)
        let nodeID = NodeID(publicKey: publicKey)
        admit(publicHex)
        for p in peers {
            let address: PeerAddress
            do { address = try PeerAddress(parsing: p) } catch {
                throw ValidationError("--peer '\(p)': \(error.message) (expected NODEID@host:port)")
            }
            guard let id = address.nodeID else { throw ValidationError("--peer '\(p)' needs the peer's node id: NODEID@host:port") }
            guard id != nodeID else { throw ValidationError("--peer '\(p)' is this node itself") }
        }
        guard Set(peers.map { $0.lowercased() }).count == peers.count else { throw ValidationError("--peer lists the same peer twice") }

        let isGenesisValidator = chain.validators.contains { $0.publicKey.scheme == .sm2 && $0.publicKey.bytes == publicKey.rawRepresentation }
        let chosenRole: NodeConfig.Role
        switch role {
        case nil: chosenRole = isGenesisValidator ? .validator : .readOnly
        case let r?:
            guard let parsed = NodeConfig.Role(rawValue: r) else { throw ValidationError("--role must be validator or read-only, not '\(r)'") }
            chosenRole = parsed
        }
        var config = NodeConfig(moniker: moniker ?? Self.hostName(), role: chosenRole, p2pListen: p2pListen, peers: peers,
                                members: memberKeys, rpcListen: rpcListen, metricsListen: metricsListen)
        config.logLevel = logLevel
        // The consortium's timeouts, as the genesis sets them (config.toml may tune them per node).
        config.timeoutProposeMilliseconds = chain.consensus.timeoutProposeMilliseconds
        config.timeoutPrevoteMilliseconds = chain.consensus.timeoutPrevoteMilliseconds
        config.timeoutPrecommitMilliseconds = chain.consensus.timeoutPrecommitMilliseconds
        do { try config.validate() } catch { throw CLIError("the configuration would be invalid: \(error)") }

        // 3. Write: directories, key, genesis, and the config last. On failure, remove what
        // this run created.
        var created: [URL] = []
        do {
            if !fm.fileExists(atPath: paths.url.path) {
                try fm.createDirectory(at: paths.url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                created.append(paths.url)
            }
            if let newKey {
                try keystore.save(newKey, name: "node", passphrase: passphrase)
                created.append(paths.keys.appendingPathComponent("node.json"))
            }
            try fm.createDirectory(at: paths.data, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            created.append(paths.data)
            try Data(genesisBytes).write(to: paths.genesis, options: .withoutOverwriting)
            created.append(paths.genesis)
            try Data(config.toml.utf8).write(to: paths.config, options: .withoutOverwriting)
            created.append(paths.config)
        } catch {
            for url in created.reversed() { try? fm.removeItem(at: url) }
            throw CLIError("cannot create the node home in \(paths.url.path): \(error)")
        }

        if json {
            print(jsonText([
                "home": paths.url.path, "moniker": config.moniker, "role": config.role.rawValue, "nodeId": nodeID.hex,
                "publicKey": publicHex, "chainId": chain.chainID, "genesisHash": chain.hash.hex, "p2pListen": p2pListen,
                "rpcListen": rpcListen, "metricsListen": metricsListen, "keyEncrypted": encrypted, "keyReused": existing,
                "genesisValidator": isGenesisValidator, "peers": peers, "members": memberKeys,
            ] as [String: Any]))
        } else {
            print("created node home \(paths.url.path)")
            print("  moniker:      \(config.moniker)")
            print("  role:         \(config.role.rawValue)")
            print("  node id:      \(nodeID.hex)")
            print("  public key:   \(publicHex)")
            print("  chain:        \(chain.chainID), genesis \(chain.hash.hex)")
            print("  p2p listen:   \(p2pListen)   rpc: \(rpcListen)   metrics: \(metricsListen)")
            print("  peers:        \(peers.count), members admitted: \(memberKeys.count)")
            print("  node key:     \(existing ? "existing " : "")keys/node.json, \(encrypted ? "encrypted" : "UNENCRYPTED (development only)")")
            print("Send the node id and public key to the other operators: they add the public key to p2p.members")
            print("and \(nodeID.hex)@<this machine's address>:\(ports[0]) to p2p.peers.")
            print("Check the genesis hash above with them out of band. Start with: quarry node start --home \(paths.url.path)")
        }
        if !encrypted {
            FileHandle.standardError.write(Data("warning: the node key is stored UNENCRYPTED; use this home only on a throwaway development network\n".utf8))
        }
        if chosenRole == .validator && !isGenesisValidator {
            FileHandle.standardError.write(Data("warning: this node's key is not a genesis validator; it follows the chain until a governance proposal adds it to the validator set\n".utf8))
        }
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "quarry-node" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "quarry-node" : name
    }
}

/// `quarry node id`: what the consortium needs to know about a node, read from its key
/// file without the passphrase.
struct ShowNodeID: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "id",
        abstract: "Print the node id and public key of <home>/keys/node.json (no passphrase needed).")

    @OptionGroup var home: HomeOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        let keys = Keystore(directory: NodeHome(url: home.homeURL).keys)
        guard FileManager.default.fileExists(atPath: keys.directory.appendingPathComponent("node.json").path) else {
            throw CLIError("no node key at \(keys.directory.path)/node.json: create one with 'quarry keys new node --home DIR' or 'quarry init'")
        }
        let info = try keys.info(name: "node")
        guard info.scheme == .sm2, let key = try? SM2PublicKey(rawRepresentation: info.publicKey.bytes) else {
            throw CLIError("\(keys.directory.path)/node.json is a \(info.scheme.name) key; a node key must be SM2")
        }
        let id = NodeID(publicKey: key).hex
        let publicHex = Hex.encode(key.rawRepresentation)
        if json {
            print(jsonText(["nodeId": id, "publicKey": publicHex, "encrypted": info.encrypted] as [String: Any]))
        } else {
            print("node id:    \(id)")
            print("public key: \(publicHex)")
        }
    }
}
