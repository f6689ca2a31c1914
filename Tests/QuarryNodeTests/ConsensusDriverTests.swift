import Foundation
import Testing
import QuarryConsensus
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryStore
@testable import QuarryNode

/// Four validators, each with its own ledger, block store, WAL and guard on disk, wired by
/// an in-process message bus and a simulated clock: the real core, the real SM2, the real
/// ledger, the real block rules.
final class LocalNetwork {
    struct Node {
        let key: SM2PrivateKey
        let directory: String
        var driver: ConsensusDriver!
        var store: RocksDBStore!
        var committed: [(Block, BlockResult)] = []
        /// Simulated time of each commit, in milliseconds.
        var commitTimes: [UInt64] = []
    }

    let genesis: Genesis
    let issuer = SigningKey(scheme: .sm2)
    var nodes: [Node] = []
    var queue: [(to: Int, bytes: [UInt8])] = []
    var now: UInt64
    var pending: [[UInt8]] = []
    var down: Set<Int> = []
    /// Messages sent before this time are lost, as they are on a real network when they go
    /// out before the connections are up.
    var lostBefore: UInt64 = 0
    let gossipIntervalMilliseconds: UInt64
    /// Whether the drivers are told that `pending` holds transactions (NodeRuntime tells
    /// them about its mempool); without it every height waits the full commit delay.
    let reportsWaitingTransactions: Bool

    init(count: Int = 4, gossipIntervalMilliseconds: UInt64 = 1_000, reportsWaitingTransactions: Bool = false) throws {
        self.gossipIntervalMilliseconds = gossipIntervalMilliseconds
        self.reportsWaitingTransactions = reportsWaitingTransactions
        let keys = (0..<count).map { _ in SM2PrivateKey() }
        let other = SigningKey(scheme: .sm2).address
        var consensus = ConsensusParameters()
        consensus.blockTransactionsMax = 100
        genesis = Genesis(
            chainID: "quarry-local", genesisTime: 1_800_000_000,
            validators: keys.enumerated().map { i, k in
                GenesisValidator(name: "v\(i)", publicKey: try! PublicKeyBytes(scheme: .sm2, bytes: k.publicKey.rawRepresentation), power: 10)
            },
            roles: Roles(registrar: other, crystalIssuer: issuer.address, boxOperator: other, merchants: []),
            consensus: consensus)
        now = genesis.genesisTime * 1_000 + 1
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-localnet-\(UUID().uuidString)").path
        for (i, k) in keys.enumerated() {
            let dir = base + "/node\(i)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            nodes.append(Node(key: k, directory: dir))
            try boot(i)
        }
    }

    var baseDirectory: String { (nodes[0].directory as NSString).deletingLastPathComponent }

    func boot(_ i: Int) throws {
        let dir = nodes[i].directory
        let store = try RocksDBStore(path: dir + "/db", columns: Ledger.columns + BlockStore.columns)
        let app = try ChainApplication(ledger: Ledger(store: store, genesis: genesis), chain: BlockStore(store: store))
        let timeouts = TimeoutConfig(proposeBase: 300, proposeDelta: 100, prevoteBase: 100, prevoteDelta: 50,
                                     precommitBase: 100, precommitDelta: 50)
        nodes[i].store = store
        nodes[i].driver = try ConsensusDriver(
            app: app, config: ConsensusConfig(chainID: genesis.chainID, timeouts: timeouts),
            signer: SM2ConsensusSigner(key: nodes[i].key), verifier: SM2ConsensusVerifier(),
            wal: FileWAL(path: dir + "/consensus.wal"), signedFile: SignedStateFile(path: dir + "/signed_state"),
            send: { [unowned self] m in
                guard self.now >= self.lostBefore else { return }
                let bytes = m.canonicalBytes
                for to in self.nodes.indices where to != i { self.queue.append((to, bytes)) }
            },
            transactions: { [unowned self] count, _ in Array(self.pending.prefix(count)) },
            onCommit: { [unowned self] block, result in
                self.nodes[i].committed.append((block, result))
                self.nodes[i].commitTimes.append(self.now)
                let included = Set(block.transactions)
                self.pending.removeAll { included.contains($0) }
            },
            waitingTransactions: { [unowned self] in self.reportsWaitingTransactions ? self.pending.count : 0 },
            gossipIntervalMilliseconds: gossipIntervalMilliseconds)
        try nodes[i].driver.start(now: now)
    }

    func crash(_ i: Int) {
        down.insert(i)
        nodes[i].driver = nil
        nodes[i].store.close()
        nodes[i].store = nil
    }

    func restart(_ i: Int) throws {
        down.remove(i)
        try boot(i)
    }

