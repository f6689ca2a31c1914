import QuarryConsensus
import QuarryCore
import QuarryCrypto
import QuarryLedger

/// Limits on what a block may hold, beyond the genesis's consensus parameters.
public enum BlockLimits {
    public static let version: UInt16 = 1
    /// Hard decoding bound on the number of transactions (the genesis sets the real limit).
    public static let transactionsMax = 100_000
    /// Hard decoding bound on system transactions (a block settles at most this many chunks).
    public static let systemTransactionsMax = 4_096
    /// Largest single transaction accepted inside a block.
    public static let transactionBytesMax = 64 * 1024
}

/// A block header. Everything a light client or an auditor needs to check a block, a
/// transaction, a result or a state proof hangs off its hash.
///
/// `stateRoot` is the state root **after** executing this block, so a header proves the
/// state at its own height. `lastCommitHash` commits to the certificate of the previous
/// block carried in the body; the block time is that certificate's voting-power weighted
/// median timestamp (docs/spec/consensus.md), which every validator checks.
public struct BlockHeader: Hashable, Sendable, CanonicalCodable {
    public var version: UInt16
    public var chainID: String
    public var height: UInt64
    public var timeMilliseconds: UInt64
    /// Hash of the block at `height - 1`; the genesis hash for height 1.
    public var previousBlockHash: Hash256
    /// SM3 of the canonical encoding of the previous block's commit certificate (zero at
    /// height 1, which has none).
    public var lastCommitHash: Hash256
    /// Merkle root over the system transactions then the transactions (see `MerkleTree`).
    public var transactionsRoot: Hash256
    /// Merkle root over the results of the transactions, in order.
    public var resultsRoot: Hash256
    /// The ledger's state root after this block.
    public var stateRoot: Hash256
    /// Hash of the validator set that must certify this block.
    public var validatorsHash: Hash256
    /// Index of the proposer in that validator set.
    public var proposer: UInt16

    public init(version: UInt16 = BlockLimits.version, chainID: String, height: UInt64, timeMilliseconds: UInt64,
                previousBlockHash: Hash256, lastCommitHash: Hash256, transactionsRoot: Hash256,
                resultsRoot: Hash256, stateRoot: Hash256, validatorsHash: Hash256, proposer: UInt16) {
        self.version = version; self.chainID = chainID; self.height = height
        self.timeMilliseconds = timeMilliseconds; self.previousBlockHash = previousBlockHash
        self.lastCommitHash = lastCommitHash; self.transactionsRoot = transactionsRoot
        self.resultsRoot = resultsRoot; self.stateRoot = stateRoot
        self.validatorsHash = validatorsHash; self.proposer = proposer
    }

    public static let hashDomain = "quarry/block/v1"

    /// The block id: `SM3(string("quarry/block/v1") || canonical header)`.
    public var hash: Hash256 {
        var e = CanonicalEncoder(capacity: 256)
        e.string(BlockHeader.hashDomain)
        e.value(self)
        return SM3.hash(e.bytes)
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.u16(version); e.string(chainID); e.u64(height); e.u64(timeMilliseconds)
        e.value(previousBlockHash); e.value(lastCommitHash); e.value(transactionsRoot)
        e.value(resultsRoot); e.value(stateRoot); e.value(validatorsHash); e.u16(proposer)
    }

    public init(from d: inout CanonicalDecoder) throws {
        version = try d.u16()
        guard version == BlockLimits.version else {
            throw CanonicalError.invalidValue(field: "header.version", reason: "unsupported block version \(version)")
        }
        chainID = try d.string(limit: ConsensusLimits.chainIDBytesMax, field: "header.chain_id")
        height = try d.u64(); timeMilliseconds = try d.u64()
        previousBlockHash = try d.value(); lastCommitHash = try d.value(); transactionsRoot = try d.value()
        resultsRoot = try d.value(); stateRoot = try d.value(); validatorsHash = try d.value()
        proposer = try d.u16()
    }
}

/// A block: header, the previous block's commit certificate, the system transactions the
/// protocol requires, and the client transactions (raw canonical bytes, as signed).
public struct Block: Equatable, Sendable, CanonicalCodable {
    public var header: BlockHeader
    public var lastCommit: CommitCertificate?
    public var systemTransactions: [SystemTransaction]
    public var transactions: [[UInt8]]

    public init(header: BlockHeader, lastCommit: CommitCertificate?, systemTransactions: [SystemTransaction],
                transactions: [[UInt8]]) {
        self.header = header; self.lastCommit = lastCommit
        self.systemTransactions = systemTransactions; self.transactions = transactions
    }

    public var hash: Hash256 { header.hash }
    public var height: UInt64 { header.height }

    public func encode(to e: inout CanonicalEncoder) {
        e.value(header)
        e.optional(lastCommit) { $0.value($1) }
        e.sequence(systemTransactions) { $0.value($1) }
        e.sequence(transactions) { $0.bytes($1) }
    }

