import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryStore

/// A `KeyValueStore` over a store snapshot: reads see the store exactly as it was when the
/// snapshot was taken; writes are refused.
public final class SnapshotReader: KeyValueStore, @unchecked Sendable {
    public struct WriteRefused: QuarryError {
        public var code: String { "node.read_only_view" }
        public var description: String { "a committed-state view is read-only" }
    }

    let snapshot: any KeyValueSnapshot

    public init(_ snapshot: any KeyValueSnapshot) { self.snapshot = snapshot }

    public func get(_ key: [UInt8], column: String) throws -> [UInt8]? { try snapshot.get(key, column: column) }
    public func write(_ batch: WriteBatch, sync: Bool) throws { throw WriteRefused() }
    public func scan(column: String, from start: [UInt8], to end: [UInt8]?,
                     _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        try snapshot.scan(column: column, from: start, to: end, body)
    }
}

/// The committed state of a node at one height, frozen: a RocksDB snapshot taken right
/// after the block's atomic write, with the block header that commits to its state root.
/// Everything read through one view belongs to the same height, whatever the node commits
/// meanwhile (docs/adr/0076-rpc-reads-from-snapshots.md).
public final class CommittedView: @unchecked Sendable {
    public let height: UInt64
    /// The header of block `height`; nil at height 0 (nothing committed yet).
    public let header: BlockHeader?
    /// The block hash at `height` (the genesis hash at height 0).
    public let blockHash: Hash256
    /// Read-only access to every column as of `height`.
    public let store: SnapshotReader
    public let chain: BlockStore
    public let global: GlobalState
    public let genesis: Genesis

    init(store: SnapshotReader, header: BlockHeader?, genesis: Genesis) throws {
        self.store = store
        self.chain = try BlockStore(store: store)
        self.header = header
        self.genesis = genesis
        guard let raw = try store.get(StateKey.global, column: Ledger.stateColumn) else {
            throw BlockStoreError.corrupt("the state has no global record")
        }
        self.global = try GlobalState(canonicalBytes: raw)
        let h = chain.height
        self.height = h
        self.blockHash = header?.hash ?? genesis.hash
        precondition(global.height == h, "state and chain disagree in a snapshot")
        precondition(header.map { $0.height == h } ?? (h == 0), "view header is not at the view's height")
    }

    /// The committed record under a state key, decoded.
    public func record<T: CanonicalDecodable>(_ key: [UInt8], as: T.Type = T.self) throws -> T? {
        guard let raw = try store.get(key, column: Ledger.stateColumn) else { return nil }
        return try T(canonicalBytes: raw)
    }

    /// The value under a state key and its proof against `header.stateRoot`.
    public func prove(_ key: [UInt8]) throws -> (value: [UInt8]?, proof: StateProof) {
        (try store.get(key, column: Ledger.stateColumn), try StateTree.proof(store: store, key: key))
    }

    /// The state root this view's state has (the header's, or the genesis state's at height 0).
    public func stateRoot() throws -> Hash256 {
        if let header { return header.stateRoot }
        return try StateTree.root(in: store)
    }

    /// The batch whose window contains the latest block time.
    public var currentBatch: UInt64 {
        (global.time - genesis.genesisTime) / genesis.economics.batchSeconds
    }
}

/// What a transaction waiting for its block learns when the block commits.
public struct CommitOutcome: Sendable {
    public let height: UInt64
    public let index: UInt32
    public let result: TransactionResult
}

/// A committed block as the publishers see it (without the execution's write batch).
public struct CommittedBlock: Sendable {
    public let block: Block
    public let results: [TransactionResult]
    public let systemEvents: [Event]
    public let view: CommittedView?
}

