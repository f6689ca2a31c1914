import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
import QuarryClient
import QuarryConsensus
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryNode
import QuarryStore

/// Starts a real network as separate `quarry node start` processes on 127.0.0.1 (4
/// validators and 1 read-only node from `quarry testnet`) and checks what an operator and
/// an auditor would:
/// - with validator 3 killed (SIGKILL) the other three keep committing, and so does the
///   read-only node;
/// - restarted, validator 3 keeps every block it had logged as committed, catches up by
///   block sync and takes part in consensus again: it commits blocks itself, and while
///   validator 2 is paused (SIGSTOP) every block needs its precommit, so the certificates
///   of those heights carry its signature;
/// - validator 2, resumed, catches up and commits with the others;
/// - after every process stopped (SIGINT, each exits 0), the block stores are read: every
///   node, the read-only one included, has the same block, certificate-verified, and the
///   same state root at every height it has; its stored state matches its newest header;
///   no height has two blocks; the read-only node never signed anything;
/// - transactions submitted over JSON-RPC in every phase (all up, validator 3 down,
///   validator 2 paused, after the resume), through validators and the read-only node, and
///   reported committed, are in every node's block store at the same place with the same
///   result: no committed transaction is lost.
///
/// Bounded: every wait has a deadline and the suite has a time limit; `scripts/test.sh`
/// also runs it under `timeout`. Every process started is stopped, whatever happens.
/// Set QUARRY_TEST_KEEP_NETWORK=DIR to keep the network's homes and logs in DIR.
@Suite(.serialized) struct NetworkProcessTests {
    static let nodeCount = 5
    static let validatorCount = 4
    static let readOnly = 4

    final class Network {
        let root: String
        var processes: [Int: Process] = [:]
        /// Processes the test stopped on purpose (SIGKILL), which may exit.
        var expectedDown: Set<Int> = []

        init(root: String) { self.root = root }

        func home(_ i: Int) -> String { root + "/node\(i)" }

        /// Node i's JSON-RPC endpoint, from its config.toml.
        func rpc(_ i: Int) throws -> RPCEndpoint {
            let text = try String(contentsOfFile: home(i) + "/config.toml", encoding: .utf8)
            return try RPCEndpoint(parsing: "http://" + NodeConfig(toml: text).rpcListen)
        }
        func log(_ i: Int) -> String { root + "/node\(i).log" }

        func start(_ i: Int) throws {
            let p = Process()
            p.executableURL = QuarryProcess.binary
            p.arguments = ["node", "start", "--home", home(i)]
            if !FileManager.default.fileExists(atPath: log(i)) {
                _ = FileManager.default.createFile(atPath: log(i), contents: nil)
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log(i)))
            handle.seekToEndOfFile()
            p.standardInput = FileHandle.nullDevice
            p.standardOutput = handle
            p.standardError = handle
            try p.run()
            try handle.close()
            processes[i] = p
            // scripts/test-network.sh kills any of these still running if this process dies.
            if let file = ProcessInfo.processInfo.environment["QUARRY_TEST_PID_FILE"],
               let out = FileHandle(forWritingAtPath: file) {
                out.seekToEndOfFile()
                out.write(Data("\(p.processIdentifier)\n".utf8))
                try? out.close()
            }
            expectedDown.remove(i)
        }

        func signal(_ i: Int, _ sig: Int32) {
            if let p = processes[i], p.isRunning { kill(p.processIdentifier, sig) }
        }

        func killAndWait(_ i: Int) {
            expectedDown.insert(i)
            signal(i, SIGKILL)
            processes[i]?.waitUntilExit()
        }

        /// Nodes that should be running but are not.
        var unexpectedExits: [Int] {
            processes.keys.sorted().filter { !expectedDown.contains($0) && !(processes[$0]?.isRunning ?? false) }
        }

