import QuarryCore
import QuarryCrypto

/// What the ledger needs to know about the block it executes. Nothing else (in particular no
/// clock) enters the state transition.
public struct BlockContext: Sendable, Equatable {
    public var height: UInt64
    /// Consensus time of the block, Unix milliseconds. The ledger uses whole seconds.
    public var timeMilliseconds: UInt64
    /// Hash of the previous block header (the genesis hash for height 1). Blind-box outcomes
    /// depend on it.
    public var previousBlockHash: Hash256

    public init(height: UInt64, timeMilliseconds: UInt64, previousBlockHash: Hash256) {
        self.height = height
        self.timeMilliseconds = timeMilliseconds
        self.previousBlockHash = previousBlockHash
    }

    public var time: UInt64 { timeMilliseconds / 1_000 }
}

/// Something a transaction or system transaction did, for clients and auditors.
public struct Event: Sendable, Equatable, CustomStringConvertible {
    public struct Attribute: Sendable, Equatable {
        public let key: String
        public let value: String
    }

    public let kind: String
    public let attributes: [Attribute]

    public init(_ kind: String, _ attributes: [(String, String)]) {
        self.kind = kind
        self.attributes = attributes.map { Attribute(key: $0.0, value: $0.1) }
    }

    public subscript(key: String) -> String? { attributes.first { $0.key == key }?.value }

    public var description: String { kind + "(" + attributes.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") + ")" }
}

public struct TransactionResult: Sendable, Equatable {
    /// Nil when the bytes did not even decode.
    public let hash: Hash256?
    public let error: TransactionError?
    public let events: [Event]

    public init(hash: Hash256?, error: TransactionError?, events: [Event]) {
        self.hash = hash
        self.error = error
        self.events = events
    }

    public var succeeded: Bool { error == nil }
}

/// Everything executing a block produced. Nothing is in the store until `Ledger.commit`.
public struct BlockResult: Sendable {
    public let height: UInt64
    public let stateRoot: Hash256
    public let systemTransactions: [SystemTransaction]
    public let systemEvents: [Event]
    public let transactions: [TransactionResult]
    /// The validator set that took effect in this block, if governance changed it; it
    /// governs consensus from the next height.
    public let validatorSet: ValidatorSet?
    /// State and state-tree writes; `Ledger.commit` applies them.
    public let writeBatch: WriteBatch
    public let global: GlobalState
}

public struct LedgerOpenError: QuarryError, Equatable {
    public let code: String
    public let message: String
    public var description: String { "\(code): \(message)" }
}

/// The deterministic state machine of the data-rights program over a `KeyValueStore`.
///
/// The node calls `systemTransactions(for:)` when proposing, `executeBlock` to run a block
/// (proposed or received; it only reads the store) and `commit` once the block is decided.
/// Not thread-safe: one owner calls it.
public final class Ledger {
    public static let stateColumn = "ledger.state"
    /// Every column the ledger uses (open the store with them).
    public static let columns = [stateColumn, StateTree.column]

    public let genesis: Genesis
    public let store: KeyValueStore
    public private(set) var global: GlobalState
    public private(set) var stateRoot: Hash256
    let schedule: Schedule
    let treeCache: StateTreeCache
    /// The system phase a proposer computed with `systemTransactions(for:)` for the next
    /// height, so that `executeBlock` with the same context does not compute it again. It
    /// depends only on the committed state and the context, so reusing it gives exactly what
    /// recomputing would; `commit` drops it.
    private var proposedSystem: (context: BlockContext, output: SystemOutput, writes: [[UInt8]: [UInt8]?], global: GlobalState)?

