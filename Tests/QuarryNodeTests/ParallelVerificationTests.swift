import Testing
import QuarryCore
import QuarryCrypto
@testable import QuarryLedger
@testable import QuarryNode

/// Counts verifications and checks batches over the cores, like the real verifier.
final class ParallelCountingChecker: MempoolSignatureVerifier, @unchecked Sendable {
    private let lock = Lock()
    private var n = 0
    private var batches = 0
    var count: Int { lock.withLock { n } }
    var batchCount: Int { lock.withLock { batches } }
    func isValid(signature: [UInt8], message: [UInt8], publicKey: PublicKeyBytes) -> Bool {
        lock.withLock { n += 1 }
        return SignatureVerification.isValid(signature: signature, message: message, publicKey: publicKey)
    }
    func areValid(_ items: [(signature: [UInt8], message: [UInt8], publicKey: PublicKeyBytes)]) -> [Bool] {
        lock.withLock { batches += 1 }
        return ParallelVerification.map(count: items.count, workers: 2) { i in
            self.isValid(signature: items[i].signature, message: items[i].message, publicKey: items[i].publicKey)
        }
    }
}

@Suite struct ParallelVerificationTests {
    @Test(arguments: [1, 2, 3, 8])
    func mapChecksEveryIndexOnceInOrder(workers: Int) {
        for count in [0, 1, 3, 4, 5, 17, 100, 1001] {
            let lock = Lock()
            nonisolated(unsafe) var seen = [Int](repeating: 0, count: count)
            let results = ParallelVerification.map(count: count, workers: workers) { i in
                lock.withLock { seen[i] += 1 }
                return i % 3 == 0
            }
            #expect(results == (0..<count).map { $0 % 3 == 0 }, "count \(count) workers \(workers)")
            #expect(seen.allSatisfy { $0 == 1 }, "count \(count) workers \(workers)")
        }
    }

    /// The parallel checker answers exactly what the serial one does, item by item, for a
    /// mix of valid, tampered and malformed signatures of both schemes.
    @Test func parallelCheckerEqualsSerialChecker() throws {
        let chain = try MempoolChain()
        var raws: [[UInt8]] = []
        for i in 0..<40 {
            let key = mempoolKey("p\(i % 7)", scheme: i % 5 == 0 ? .secp256k1 : .sm2)
            var tx = try SignedTransaction(canonicalBytes: chain.tx(key, nonce: UInt64(i)))
            if i % 4 == 1 { tx.signature[Int(i) % tx.signature.count] ^= 0x01 }
            raws.append(tx.canonicalBytes)
        }
        var items = try raws.map { raw -> SignatureCheckItem in
            let tx = try SignedTransaction(canonicalBytes: raw)
            return SignatureCheckItem(signature: tx.signature, message: tx.body.signingBytes, publicKey: tx.body.signer)
        }
        // Malformed: a short signature, and a 65-byte SM2 "key" that is no curve point.
        items.append(SignatureCheckItem(signature: Array(items[0].signature.prefix(10)), message: items[0].message, publicKey: items[0].publicKey))
        items.append(SignatureCheckItem(signature: items[2].signature, message: items[2].message,
                                        publicKey: try PublicKeyBytes(scheme: .sm2, bytes: [4] + [UInt8](repeating: 9, count: 64))))
        let serial = SerialSignatureChecker().check(items)
        #expect(ParallelSignatureChecker().check(items) == serial)
        #expect(ParallelSignatureChecker(workers: 2).check(items) == serial)
        #expect(ParallelSignatureChecker(workers: 1).check(items) == serial)
        #expect(serial.contains(true) && serial.contains(false))
    }

    /// A block executed with the parallel checker gives the same results and state root as
    /// with the serial one.
    @Test func blockExecutionIsTheSameWithEitherChecker() throws {
        let a = try MempoolChain(), b = try MempoolChain()
        var block: [[UInt8]] = []
        for i in 0..<24 {
            let key = mempoolKey("block\(i % 6)")
            var tx = try SignedTransaction(canonicalBytes: a.tx(key, nonce: UInt64(i / 6)))
            if i % 5 == 3 { tx.signature[7] ^= 0x40 }
            block.append(tx.canonicalBytes)
        }
        func run(_ chain: MempoolChain, _ checker: SignatureChecker) throws -> BlockResult {
            let ctx = BlockContext(height: 1, timeMilliseconds: (chain.genesis.genesisTime + 1) * 1_000,
                                   previousBlockHash: chain.previousHash)
            return try chain.ledger.executeBlock(ctx, systemTransactions: chain.ledger.systemTransactions(for: ctx),
                                                 transactions: block, signatureChecker: checker)
        }
        let serial = try run(a, SerialSignatureChecker()), parallel = try run(b, ParallelSignatureChecker(workers: 2))
        #expect(serial.stateRoot == parallel.stateRoot)
        #expect(serial.transactions == parallel.transactions)
        #expect(serial.transactions.contains { $0.error != nil } && serial.transactions.contains { $0.error == nil })
    }

