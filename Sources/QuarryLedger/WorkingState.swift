import QuarryCore

/// The state as one block sees it while executing: the committed store, the writes of the
/// transactions already applied in this block, and the writes of the transaction being
/// applied (discarded when it fails). Nothing reaches the store until the block's write
/// batch is committed.
final class WorkingState {
    let store: KeyValueStore
    private(set) var blockWrites: [[UInt8]: [UInt8]?] = [:]
    private var transactionWrites: [[UInt8]: [UInt8]?] = [:]
    /// The totals as the current transaction sees them.
    var global: GlobalState
    private var blockGlobal: GlobalState

    init(store: KeyValueStore, global: GlobalState) {
        self.store = store
        self.global = global
        self.blockGlobal = global
    }

    /// A working state that starts from the committed writes of another one (a snapshot:
    /// the dictionary is copied on write, so the two never share changes).
    init(store: KeyValueStore, blockWrites: [[UInt8]: [UInt8]?], global: GlobalState) {
        self.store = store
        self.blockWrites = blockWrites
        self.global = global
        self.blockGlobal = global
    }

    func get(_ key: [UInt8]) throws -> [UInt8]? {
        if let v = transactionWrites[key] { return v }
        if let v = blockWrites[key] { return v }
        return try store.get(key, column: Ledger.stateColumn)
    }

    func put(_ key: [UInt8], _ value: [UInt8]) { transactionWrites[key] = .some(value) }
    func delete(_ key: [UInt8]) { transactionWrites[key] = .some(nil) }

    /// Keeps the current transaction's writes.
    func commitTransaction() {
        // Distinct keys: the merge order does not matter.
        for (k, v) in transactionWrites { blockWrites[k] = .some(v) }
        transactionWrites.removeAll(keepingCapacity: true)
        blockGlobal = global
    }

    /// Drops the current transaction's writes.
    func rollbackTransaction() {
        transactionWrites.removeAll(keepingCapacity: true)
        global = blockGlobal
    }

    // MARK: Typed access

    func read<T: CanonicalDecodable>(_ key: [UInt8], as: T.Type = T.self) throws -> T? {
        guard let raw = try get(key) else { return nil }
        do { return try T(canonicalBytes: raw) } catch {
            preconditionFailure("corrupt state record at \(Hex.encode(key)): \(error)")
        }
    }

    func write<T: CanonicalEncodable>(_ key: [UInt8], _ value: T) { put(key, value.canonicalBytes) }

    func account(_ a: Address) throws -> Account { try read(StateKey.account(a)) ?? Account() }

    func setAccount(_ a: Address, _ account: Account) {
        if account.isEmpty { delete(StateKey.account(a)) } else { write(StateKey.account(a), account) }
    }

    /// Moves grains from a pool (already debited by the caller) to an account.
    func credit(_ a: Address, grains: UInt64) throws {
        guard grains > 0 else { return }
        var acc = try account(a)
        acc.balanceGrains += grains
        global.balancesGrains += grains
        setAccount(a, acc)
    }

    func vehicle(_ id: Hash256) throws -> Vehicle? { try read(StateKey.vehicle(id)) }
}
