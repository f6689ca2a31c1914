import Testing
import QuarryCore
import QuarryCrypto
import QuarryLedger
@testable import QuarryNode

// MARK: Helpers (adapted from the ledger tests)


func mempoolKey(_ label: String, scheme: SignatureScheme = .sm2) -> SigningKey {
    var seed = SM3.hash(Array("mempool-\(label)".utf8)).bytes
    seed[0] &= 0x7f
    seed[0] |= 0x01
    return try! SigningKey(scheme: scheme, rawRepresentation: seed)
}

func mempoolGenesis(blockTransactionsMax: UInt64 = 5_000, blockBytesMax: UInt64 = 4 * 1024 * 1024) -> Genesis {
    var e = EconomicParameters()
    e.batchSeconds = 10
    var c = ConsensusParameters()
    c.blockTransactionsMax = blockTransactionsMax
    c.blockBytesMax = blockBytesMax
    return Genesis(
        chainID: "quarry-mempool-test", genesisTime: 1_800_000_000,
        validators: [GenesisValidator(name: "v1", publicKey: mempoolKey("validator").publicKeyBytes, power: 1)],
        roles: Roles(registrar: mempoolKey("registrar").address, crystalIssuer: mempoolKey("issuer").address,
                     boxOperator: mempoolKey("operator").address, merchants: [mempoolKey("merchant").address]),
        economics: e, consensus: c)
}

/// A real ledger over an in-memory store that executes and commits blocks.
final class MempoolChain {
    let genesis: Genesis
    let ledger: Ledger
    var clock: UInt64 = 1
    var previousHash: Hash256

    init(genesis: Genesis = mempoolGenesis()) throws {
        self.genesis = genesis
        ledger = try Ledger(store: InMemoryStore(), genesis: genesis)
        previousHash = genesis.hash
    }

    /// A signAgreement with a version that differs from the previous nonce's, so it succeeds
    /// whenever its nonce is right; `variant` gives another transaction with the same nonce.
    /// (SM2 signatures are randomized: each call returns different bytes.)
    func tx(_ key: SigningKey, nonce: UInt64, variant: Int = 0, chainID: String? = nil) -> [UInt8] {
        let body = TransactionBody(chainID: chainID ?? genesis.chainID, nonce: nonce, signer: key.publicKeyBytes,
                                   payload: .signAgreement(version: SM3.hash(Array("agreement \(nonce) \(variant)".utf8))))
        return try! SignedTransaction(body: body, key: key).canonicalBytes
    }

    @discardableResult
    func commit(_ txs: [[UInt8]]) throws -> BlockResult {
        let ctx = BlockContext(height: ledger.height + 1, timeMilliseconds: (genesis.genesisTime + clock) * 1_000,
                               previousBlockHash: previousHash)
        let result = try ledger.executeBlock(ctx, systemTransactions: ledger.systemTransactions(for: ctx), transactions: txs)
        try ledger.commit(result, sync: false)
        previousHash = SM3.hash(result.stateRoot.bytes)
        clock += 1
        return result
    }
}

/// Counts signature verifications while doing the real ones.
final class CountingChecker: MempoolSignatureVerifier, @unchecked Sendable {
    private let lock = Lock()
    private var n = 0
    var count: Int { lock.withLock { n } }
    func isValid(signature: [UInt8], message: [UInt8], publicKey: PublicKeyBytes) -> Bool {
        lock.withLock { n += 1 }
        return StandardSignatureVerifier().isValid(signature: signature, message: message, publicKey: publicKey)
    }
}

struct PoolState: Equatable {
    let count: Int, bytes: Int, hashes: [Hash256]
    init(_ m: Mempool) { count = m.count; bytes = m.totalBytes; hashes = m.snapshot().map(\.hash) }
}

func expectRejected(_ m: Mempool, _ raw: [UInt8], _ code: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let before = PoolState(m)
    do {
        try m.add(raw)
        Issue.record("expected \(code), the transaction was admitted", sourceLocation: sourceLocation)
    } catch {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
    }
    #expect(PoolState(m) == before, sourceLocation: sourceLocation)
}