    /// Delivers messages and advances simulated time until `done` or the step bound.
    func run(steps: Int = 200_000, until done: () -> Bool) throws {
        for _ in 0..<steps {
            if done() { return }
            if !queue.isEmpty {
                let (to, bytes) = queue.removeFirst()
                if !down.contains(to) { try nodes[to].driver.receive(bytes, now: now) }
                continue
            }
            let deadlines = nodes.indices.filter { !down.contains($0) }.compactMap { nodes[$0].driver.nextDeadline }
            now = max(now + 1, deadlines.min() ?? now + 10)
            for i in nodes.indices where !down.contains(i) { try nodes[i].driver.tick(now: now) }
        }
    }

    func grant(_ nonce: UInt64, to: Address) throws -> [UInt8] {
        let body = TransactionBody(chainID: genesis.chainID, nonce: nonce, signer: issuer.publicKeyBytes,
                                   payload: .grantCrystals(to: to, amount: 10 + nonce))
        return try SignedTransaction(body: body, key: issuer).canonicalBytes
    }
}

@Suite(.serialized) struct ConsensusDriverTests {
    /// Under load the next height starts at once after a commit when a full block waits, or
    /// after a twentieth of the commit delay when fewer do; the commit delay
    /// (timeoutCommitMs, 1,000 ms here) still paces the chain once nothing is waiting, and
    /// a chain whose drivers hear of no waiting transactions waits it at every height.
    @Test func commitDelayIsSkippedOnlyWhileTransactionsWait() throws {
        for reports in [true, false] {
            let net = try LocalNetwork(reportsWaitingTransactions: reports)
            defer { try? FileManager.default.removeItem(atPath: net.baseDirectory) }
            let alice = SigningKey(scheme: .sm2).address
            // 250 grants, 100 per block: three blocks carry them, then empty blocks follow.
            net.pending = try (0..<250).map { try net.grant($0, to: alice) }
            try net.run { net.nodes.allSatisfy { $0.committed.count >= 6 } }
            let node = net.nodes[0]
            #expect(node.committed.count >= 6)
            #expect(node.committed.prefix(3).map { $0.0.transactions.count } == [100, 100, 50])
            #expect(node.committed[3...].allSatisfy { $0.0.transactions.isEmpty })
            let gaps = zip(node.commitTimes.dropFirst(), node.commitTimes).map { $0 - $1 }
            let delay = net.genesis.consensus.timeoutCommitMilliseconds
            #expect(delay == 1_000)
            if reports {
                // After height 1, 150 waited (more than a block's 100): height 2 started at
                // once. After height 2, 50 waited: a twentieth of the delay, then height 3.
                #expect(gaps[0] < delay / 20, "gaps \(gaps)")
                #expect(gaps[1] >= delay / 20 && gaps[1] < delay, "gaps \(gaps)")
            } else {
                #expect(gaps[0] >= delay && gaps[1] >= delay, "gaps \(gaps)")
            }
            // Height 3 took the last 50: nothing waited, so height 4 started after the delay.
            #expect(gaps[2] >= delay && gaps[3] >= delay, "gaps \(gaps)")
            for h in 0..<6 {
                #expect(Set(net.nodes.map { $0.committed[h].0.hash }).count == 1)
            }
        }
    }