/// The bridge from the node's runtime (which owns the ledger and the chain and is the only
/// writer) to its readers (JSON-RPC): the latest committed view, the sync state, the
/// transactions waiting for a commit, and the stream of committed blocks for subscriptions.
///
/// The runtime calls `didCommit` once per committed block (from consensus or block sync),
/// right after the atomic write; everything else may be called from any thread. Nothing here
/// blocks the runtime for longer than a snapshot and a few dictionary operations.
public final class CommittedState: @unchecked Sendable {
    public let genesis: Genesis
    /// The node's consensus public key when it runs as a validator.
    public let consensusKey: [UInt8]?
    private let makeSnapshot: (() throws -> any KeyValueSnapshot)?
    private let lock = Lock()
    // Guarded by `lock`.
    private var latest: CommittedView?
    private var highestPeerHeight: UInt64 = 0
    private var syncing = false
    private var slots: [UInt64: (hash: Hash256, slot: Slot)] = [:]
    private var byHash: [Hash256: [UInt64]] = [:]
    private var nextWaiter: UInt64 = 0
    private var commitStream: AsyncStream<CommittedBlock>.Continuation?
    private var droppedBlocks: UInt64 = 0
    private var viewFailures: UInt64 = 0
    /// Most transactions waited for at once (`tx_submit` with `wait: "committed"`).
    public let waitersMax: Int
    /// Committed blocks buffered for a slow publisher before the oldest unread is kept and new
    /// ones are counted as dropped.
    public static let commitBufferMax = 1_024

    /// `store` is the node's store: views are snapshots of it when it is a `RocksDBStore`;
    /// any other store gives no views (RPC reads then answer "unavailable").
    public init(store: KeyValueStore, chain: BlockStore, genesis: Genesis, consensusKey: [UInt8]?, waitersMax: Int = 10_000) {
        self.genesis = genesis
        self.consensusKey = consensusKey
        self.waitersMax = waitersMax
        if let rocks = store as? RocksDBStore {
            makeSnapshot = { try rocks.snapshot() }
        } else {
            makeSnapshot = nil
        }
        // The view at start-up: the store as the node opened it.
        let h = chain.height
        latest = try? makeView(header: h == 0 ? nil : chain.block(at: h)?.header)
    }

    private func makeView(header: BlockHeader?) throws -> CommittedView? {
        guard let makeSnapshot else { return nil }
        return try CommittedView(store: SnapshotReader(makeSnapshot()), header: header, genesis: genesis)
    }

    /// The latest committed view (nil when the store cannot give snapshots).
    public var view: CommittedView? { lock.withLock { latest } }

    /// The highest height a peer announced, and whether block sync is fetching blocks.
    public var syncState: (highestPeerHeight: UInt64, syncing: Bool) { lock.withLock { (highestPeerHeight, syncing) } }

    /// Commits after which no view could be opened (readers kept the previous one).
    public var failedViews: UInt64 { lock.withLock { viewFailures } }

    /// Blocks the publisher missed because it fell more than `commitBufferMax` behind.
    public var droppedCommittedBlocks: UInt64 { lock.withLock { droppedBlocks } }

    /// Called by the runtime when peers' heights or the sync request change.
    public func setSync(highestPeerHeight: UInt64, syncing: Bool) {
        lock.withLock {
            self.highestPeerHeight = highestPeerHeight
            self.syncing = syncing
        }
    }

    /// Called by the runtime right after block `block` was written durably.
    public func didCommit(block: Block, result: BlockResult) {
        // A view that cannot be opened (a storage error) leaves readers on the previous one:
        // stale but consistent. The node itself is not affected; the failure is counted.
        let view: CommittedView?
        do { view = try makeView(header: block.header) } catch {
            view = nil
            lock.withLock { viewFailures += 1 }
        }
        var resumed: [(CheckedContinuation<CommitOutcome?, Never>, CommitOutcome)] = []
        let stream: AsyncStream<CommittedBlock>.Continuation? = lock.withLock {
            if let view { latest = view }
            if !byHash.isEmpty {
                for (i, r) in result.transactions.enumerated() {
                    let hash = r.hash ?? SM3.hash(block.transactions[i])
                    guard let tokens = byHash.removeValue(forKey: hash) else { continue }
                    let outcome = CommitOutcome(height: block.height, index: UInt32(i), result: r)
                    for token in tokens {
                        guard let entry = slots[token] else { continue }
                        switch entry.slot {
                        case .registered: slots[token] = (hash, .done(outcome))
                        case .waiting(let c):
                            slots[token] = nil
                            resumed.append((c, outcome))
                        case .done: break
                        }
                    }
                }
            }
            return commitStream
        }
        for (c, outcome) in resumed { c.resume(returning: outcome) }
        if let stream {
            let item = CommittedBlock(block: block, results: result.transactions, systemEvents: result.systemEvents, view: view)
            if case .dropped = stream.yield(item) { lock.withLock { droppedBlocks += 1 } }
        }
    }