    /// Opens the ledger in `store`, writing the genesis state if the store is empty. Fails
    /// if the store holds a different chain.
    /// `treeCacheNodes` bounds the in-memory copy of state-tree nodes (about 200 bytes each;
    /// a state of N keys has about 2N nodes). With `preloadTree` the cache is filled from the
    /// store at opening (one sequential scan), so the first blocks after a restart do not
    /// read tree nodes from disk one at a time.
    public init(store: KeyValueStore, genesis: Genesis, treeCacheNodes: Int = 4_000_000, preloadTree: Bool = true) throws {
        try genesis.validate()
        self.treeCache = StateTreeCache(capacity: treeCacheNodes)
        self.genesis = genesis
        self.store = store
        self.schedule = genesis.economics.schedule
        if let stored = try store.get(StateKey.genesis, column: Ledger.stateColumn) {
            guard stored == genesis.canonicalBytes else {
                throw LedgerOpenError(code: "ledger.genesis_mismatch",
                                      message: "the store holds a different chain than genesis \(genesis.hash)")
            }
            guard let raw = try store.get(StateKey.global, column: Ledger.stateColumn) else {
                preconditionFailure("ledger store has a genesis but no global record")
            }
            global = try GlobalState(canonicalBytes: raw)
            stateRoot = try StateTree.root(in: store)
            if preloadTree { try treeCache.preload(from: store) }
        } else {
            var g = GlobalState()
            g.time = genesis.genesisTime
            g.mileagePoolGrains = genesis.economics.mileagePoolGrains
            g.cultivationPoolGrains = genesis.economics.cultivationPoolGrains
            precondition(g.supply == Grains.totalSupply, "genesis pools do not add up")
            let ws = WorkingState(store: store, global: g)
            ws.put(StateKey.genesis, genesis.canonicalBytes)
            ws.write(StateKey.validators, ValidatorSet(validators: genesis.validators))
            ws.write(StateKey.roles, genesis.roles)
            ws.write(StateKey.parameters, genesis.economics)
            ws.commitTransaction()
            let (batch, root) = try Ledger.finish(ws, cache: nil)
            try store.write(batch, sync: true)
            global = g
            stateRoot = root
        }
    }

    public var height: UInt64 { global.height }

    /// The batch whose window contains `time` (seconds).
    public func batch(at time: UInt64) -> UInt64 {
        (time - genesis.genesisTime) / genesis.economics.batchSeconds
    }

    // MARK: Blocks

    /// The system transactions a proposer must put at the start of a block with `context`.
    public func systemTransactions(for context: BlockContext) throws -> [SystemTransaction] {
        try checkContext(context)
        let ws = WorkingState(store: store, global: global)
        let output = try runSystemPhase(ws, context)
        proposedSystem = (context, output, ws.blockWrites, ws.global)
        return output.transactions
    }

    /// Executes a block: the system transactions (which must equal the recomputed ones), then
    /// each transaction in order. A failed transaction changes nothing and is reported in
    /// its result; an invalid block throws `BlockError` and changes nothing.
    public func executeBlock(_ context: BlockContext, systemTransactions: [SystemTransaction],
                             transactions: [[UInt8]], signatureChecker: SignatureChecker = SerialSignatureChecker()) throws -> BlockResult {
        try checkContext(context)
        guard transactions.count <= genesis.consensus.blockTransactionsMax else {
            throw BlockError.tooManyTransactions(count: transactions.count, limit: Int(genesis.consensus.blockTransactionsMax))
        }
        let bytes = transactions.reduce(0) { $0 + $1.count }
        guard bytes <= genesis.consensus.blockBytesMax else {
            throw BlockError.blockTooLarge(bytes: bytes, limit: Int(genesis.consensus.blockBytesMax))
        }
        let ws: WorkingState
        let system: SystemOutput
        if let memo = proposedSystem, memo.context == context, memo.global.height == global.height {
            ws = WorkingState(store: store, blockWrites: memo.writes, global: memo.global)
            system = memo.output
        } else {
            ws = WorkingState(store: store, global: global)
            system = try runSystemPhase(ws, context)
        }
        guard system.transactions == systemTransactions else {
            let first = zip(system.transactions, systemTransactions).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(system.transactions.count, systemTransactions.count)
            throw BlockError.systemTransactionsMismatch(expected: system.transactions.count, got: systemTransactions.count,
                                                        firstDifference: first)
        }
        // Decode everything, then check all signatures in one call (a node may spread that
        // over cores), then apply in order.
        let decoded: [Result<SignedTransaction, TransactionError>] = transactions.map { raw in
            Result { () throws(TransactionError) -> SignedTransaction in try SignedTransaction.decode(raw) }
        }
        var items: [SignatureCheckItem] = []
        for case .success(let tx) in decoded {
            items.append(SignatureCheckItem(signature: tx.signature, message: tx.body.signingBytes, publicKey: tx.body.signer))
        }
        let verdicts = signatureChecker.check(items)
        precondition(verdicts.count == items.count, "signature checker returned the wrong number of verdicts")
        var results: [TransactionResult] = []
        results.reserveCapacity(transactions.count)
        var verdictIndex = 0
        for (raw, item) in zip(transactions, decoded) {
            switch item {
            case .failure(let error):
                results.append(TransactionResult(hash: nil, error: error, events: []))
            case .success(let tx):
                results.append(try execute(tx, hash: SM3.hash(raw), signatureValid: verdicts[verdictIndex], ws, context))
                verdictIndex += 1
            }
        }
        ws.global.height = context.height
        ws.global.time = context.time
        ws.commitTransaction()
        checkInvariants(ws.global, context)
        let (batch, root) = try Ledger.finish(ws, cache: treeCache)
        return BlockResult(height: context.height, stateRoot: root, systemTransactions: system.transactions,
                           systemEvents: system.events, transactions: results, validatorSet: system.validatorSet,
                           writeBatch: batch, global: ws.global)
    }

