import QuarryConsensus
import QuarryCore
import QuarryCrypto
import QuarryLedger

/// Why a proposed block is refused. Reported in logs; the core only learns "invalid".
public struct BlockValidationError: QuarryError, Equatable {
    public let code: String
    public let reason: String
    init(_ code: String, _ reason: String) { self.code = code; self.reason = reason }
    public var description: String { reason }
}

/// The application side of consensus: builds the block a proposer offers, validates a
/// proposed block by re-executing it, and commits a decided block together with its
/// certificate. Owned by one driver; not thread-safe.
///
/// Block rules (docs/spec/blocks.md): height 1 carries no last commit and the genesis time;
/// height h > 1 carries the certificate of h - 1, whose weighted-median precommit time is
/// the block time; every root in the header must equal what re-execution produces.
public final class ChainApplication {
    public let ledger: Ledger
    public let chain: BlockStore
    public let chainID: String
    public let genesisHash: Hash256
    private let signatureChecker: SignatureChecker
    /// Executions of blocks this node built or validated at the current height, by block id,
    /// so a decided block is not executed twice. Cleared at every commit; bounded.
    private var executed: [Hash256: (Block, BlockResult)] = [:]
    private let executedMax = 64

    public init(ledger: Ledger, chain: BlockStore, signatureChecker: SignatureChecker = SerialSignatureChecker()) throws {
        guard chain.height == ledger.height else {
            throw BlockValidationError("node.store_mismatch",
                                       "the block store is at height \(chain.height) but the state is at \(ledger.height)")
        }
        self.ledger = ledger
        self.chain = chain
        self.chainID = ledger.genesis.chainID
        self.genesisHash = ledger.genesis.hash
        self.signatureChecker = signatureChecker
    }

    public var height: UInt64 { chain.height }

    /// The consensus validator set in force at the next height.
    public func validatorSet() throws -> QuarryConsensus.ValidatorSet {
        let set = try ledger.validatorSet()
        return try QuarryConsensus.ValidatorSet(validators: set.validators.map {
            Validator(publicKey: $0.publicKey.bytes, power: $0.power)
        })
    }

    /// What `HeightStart` needs for the next height.
    public func nextHeightStart() throws -> HeightStart {
        let h = height + 1
        let previousTime: UInt64
        if h == 1 {
            previousTime = ledger.genesis.genesisTime * 1_000
        } else {
            guard let previous = try chain.block(at: h - 1) else {
                throw BlockStoreError.corrupt("block \(h - 1) is missing")
            }
            previousTime = previous.header.timeMilliseconds
        }
        return HeightStart(height: h, validators: try validatorSet(), previousBlockTime: previousTime)
    }

    private func previousBlockInfo(for h: UInt64) throws -> (hash: Hash256, certificate: CommitCertificate?) {
        if h == 1 { return (genesisHash, nil) }
        guard let previous = try chain.block(at: h - 1), let cert = try chain.certificate(at: h - 1) else {
            throw BlockStoreError.corrupt("block or certificate \(h - 1) is missing")
        }
        return (previous.hash, cert)
    }

    /// The block time at `h`: the genesis time for the first block, else the weighted median
    /// of `lastCommit`'s precommit timestamps over the validators of `h - 1`.
    private func blockTime(height h: UInt64, lastCommit: CommitCertificate?, validators: QuarryConsensus.ValidatorSet) -> UInt64 {
        guard let lastCommit else { return ledger.genesis.genesisTime * 1_000 }
        return lastCommit.medianTime(validators: validators)
    }

    /// Builds this node's proposal for the next height from `transactions` (already
    /// filtered by the mempool; any that fail still go in with their error result).
    public func buildProposal(proposer: UInt16, transactions: [[UInt8]],
                              validators: QuarryConsensus.ValidatorSet) throws -> ProposalValue {
        let h = height + 1
        let (previousHash, lastCommit) = try previousBlockInfo(for: h)
        let time = blockTime(height: h, lastCommit: lastCommit, validators: validators)
        let context = BlockContext(height: h, timeMilliseconds: time, previousBlockHash: previousHash)
        let system = try ledger.systemTransactions(for: context)
        let result = try ledger.executeBlock(context, systemTransactions: system, transactions: transactions,
                                             signatureChecker: signatureChecker)
        let header = BlockHeader(
            chainID: chainID, height: h, timeMilliseconds: time, previousBlockHash: previousHash,
            lastCommitHash: lastCommit.map { SM3.hash($0.canonicalBytes) } ?? .zero,
            transactionsRoot: Block.transactionsRoot(systemTransactions: system, transactions: transactions),
            resultsRoot: ResultLeaf.root(result.transactions), stateRoot: result.stateRoot,
            validatorsHash: validators.hash, proposer: proposer)
        let block = Block(header: header, lastCommit: lastCommit, systemTransactions: system, transactions: transactions)
        remember(block, result)
        return ProposalValue(id: block.hash, time: time, bytes: block.canonicalBytes)
    }