    /// The stream of committed blocks, for one consumer (the subscription publisher). Blocks
    /// committed before the call are not in it.
    public func committedBlocks() -> AsyncStream<CommittedBlock> {
        let (stream, continuation) = AsyncStream<CommittedBlock>.makeStream(bufferingPolicy: .bufferingOldest(Self.commitBufferMax))
        lock.withLock {
            commitStream?.finish()
            commitStream = continuation
        }
        continuation.onTermination = { [weak self] _ in
            self?.lock.withLock { if self?.commitStream != nil { self?.commitStream = nil } }
        }
        return stream
    }

    public enum WaitRegistration: Sendable, Equatable {
        case registered(UInt64)
        case full
    }

    private enum Slot {
        case registered
        case waiting(CheckedContinuation<CommitOutcome?, Never>)
        case done(CommitOutcome)
    }

    /// Registers interest in `hash` before the transaction is submitted, so a commit that
    /// happens at once is not missed. End every registration with `wait` (or `cancel`).
    public func register(_ hash: Hash256) -> WaitRegistration {
        lock.withLock {
            guard slots.count < waitersMax else { return .full }
            nextWaiter += 1
            slots[nextWaiter] = (hash, .registered)
            byHash[hash, default: []].append(nextWaiter)
            return .registered(nextWaiter)
        }
    }

    /// Waits for the transaction of a registration to commit, up to `timeoutMilliseconds`;
    /// nil when the time ran out or the task was cancelled. Always ends the registration.
    public func wait(_ token: UInt64, timeoutMilliseconds: Int64) async -> CommitOutcome? {
        let outcome = await withTaskGroup(of: CommitOutcome?.self) { group in
            group.addTask { await self.waitUntilCommitted(token) }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(timeoutMilliseconds))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        cancel(token)
        return outcome
    }

    private func waitUntilCommitted(_ token: UInt64) async -> CommitOutcome? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<CommitOutcome?, Never>) in
                let ready: CommitOutcome?? = lock.withLock {
                    guard let entry = slots[token] else { return .some(nil) }  // cancelled already
                    switch entry.slot {
                    case .done(let outcome):
                        slots[token] = nil
                        return .some(outcome)
                    case .registered:
                        slots[token] = (entry.hash, .waiting(c))
                        return .none
                    case .waiting:
                        preconditionFailure("two waits for one registration")
                    }
                }
                if let ready { c.resume(returning: ready) }
            }
        } onCancel: {
            self.cancel(token)
        }
    }

    /// Ends a registration; a wait still pending on it returns nil.
    public func cancel(_ token: UInt64) {
        let c: CheckedContinuation<CommitOutcome?, Never>? = lock.withLock {
            guard let entry = slots.removeValue(forKey: token) else { return nil }
            if var tokens = byHash[entry.hash] {
                tokens.removeAll { $0 == token }
                byHash[entry.hash] = tokens.isEmpty ? nil : tokens
            }
            if case .waiting(let c) = entry.slot { return c }
            return nil
        }
        c?.resume(returning: nil)
    }

    /// Number of registrations (waiting or about to).
    public var waiting: Int { lock.withLock { slots.count } }
}