    @Test func fourValidatorsAgreeOnEveryBlockAndState() throws {
        let net = try LocalNetwork()
        defer { try? FileManager.default.removeItem(atPath: net.baseDirectory) }
        let alice = SigningKey(scheme: .sm2).address
        net.pending = try (0..<5).map { try net.grant($0, to: alice) }
        try net.run { net.nodes.allSatisfy { $0.committed.count >= 6 } }
        #expect(net.nodes.allSatisfy { $0.committed.count >= 6 },
                "committed \(net.nodes.map(\.committed.count)), heights \(net.nodes.map { $0.driver.height }), rounds \(net.nodes.map { $0.driver.core.round }), rejected \(net.nodes.map { $0.driver.rejectedInputs }), invalid \(net.nodes.map { $0.driver.lastInvalidBlock?.description ?? "-" })")
        for h in 0..<6 {
            let hashes = Set(net.nodes.map { $0.committed[h].0.hash })
            let roots = Set(net.nodes.map { $0.committed[h].1.stateRoot })
            #expect(hashes.count == 1 && roots.count == 1, "height \(h + 1) differs between nodes")
            let block = net.nodes[0].committed[h].0
            #expect(block.header.stateRoot == net.nodes[0].committed[h].1.stateRoot)
            if h > 0 {
                #expect(block.header.timeMilliseconds > net.nodes[0].committed[h - 1].0.header.timeMilliseconds)
                #expect(block.lastCommit?.blockID == net.nodes[0].committed[h - 1].0.hash)
            }
        }
        // Every granted transaction landed, once, and took effect on every node.
        let included = net.nodes[0].committed.flatMap { $0.0.transactions }
        #expect(included.count == 5)
        #expect(net.nodes[0].committed.flatMap { $0.1.transactions }.allSatisfy { $0.succeeded })
        for node in net.nodes {
            #expect(try node.driver.app.ledger.account(alice).crystals == (0..<5).reduce(0) { $0 + 10 + $1 })
        }
        #expect(net.nodes.allSatisfy { $0.driver.rejectedInputs == 0 })
        for n in net.nodes { n.store.close() }
    }

    @Test func threeValidatorsKeepGoingAndARestartedOneRejoinsFromItsFiles() throws {
        let net = try LocalNetwork()
        defer { try? FileManager.default.removeItem(atPath: net.baseDirectory) }
        try net.run { net.nodes.allSatisfy { $0.committed.count >= 2 } }
        net.crash(3)
        let before = net.nodes[0].committed.count
        try net.run { net.nodes[0].committed.count >= before + 3 }
        #expect(net.nodes[0].committed.count >= before + 3, "three of four validators must keep committing")
        // Node 3 restarts from its RocksDB, WAL and guard at the height it had, catches up
        // by block sync from node 0 (messages through their canonical bytes), then rejoins.
        let had = net.nodes[3].committed.count
        try net.restart(3)
        let app3 = net.nodes[3].driver.app
        #expect(app3.height == UInt64(had))
        while app3.height < net.nodes[0].driver.app.height {
            let request = SyncMessage.request(from: app3.height + 1, count: 2)
            guard case .request(let from, let count) = try SyncMessage(canonicalBytes: request.canonicalBytes) else {
                Issue.record("request did not round-trip"); break
            }
            let reply = try SyncMessage(canonicalBytes: net.nodes[0].driver.app.chain.syncReply(from: from, count: count).canonicalBytes)
            guard case .blocks(let list) = reply, !list.isEmpty else { Issue.record("empty sync reply"); break }
            for item in list { try app3.applyCertified(item, verifier: SM2ConsensusVerifier()) }
        }
        let synced = app3.height
        #expect(synced == net.nodes[0].driver.app.height)
        #expect(app3.ledger.stateRoot == net.nodes[0].driver.app.ledger.stateRoot)
        try net.nodes[3].driver.resynchronize(now: net.now)
        try net.run { net.nodes.allSatisfy { $0.driver.app.height >= synced + 2 } }
        for h in 1...(synced + 2) {
            let hashes = try Set(net.nodes.map { try #require(try $0.driver.app.chain.block(at: h)).hash })
            #expect(hashes.count == 1, "height \(h) differs")
        }
        for n in net.nodes { n.store.close() }
    }

    /// The multi-process network's start-up deadlock, reproduced deterministically: every
    /// message of round 0 (the proposal and the nil prevotes after timeoutPropose) is lost,
    /// as when nodes send before their peers have connected. Each validator then holds only
    /// its own prevote, no rule fires and no timeout is scheduled: without re-gossip the
    /// network never moves again; with it, the repeated prevotes complete the round and the
    /// next rounds commit.
    @Test(arguments: [UInt64(0), 1_000]) func lostRoundZeroMessagesStallUnlessOwnMessagesAreRepeated(gossip: UInt64) throws {
        let net = try LocalNetwork(gossipIntervalMilliseconds: gossip)
        defer { try? FileManager.default.removeItem(atPath: net.baseDirectory) }
        let start = net.now
        net.lostBefore = start + 400
        try net.run { net.now > start + 30_000 || net.nodes.allSatisfy { $0.committed.count >= 3 } }
        if gossip == 0 {
            #expect(net.nodes.allSatisfy { $0.committed.isEmpty && $0.driver.core.round == 0 },
                    "committed \(net.nodes.map(\.committed.count)), rounds \(net.nodes.map { $0.driver.core.round })")
            #expect(net.nodes.allSatisfy { $0.driver.nextDeadline == nil }, "a stalled node has nothing left to wait for")
        } else {
            #expect(net.nodes.allSatisfy { $0.committed.count >= 3 },
                    "committed \(net.nodes.map(\.committed.count)), rounds \(net.nodes.map { $0.driver.core.round })")
            for h in 0..<3 { #expect(Set(net.nodes.map { $0.committed[h].0.hash }).count == 1) }
            #expect(net.nodes.allSatisfy { $0.driver.rejectedInputs == 0 })
        }
        for n in net.nodes { n.store.close() }
    }

    /// What is repeated: the node's own proposal and votes at its height (with the prevotes
    /// behind its valid value), and nothing at all from a node without a signer.
    @Test func gossipMessagesAreTheNodesOwnAtItsHeight() throws {
        let net = try LocalNetwork()
        defer { try? FileManager.default.removeItem(atPath: net.baseDirectory) }
        try net.run { net.nodes.allSatisfy { $0.driver.core.height == 1 && $0.driver.core.step >= .prevote } }
        var proposers = 0
        for (i, node) in net.nodes.enumerated() {
            let messages = node.driver.gossipMessages(older: true)
            #expect(messages.allSatisfy { $0.height == 1 })
            #expect(messages.allSatisfy { $0.sender == UInt16(i) || isPrevote($0) }, "node \(i) repeats another's message")
            #expect(messages.contains { $0.sender == UInt16(i) && isPrevote($0) }, "node \(i) does not repeat its prevote")
            if messages.contains(where: { if case .proposal = $0 { return true } else { return false } }) { proposers += 1 }
        }
        #expect(proposers == 1)
        let store = InMemoryStore()
        let observer = try ConsensusDriver(
            app: try ChainApplication(ledger: Ledger(store: store, genesis: net.genesis), chain: BlockStore(store: store)),
            config: ConsensusConfig(chainID: net.genesis.chainID), signer: nil, verifier: SM2ConsensusVerifier(),
            wal: nil, signedFile: nil, send: { _ in Issue.record("an observer sent a consensus message") })
        try observer.start(now: net.now)
        try observer.tick(now: net.now + 10_000)
        #expect(observer.gossipMessages(older: true).isEmpty)
        for n in net.nodes { n.store.close() }
    }

    @Test func blockSyncRefusesForgedCertificatesAndBlocks() throws {
        let net = try LocalNetwork()
        defer { try? FileManager.default.removeItem(atPath: net.baseDirectory) }
        try net.run { net.nodes.allSatisfy { $0.committed.count >= 2 } }
        guard case .blocks(let list) = try net.nodes[0].driver.app.chain.syncReply(from: 1, count: 2) else {
            Issue.record("no blocks"); return
        }
        // A fresh node with the same genesis.
        let store = InMemoryStore()
        let fresh = try ChainApplication(ledger: Ledger(store: store, genesis: net.genesis), chain: BlockStore(store: store))
        let verifier = SM2ConsensusVerifier()
        // Certificate with only two of four signatures: not more than 2/3.
        let cert = list[0].certificate
        let weak = CommitCertificate(height: cert.height, round: cert.round, blockID: cert.blockID,
                                     signatures: Array(cert.signatures.prefix(2)))
        #expect(throws: SyncError.self) { try fresh.applyCertified(CertifiedBlock(block: list[0].block, certificate: weak), verifier: verifier) }
        // A block whose header was altered no longer matches its certificate.
        var altered = list[0].block
        altered.header.stateRoot = SM3.hash([7])
        #expect(throws: SyncError.self) { try fresh.applyCertified(CertifiedBlock(block: altered, certificate: cert), verifier: verifier) }
        // Out of order.
        #expect(throws: SyncError.self) { try fresh.applyCertified(list[1], verifier: verifier) }
        #expect(fresh.height == 0)
        try fresh.applyCertified(list[0], verifier: verifier)
        try fresh.applyCertified(list[1], verifier: verifier)
        #expect(fresh.ledger.stateRoot == (try net.nodes[0].driver.app.chain.block(at: 2))?.header.stateRoot)
        // Malformed sync messages are refused by the decoder.
        #expect(throws: (any Error).self) { _ = try SyncMessage(canonicalBytes: [2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]) }
        #expect(throws: (any Error).self) { _ = try SyncMessage(canonicalBytes: [9]) }
        for n in net.nodes { n.store.close() }
    }

    @Test func aTamperedProposalIsRefusedWithAReason() throws {
        let net = try LocalNetwork()
        defer { try? FileManager.default.removeItem(atPath: net.baseDirectory) }
        try net.run { net.nodes.allSatisfy { $0.committed.count >= 1 } }
        let app = net.nodes[1].driver.app
        let validators = try app.validatorSet()
        let good = try app.buildProposal(proposer: 0, transactions: [], validators: validators)
        var block = try Block(canonicalBytes: good.bytes)
        block.header.stateRoot = SM3.hash([1])
        let bad = ProposalValue(id: block.hash, time: good.time, bytes: block.canonicalBytes)
        #expect(throws: BlockValidationError.self) {
            try app.validate(bad, validators: validators, previousValidators: validators, verifier: SM2ConsensusVerifier())
        }
        try app.validate(good, validators: validators, previousValidators: validators, verifier: SM2ConsensusVerifier())
        for n in net.nodes { n.store.close() }
    }
}

private func isPrevote(_ m: ConsensusMessage) -> Bool {
    if case .vote(let v) = m { return v.type == .prevote }
    return false
}
