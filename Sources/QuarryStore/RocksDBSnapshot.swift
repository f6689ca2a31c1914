import CRocksDB
import QuarryCore

/// A consistent, read-only view of a store at one moment.
public protocol KeyValueSnapshot: AnyObject, Sendable {
    /// The value under `key` in `column` at the snapshot's moment, or nil.
    func get(_ key: [UInt8], column: String) throws -> [UInt8]?
    /// Like `KeyValueStore.scan`, at the snapshot's moment.
    func scan(column: String, from start: [UInt8], to end: [UInt8]?,
              _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool) throws
}

extension KeyValueSnapshot {
    /// Keys beginning with `prefix`, in ascending order.
    public func scan(column: String, prefix: [UInt8],
                     _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool) throws {
        try scan(column: column, from: prefix, to: prefixSuccessor(prefix), body)
    }
}

/// A RocksDB snapshot: reads see every column exactly as it was when `snapshot()`
/// returned. Holding one keeps RocksDB from discarding the older versions it needs, so
/// release it when done (`release()`, or dropping the last reference). Reads after
/// `release()` throw `StoreError.snapshotReleased`; after the store's `close()`,
/// `StoreError.closed`. Thread-safe for the same reason as `RocksDBStore`.
public final class RocksDBSnapshot: KeyValueSnapshot, @unchecked Sendable {
    private let store: RocksDBStore
    private let handle: SnapshotHandle

    init(store: RocksDBStore, handle: SnapshotHandle) {
        self.store = store
        self.handle = handle
    }

    deinit { release() }

    /// Lets RocksDB drop the versions this snapshot pinned. Idempotent.
    public func release() {
        store.lock.withReadLock {
            if let db = store.db { handle.release(db: db) }
        }
        store.forgetSnapshot(handle)
    }

    public func get(_ key: [UInt8], column: String) throws -> [UInt8]? {
        try withSnapshot { db, snapshot in
            let readOptions = rocksdb_readoptions_create()!
            defer { rocksdb_readoptions_destroy(readOptions) }
            rocksdb_readoptions_set_snapshot(readOptions, snapshot)
            return try store.get(db: db, key, column: column, readOptions: readOptions)
        }
    }

    public func scan(column: String, from start: [UInt8], to end: [UInt8]?,
                     _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool) throws {
        try withSnapshot { db, snapshot in
            try store.scan(db: db, snapshot: snapshot, column: column, from: start, to: end,
                           reverse: false, body)
        }
    }

    /// Keys of `column` in `[start, end)`, in descending order.
    public func scanReverse(column: String, from start: [UInt8], to end: [UInt8]?,
                            _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool) throws {
        try withSnapshot { db, snapshot in
            try store.scan(db: db, snapshot: snapshot, column: column, from: start, to: end,
                           reverse: true, body)
        }
    }

    private func withSnapshot<R>(_ body: (OpaquePointer, OpaquePointer) throws -> R) throws -> R {
        try store.withOpenDB { db in
            try handle.lock.withReadLock {
                guard let pointer = handle.pointer else { throw StoreError.snapshotReleased }
                return try body(db, pointer)
            }
        }
    }
}