// MARK: Tests

@Suite struct MempoolTests {
    @Test func everyAdmissionErrorLeavesThePoolUnchanged() throws {
        let chain = try MempoolChain()
        let a = mempoolKey("a"), b = mempoolKey("b"), c = mempoolKey("c")
        var config = MempoolConfig()
        config.perSenderMax = 2
        config.nonceWindow = 4
        config.totalMax = 3
        let m = Mempool(genesis: chain.genesis, config: config, nonces: chain.ledger)

        try chain.commit([chain.tx(a, nonce: 0)])   // a's committed nonce is now 1
        let a1 = chain.tx(a, nonce: 1)
        try m.add(a1)
        try m.add(chain.tx(a, nonce: 2))
        #expect(m.count == 2)

        expectRejected(m, [UInt8](repeating: 0, count: Limits.transactionBytesMax + 1), "mempool.too_large")
        expectRejected(m, [1, 2, 3], "mempool.decode")
        expectRejected(m, chain.tx(b, nonce: 0) + [0], "mempool.decode")
        expectRejected(m, chain.tx(b, nonce: 0, chainID: "other-chain"), "mempool.wrong_chain")
        var forged = try SignedTransaction(canonicalBytes: chain.tx(b, nonce: 0))
        forged.signature[7] ^= 1
        expectRejected(m, forged.canonicalBytes, "mempool.bad_signature")
        expectRejected(m, chain.tx(a, nonce: 0, variant: 1), "mempool.nonce_too_low")
        expectRejected(m, chain.tx(b, nonce: 4), "mempool.nonce_gap_too_large")
        expectRejected(m, a1, "mempool.duplicate")
        expectRejected(m, chain.tx(a, nonce: 1, variant: 9), "mempool.nonce_taken")
        expectRejected(m, chain.tx(a, nonce: 3), "mempool.sender_full")
        let zero = TransactionBody(chainID: chain.genesis.chainID, nonce: 0, signer: b.publicKeyBytes,
                                   payload: .transfer(to: a.address, amount: 0))
        expectRejected(m, try SignedTransaction(body: zero, key: b).canonicalBytes, "mempool.invalid")
        try m.add(chain.tx(b, nonce: 0))
        expectRejected(m, chain.tx(c, nonce: 0), "mempool.full")

        var small = MempoolConfig()
        let one = chain.tx(b, nonce: 0)
        small.totalBytesMax = one.count + 10
        let m2 = Mempool(genesis: chain.genesis, config: small, nonces: chain.ledger)
        try m2.add(one)
        expectRejected(m2, chain.tx(c, nonce: 0), "mempool.bytes_full")
        var tiny = MempoolConfig()
        tiny.transactionBytesMax = 50
        let m3 = Mempool(genesis: chain.genesis, config: tiny, nonces: chain.ledger)
        expectRejected(m3, one, "mempool.too_large")
    }

    @Test func signatureIsVerifiedOnceAndRemembered() throws {
        let chain = try MempoolChain()
        let a = mempoolKey("a"), b = mempoolKey("b")
        let checker = CountingChecker()
        let m = Mempool(genesis: chain.genesis, nonces: chain.ledger, verifier: checker)
        let t0 = chain.tx(a, nonce: 0), t1 = chain.tx(a, nonce: 1)
        try m.add(t0)
        try m.add(t1)
        #expect(checker.count == 2)
        #expect(m.entry(SM3.hash(t0))?.signatureVerified == true)
        expectRejected(m, t0, "mempool.duplicate")
        #expect(checker.count == 2)

        // A bad signature is verified once; the same bytes again are refused from memory.
        var bad = try SignedTransaction(canonicalBytes: chain.tx(b, nonce: 0))
        bad.signature[3] ^= 0x10
        expectRejected(m, bad.canonicalBytes, "mempool.bad_signature")
        #expect(checker.count == 3)
        expectRejected(m, bad.canonicalBytes, "mempool.bad_signature")
        #expect(checker.count == 3)

        // Commit t0: the re-check keeps t1 without verifying it again.
        let block = m.reap(maxTransactions: 1)
        #expect(block == [t0])
        try chain.commit(block)
        try m.update(afterCommit: block)
        #expect(m.count == 1 && m.contains(SM3.hash(t1)))
        #expect(m.reap() == [t1])
        #expect(checker.count == 3)
    }