    /// Checks a proposed value completely: decoding, every header field, the last commit,
    /// and re-execution. Throws the first problem found; changes no committed state.
    public func validate(_ value: ProposalValue, validators: QuarryConsensus.ValidatorSet,
                         previousValidators: QuarryConsensus.ValidatorSet?, verifier: any SignatureVerifier) throws {
        let h = height + 1
        let block: Block
        do { block = try Block(canonicalBytes: value.bytes) } catch {
            throw BlockValidationError("block.decode", "proposed block does not decode: \(error)")
        }
        let header = block.header
        guard block.hash == value.id else { throw BlockValidationError("block.id", "value id is not the block hash") }
        guard header.chainID == chainID else { throw BlockValidationError("block.chain", "wrong chain id \(header.chainID)") }
        guard header.height == h else { throw BlockValidationError("block.height", "expected height \(h), got \(header.height)") }
        let previousHash = try previousBlockInfo(for: h).hash
        guard header.previousBlockHash == previousHash else {
            throw BlockValidationError("block.previous", "previous block hash does not match")
        }
        if h == 1 {
            guard block.lastCommit == nil, header.lastCommitHash == .zero else {
                throw BlockValidationError("block.last_commit", "the first block carries no last commit")
            }
        } else {
            guard let lastCommit = block.lastCommit, let previousValidators else {
                throw BlockValidationError("block.last_commit", "missing the previous block's commit certificate")
            }
            guard lastCommit.height == h - 1, lastCommit.blockID == previousHash else {
                throw BlockValidationError("block.last_commit", "last commit is not for block \(h - 1)")
            }
            guard header.lastCommitHash == SM3.hash(lastCommit.canonicalBytes) else {
                throw BlockValidationError("block.last_commit", "last commit hash does not match")
            }
            // Any valid certificate for the previous block will do (it may hold other
            // precommits than the one this node stored), but it must verify.
            do { _ = try lastCommit.verify(chainID: chainID, validators: previousValidators, verifier: verifier) } catch {
                throw BlockValidationError("block.last_commit", "last commit does not verify: \(error)")
            }
        }
        let time = blockTime(height: h, lastCommit: block.lastCommit, validators: previousValidators ?? validators)
        guard header.timeMilliseconds == time, value.time == time else {
            throw BlockValidationError("block.time", "block time \(header.timeMilliseconds) is not the rule's \(time)")
        }
        guard header.validatorsHash == validators.hash else {
            throw BlockValidationError("block.validators", "validators hash does not match the set in force")
        }
        guard Int(header.proposer) < validators.count else {
            throw BlockValidationError("block.proposer", "proposer index \(header.proposer) out of range")
        }
        guard header.transactionsRoot == Block.transactionsRoot(systemTransactions: block.systemTransactions,
                                                                 transactions: block.transactions) else {
            throw BlockValidationError("block.transactions_root", "transactions root does not match the body")
        }
        let context = BlockContext(height: h, timeMilliseconds: time, previousBlockHash: previousHash)
        let result: BlockResult
        do {
            result = try ledger.executeBlock(context, systemTransactions: block.systemTransactions,
                                             transactions: block.transactions, signatureChecker: signatureChecker)
        } catch {
            throw BlockValidationError("block.execution", "block does not execute: \(error)")
        }
        guard result.stateRoot == header.stateRoot else {
            throw BlockValidationError("block.state_root", "state root after execution does not match the header")
        }
        guard ResultLeaf.root(result.transactions) == header.resultsRoot else {
            throw BlockValidationError("block.results_root", "results root does not match re-execution")
        }
        remember(block, result)
    }

    private func remember(_ block: Block, _ result: BlockResult) {
        if executed.count >= executedMax { executed.removeAll() }
        executed[block.hash] = (block, result)
    }

    /// Commits a decided block and its certificate in one atomic, synced write. A decided
    /// block that fails to execute means more than a third of the voting power is faulty:
    /// the node halts rather than fork.
    @discardableResult
    public func commit(_ decision: Decision) throws -> (Block, BlockResult) {
        let entry: (Block, BlockResult)
        if let cached = executed[decision.value.id] {
            entry = cached
        } else {
            let block = try Block(canonicalBytes: decision.value.bytes)
            let context = BlockContext(height: block.height, timeMilliseconds: block.header.timeMilliseconds,
                                       previousBlockHash: block.header.previousBlockHash)
            let result = try ledger.executeBlock(context, systemTransactions: block.systemTransactions,
                                                 transactions: block.transactions, signatureChecker: signatureChecker)
            precondition(result.stateRoot == block.header.stateRoot,
                         "a decided block's state root differs from re-execution at height \(block.height): halting")
            entry = (block, result)
        }
        let (block, result) = entry
        var chainWrites = try chain.writes(block: block, certificate: decision.certificate, results: result.transactions)
        ChainIndex.add(block: block, result: result, to: &chainWrites)
        try ledger.commit(result, alongWith: chainWrites, sync: true)
        chain.didCommit(height: block.height)
        executed.removeAll()
        return entry
    }
}