    /// `add(batch:)` gives what `add` one by one gives, and verifies each signature once,
    /// in one batch.
    @Test func batchAdmissionEqualsOneByOne() throws {
        let one = try MempoolChain(), two = try MempoolChain()
        var raws: [[UInt8]] = []
        for i in 0..<30 {
            let key = mempoolKey("batch\(i % 5)")
            var raw = one.tx(key, nonce: UInt64(i / 5))
            if i % 7 == 3 {
                var tx = try SignedTransaction(canonicalBytes: raw)
                tx.signature[5] ^= 0x02
                raw = tx.canonicalBytes
            }
            if i == 11 { raw = one.tx(key, nonce: 60) }                      // beyond the nonce window
            if i == 12 { raw = one.tx(key, nonce: 0, chainID: "other") }      // another chain
            if i == 13 { raw = Array(raw.dropLast()) }                        // does not decode
            raws.append(raw)
        }
        raws.append(raws[0])  // a duplicate of an admitted transaction
        let sequentialChecker = ParallelCountingChecker(), batchChecker = ParallelCountingChecker()
        var config = MempoolConfig()
        config.nonceWindow = 8
        let sequential = Mempool(genesis: one.genesis, config: config, nonces: one.ledger, verifier: sequentialChecker)
        let batched = Mempool(genesis: two.genesis, config: config, nonces: two.ledger, verifier: batchChecker)
        let expected = raws.map { raw in Result { () throws(MempoolError) -> Hash256 in try sequential.add(raw) } }
        let got = batched.add(batch: raws)
        #expect(got.count == expected.count)
        for (i, (x, y)) in zip(expected, got).enumerated() {
            switch (x, y) {
            case (.success(let h1), .success(let h2)): #expect(h1 == h2, "#\(i)")
            case (.failure(let e1), .failure(let e2)): #expect(e1.code == e2.code, "#\(i): \(e1) vs \(e2)")
            default: Issue.record("#\(i): one by one \(x), batch \(y)")
            }
        }
        #expect(PoolState(sequential) == PoolState(batched))
        #expect(sequentialChecker.count == batchChecker.count)
        #expect(batchChecker.batchCount == 1)
        #expect(batched.count > 10)
        // Nothing is left in flight: the same transactions again are plain duplicates.
        let again = batched.add(batch: Array(raws.prefix(3)))
        #expect(again.allSatisfy { if case .failure = $0 { return true } else { return false } })
    }

    @Test func largeBatchesAreCheckedInGroups() throws {
        let chain = try MempoolChain()
        var config = MempoolConfig()
        config.nonceWindow = 64
        config.perSenderMax = 64
        let checker = ParallelCountingChecker()
        let m = Mempool(genesis: chain.genesis, config: config, nonces: chain.ledger, verifier: checker)
        let raws = (0..<(Mempool.batchMax + 10)).map { i in chain.tx(mempoolKey("group\(i % 8)"), nonce: UInt64(i / 8)) }
        let results = m.add(batch: raws)
        #expect(results.allSatisfy { if case .success = $0 { return true } else { return false } })
        #expect(checker.batchCount == 2 && checker.count == raws.count)
        #expect(m.count == raws.count)
    }

    /// The mempool's verifier remembers what verified; the block checker answers those from
    /// memory and verifies everything else.
    @Test func blockCheckerSkipsSignaturesTheMempoolVerified() throws {
        let chain = try MempoolChain()
        let memory = VerifiedSignatures(capacity: 100)
        let m = Mempool(genesis: chain.genesis, nonces: chain.ledger, verifier: StandardSignatureVerifier(verified: memory))
        let key = mempoolKey("memory")
        let good = chain.tx(key, nonce: 0)
        var badTx = try SignedTransaction(canonicalBytes: chain.tx(key, nonce: 1))
        badTx.signature[9] ^= 0x08
        try m.add(good)
        #expect(throws: MempoolError.badSignature) { try m.add(badTx.canonicalBytes) }
        #expect(memory.count == 1)  // only the valid one
        let goodTx = try SignedTransaction(canonicalBytes: good)
        #expect(memory.contains(signature: goodTx.signature, message: goodTx.body.signingBytes, publicKey: goodTx.body.signer))
        #expect(!memory.contains(signature: badTx.signature, message: badTx.body.signingBytes, publicKey: badTx.body.signer))

        // White box: the checker trusts the memory (an entry planted for a wrong signature
        // answers true), and without an entry it verifies.
        let planted = SignatureCheckItem(signature: badTx.signature, message: badTx.body.signingBytes, publicKey: badTx.body.signer)
        #expect(ParallelSignatureChecker(verified: memory).check([planted]) == [false])
        memory.insert(signature: badTx.signature, message: badTx.body.signingBytes, publicKey: badTx.body.signer)
        #expect(ParallelSignatureChecker(verified: memory).check([planted]) == [true])
        #expect(ParallelSignatureChecker(verified: nil).check([planted]) == [false])
    }

    @Test func verifiedMemoryIsBoundedAndForgetsTheOldestFirst() throws {
        let memory = VerifiedSignatures(capacity: 3)
        let key = mempoolKey("bounded").publicKeyBytes
        for i in 0..<5 { memory.insert(signature: [UInt8(i)], message: [], publicKey: key) }
        #expect(memory.count == 3)
        #expect(!memory.contains(signature: [0], message: [], publicKey: key))
        #expect(!memory.contains(signature: [1], message: [], publicKey: key))
        #expect((2..<5).allSatisfy { memory.contains(signature: [UInt8($0)], message: [], publicKey: key) })
        // Inserting again what is there changes nothing.
        memory.insert(signature: [4], message: [], publicKey: key)
        #expect(memory.contains(signature: [2], message: [], publicKey: key))
        // Lengths are part of the digest: moving a byte from signature to message differs.
        #expect(VerifiedSignatures.digest(signature: [1, 2], message: [3], publicKey: key)
                != VerifiedSignatures.digest(signature: [1], message: [2, 3], publicKey: key))
    }
}