        /// SIGINT to every node (SIGCONT first, for a paused one), 10 s to stop, then SIGKILL.
        /// Returns the nodes that did not exit with status 0 on their own.
        @discardableResult
        func stopAll() -> [Int] {
            for (_, p) in processes where p.isRunning {
                kill(p.processIdentifier, SIGCONT)
                kill(p.processIdentifier, SIGINT)
            }
            let deadline = Date().addingTimeInterval(10)
            while processes.values.contains(where: \.isRunning) && Date() < deadline { usleep(50_000) }
            var unclean: [Int] = []
            for (i, p) in processes.sorted(by: { $0.key < $1.key }) {
                if p.isRunning {
                    kill(p.processIdentifier, SIGKILL)
                    unclean.append(i)
                }
                p.waitUntilExit()
                if !expectedDown.contains(i) && !(p.terminationReason == .exit && p.terminationStatus == 0) && !unclean.contains(i) {
                    unclean.append(i)
                }
            }
            return unclean
        }

        func logText(_ i: Int) -> String { (try? String(contentsOfFile: log(i), encoding: .utf8)) ?? "" }

        /// Size of a node's log now: lines after it were written later.
        func logOffset(_ i: Int) -> Int { logText(i).utf8.count }

        /// Blocks a node logged, from `offset` on: height -> (hash prefix, state prefix,
        /// decided by its own consensus rather than applied from block sync). Reads only
        /// the `committed` and `synced` lines' `height=`, `hash=` and `state=` fields, so it
        /// does not depend on the rest of the log format.
        func logged(_ i: Int, from offset: Int = 0) -> [UInt64: (hash: String, state: String, decided: Bool)] {
            let text = logText(i)
            let tail = text.utf8.count > offset ? String(decoding: text.utf8.dropFirst(offset), as: UTF8.self) : ""
            var out: [UInt64: (hash: String, state: String, decided: Bool)] = [:]
            for line in tail.split(separator: "\n") {
                let decided = line.contains("committed")
                guard decided || line.contains("synced") else { continue }
                var fields: [Substring: Substring] = [:]
                for f in line.split(separator: " ") {
                    guard let eq = f.firstIndex(of: "=") else { continue }
                    fields[f[..<eq]] = f[f.index(after: eq)...]
                }
                guard let h = fields["height"].flatMap({ UInt64($0) }) else { continue }
                let entry = (hash: String(fields["hash"] ?? ""), state: String(fields["state"] ?? ""), decided: decided)
                if out[h]?.decided != true { out[h] = entry }
            }
            return out
        }

        func height(_ i: Int) -> UInt64 { logged(i).keys.max() ?? 0 }
        func heights() -> [UInt64] { (0..<NetworkProcessTests.nodeCount).map(height) }