    /// Makes an executed block's writes durable. `result` must come from `executeBlock` on
    /// this ledger at its current height.
    public func commit(_ result: BlockResult, sync: Bool = true) throws {
        try commit(result, alongWith: WriteBatch(), sync: sync)
    }

    /// Like `commit`, writing `extra` (for example the block store's entries for the same
    /// block) in the same atomic batch, so state and chain never disagree after a crash.
    public func commit(_ result: BlockResult, alongWith extra: WriteBatch, sync: Bool = true) throws {
        precondition(result.height == global.height + 1, "committing a block out of order")
        proposedSystem = nil
        var batch = result.writeBatch
        for op in extra.operations {
            switch op {
            case .put(let c, let k, let v): batch.put(k, v, column: c)
            case .delete(let c, let k): batch.delete(k, column: c)
            }
        }
        try store.write(batch, sync: sync)
        treeCache.apply(result.writeBatch)
        global = result.global
        stateRoot = result.stateRoot
    }

    private func checkContext(_ context: BlockContext) throws(BlockError) {
        guard context.height == global.height + 1 else { throw .wrongHeight(expected: global.height + 1, got: context.height) }
        guard context.time >= genesis.genesisTime else { throw .timeBeforeGenesis(time: context.time, genesis: genesis.genesisTime) }
        guard context.time >= global.time else { throw .timeWentBackwards(previous: global.time, got: context.time) }
    }

    /// Conservation and the schedule bound: halting beats forking.
    func checkInvariants(_ g: GlobalState, _ context: BlockContext) {
        precondition(g.supply == Grains.totalSupply,
                     "conservation violated at height \(context.height): supply is \(g.supply) grains")
        precondition(g.cultivationReservedGrains <= g.cultivationPoolGrains, "cultivation reservation exceeds the pool")
        let m = g.mileage
        let boundary = m.active.map { $0.batch + 1 } ?? m.nextBatch
        let outstanding = m.active.map { $0.poolGrains - $0.paidGrains } ?? 0
        precondition(g.mileagePaidGrains + m.carryGrains + outstanding == schedule.cumulative(before: boundary),
                     "mileage accounting does not match the schedule at height \(context.height)")
        precondition(boundary <= batch(at: context.time), "settled a batch that has not closed")
        precondition(genesis.economics.mileagePoolGrains - g.mileagePoolGrains == g.mileagePaidGrains,
                     "mileage pool and payouts disagree")
    }

    /// Writes the block's state changes and the state-tree update into one batch.
    static func finish(_ ws: WorkingState, cache: StateTreeCache?) throws -> (WriteBatch, Hash256) {
        ws.put(StateKey.global, ws.global.canonicalBytes)
        ws.commitTransaction()
        var batch = WriteBatch()
        var changes: [StateTree.Change] = []
        let writes = ws.blockWrites
        changes.reserveCapacity(writes.count)
        // Order the state writes by SM3(key): a deterministic order that is cheap to sort.
        var keyed: [(StateTree.Path, [UInt8], [UInt8]?)] = []
        keyed.reserveCapacity(writes.count)
        let hasher = SM3Hasher()
        for (key, value) in writes { keyed.append((StateTree.Path(hasher.hash(key)), key, value)) }
        keyed.sort { $0.0 < $1.0 }
        for (path, key, value) in keyed {
            if let value {
                batch.put(key, value, column: stateColumn)
                changes.append(.init(keyHash: path.bytes, valueHash: hasher.hash(value)))
            } else {
                batch.delete(key, column: stateColumn)
                changes.append(.init(keyHash: path.bytes, valueHash: nil))
            }
        }
        let root = try StateTree.update(store: ws.store, cache: cache, changes: changes, batch: &batch)
        return (batch, root)
    }