    @Test func gapsFilledLaterBecomeExecutable() throws {
        let chain = try MempoolChain()
        let a = mempoolKey("a")
        let m = Mempool(genesis: chain.genesis, nonces: chain.ledger)
        let t = (0..<4).map { chain.tx(a, nonce: UInt64($0)) }
        try m.add(t[3])
        try m.add(t[1])
        #expect(m.reap().isEmpty)
        try m.add(t[0])
        #expect(m.reap() == [t[0], t[1]])
        try m.add(t[2])
        #expect(m.reap() == [t[0], t[1], t[2], t[3]])
    }

    @Test func reapOrdersBySenderNonceThenArrivalAndRespectsLimits() throws {
        let chain = try MempoolChain()
        let a = mempoolKey("a"), b = mempoolKey("b"), c = mempoolKey("c")
        let m = Mempool(genesis: chain.genesis, nonces: chain.ledger)
        let a0 = chain.tx(a, nonce: 0), a1 = chain.tx(a, nonce: 1)
        let b0 = chain.tx(b, nonce: 0), b1 = chain.tx(b, nonce: 1)
        let c0 = chain.tx(c, nonce: 0), c1 = chain.tx(c, nonce: 1)
        for raw in [a0, b0, a1, c1, b1, c0] { try m.add(raw) }
        #expect(m.reap() == [a0, b0, a1, b1, c0, c1])
        #expect(m.reap(maxTransactions: 3) == [a0, b0, a1])
        #expect(m.reap(maxTransactions: 0).isEmpty)
        // Bytes: room for two transactions only.
        let budget = a0.count + b0.count + 1
        let limited = m.reap(maxBytes: budget)
        #expect(limited == [a0, b0])
        #expect(limited.reduce(0) { $0 + $1.count } <= budget)
        // Reaping does not remove anything.
        #expect(m.count == 6)

        // The genesis block limits cap any request.
        let small = try MempoolChain(genesis: mempoolGenesis(blockTransactionsMax: 2))
        let m2 = Mempool(genesis: small.genesis, nonces: small.ledger)
        for raw in [a0, b0, a1, c0] { try m2.add(raw) }
        #expect(m2.reap() == [a0, b0])
        #expect(m2.reap(maxTransactions: 100).count == 2)
        // Block bytes from genesis (at least 1024): fits floor(1024 / size) of these equal-sized transactions.
        #expect([a0, a1, b0, b1, c0, c1].allSatisfy { $0.count == a0.count })
        let fit = 1024 / a0.count
        #expect(fit >= 2 && fit < 6)
        let m3 = Mempool(genesis: mempoolGenesis(blockBytesMax: 1024), nonces: small.ledger)
        for raw in [a0, b0, a1, c1, b1, c0] { try m3.add(raw) }
        #expect(m3.reap() == Array([a0, b0, a1, b1, c0, c1].prefix(fit)))
    }