        /// Polls `condition` every 100 ms for at most `seconds`; gives up at once when a
        /// node that should be running has exited.
        func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if condition() { return true }
                if !unexpectedExits.isEmpty { return false }
                usleep(100_000)
            }
            return condition()
        }

        /// The last lines of every log, for failure messages.
        func diagnostics(lines: Int = 12) -> String {
            var out = "heights \(heights()); exited unexpectedly: \(unexpectedExits)\n"
            for i in 0..<NetworkProcessTests.nodeCount {
                let tail = logText(i).split(separator: "\n").suffix(lines).joined(separator: "\n    ")
                out += "  node\(i).log:\n    \(tail)\n"
            }
            return out
        }
    }

    /// A P2P base port whose 5 nodes' ports (P2P, RPC, metrics: base + 10i + 0...2) are all
    /// free on 127.0.0.1 now, below Linux's ephemeral range (32768 and up) so that no
    /// outgoing connection takes one meanwhile. Concurrent runs (other worktrees, CI jobs
    /// on one machine) pick random bases, and a node that cannot bind makes the caller
    /// start again on another.
    static func freeBasePort() -> Int? {
        for _ in 0..<50 {
            let base = 20_000 + Int.random(in: 0..<120) * 100
            let ports = (0..<nodeCount).flatMap { i in (0..<3).map { base + 10 * i + $0 } }
            if ports.allSatisfy(portIsFree) { return base }
        }
        return nil
    }

    static func portIsFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: inet_addr("127.0.0.1"))
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// Generates a network and starts its 5 nodes until all have committed `height`
    /// blocks. Validators 2 and 3 start 3 s after the others, as operators' nodes do: by
    /// then validators 0 and 1 have sent their round-0 messages (the proposal at once, nil
    /// prevotes after the 1 s timeoutPropose) to nobody, and the network only starts if
    /// nodes repeat what their peers missed (ADR 0096); before that fix this start-up
    /// deadlocked every time. A node that exits during start-up (a port taken between the
    /// check and its bind) makes it start over with new ports, at most 3 times.
    static func startNetwork(in root: String, height: UInt64) throws -> Network {
        var failures: [String] = []
        for attempt in 0..<3 {
            let base = try #require(freeBasePort(), "no free port range found")
            let dir = root + "/net\(attempt)"
            let made = try QuarryProcess.run(["testnet", "--output", dir, "--validators", "\(validatorCount)",
                                              "--read-only", "\(nodeCount - validatorCount)", "--base-port", "\(base)"])
            try #require(made.status == 0, "quarry testnet failed: \(made.stderr)")
            let net = Network(root: dir)
            do {
                for i in [0, 1, 4] { try net.start(i) }
                usleep(3_000_000)
                for i in [2, 3] { try net.start(i) }
            } catch {
                net.stopAll()
                throw error
            }
            if net.waitUntil(seconds: 60, { net.heights().allSatisfy { $0 >= height } }) { return net }
            let exited = net.unexpectedExits
            let report = net.diagnostics()
            net.stopAll()
            guard !exited.isEmpty else {
                // Every node ran and the network did not commit: a real failure, not a port clash.
                Issue.record("the network did not reach height \(height) within 60 s:\n\(report)")
                throw NetworkTestFailure()
            }
            failures.append("attempt \(attempt) (base port \(base)): nodes \(exited) exited:\n\(report)")
        }
        Issue.record("the network could not be started:\n\(failures.joined(separator: "\n"))")
        throw NetworkTestFailure()
    }

    struct NetworkTestFailure: Error {}

    /// Submits `count` crystal grants (signed by the crystal issuer, SM2) through node
    /// `node`'s JSON-RPC, each waited for until committed; returns the committed ones
    /// (hash, height). First waits until that node has the block of the last grant, so the
    /// nonce it reports is current.
    static func submitGrants(_ net: Network, through node: Int, count: Int, after height: UInt64,
                             sourceLocation: SourceLocation = #_sourceLocation) async throws -> [(hash: Hash256, height: UInt64)] {
        #expect(net.waitUntil(seconds: 30) { net.height(node) >= height }, "node \(node) never reached \(height)",
                sourceLocation: sourceLocation)
        let client = QuarryClient(endpoint: try net.rpc(node), timeoutMilliseconds: 45_000)
        let issuer = try Keystore(directory: URL(fileURLWithPath: net.root + "/role-keys")).load(name: "crystal-issuer", passphrase: nil)
        let sender = Sender(client: client, key: issuer)
        var committed: [(hash: Hash256, height: UInt64)] = []
        for i in 0..<count {
            let to = SigningKey(scheme: .secp256k1).address
            let s = try await sender.submit(PayloadBuilder.grantCrystals(to: to, amount: 1 + UInt64(i)), wait: .committed)
            #expect(s.status.succeeded, "grant through node \(node): \(s.status)", sourceLocation: sourceLocation)
            if s.status.succeeded, let h = s.status.height { committed.append((s.hash, h)) }
        }
        return committed
    }

    @Test(.timeLimit(.minutes(8))) func killPauseRestartAndCatchUp() async throws {
        let root = try temporaryHome()
        var netForCleanup: Network?
        defer {
            netForCleanup?.stopAll()
            if let keep = ProcessInfo.processInfo.environment["QUARRY_TEST_KEEP_NETWORK"] {
                try? FileManager.default.moveItem(atPath: root, toPath: keep)
            } else {
                try? FileManager.default.removeItem(atPath: root)
            }
        }
        let net = try Self.startNetwork(in: root, height: 3)
        netForCleanup = net
        let live = { (nodes: [Int]) in nodes.map(net.height).min() ?? 0 }
        var submitted = try await Self.submitGrants(net, through: 0, count: 3, after: 0)
        let lastHeight = { submitted.map(\.height).max() ?? 0 }

        // SIGKILL validator 3: the other three (30 of 40 power) keep committing, and the
        // read-only node follows them.
        let loggedBeforeKill = net.logged(3)
        net.killAndWait(3)
        let killedAt = live([0, 1, 2, 4])
        try #require(net.waitUntil(seconds: 45) { live([0, 1, 2, 4]) >= killedAt + 3 },
                     "without validator 3 the others did not go on:\n\(net.diagnostics())")
        submitted += try await Self.submitGrants(net, through: 1, count: 3, after: lastHeight())

        // Restart it: it keeps what it had, syncs what it missed, then decides blocks itself.
        let restartOffset = net.logOffset(3)
        try net.start(3)
        let rejoinTarget = live([0, 1, 2]) + 2
        try #require(net.waitUntil(seconds: 60) {
            net.logged(3, from: restartOffset).contains { $0.key >= rejoinTarget && $0.value.decided }
        }, "restarted validator 3 did not decide a block at or above \(rejoinTarget):\n\(net.diagnostics())")

        // Pause validator 2 past the timeouts: validators 0, 1 and 3 are exactly the 30 of
        // 40 needed, so every block committed meanwhile carries validator 3's precommit.
        net.signal(2, SIGSTOP)
        net.expectedDown.insert(2)
        let pausedAt = live([0, 1, 3])
        try #require(net.waitUntil(seconds: 45) { live([0, 1, 3, 4]) >= pausedAt + 4 },
                     "with validator 2 paused the others did not go on:\n\(net.diagnostics())")
        // Through the read-only node: it admits and gossips them; validators include them.
        submitted += try await Self.submitGrants(net, through: Self.readOnly, count: 3, after: lastHeight())
        let resumedAt = live([0, 1, 3])
        let resumeOffset = net.logOffset(2)
        net.signal(2, SIGCONT)
        net.expectedDown.remove(2)
        let catchUpTarget = live([0, 1, 3]) + 2
        try #require(net.waitUntil(seconds: 60) {
            net.logged(2, from: resumeOffset).contains { $0.key >= catchUpTarget && $0.value.decided }
        }, "resumed validator 2 did not catch up and decide a block at or above \(catchUpTarget):\n\(net.diagnostics())")
        let finalTarget = net.heights().max()!
        try #require(net.waitUntil(seconds: 45) { net.heights().allSatisfy { $0 >= finalTarget } },
                     "not every node reached \(finalTarget):\n\(net.diagnostics())")

        // Through the validator that was paused, once it caught up.
        submitted += try await Self.submitGrants(net, through: 2, count: 3, after: lastHeight())
        #expect(submitted.count == 12, "only \(submitted.count) of 12 transactions were reported committed")
        let waitFor = lastHeight()
        try #require(net.waitUntil(seconds: 45) { net.heights().allSatisfy { $0 >= waitFor } },
                     "not every node reached \(waitFor):\n\(net.diagnostics())")

        let logs = (0..<Self.nodeCount).map { net.logged($0) }
        let unclean = net.stopAll()
        netForCleanup = nil
        #expect(unclean.isEmpty, "nodes \(unclean) did not stop cleanly on SIGINT (exit status 0):\n\(net.diagnostics())")
        for i in 0..<Self.nodeCount {
            #expect(net.logText(i).contains("stopped at height"), "node \(i) did not log its graceful stop")
        }

        // The block stores, read after every process has stopped.
        let hashes = submitted.map(\.hash)
        let chains = try (0..<Self.nodeCount).map { try StoredChain(home: net.home($0), transactions: hashes) }
        let validators = try #require(chains.first?.validators)
        #expect(validators.count == Self.validatorCount)
        for (i, chain) in chains.enumerated() {
            #expect(chain.validators == validators, "node \(i) has another validator set")
            #expect(chain.blocks.count >= Int(finalTarget), "node \(i) stored \(chain.blocks.count) blocks")
            #expect(chain.problems.isEmpty, "node \(i): \(chain.problems)")
        }
        // One block and one state root per height on every node that has the height.
        let top = chains.map(\.blocks.count).max() ?? 0
        for h in 0..<top {
            let entries = chains.compactMap { h < $0.blocks.count ? $0.blocks[h] : nil }
            #expect(Set(entries.map(\.hash)).count == 1, "height \(h + 1) has \(Set(entries.map(\.hash)).count) different blocks")
            #expect(Set(entries.map(\.stateRoot)).count == 1, "height \(h + 1) has different state roots")
        }
        #expect(top >= 12, "only \(top) blocks in the whole run")
        // No committed transaction is lost: each one reported committed is on every node,
        // at the height the client was told, in the same place, with the same (empty) error.
        for (hash, height) in submitted {
            let places = chains.map { $0.transactions[hash] }
            #expect(places.allSatisfy { $0 != nil }, "transaction \(hash.hex.prefix(16)) missing on nodes \(places.indices.filter { places[$0] == nil })")
            let found = places.compactMap { $0 }
            #expect(Set(found.map(\.height)) == [height] && Set(found.map(\.index)).count == 1 && found.allSatisfy { $0.errorCode.isEmpty },
                    "transaction \(hash.hex.prefix(16)): \(found)")
        }
        // What the logs reported committed is what the stores hold: nothing a node logged
        // as committed was lost, by validator 3's SIGKILL either.
        for (i, log) in logs.enumerated() {
            for (h, entry) in log where h >= 1 && Int(h) <= chains[i].blocks.count {
                let stored = chains[i].blocks[Int(h) - 1]
                #expect(stored.hash.hex.hasPrefix(entry.hash), "node \(i) logged block \(h) as \(entry.hash), stored \(stored.hash.hex)")
                if !entry.state.isEmpty { #expect(stored.stateRoot.hex.hasPrefix(entry.state), "node \(i) state at \(h)") }
            }
            #expect(log.keys.allSatisfy { Int($0) <= chains[i].blocks.count }, "node \(i) logged blocks it did not store")
        }
        for (h, entry) in loggedBeforeKill {
            #expect(Int(h) <= chains[3].blocks.count && chains[3].blocks[Int(h) - 1].hash.hex.hasPrefix(entry.hash),
                    "validator 3 lost block \(h), logged as committed before its SIGKILL")
        }
        // Validator 3 signed precommits again after its restart: each block committed while
        // validator 2 was paused carries validator 3's precommit and not validator 2's, on
        // every node; and its double-sign guard holds a precommit above its restart height.
        let pauseHeights = (pausedAt + 3)...max(pausedAt + 3, resumedAt)
        #expect(resumedAt >= pausedAt + 3)
        for h in pauseHeights {
            for (i, chain) in chains.enumerated() where Int(h) <= chain.blocks.count {
                let signers = chain.blocks[Int(h) - 1].signers
                #expect(signers.contains(3) && !signers.contains(2), "node \(i), height \(h): precommits from \(signers.sorted())")
            }
        }
        let restartHeight = UInt64(loggedBeforeKill.keys.max() ?? 0)
        let guard3 = try SignedStateFile(path: net.home(3) + "/data/signed_state").load()
        #expect(guard3.records.contains { $0.step == .precommit && $0.height > restartHeight + 1 },
                "validator 3's guard: \(guard3.records.map { "\($0.step)@\($0.height)" })")
        // The read-only node holds no validator key and never signed: it has no guard file,
        // and it is not in the validator set whose signatures every certificate carries.
        #expect(!FileManager.default.fileExists(atPath: net.home(Self.readOnly) + "/data/signed_state"))
        #expect((0..<Self.validatorCount).allSatisfy { validators.contains(chains[$0].nodePublicKey) })
        #expect(!validators.contains(chains[Self.readOnly].nodePublicKey))
        print("network test: \(submitted.count) transactions committed and found on every node; stored heights \(chains.map(\.blocks.count)); validator 3 killed at \(killedAt), restarted from \(restartHeight); "
              + "validator 2 paused at \(pausedAt), resumed at \(resumedAt); certificates checked at heights \(pauseHeights)")
    }
}

