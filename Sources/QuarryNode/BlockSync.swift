import QuarryConsensus
import QuarryCore
import QuarryCrypto
import QuarryLedger

/// Messages of the block-sync channel (docs/spec/sync.md).
public enum SyncMessage: Equatable, Sendable, CanonicalCodable {
    /// "My newest committed block is at `height`."
    case status(height: UInt64)
    /// "Send me up to `count` blocks starting at `from`."
    case request(from: UInt64, count: UInt16)
    /// Consecutive committed blocks with their certificates, in height order.
    case blocks([CertifiedBlock])

    public static let requestCountMax: UInt16 = 64
    /// A reply stops adding blocks once it reaches this many bytes (frames carry 4 MiB).
    public static let replyBytesMax = 3 * 1024 * 1024

    public func encode(to e: inout CanonicalEncoder) {
        switch self {
        case .status(let h): e.u8(1); e.u64(h)
        case .request(let f, let c): e.u8(2); e.u64(f); e.u16(c)
        case .blocks(let list): e.u8(3); e.sequence(list) { $0.value($1) }
        }
    }

    public init(from d: inout CanonicalDecoder) throws {
        let tag = try d.u8()
        switch tag {
        case 1: self = .status(height: try d.u64())
        case 2:
            let from = try d.u64(), count = try d.u16()
            guard count >= 1, count <= SyncMessage.requestCountMax else {
                throw CanonicalError.invalidValue(field: "sync.request.count", reason: "must be 1...\(SyncMessage.requestCountMax)")
            }
            self = .request(from: from, count: count)
        case 3:
            self = .blocks(try d.sequence(limit: Int(SyncMessage.requestCountMax), field: "sync.blocks") {
                try $0.value(CertifiedBlock.self)
            })
        default: throw CanonicalError.unknownTag(type: "SyncMessage", tag: tag)
        }
    }
}

/// A committed block and the certificate that finalised it.
public struct CertifiedBlock: Equatable, Sendable, CanonicalCodable {
    public let block: Block
    public let certificate: CommitCertificate

    public init(block: Block, certificate: CommitCertificate) {
        self.block = block
        self.certificate = certificate
    }

    public func encode(to e: inout CanonicalEncoder) { e.value(block); e.value(certificate) }
    public init(from d: inout CanonicalDecoder) throws {
        block = try d.value()
        certificate = try d.value()
    }
}

public struct SyncError: QuarryError, Equatable {
    public let code: String
    public let reason: String
    init(_ code: String, _ reason: String) { self.code = code; self.reason = reason }
    public var description: String { reason }
}

extension BlockStore {
    /// The answer to a peer's request: consecutive blocks from `from`, at most `count` and
    /// about `SyncMessage.replyBytesMax` bytes (always at least one block if it exists).
    public func syncReply(from: UInt64, count: UInt16) throws -> SyncMessage {
        var list: [CertifiedBlock] = []
        var bytes = 0
        var h = max(from, 1)
        while list.count < Int(min(count, SyncMessage.requestCountMax)), h <= height {
            guard let block = try block(at: h), let cert = try certificate(at: h) else { break }
            let size = block.canonicalBytes.count
            if !list.isEmpty && bytes + size > SyncMessage.replyBytesMax { break }
            list.append(CertifiedBlock(block: block, certificate: cert))
            bytes += size
            h += 1
        }
        return .blocks(list)
    }
}

extension ChainApplication {
    /// Applies a block learned from a peer: the certificate must verify against the
    /// validator set in force at that height (more than 2/3 of its power, for exactly this
    /// block), then the block is executed and must reproduce its header's state and results
    /// roots before it is committed. Returns the result; throws and changes nothing on any
    /// mismatch.
    @discardableResult
    public func applyCertified(_ item: CertifiedBlock, verifier: any SignatureVerifier) throws -> BlockResult {
        let block = item.block, cert = item.certificate
        let h = height + 1
        guard block.height == h else { throw SyncError("sync.height", "expected block \(h), got \(block.height)") }
        guard block.header.chainID == chainID else { throw SyncError("sync.chain", "block is from chain \(block.header.chainID)") }
        guard cert.height == h, cert.blockID == block.hash else {
            throw SyncError("sync.certificate", "certificate is not for block \(h) \(block.hash)")
        }
        let validators = try validatorSet()
        guard block.header.validatorsHash == validators.hash else {
            throw SyncError("sync.validators", "block names another validator set than the one in force at \(h)")
        }
        do { _ = try cert.verify(chainID: chainID, validators: validators, verifier: verifier) } catch {
            throw SyncError("sync.certificate", "certificate does not verify: \(error)")
        }
        let previous = h == 1 ? genesisHash : try chain.block(at: h - 1)?.hash
        guard block.header.previousBlockHash == previous else {
            throw SyncError("sync.previous", "block \(h) does not extend this node's chain")
        }
        guard block.header.transactionsRoot == Block.transactionsRoot(systemTransactions: block.systemTransactions,
                                                                       transactions: block.transactions) else {
            throw SyncError("sync.transactions_root", "block body does not match its header")
        }
        let context = BlockContext(height: h, timeMilliseconds: block.header.timeMilliseconds,
                                   previousBlockHash: block.header.previousBlockHash)
        let result = try ledger.executeBlock(context, systemTransactions: block.systemTransactions,
                                             transactions: block.transactions)
        guard result.stateRoot == block.header.stateRoot, ResultLeaf.root(result.transactions) == block.header.resultsRoot else {
            throw SyncError("sync.state_root",
                            "re-executing certified block \(h) gives another state root: this node's state or the validators are faulty")
        }
        var writes = try chain.writes(block: block, certificate: cert, results: result.transactions)
        ChainIndex.add(block: block, result: result, to: &writes)
        try ledger.commit(result, alongWith: writes, sync: true)
        chain.didCommit(height: h)
        return result
    }
}
