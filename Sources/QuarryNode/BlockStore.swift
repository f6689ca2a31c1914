import QuarryConsensus
import QuarryCore
import QuarryCrypto
import QuarryLedger

/// Where a committed transaction sits.
public struct TransactionLocation: Hashable, Sendable, CanonicalCodable {
    public let height: UInt64
    /// Index among the block's client transactions (system transactions are not indexed).
    public let index: UInt32

    public init(height: UInt64, index: UInt32) {
        self.height = height
        self.index = index
    }

    public func encode(to e: inout CanonicalEncoder) { e.u64(height); e.u32(index) }
    public init(from d: inout CanonicalDecoder) throws { height = try d.u64(); index = try d.u32() }
}

public enum BlockStoreError: QuarryError, Equatable {
    case notNextHeight(expected: UInt64, got: UInt64)
    case certificateMismatch(String)
    case corrupt(String)

    public var code: String {
        switch self {
        case .notNextHeight: return "blockstore.not_next_height"
        case .certificateMismatch: return "blockstore.certificate_mismatch"
        case .corrupt: return "blockstore.corrupt"
        }
    }

    public var description: String {
        switch self {
        case .notNextHeight(let e, let g): return "block store expects height \(e) next, got \(g)"
        case .certificateMismatch(let why): return "commit certificate does not match the block: \(why)"
        case .corrupt(let why): return "block store data is corrupt: \(why)"
        }
    }
}

/// The chain of committed blocks, their commit certificates and results, with indexes by
/// block hash and by transaction hash. Layout in `docs/spec/storage.md` ("Block store").
///
/// A block is appended with `writes(...)`, whose operations the node puts in the same
/// atomic batch as the ledger's state changes for that block, so after a crash the store
/// holds either both or neither.
public final class BlockStore: @unchecked Sendable {
    public static let blocksColumn = "chain.blocks"
    public static let certificatesColumn = "chain.certificates"
    public static let resultsColumn = "chain.results"
    public static let blockIndexColumn = "chain.block_index"
    public static let transactionIndexColumn = "chain.tx_index"
    public static let metaColumn = "chain.meta"
    /// Every column a node's chain uses, the indexes of `ChainIndex` included.
    public static let columns = [blocksColumn, certificatesColumn, resultsColumn, blockIndexColumn,
                                 transactionIndexColumn, metaColumn] + ChainIndex.columns
    static let latestKey: [UInt8] = Array("latest".utf8)

    public let store: KeyValueStore
    private let lock = Lock()
    private var latest: UInt64

    /// Opens the chain in `store` (which must have been opened with `BlockStore.columns`).
    public init(store: KeyValueStore) throws {
        self.store = store
        if let raw = try store.get(BlockStore.latestKey, column: BlockStore.metaColumn) {
            guard raw.count == 8 else { throw BlockStoreError.corrupt("latest height record has \(raw.count) bytes") }
            latest = BlockStore.decodeHeight(raw)
        } else {
            latest = 0
        }
    }

    /// Height of the newest committed block (0 before the first).
    public var height: UInt64 { lock.withLock { latest } }

    static func heightKey(_ h: UInt64) -> [UInt8] {
        var e = CanonicalEncoder(capacity: 8)
        e.u64(h)
        return e.bytes
    }

    static func decodeHeight(_ raw: [UInt8]) -> UInt64 { raw.reduce(0) { $0 << 8 | UInt64($1) } }

    /// The operations that append `block` with its `certificate` and `results`. Throws
    /// unless `block` is the next height and the certificate is for this block.
    public func writes(block: Block, certificate: CommitCertificate, results: [TransactionResult]) throws -> WriteBatch {
        let expected = height + 1
        guard block.height == expected else { throw BlockStoreError.notNextHeight(expected: expected, got: block.height) }
        guard certificate.height == block.height, certificate.blockID == block.hash else {
            throw BlockStoreError.certificateMismatch("certificate is for height \(certificate.height), block \(certificate.blockID)")
        }
        guard results.count == block.transactions.count else {
            throw BlockStoreError.certificateMismatch("\(results.count) results for \(block.transactions.count) transactions")
        }
        let key = BlockStore.heightKey(block.height)
        var batch = WriteBatch()
        batch.put(key, block.canonicalBytes, column: BlockStore.blocksColumn)
        batch.put(key, certificate.canonicalBytes, column: BlockStore.certificatesColumn)
        var e = CanonicalEncoder()
        e.sequence(results) { $0.value(ResultLeaf($1)) }
        batch.put(key, e.bytes, column: BlockStore.resultsColumn)
        batch.put(block.hash.bytes, key, column: BlockStore.blockIndexColumn)
        for (i, tx) in block.transactions.enumerated() {
            // Execution already hashed every transaction that decoded; hash only the rest.
            let hash = results[i].hash ?? SM3.hash(tx)
            batch.put(hash.bytes, TransactionLocation(height: block.height, index: UInt32(i)).canonicalBytes,
                      column: BlockStore.transactionIndexColumn)
        }
        batch.put(BlockStore.latestKey, key, column: BlockStore.metaColumn)
        return batch
    }

    /// Records that a batch from `writes` for `height` has been written durably.
    public func didCommit(height h: UInt64) {
        lock.withLock {
            precondition(h == latest + 1, "block store advanced out of order")
            latest = h
        }
    }

    /// Appends a block on its own (one synced batch). Nodes usually combine `writes` with
    /// the ledger's batch instead.
    public func append(block: Block, certificate: CommitCertificate, results: [TransactionResult]) throws {
        try store.write(writes(block: block, certificate: certificate, results: results), sync: true)
        didCommit(height: block.height)
    }

    public func block(at h: UInt64) throws -> Block? {
        guard let raw = try store.get(BlockStore.heightKey(h), column: BlockStore.blocksColumn) else { return nil }
        do { return try Block(canonicalBytes: raw) } catch { throw BlockStoreError.corrupt("block \(h): \(error)") }
    }

    public func certificate(at h: UInt64) throws -> CommitCertificate? {
        guard let raw = try store.get(BlockStore.heightKey(h), column: BlockStore.certificatesColumn) else { return nil }
        do { return try CommitCertificate(canonicalBytes: raw) } catch { throw BlockStoreError.corrupt("certificate \(h): \(error)") }
    }

    public func results(at h: UInt64) throws -> [ResultLeaf]? {
        guard let raw = try store.get(BlockStore.heightKey(h), column: BlockStore.resultsColumn) else { return nil }
        do {
            var d = CanonicalDecoder(raw)
            let leaves = try d.sequence(limit: BlockLimits.transactionsMax, field: "results") { try $0.value(ResultLeaf.self) }
            try d.finish()
            return leaves
        } catch {
            throw BlockStoreError.corrupt("results \(h): \(error)")
        }
    }

    public func height(ofBlock hash: Hash256) throws -> UInt64? {
        guard let raw = try store.get(hash.bytes, column: BlockStore.blockIndexColumn) else { return nil }
        guard raw.count == 8 else { throw BlockStoreError.corrupt("block index entry has \(raw.count) bytes") }
        return BlockStore.decodeHeight(raw)
    }

    public func location(ofTransaction hash: Hash256) throws -> TransactionLocation? {
        guard let raw = try store.get(hash.bytes, column: BlockStore.transactionIndexColumn) else { return nil }
        do { return try TransactionLocation(canonicalBytes: raw) } catch { throw BlockStoreError.corrupt("tx index: \(error)") }
    }
}