/// One node's block store and ledger, opened read-only in spirit after the node stopped:
/// every block with its hash, state root and the validators whose precommits its
/// certificate carries, each certificate verified against the validator set.
struct StoredChain {
    struct Entry { let hash: Hash256; let stateRoot: Hash256; let signers: Set<Int> }
    struct Placed: Equatable { let height: UInt64; let index: UInt32; let errorCode: String }
    var blocks: [Entry] = []
    /// Where each transaction asked for sits in this node's chain, and its result.
    var transactions: [Hash256: Placed] = [:]
    var problems: [String] = []
    let validators: [[UInt8]]
    let nodePublicKey: [UInt8]

    init(home: String, transactions wanted: [Hash256] = []) throws {
        let genesisBytes = try #require(FileManager.default.contents(atPath: home + "/genesis.json"))
        let genesis = try Genesis.load(json: Array(genesisBytes))
        guard case .sm2(let key) = try Keystore(directory: URL(fileURLWithPath: home + "/keys")).load(name: "node", passphrase: nil) else {
            throw NetworkProcessTests.NetworkTestFailure()
        }
        nodePublicKey = key.publicKey.rawRepresentation
        let store = try RocksDBStore(path: home + "/data/db", columns: Ledger.columns + BlockStore.columns)
        defer { store.close() }
        let app = try ChainApplication(ledger: Ledger(store: store, genesis: genesis), chain: BlockStore(store: store))
        let set = try app.validatorSet()
        validators = set.validators.map(\.publicKey)
        var previous = app.genesisHash
        // The validator set never changes on this network, so the current one is the set in
        // force at every height.
        for h in stride(from: UInt64(1), through: app.height, by: 1) {
            guard let block = try app.chain.block(at: h), let cert = try app.chain.certificate(at: h) else {
                problems.append("block or certificate \(h) missing")
                break
            }
            if block.header.previousBlockHash != previous { problems.append("block \(h) does not extend block \(h - 1)") }
            if cert.height != h || cert.blockID != block.hash { problems.append("certificate \(h) is for another block") }
            do { try cert.verify(chainID: genesis.chainID, validators: set, verifier: SM2ConsensusVerifier()) } catch {
                problems.append("certificate \(h) does not verify: \(error)")
            }
            blocks.append(Entry(hash: block.hash, stateRoot: block.header.stateRoot,
                                signers: Set(cert.signatures.map { Int($0.validator) })))
            previous = block.hash
        }
        for hash in wanted {
            guard let at = try app.chain.location(ofTransaction: hash) else { continue }
            let leaf = try app.chain.results(at: at.height)?.first { $0.transactionHash == hash }
            transactions[hash] = Placed(height: at.height, index: at.index, errorCode: leaf?.errorCode ?? "no result")
        }
        if let last = blocks.last, last.stateRoot != app.ledger.stateRoot {
            problems.append("stored state \(app.ledger.stateRoot.hex) is not the newest header's \(last.stateRoot.hex)")
        }
    }
}
