import Foundation
import Testing
import QuarryConsensus
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryStore
@testable import QuarryNode

@Suite struct BlockStoreTests {
    func makeBlock(height: UInt64, previous: Hash256, transactions: [[UInt8]]) -> Block {
        var header = sampleHeader(height: height)
        header.previousBlockHash = previous
        header.transactionsRoot = Block.transactionsRoot(systemTransactions: [], transactions: transactions)
        return Block(header: header, lastCommit: nil, systemTransactions: [], transactions: transactions)
    }

    func certificate(for block: Block) -> CommitCertificate {
        CommitCertificate(height: block.height, round: 0, blockID: block.hash,
                          signatures: [CommitSignature(validator: 0, timestamp: 1, signature: [UInt8](repeating: 7, count: 64))])
    }

    func results(_ txs: [[UInt8]]) -> [TransactionResult] {
        txs.enumerated().map { i, tx in
            TransactionResult(hash: SM3.hash(tx), error: i % 2 == 0 ? nil : TransactionError("claim.span_overlap", "overlap"), events: [])
        }
    }

    @Test func appendQueryAndReopen() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-blockstore-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var blocks: [Block] = []
        do {
            let db = try RocksDBStore(path: dir, columns: BlockStore.columns)
            let chain = try BlockStore(store: db)
            #expect(chain.height == 0)
            var previous = SM3.hash([0])
            for h in 1...3 as ClosedRange<UInt64> {
                let txs = (0..<Int(h)).map { [UInt8(h), UInt8($0)] }
                let block = makeBlock(height: h, previous: previous, transactions: txs)
                try chain.append(block: block, certificate: certificate(for: block), results: results(txs))
                previous = block.hash
                blocks.append(block)
            }
            #expect(chain.height == 3)
            db.close()
        }
        let db = try RocksDBStore(path: dir, columns: BlockStore.columns)
        defer { db.close() }
        let chain = try BlockStore(store: db)
        #expect(chain.height == 3)
        for b in blocks {
            #expect(try chain.block(at: b.height) == b)
            #expect(try chain.certificate(at: b.height)?.blockID == b.hash)
            #expect(try chain.height(ofBlock: b.hash) == b.height)
            let leaves = try #require(try chain.results(at: b.height))
            #expect(leaves.count == b.transactions.count)
            #expect(leaves.map(\.errorCode) == results(b.transactions).map { $0.error?.code ?? "" })
            for (i, tx) in b.transactions.enumerated() {
                #expect(try chain.location(ofTransaction: SM3.hash(tx)) == TransactionLocation(height: b.height, index: UInt32(i)))
            }
        }
        #expect(try chain.block(at: 4) == nil)
        #expect(try chain.location(ofTransaction: SM3.hash([9, 9])) == nil)
    }

    @Test func refusesGapsWrongCertificatesAndResultCounts() throws {
        let chain = try BlockStore(store: InMemoryStore())
        let b1 = makeBlock(height: 1, previous: .zero, transactions: [[1]])
        let b2 = makeBlock(height: 2, previous: b1.hash, transactions: [[2]])
        #expect(throws: BlockStoreError.notNextHeight(expected: 1, got: 2)) {
            try chain.append(block: b2, certificate: certificate(for: b2), results: results([[2]]))
        }
        #expect(throws: BlockStoreError.self) {
            try chain.append(block: b1, certificate: certificate(for: b2), results: results([[1]]))
        }
        #expect(throws: BlockStoreError.self) {
            try chain.append(block: b1, certificate: certificate(for: b1), results: [])
        }
        #expect(chain.height == 0)
        #expect(try chain.block(at: 1) == nil)
        try chain.append(block: b1, certificate: certificate(for: b1), results: results([[1]]))
        #expect(chain.height == 1)
    }

    @Test func corruptRecordsAreReportedNotCrashed() throws {
        let store = InMemoryStore()
        let chain = try BlockStore(store: store)
        let b1 = makeBlock(height: 1, previous: .zero, transactions: [])
        try chain.append(block: b1, certificate: certificate(for: b1), results: [])
        var batch = WriteBatch()
        batch.put(BlockStore.heightKey(1), [1, 2, 3], column: BlockStore.blocksColumn)
        batch.put(b1.hash.bytes, [1], column: BlockStore.blockIndexColumn)
        try store.write(batch, sync: true)
        #expect(throws: BlockStoreError.self) { _ = try chain.block(at: 1) }
        #expect(throws: BlockStoreError.self) { _ = try chain.height(ofBlock: b1.hash) }
        var meta = WriteBatch()
        meta.put(BlockStore.latestKey, [1], column: BlockStore.metaColumn)
        try store.write(meta, sync: true)
        #expect(throws: BlockStoreError.self) { _ = try BlockStore(store: store) }
    }
}