    @Test func updateAfterCommitWithARealLedger() throws {
        let chain = try MempoolChain()
        let a = mempoolKey("a"), b = mempoolKey("b"), c = mempoolKey("c")
        let checker = CountingChecker()
        let m = Mempool(genesis: chain.genesis, nonces: chain.ledger, verifier: checker)
        let a0 = chain.tx(a, nonce: 0), a1 = chain.tx(a, nonce: 1), a2 = chain.tx(a, nonce: 2)
        let b0 = chain.tx(b, nonce: 0), b1 = chain.tx(b, nonce: 1)
        let c0 = chain.tx(c, nonce: 0), c1 = chain.tx(c, nonce: 1)
        for raw in [a0, a1, a2, b0, b1, c0, c1] { try m.add(raw) }
        let block = m.reap(maxTransactions: 3)
        #expect(block == [a0, a1, a2])
        let result = try chain.commit(block)
        #expect(result.transactions.allSatisfy { $0.succeeded })
        try m.update(afterCommit: block)
        #expect(m.count == 4)
        #expect(!m.contains(SM3.hash(a0)) && !m.contains(SM3.hash(a2)))

        // c's nonce 0 is used by a transaction another node proposed: c0 becomes stale and goes.
        let otherC0 = chain.tx(c, nonce: 0, variant: 5)
        let block2 = [otherC0, m.reap(maxTransactions: 1)[0]]
        #expect(block2[1] == b0)
        #expect(try chain.commit(block2).transactions.allSatisfy { $0.succeeded })
        try m.update(afterCommit: block2)
        #expect(m.snapshot().map(\.raw) == [b1, c1])
        #expect(m.reap() == [b1, c1])
        let block3 = m.reap()
        #expect(try chain.commit(block3).transactions.allSatisfy { $0.succeeded })
        try m.update(afterCommit: block3)
        #expect(m.count == 0 && m.totalBytes == 0 && m.senderCount == 0)
        #expect(checker.count == 7)
        // Old nonces are now refused.
        expectRejected(m, chain.tx(b, nonce: 1, variant: 3), "mempool.nonce_too_low")
    }

    @Test func recheckAllDropsStaleTransactions() throws {
        let chain = try MempoolChain()
        let a = mempoolKey("a")
        let m = Mempool(genesis: chain.genesis, nonces: chain.ledger)
        let a1 = chain.tx(a, nonce: 1)
        try m.add(chain.tx(a, nonce: 0))
        try m.add(a1)
        try chain.commit([chain.tx(a, nonce: 0, variant: 1)])   // committed without update (e.g. block sync)
        #expect(m.count == 2)
        try m.recheckAll()
        #expect(m.count == 1)
        #expect(m.reap() == [a1])
    }

    @Test func aCommitDuringVerificationIsSeen() throws {
        /// Runs `during` once, in the middle of the first verification.
        final class InterruptingVerifier: MempoolSignatureVerifier, @unchecked Sendable {
            var during: (() -> Void)?
            func isValid(signature: [UInt8], message: [UInt8], publicKey: PublicKeyBytes) -> Bool {
                if let f = during { during = nil; f() }
                return StandardSignatureVerifier().isValid(signature: signature, message: message, publicKey: publicKey)
            }
        }
        let chain = try MempoolChain()
        let a = mempoolKey("a")
        let verifier = InterruptingVerifier()
        let m = Mempool(genesis: chain.genesis, nonces: chain.ledger, verifier: verifier)
        let other = chain.tx(a, nonce: 0, variant: 1)
        verifier.during = {
            // Another node's transaction with the same nonce commits while ours is verified.
            #expect((try? chain.commit([other]))?.transactions.first?.succeeded == true)
            #expect((try? m.update(afterCommit: [other])) != nil)
        }
        expectRejected(m, chain.tx(a, nonce: 0), "mempool.nonce_too_low")
        #expect(m.count == 0 && m.senderCount == 0)
    }

    @Test func concurrentAdmissionsAreSafeAndVerifyOnce() async throws {
        let chain = try MempoolChain()
        let checker = CountingChecker()
        var config = MempoolConfig()
        config.perSenderMax = 3
        let m = Mempool(genesis: chain.genesis, config: config, nonces: chain.ledger, verifier: checker)
        let keys = (0..<4).map { mempoolKey("c\($0)") }
        // Each sender offers 5 nonces (only 3 fit), and every transaction is offered by 3 tasks at once.
        let raws = keys.flatMap { k in (0..<5).map { chain.tx(k, nonce: UInt64($0)) } }
        let accepted = await withTaskGroup(of: Int.self) { group in
            for copy in 0..<3 {
                group.addTask {
                    var n = 0
                    for raw in (copy % 2 == 0 ? raws : raws.reversed()) where (try? m.add(raw)) != nil { n += 1 }
                    return n
                }
            }
            return await group.reduce(0, +)
        }
        #expect(accepted == m.count)
        #expect(m.count == 12)
        #expect(Set(m.snapshot().map(\.hash)).count == 12)
        #expect(m.senderCount == 4)
        // No transaction was verified twice.
        #expect(checker.count <= raws.count)
    }