    // MARK: Transactions

    private func execute(_ tx: SignedTransaction, hash: Hash256, signatureValid: Bool, _ ws: WorkingState,
                         _ context: BlockContext) throws -> TransactionResult {
        func fail(_ e: TransactionError) -> TransactionResult { TransactionResult(hash: hash, error: e, events: []) }
        guard tx.body.chainID == genesis.chainID else { return fail(.wrongChain(tx.body.chainID, genesis.chainID)) }
        guard signatureValid else { return fail(.badSignature) }
        let sender = Address(publicKey: tx.body.signer)
        do {
            var account = try ws.account(sender)
            guard tx.body.nonce == account.nonce else { throw TransactionError.nonce(expected: account.nonce, got: tx.body.nonce) }
            account.nonce += 1
            ws.setAccount(sender, account)
            var executor = try Executor(ledger: self, ws: ws, context: context, sender: sender, signer: tx.body.signer)
            try executor.apply(tx.body.payload)
            ws.commitTransaction()
            return TransactionResult(hash: hash, error: nil, events: executor.events)
        } catch let e as TransactionError {
            ws.rollbackTransaction()
            return fail(e)
        }
    }

    // MARK: Queries (committed state)

    func readCommitted<T: CanonicalDecodable>(_ key: [UInt8]) throws -> T? {
        guard let raw = try store.get(key, column: Ledger.stateColumn) else { return nil }
        return try T(canonicalBytes: raw)
    }

    public func account(_ a: Address) throws -> Account { try readCommitted(StateKey.account(a)) ?? Account() }
    public func vehicle(_ id: Hash256) throws -> Vehicle? { try readCommitted(StateKey.vehicle(id)) }
    public func batchRecord(_ n: UInt64) throws -> BatchRecord? { try readCommitted(StateKey.batch(n)) }
    public func participant(batch n: UInt64, vehicle id: Hash256) throws -> Participant? {
        try readCommitted(StateKey.participant(batch: n, vehicle: id))
    }
    public func season(_ id: UInt64) throws -> Season? { try readCommitted(StateKey.season(id)) }
    public func draw(season: UInt64, index: UInt64) throws -> DrawRequest? { try readCommitted(StateKey.draw(season: season, index: index)) }
    public func item(merchant: Address, itemID: String) throws -> CatalogItem? {
        try readCommitted(StateKey.item(merchant: merchant, itemID: itemID))
    }
    public func redemption(_ id: UInt64) throws -> Redemption? { try readCommitted(StateKey.redemption(id)) }
    public func proposal(_ id: UInt64) throws -> Proposal? { try readCommitted(StateKey.proposal(id)) }
    /// The validator set in force.
    public func validatorSet() throws -> ValidatorSet { try readCommitted(StateKey.validators)! }
    /// The role holders in force.
    public func roles() throws -> Roles { try readCommitted(StateKey.roles)! }
    /// The economic parameters in force.
    public func parameters() throws -> EconomicParameters { try readCommitted(StateKey.parameters)! }

    /// The committed value under a state key and its proof against `stateRoot`.
    public func prove(key: [UInt8]) throws -> (value: [UInt8]?, proof: StateProof) {
        (try store.get(key, column: Ledger.stateColumn), try StateTree.proof(store: store, key: key))
    }
}

/// One signature to check: `SignatureVerification.isValid(signature:message:publicKey:)`.
public struct SignatureCheckItem: Sendable {
    public let signature: [UInt8]
    public let message: [UInt8]
    public let publicKey: PublicKeyBytes
}

/// Checks the signatures of a block's transactions for `Ledger.executeBlock`. Whatever it
/// does (for example spread the work over cores), it must return, in order, exactly what
/// `SignatureVerification.isValid` returns for each item.
public protocol SignatureChecker {
    func check(_ items: [SignatureCheckItem]) -> [Bool]
}

/// Checks signatures one after another on the calling thread.
public struct SerialSignatureChecker: SignatureChecker {
    public init() {}
    public func check(_ items: [SignatureCheckItem]) -> [Bool] {
        items.map { SignatureVerification.isValid(signature: $0.signature, message: $0.message, publicKey: $0.publicKey) }
    }
}
