import Foundation
import Testing

/// `GET path` on 127.0.0.1:port with a blocking socket (5 s timeouts): status and body, or
/// nil when nothing listens.
func httpGet(port: Int, path: String) -> (status: Int, body: String)? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return nil }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var response: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while response.count < 16 << 20 {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        response += chunk[0..<n]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { return nil }
    let status = Int(text[..<split.lowerBound].split(separator: " ").dropFirst().first ?? "") ?? 0
    return (status, String(text[split.upperBound...]))
}

func jsonObject(_ text: String) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
}

/// A genesis from `quarry testnet` (1 validator) in `root/net`.
func makeNetwork(_ root: String, basePort: Int, readOnly: Int = 0) throws -> String {
    let net = root + "/net"
    let r = try QuarryProcess.run(["testnet", "--output", net, "--validators", "1", "--read-only", String(readOnly),
                                   "--base-port", String(basePort)])
    #expect(r.status == 0, "\(r.stderr)")
    return net
}

@Suite struct InitCLITests {
    @Test func createsAConsortiumHomeAndRefusesToOverwriteIt() throws {
        let root = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let net = try makeNetwork(root, basePort: 30_500)
        let home = root + "/node"
        let peer = "0123456789abcdef0123456789abcdef01234567@127.0.0.1:29999"
        let extraMember = try #require(jsonObject(try QuarryProcess.run(["node", "id", "--home", net + "/node0", "--json"]).stdout)?["publicKey"] as? String)
        let r = try QuarryProcess.run(["init", "--home", home, "--genesis", net + "/genesis.json", "--moniker", "notary-1",
                                       "--role", "validator", "--peer", peer, "--member", extraMember.uppercased(), "--json"],
                                      environment: ["QUARRY_PASSPHRASE": "correct horse"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try #require(jsonObject(r.stdout))
        let nodeID = try #require(out["nodeId"] as? String)
        let publicKey = try #require(out["publicKey"] as? String)
        #expect(nodeID.count == 40 && publicKey.count == 130 && publicKey.hasPrefix("04"))
        #expect(out["role"] as? String == "validator" && out["moniker"] as? String == "notary-1")
        #expect(out["keyEncrypted"] as? Bool == true && out["keyReused"] as? Bool == false && out["genesisValidator"] as? Bool == false)
        #expect(out["chainId"] as? String == "quarry-local")
        // A validator whose key is not in the genesis is told so.
        #expect(r.stderr.contains("not a genesis validator"))

        let fm = FileManager.default
        // The genesis is copied byte for byte.
        #expect(fm.contents(atPath: home + "/genesis.json") == fm.contents(atPath: net + "/genesis.json"))
        let key = try String(contentsOfFile: home + "/keys/node.json", encoding: .utf8)
        #expect(key.contains("\"crypto\"") && !key.contains("insecurePlaintextPrivateKey"))
        #expect((try fm.attributesOfItem(atPath: home + "/keys/node.json")[.posixPermissions] as? Int) == 0o600)
        #expect((try fm.attributesOfItem(atPath: home + "/data")[.posixPermissions] as? Int) == 0o700)
        let config = try String(contentsOfFile: home + "/config.toml", encoding: .utf8)
        #expect(config.contains("moniker = \"notary-1\"") && config.contains("role = \"validator\""))
        #expect(config.contains("listen = \"0.0.0.0:26656\"") && config.contains("listen = \"127.0.0.1:26657\"")
                && config.contains("listen = \"127.0.0.1:26660\""))
        #expect(config.contains("\"\(peer)\""))
        // Members: the genesis validator, the --member key (once, lower case), and this node.
        #expect(config.contains("\"\(extraMember)\""))
        #expect(config.components(separatedBy: extraMember).count == 2)
        #expect(config.contains("\"\(publicKey)\""))
        // The consortium's timeouts come from the genesis (quarry testnet sets 1000 ms).
        #expect(config.contains("timeout_propose_ms = 1000"))

        // `quarry node id` reads the same identity without the passphrase.
        let id = try #require(jsonObject(try QuarryProcess.run(["node", "id", "--home", home, "--json"]).stdout))
        #expect(id["nodeId"] as? String == nodeID && id["publicKey"] as? String == publicKey && id["encrypted"] as? Bool == true)

        // A second init over it is refused and changes nothing.
        let again = try QuarryProcess.run(["init", "--home", home, "--genesis", net + "/genesis.json", "--insecure-plaintext"])
        #expect(again.status != 0)
        #expect(again.stderr.contains("already holds a node home"))
        #expect(try String(contentsOfFile: home + "/config.toml", encoding: .utf8) == config)
        #expect(try String(contentsOfFile: home + "/keys/node.json", encoding: .utf8) == key)

        // The home starts: the config and key it wrote are what `node start` reads (and a
        // wrong passphrase is refused before anything runs).
        let wrong = try QuarryProcess.run(["node", "start", "--home", home], environment: ["QUARRY_PASSPHRASE": "wrong"])
        #expect(wrong.status != 0 && wrong.stderr.contains("wrong passphrase"))
    }

    @Test func refusesBadInputAndWritesNothing() throws {
        let root = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let net = try makeNetwork(root, basePort: 30_600)
        let genesis = net + "/genesis.json"
        try Data("{\"chainId\": 5}".utf8).write(to: URL(fileURLWithPath: root + "/bad.json"))
        let cases: [([String], String)] = [
            (["--genesis", root + "/missing.json"], "cannot read genesis"),
            (["--genesis", root + "/bad.json"], "is not valid"),
            (["--genesis", genesis, "--peer", "127.0.0.1:29999"], "needs the peer's node id"),
            (["--genesis", genesis, "--peer", "xyz@127.0.0.1:29999"], "--peer 'xyz@127.0.0.1:29999'"),
            (["--genesis", genesis, "--member", "04abcd"], "--member"),
            (["--genesis", genesis, "--role", "boss"], "--role must be validator or read-only"),
            (["--genesis", genesis, "--p2p-listen", "127.0.0.1"], "--p2p-listen"),
            (["--genesis", genesis, "--metrics-listen", "127.0.0.1:0"], "--metrics-listen"),
            (["--genesis", genesis, "--rpc-listen", "127.0.0.1:26656"], "three different ports"),
            (["--genesis", genesis, "--log-level", "loud"], "--log-level"),
        ]
        for (args, message) in cases {
            let home = root + "/home-\(UUID().uuidString)"
            let r = try QuarryProcess.run(["init", "--home", home, "--insecure-plaintext"] + args)
            #expect(r.status != 0, "\(args) was accepted")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: home), "\(args) left files behind")
        }
        // An encrypted key needs a passphrase; without a terminal there is none: nothing is written.
        let home = root + "/no-passphrase"
        let r = try QuarryProcess.run(["init", "--home", home, "--genesis", genesis])
        #expect(r.status != 0 && r.stderr.contains("no passphrase"))
        #expect(!FileManager.default.fileExists(atPath: home))
        // A peer that is this very node is refused too.
        let selfHome = root + "/self"
        #expect(try QuarryProcess.run(["keys", "new", "node", "--home", selfHome, "--insecure-plaintext"]).status == 0)
        let selfID = try #require(jsonObject(try QuarryProcess.run(["node", "id", "--home", selfHome, "--json"]).stdout)?["nodeId"] as? String)
        let loop = try QuarryProcess.run(["init", "--home", selfHome, "--genesis", genesis, "--peer", "\(selfID)@127.0.0.1:26656"])
        #expect(loop.status != 0 && loop.stderr.contains("is this node itself"))
        #expect(!FileManager.default.fileExists(atPath: selfHome + "/config.toml"))
        #expect(try QuarryProcess.run(["node", "id", "--home", root + "/nobody"]).stderr.contains("no node key"))
    }

    /// The genesis ceremony: each operator makes the node key first, the consortium writes
    /// the genesis with those keys, then `init` uses the key it finds.
    @Test func usesAKeyMadeBeforeTheGenesis() throws {
        let root = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let net = try makeNetwork(root, basePort: 30_700)
        let home = root + "/validator"
        let made = try QuarryProcess.run(["keys", "new", "node", "--home", home, "--json"], environment: ["QUARRY_PASSPHRASE": "pw"])
        #expect(made.status == 0, "\(made.stderr)")
        let publicKey = try #require(jsonObject(made.stdout)?["publicKey"] as? String)
        // The consortium's genesis names that key as a validator.
        var genesis = try #require(jsonObject(try String(contentsOfFile: net + "/genesis.json", encoding: .utf8)))
        var validators = try #require(genesis["validators"] as? [[String: Any]])
        validators[0]["publicKey"] = publicKey
        genesis["validators"] = validators
        try JSONSerialization.data(withJSONObject: genesis, options: [.sortedKeys]).write(to: URL(fileURLWithPath: root + "/ceremony.json"))

        // No passphrase is needed: the existing key is not opened.
        let r = try QuarryProcess.run(["init", "--home", home, "--genesis", root + "/ceremony.json", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try #require(jsonObject(r.stdout))
        #expect(out["publicKey"] as? String == publicKey)
        #expect(out["keyReused"] as? Bool == true && out["keyEncrypted"] as? Bool == true)
        #expect(out["genesisValidator"] as? Bool == true)
        #expect(out["role"] as? String == "validator", "the role defaults to validator for a genesis validator's key")
        #expect(!r.stderr.contains("warning"))
    }
}

@Suite struct MetricsListenCLITests {
    /// A metrics address already taken is a clear error, and the node does not run.
    @Test func aTakenMetricsPortIsExplained() throws {
        let root = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let base = 25_000 + Int.random(in: 0..<100) * 10
        let net = try makeNetwork(root, basePort: base)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(base + 2).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(fd, 1) == 0, "could not occupy the port")
        let r = try QuarryProcess.run(["node", "start", "--home", net + "/node0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("cannot listen for metrics on 127.0.0.1:\(base + 2) (metrics.listen)"), "\(r.stderr.suffix(400))")
    }
}

/// Real processes: a validator from `quarry testnet`, and an auditor node made with
/// `quarry init` and admitted by adding its key to the validator's members, as an operator
/// would. Checks the metrics and health endpoints over HTTP, the lag report while the
/// auditor catches up, logfmt lines at each node's log level, and the shutdown order.
@Suite(.serialized) struct OperationsProcessTests {
    final class Node {
        let process = Process()
        let log: String
        init(home: String, log: String) throws {
            self.log = log
            FileManager.default.createFile(atPath: log, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.executableURL = QuarryProcess.binary
            process.arguments = ["node", "start", "--home", home]
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }
        var text: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        func stop() {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { usleep(50_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(100_000)
        }
        return condition()
    }

    func health(_ port: Int) -> [String: Any]? { httpGet(port: port, path: "/health").flatMap { jsonObject($0.body) } }

    func metric(_ port: Int, _ name: String) -> Double? {
        guard let body = httpGet(port: port, path: "/metrics")?.body else { return nil }
        return body.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
    }

    @Test(.timeLimit(.minutes(2))) func auditorFromInitCatchesUpAndReportsIt() throws {
        let root = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Below Linux's ephemeral port range (32768-60999), where outgoing connections of
        // any process on the machine may hold a port.
        let base = 20_000 + Int.random(in: 0..<50) * 100
        let net = try makeNetwork(root, basePort: base)
        let validatorID = try #require(jsonObject(try QuarryProcess.run(["node", "id", "--home", net + "/node0", "--json"]).stdout)?["nodeId"] as? String)
        let auditorHome = root + "/auditor"
        let made = try QuarryProcess.run([
            "init", "--home", auditorHome, "--genesis", net + "/genesis.json", "--role", "read-only", "--moniker", "auditor",
            "--p2p-listen", "127.0.0.1:\(base + 50)", "--rpc-listen", "127.0.0.1:\(base + 51)",
            "--metrics-listen", "127.0.0.1:\(base + 52)", "--peer", "\(validatorID)@127.0.0.1:\(base)",
            "--log-level", "debug", "--insecure-plaintext", "--json"])
        #expect(made.status == 0, "\(made.stderr)")
        let auditorKey = try #require(jsonObject(made.stdout)?["publicKey"] as? String)
        // The validator's operator admits the auditor and runs at log_level warning.
        var config = try String(contentsOfFile: net + "/node0/config.toml", encoding: .utf8)
        config = config.replacingOccurrences(of: "members = [\n", with: "members = [\n  \"\(auditorKey)\",\n")
        config = config.replacingOccurrences(of: "log_level = \"info\"", with: "log_level = \"warning\"")
        try Data(config.utf8).write(to: URL(fileURLWithPath: net + "/node0/config.toml"))

        let validator = try Node(home: net + "/node0", log: root + "/validator.log")
        defer { validator.stop() }
        let validatorMetrics = base + 2, auditorMetrics = base + 52
        #expect(waitUntil(seconds: 40) { !validator.process.isRunning || (health(validatorMetrics)?["height"] as? Int ?? 0) >= 5 },
                "validator: \(validator.text.suffix(500))")
        try #require(validator.process.isRunning, "validator: \(validator.text.suffix(500))")
        let validatorHealth = try #require(health(validatorMetrics))
        // It has a member it is not connected to yet.
        #expect(validatorHealth["status"] as? String == "no_peers")
        #expect(httpGet(port: validatorMetrics, path: "/health")?.status == 503)

        let auditor = try Node(home: auditorHome, log: root + "/auditor.log")
        defer { auditor.stop() }
        #expect(waitUntil(seconds: 40) {
            guard auditor.process.isRunning else { return true }
            guard let a = health(auditorMetrics), let v = health(validatorMetrics) else { return false }
            return a["status"] as? String == "ok" && (a["height"] as? Int ?? 0) + 1 >= (v["height"] as? Int ?? 0)
                && (a["height"] as? Int ?? 0) >= 5
        }, "auditor: \(auditor.text.suffix(800))")
        try #require(auditor.process.isRunning, "auditor: \(auditor.text.suffix(800))")
        let a = try #require(health(auditorMetrics))
        #expect(a["role"] as? String == "read-only" && a["moniker"] as? String == "auditor" && a["catchingUp"] as? Bool == false)
        #expect(a["peers"] as? Int == 1 && (a["bestPeerHeight"] as? Int ?? 0) >= 5)
        #expect(httpGet(port: auditorMetrics, path: "/health")?.status == 200)
        #expect((metric(auditorMetrics, "quarry_sync_blocks_applied_total") ?? 0) >= 2, "the auditor fetched blocks by sync")
        #expect((metric(auditorMetrics, "quarry_block_height") ?? 0) >= 5)
        #expect(metric(auditorMetrics, "quarry_p2p_peers_connected") == 1)
        #expect(waitUntil(seconds: 10) { health(validatorMetrics)?["status"] as? String == "ok" })
        #expect((metric(validatorMetrics, "quarry_sync_requests_served_total") ?? 0) >= 1)
        #expect(httpGet(port: validatorMetrics, path: "/metrics")?.body.contains("quarry_block_execution_seconds_bucket{phase=\"propose\"") == true)

        // Caught up, it follows live consensus (committing without voting).
        #expect(waitUntil(seconds: 20) { auditor.text.contains("subsystem=consensus msg=committed height=") })
        validator.stop()
        auditor.stop()
        #expect(validator.process.terminationStatus == 0 && auditor.process.terminationStatus == 0)
        let logfmt = try NSRegularExpression(pattern: "^time=\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z level=(trace|debug|info|notice|warning|error|critical) subsystem=[a-z0-9]+ msg=")
        for (name, text) in [("validator", validator.text), ("auditor", auditor.text)] {
            for line in text.split(separator: "\n") {
                let s = String(line)
                #expect(logfmt.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil, "\(name) line is not logfmt: \(s)")
            }
        }
        // The validator at warning printed no info or debug line; the auditor at debug did.
        #expect(!validator.text.contains("level=info") && !validator.text.contains("level=debug"))
        let auditorText = auditor.text
        #expect(auditorText.contains("level=debug subsystem=sync msg=applied height="))
        #expect(auditorText.contains("level=info subsystem=sync msg=synced height="))
        #expect(auditorText.contains("level=debug subsystem=p2p"))
        #expect(auditorText.contains("subsystem=consensus msg=committed height="))
        // Shutdown steps, in order, then the last line.
        let order = ["received signal", "shutdown: stopped accepting work", "shutdown: store flushed", "shutdown: peers closed", "stopped at height"]
        let positions = order.map { auditorText.range(of: $0)?.lowerBound }
        #expect(positions.allSatisfy { $0 != nil }, "\(auditorText.suffix(800))")
        if positions.allSatisfy({ $0 != nil }) {
            #expect(zip(positions, positions.dropFirst()).allSatisfy { $0! < $1! }, "shutdown steps out of order")
        }
    }
}