    public init(from d: inout CanonicalDecoder) throws {
        header = try d.value()
        lastCommit = try d.optional { try $0.value(CommitCertificate.self) }
        systemTransactions = try d.sequence(limit: BlockLimits.systemTransactionsMax, field: "block.system_transactions") {
            try $0.value(SystemTransaction.self)
        }
        transactions = try d.sequence(limit: BlockLimits.transactionsMax, field: "block.transactions") {
            try $0.bytes(limit: BlockLimits.transactionBytesMax, field: "block.transaction")
        }
    }

    /// Leaves of the transactions tree: SM3 of each system transaction's canonical bytes,
    /// then SM3 of each transaction's bytes (its transaction hash).
    public var transactionLeaves: [Hash256] {
        systemTransactions.map { SM3.hash($0.canonicalBytes) } + transactions.map { SM3.hash($0) }
    }

    public static func transactionsRoot(systemTransactions: [SystemTransaction], transactions: [[UInt8]]) -> Hash256 {
        MerkleTree.root(leaves: systemTransactions.map { SM3.hash($0.canonicalBytes) } + transactions.map { SM3.hash($0) })
    }
}

/// What the results tree commits to for each transaction: its hash (zero when the bytes
/// did not decode), and the error code (empty on success).
public struct ResultLeaf: Hashable, Sendable, CanonicalCodable {
    public let transactionHash: Hash256
    public let errorCode: String

    public init(transactionHash: Hash256, errorCode: String) {
        self.transactionHash = transactionHash
        self.errorCode = errorCode
    }

    public init(_ r: TransactionResult) {
        self.init(transactionHash: r.hash ?? .zero, errorCode: r.error?.code ?? "")
    }

    public func encode(to e: inout CanonicalEncoder) { e.value(transactionHash); e.string(errorCode) }
    public init(from d: inout CanonicalDecoder) throws {
        transactionHash = try d.value()
        errorCode = try d.string(limit: 128, field: "result.error_code")
    }

    public static func root(_ results: [TransactionResult]) -> Hash256 {
        MerkleTree.root(leaves: results.map { SM3.hash(ResultLeaf($0).canonicalBytes) })
    }
}

/// The binary Merkle tree used for transactions and results (RFC 6962 shape with SM3):
/// a leaf hashes as `SM3(0x00 || leaf)`, an inner node as `SM3(0x01 || left || right)`;
/// a level with an odd count promotes its last node unchanged; the empty tree's root is
/// `SM3("")`.
public enum MerkleTree {
    public static func root(leaves: [Hash256]) -> Hash256 {
        guard !leaves.isEmpty else { return SM3.hash([UInt8]()) }
        var level = leaves.map { SM3.hash([0x00] + $0.bytes) }
        while level.count > 1 {
            var next: [Hash256] = []
            next.reserveCapacity((level.count + 1) / 2)
            var i = 0
            while i + 1 < level.count {
                next.append(SM3.hash([0x01] + level[i].bytes + level[i + 1].bytes))
                i += 2
            }
            if i < level.count { next.append(level[i]) }
            level = next
        }
        return level[0]
    }

    /// The sibling path proving leaf `index`: pairs of (sibling hash, sibling is on the left).
    public static func proof(leaves: [Hash256], index: Int) -> [(Hash256, Bool)] {
        precondition(index >= 0 && index < leaves.count, "leaf index out of range")
        var level = leaves.map { SM3.hash([0x00] + $0.bytes) }
        var i = index
        var path: [(Hash256, Bool)] = []
        while level.count > 1 {
            let sibling = i ^ 1
            if sibling < level.count { path.append((level[sibling], sibling < i)) }
            var next: [Hash256] = []
            var j = 0
            while j + 1 < level.count {
                next.append(SM3.hash([0x01] + level[j].bytes + level[j + 1].bytes))
                j += 2
            }
            if j < level.count { next.append(level[j]) }
            level = next
            i /= 2
        }
        return path
    }

    public static func verify(leaf: Hash256, proof: [(Hash256, Bool)], root: Hash256) -> Bool {
        var h = SM3.hash([0x00] + leaf.bytes)
        for (sibling, left) in proof {
            h = left ? SM3.hash([0x01] + sibling.bytes + h.bytes) : SM3.hash([0x01] + h.bytes + sibling.bytes)
        }
        return h == root
    }
}

extension QuarryConsensus.ValidatorSet {
    /// `SM3(string("quarry/validators/v1") || canonical validator list)`; priorities excluded.
    public var hash: Hash256 {
        var e = CanonicalEncoder()
        e.string("quarry/validators/v1")
        e.sequence(validators) { $0.value($1) }
        return SM3.hash(e.bytes)
    }
}
