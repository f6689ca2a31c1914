import QuarryCore
import QuarryCrypto

/// A node's `config.toml` (docs/spec/config.md).
public struct NodeConfig: Equatable, Sendable {
    public enum Role: String, Sendable { case validator, readOnly = "read-only" }

    public var moniker: String
    public var role: Role
    public var logLevel: String = "info"
    /// `host:port` the P2P transport listens on.
    public var p2pListen: String
    /// Outbound peers, `NODEID@host:port`.
    public var peers: [String]
    /// SM2 public keys (hex, 65 bytes) admitted to the P2P network: validators and the
    /// read-only nodes the consortium admits.
    public var members: [String]
    public var rpcListen: String
    public var metricsListen: String
    public var timeoutProposeMilliseconds: UInt64 = 3_000
    public var timeoutPrevoteMilliseconds: UInt64 = 1_000
    public var timeoutPrecommitMilliseconds: UInt64 = 1_000
    /// `crypto.sm2_engine`: which code verifies SM2 signatures (docs/adr/0012); applied to
    /// the whole process at start-up. `openssl` is the fallback.
    public var sm2Engine: SM2VerificationEngine = SM2.defaultVerificationEngine

    public init(moniker: String, role: Role, p2pListen: String, peers: [String], members: [String],
                rpcListen: String, metricsListen: String) {
        self.moniker = moniker; self.role = role; self.p2pListen = p2pListen; self.peers = peers
        self.members = members; self.rpcListen = rpcListen; self.metricsListen = metricsListen
    }

    public struct Invalid: QuarryError, Equatable {
        public let key: String
        public let reason: String
        public var code: String { "config.invalid" }
        public var description: String { "\(key): \(reason)" }
    }

    public init(toml text: String) throws {
        let doc = try TOMLDocument(parsing: text)
        let known: [String: Set<String>] = [
            "": ["moniker", "role", "log_level"],
            "p2p": ["listen", "peers", "members"],
            "rpc": ["listen"],
            "metrics": ["listen"],
            "consensus": ["timeout_propose_ms", "timeout_prevote_ms", "timeout_precommit_ms"],
            "crypto": ["sm2_engine"],
        ]
        for table in doc.tableOrder {
            guard let keys = known[table] else { throw Invalid(key: "[\(table)]", reason: "unknown table") }
            for (key, _) in doc.tables[table] ?? [] where !keys.contains(key) {
                throw Invalid(key: table.isEmpty ? key : "\(table).\(key)", reason: "unknown key")
            }
        }
        func string(_ key: String, _ table: String = "") throws -> String {
            guard case .string(let s)? = doc.value(key, in: table) else {
                throw Invalid(key: table.isEmpty ? key : "\(table).\(key)", reason: "required string is missing")
            }
            return s
        }
        func strings(_ key: String, _ table: String) throws -> [String] {
            guard let v = doc.value(key, in: table) else { return [] }
            guard case .array(let items) = v else { throw Invalid(key: "\(table).\(key)", reason: "must be an array of strings") }
            return try items.map {
                guard case .string(let s) = $0 else { throw Invalid(key: "\(table).\(key)", reason: "must be an array of strings") }
                return s
            }
        }
        func milliseconds(_ key: String, default d: UInt64) throws -> UInt64 {
            guard let v = doc.value(key, in: "consensus") else { return d }
            guard case .integer(let n) = v, n >= 10, n <= 600_000 else {
                throw Invalid(key: "consensus.\(key)", reason: "must be an integer from 10 to 600000")
            }
            return UInt64(n)
        }
        let roleText = try string("role")
        guard let role = Role(rawValue: roleText) else { throw Invalid(key: "role", reason: "must be \"validator\" or \"read-only\"") }
        self.init(moniker: try string("moniker"), role: role, p2pListen: try string("listen", "p2p"),
                  peers: try strings("peers", "p2p"), members: try strings("members", "p2p"),
                  rpcListen: try string("listen", "rpc"), metricsListen: try string("listen", "metrics"))
        if case .string(let level)? = doc.value("log_level") { logLevel = level }
        timeoutProposeMilliseconds = try milliseconds("timeout_propose_ms", default: 3_000)
        timeoutPrevoteMilliseconds = try milliseconds("timeout_prevote_ms", default: 1_000)
        timeoutPrecommitMilliseconds = try milliseconds("timeout_precommit_ms", default: 1_000)
        if let v = doc.value("sm2_engine", in: "crypto") {
            guard case .string(let name) = v, let engine = SM2VerificationEngine(rawValue: name) else {
                throw Invalid(key: "crypto.sm2_engine", reason: "must be \"fast\" or \"openssl\"")
            }
            sm2Engine = engine
        }
        try validate()
    }

    public func validate() throws {
        for (key, address) in [("p2p.listen", p2pListen), ("rpc.listen", rpcListen), ("metrics.listen", metricsListen)] {
            _ = try NodeConfig.hostPort(address, key: key)
        }
        for p in peers {
            guard let at = p.firstIndex(of: "@") else { throw Invalid(key: "p2p.peers", reason: "'\(p)' is not NODEID@host:port") }
            _ = try NodeConfig.hostPort(String(p[p.index(after: at)...]), key: "p2p.peers")
        }
        for m in members {
            guard let bytes = try? Hex.decode(m), (try? SM2PublicKey(rawRepresentation: bytes)) != nil else {
                throw Invalid(key: "p2p.members", reason: "'\(m.prefix(20))...' is not an SM2 public key in hex")
            }
        }
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) else {
            throw Invalid(key: "log_level", reason: "unknown level '\(logLevel)'")
        }
    }

    public static func hostPort(_ text: String, key: String) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              port >= 0, port <= 65_535, colon != text.startIndex else {
            throw Invalid(key: key, reason: "'\(text)' is not host:port")
        }
        return (String(text[..<colon]), port)
    }

    private static func quote(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    /// The file `quarry init` and `quarry testnet` write.
    public var toml: String {
        func list(_ items: [String]) -> String {
            items.isEmpty ? "[]" : "[\n" + items.map { "  \(NodeConfig.quote($0)),\n" }.joined() + "]"
        }
        return """
            # Quarry node configuration (docs/spec/config.md)
            moniker = \(NodeConfig.quote(moniker))
            # "validator" signs votes with keys/node.json; "read-only" follows and re-verifies only.
            role = \(NodeConfig.quote(role.rawValue))
            log_level = \(NodeConfig.quote(logLevel))

            [p2p]
            listen = \(NodeConfig.quote(p2pListen))
            # Outbound peers: NODEID@host:port
            peers = \(list(peers))
            # SM2 public keys (hex) admitted to the network: validators and admitted read-only nodes.
            members = \(list(members))

            [rpc]
            listen = \(NodeConfig.quote(rpcListen))

            [metrics]
            listen = \(NodeConfig.quote(metricsListen))

            [consensus]
            timeout_propose_ms = \(timeoutProposeMilliseconds)
            timeout_prevote_ms = \(timeoutPrevoteMilliseconds)
            timeout_precommit_ms = \(timeoutPrecommitMilliseconds)

            """ + (sm2Engine == SM2.defaultVerificationEngine ? "" : """

            [crypto]
            # SM2 verification engine: "fast" (default) or "openssl" (the fallback).
            sm2_engine = \(NodeConfig.quote(sm2Engine.rawValue))

            """)
    }
}
