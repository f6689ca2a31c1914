/// The storage interface the ledger and the node are written against. QuarryStore
/// implements it over RocksDB; `InMemoryStore` implements it for tests and tools.
///
/// Keys and values are byte strings; data is split into named columns (RocksDB column
/// families). Iteration is always in ascending bytewise key order, so anything derived
/// from a scan is deterministic.
public protocol KeyValueStore: AnyObject {
    /// The value under `key` in `column`, or nil.
    func get(_ key: [UInt8], column: String) throws -> [UInt8]?
    /// Applies every operation of `batch` atomically. With `sync`, returns only once the
    /// batch is durable.
    func write(_ batch: WriteBatch, sync: Bool) throws
    /// Visits the keys of `column` in ascending order, starting at `start` (inclusive) and
    /// stopping before `end` (exclusive, nil for no bound), until `body` returns false.
    func scan(column: String, from start: [UInt8], to end: [UInt8]?,
              _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool) throws
}

extension KeyValueStore {
    /// Keys beginning with `prefix`, in ascending order.
    public func scan(column: String, prefix: [UInt8],
                     _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool) throws {
        try scan(column: column, from: prefix, to: prefixSuccessor(prefix), body)
    }
}

/// The smallest key greater than every key that starts with `prefix`, or nil when none
/// exists (the prefix is empty or all 0xff).
public func prefixSuccessor(_ prefix: [UInt8]) -> [UInt8]? {
    var p = prefix
    while let last = p.last {
        if last < 0xff {
            p[p.count - 1] = last + 1
            return p
        }
        p.removeLast()
    }
    return nil
}

/// A set of writes applied all together or not at all.
public struct WriteBatch: Sendable {
    public enum Operation: Sendable, Equatable {
        case put(column: String, key: [UInt8], value: [UInt8])
        case delete(column: String, key: [UInt8])
    }

    public private(set) var operations: [Operation] = []

    public init() {}

    public mutating func put(_ key: [UInt8], _ value: [UInt8], column: String) {
        operations.append(.put(column: column, key: key, value: value))
    }

    public mutating func delete(_ key: [UInt8], column: String) {
        operations.append(.delete(column: column, key: key))
    }

    public var isEmpty: Bool { operations.isEmpty }
    public var count: Int { operations.count }
}

/// A `KeyValueStore` in memory. Not durable; for tests, simulations and tools.
public final class InMemoryStore: KeyValueStore, @unchecked Sendable {
    // Guarded by `lock`; Swift's Dictionary is not thread-safe.
    private var columns: [String: [[UInt8]: [UInt8]]] = [:]
    private let lock = Lock()

    public init() {}

    public func get(_ key: [UInt8], column: String) throws -> [UInt8]? {
        lock.withLock { columns[column]?[key] }
    }

    public func write(_ batch: WriteBatch, sync: Bool) throws {
        lock.withLock {
            for op in batch.operations {
                switch op {
                case .put(let c, let k, let v): columns[c, default: [:]][k] = v
                case .delete(let c, let k): columns[c]?[k] = nil
                }
            }
        }
    }

    public func scan(column: String, from start: [UInt8], to end: [UInt8]?,
                     _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        let entries: [([UInt8], [UInt8])] = lock.withLock {
            (columns[column] ?? [:]).filter { k, _ in
                !k.lexicographicallyPrecedes(start) && (end.map { k.lexicographicallyPrecedes($0) } ?? true)
            }.map { ($0.key, $0.value) }
        }
        for (k, v) in entries.sorted(by: { $0.0.lexicographicallyPrecedes($1.0) }) {
            if try !body(k, v) { return }
        }
    }

    /// Number of keys in `column`.
    public func count(column: String) -> Int { lock.withLock { columns[column]?.count ?? 0 } }
}