    @Test func randomizedAdmissionsReapsAndCommitsKeepInvariants() throws {
        let chain = try MempoolChain(genesis: mempoolGenesis(blockTransactionsMax: 6, blockBytesMax: 3_000))
        var config = MempoolConfig()
        config.perSenderMax = 5
        config.nonceWindow = 6
        config.totalMax = 20
        config.totalBytesMax = 20 * 240
        let checker = CountingChecker()
        let m = Mempool(genesis: chain.genesis, config: config, nonces: chain.ledger, verifier: checker)
        let keys = (0..<6).map { mempoolKey("r\($0)", scheme: $0 % 3 == 2 ? .secp256k1 : .sm2) }
        var rng = SplitMix64(seed: 0x5EED_0001)
        var admitted = 0
        var committedTxs = 0
        var errors: [String: Int] = [:]

        for step in 0..<400 {
            let roll = rng.next() % 10
            if roll < 7 {
                let key = keys[Int(rng.next() % UInt64(keys.count))]
                let committed = try chain.ledger.account(key.address).nonce
                // Mostly near the committed nonce, sometimes stale or far ahead, sometimes broken.
                let offset = Int(rng.next() % 9) - 1
                let nonce = UInt64(max(0, Int(committed) + offset))
                var raw = chain.tx(key, nonce: nonce, variant: Int(rng.next() % 2))
                if rng.next() % 15 == 0 { raw[raw.count - 1] ^= 1 }
                do {
                    try m.add(raw)
                    admitted += 1
                } catch {
                    errors[error.code, default: 0] += 1
                }
            } else {
                let block = m.reap(maxTransactions: Int(rng.next() % 8))
                #expect(block.count <= 6 && block.reduce(0) { $0 + $1.count } <= 3_000)
                // Reaped transactions are executable in order: consecutive nonces from committed.
                var expected: [Address: UInt64] = [:]
                for raw in block {
                    let tx = try SignedTransaction(canonicalBytes: raw)
                    let next = try expected[tx.sender] ?? chain.ledger.account(tx.sender).nonce
                    #expect(tx.body.nonce == next, "step \(step)")
                    expected[tx.sender] = next + 1
                }
                let result = try chain.commit(block)
                #expect(result.transactions.allSatisfy { $0.succeeded }, "step \(step)")
                committedTxs += block.count
                try m.update(afterCommit: block)
            }
            // Invariants after every step.
            let snap = m.snapshot()
            #expect(Set(snap.map(\.hash)).count == snap.count)
            #expect(snap.count == m.count && snap.count <= config.totalMax)
            #expect(snap.reduce(0) { $0 + $1.raw.count } == m.totalBytes && m.totalBytes <= config.totalBytesMax)
            var perSender: [Address: [UInt64]] = [:]
            for e in snap { perSender[e.sender, default: []].append(e.nonce) }
            for (sender, ns) in perSender {
                let committed = try chain.ledger.account(sender).nonce
                #expect(ns.count <= config.perSenderMax && Set(ns).count == ns.count)
                #expect(ns.allSatisfy { $0 >= committed && $0 - committed < config.nonceWindow })
            }
        }
        // Each admitted transaction was verified exactly once (plus the rejected bad ones).
        #expect(checker.count == admitted + errors["mempool.bad_signature", default: 0])
        #expect(admitted > 20 && committedTxs > 10)
        #expect(errors["mempool.nonce_too_low", default: 0] > 0 && errors["mempool.nonce_gap_too_large", default: 0] > 0)
    }
}
