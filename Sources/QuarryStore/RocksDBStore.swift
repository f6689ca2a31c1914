import CRocksDB
import QuarryCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `KeyValueStore` over RocksDB (the system librocksdb through its C API).
///
/// Columns are RocksDB column families. Opening lists the families already in the
/// database and opens all of them, "default" included, plus the requested ones (created
/// when missing), so a database written by a newer version with more columns still opens.
///
/// Thread safety: RocksDB's `DB`, column-family handles, read/write options and snapshots
/// are safe to use from many threads at once. The only Swift state is the set of handles,
/// which changes only in `close()`; a reader-writer lock makes every operation hold the
/// read side and `close()` the write side, so a handle is never freed under a running
/// call. That is why the class is `@unchecked Sendable`. Do not call `close()` (or release
/// a snapshot) from inside a scan callback of the same store: it would wait for itself.
public final class RocksDBStore: KeyValueStore, @unchecked Sendable {
    /// The column family every RocksDB database has.
    public static let defaultColumn = "default"
    /// Limits on column names: RocksDB stores them in its MANIFEST and names are C strings.
    public static let columnNameBytesMax = 255
    public static let columnCountMax = 64

    /// The database directory.
    public let path: String
    /// The options the store was opened with.
    public let options: RocksDBOptions
    /// Every open column, sorted bytewise.
    public let columns: [String]

    let lock = ReadWriteLock()
    // Guarded by `lock`: written only under its write side (in `close()`).
    private(set) var db: OpaquePointer?
    private var handles: [String: OpaquePointer]

    private let readOptions: OpaquePointer
    private let syncWriteOptions: OpaquePointer
    private let plainWriteOptions: OpaquePointer

    private let snapshotsLock = Lock()
    // Guarded by `snapshotsLock`: snapshots not yet released, released by `close()`.
    private var liveSnapshots: [ObjectIdentifier: SnapshotHandle] = [:]

    /// Opens (creating when `options.createIfMissing`) the database in directory `path`
    /// with at least the columns `columns` (plus "default" and every existing column).
    /// Throws `StoreError.locked` when another process or store holds the database,
    /// `.corruption` when its files are damaged, `.openFailed` otherwise.
    public init(path: String, columns requested: [String] = [],
                options: RocksDBOptions = RocksDBOptions()) throws {
        for name in requested {
            let bytes = name.utf8.count
            guard bytes > 0, bytes <= Self.columnNameBytesMax, !name.utf8.contains(0) else {
                throw StoreError.invalidArgument(
                    message: "column names are 1...\(Self.columnNameBytesMax) bytes without NUL: '\(name)'")
            }
        }
        guard !path.isEmpty, !path.utf8.contains(0) else {
            throw StoreError.openFailed(path: path, message: "the path is empty or contains NUL")
        }
        let cOptions = options.makeCOptions()
        defer { rocksdb_options_destroy(cOptions) }

        // Existing column families. Listing fails for a database that does not exist yet;
        // for any other failure the open below reports the cause.
        var existing: [String] = []
        var listed = 0
        var listError: UnsafeMutablePointer<CChar>? = nil
        if let list = rocksdb_list_column_families(cOptions, path, &listed, &listError) {
            for i in 0..<listed { if let name = list[i] { existing.append(String(cString: name)) } }
            rocksdb_list_column_families_destroy(list, listed)
        }
        if let listError { rocksdb_free(listError) }

        var names: [String] = [Self.defaultColumn]
        for name in existing + requested where !names.contains(name) { names.append(name) }
        guard names.count <= Self.columnCountMax else {
            throw StoreError.invalidArgument(
                message: "\(names.count) columns; at most \(Self.columnCountMax) are supported")
        }

        let cNames: [UnsafeMutablePointer<CChar>?] = names.map { strdup($0) }
        defer { for p in cNames { free(p) } }
        let cNamesConst: [UnsafePointer<CChar>?] = cNames.map { UnsafePointer($0) }
        let cfOptions: [OpaquePointer?] = Array(repeating: cOptions, count: names.count)
        var cfHandles: [OpaquePointer?] = Array(repeating: nil, count: names.count)
        let opened = try checked({ StoreError.classifyOpen($0, path: path) }) { error in
            rocksdb_open_column_families(cOptions, path, Int32(names.count), cNamesConst,
                                         cfOptions, &cfHandles, error)
        }
        guard let opened else {
            throw StoreError.openFailed(path: path, message: "RocksDB returned no database and no error")
        }
        var byName: [String: OpaquePointer] = [:]
        for (name, handle) in zip(names, cfHandles) {
            precondition(handle != nil, "RocksDB opened without a handle for column \(name)")
            byName[name] = handle
        }

        self.path = path
        self.options = options
        self.columns = names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        self.db = opened
        self.handles = byName
        self.readOptions = rocksdb_readoptions_create()!
        self.syncWriteOptions = rocksdb_writeoptions_create()!
        rocksdb_writeoptions_set_sync(syncWriteOptions, 1)
        self.plainWriteOptions = rocksdb_writeoptions_create()!
    }

    deinit {
        close()
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_writeoptions_destroy(syncWriteOptions)
        rocksdb_writeoptions_destroy(plainWriteOptions)
    }

    /// Releases every open snapshot, frees the column handles and closes the database
    /// (flushing nothing extra: every write already sits in the write-ahead log). Calling it
    /// again does nothing; any later use throws `StoreError.closed`.
    public func close() {
        lock.withWriteLock {
            guard let db else { return }
            snapshotsLock.withLock {
                for handle in liveSnapshots.values { handle.release(db: db) }
                liveSnapshots = [:]
            }
            for handle in handles.values { rocksdb_column_family_handle_destroy(handle) }
            handles = [:]
            rocksdb_close(db)
            self.db = nil
        }
    }

    /// Whether `close()` has run.
    public var isClosed: Bool { lock.withReadLock { db == nil } }

    // MARK: KeyValueStore

    public func get(_ key: [UInt8], column: String) throws -> [UInt8]? {
        try withOpenDB { db in try get(db: db, key, column: column, readOptions: readOptions) }
    }

    /// Applies `batch` atomically across columns. With `sync`, the write-ahead log is
    /// fsynced before returning, so the batch survives a process or machine crash; without,
    /// it survives a process crash but may be lost whole (never in part) on a power loss.
    /// An unknown column anywhere in the batch throws before anything is written.
    public func write(_ batch: WriteBatch, sync: Bool) throws {
        try withOpenDB { db in
            let cBatch = rocksdb_writebatch_create()!
            defer { rocksdb_writebatch_destroy(cBatch) }
            for operation in batch.operations {
                switch operation {
                case .put(let column, let key, let value):
                    let handle = try handle(column)
                    withCBytes(key) { k, kLength in
                        withCBytes(value) { v, vLength in
                            rocksdb_writebatch_put_cf(cBatch, handle, k, kLength, v, vLength)
                        }
                    }
                case .delete(let column, let key):
                    let handle = try handle(column)
                    withCBytes(key) { k, kLength in
                        rocksdb_writebatch_delete_cf(cBatch, handle, k, kLength)
                    }
                }
            }
            try checked { rocksdb_write(db, sync ? syncWriteOptions : plainWriteOptions, cBatch, $0) }
        }
    }

    public func scan(column: String, from start: [UInt8], to end: [UInt8]?,
                     _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool) throws {
        try withOpenDB { db in
            try scan(db: db, snapshot: nil, column: column, from: start, to: end, reverse: false, body)
        }
    }

    // MARK: Beyond the protocol

    /// Visits the keys of `column` in `[start, end)` in descending order, until `body`
    /// returns false.
    public func scanReverse(column: String, from start: [UInt8], to end: [UInt8]?,
                            _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool) throws {
        try withOpenDB { db in
            try scan(db: db, snapshot: nil, column: column, from: start, to: end, reverse: true, body)
        }
    }

    /// A consistent read view of every column as of now; later writes are invisible to
    /// it. Release it with `release()` (or let it go); `close()` releases it too.
    public func snapshot() throws -> RocksDBSnapshot {
        try withOpenDB { db in
            let handle = SnapshotHandle(pointer: rocksdb_create_snapshot(db)!)
            snapshotsLock.withLock { liveSnapshots[ObjectIdentifier(handle)] = handle }
            return RocksDBSnapshot(store: self, handle: handle)
        }
    }

    /// Writes every column's memtable to SST files and waits for it. Not needed for
    /// durability (the write-ahead log provides it); useful before a backup or in tests.
    public func flush() throws {
        try withOpenDB { db in
            let flushOptions = rocksdb_flushoptions_create()!
            defer { rocksdb_flushoptions_destroy(flushOptions) }
            rocksdb_flushoptions_set_wait(flushOptions, 1)
            for column in columns {
                let handle = try handle(column)
                try checked { rocksdb_flush_cf(db, flushOptions, handle, $0) }
            }
        }
    }

    // MARK: Internals shared with RocksDBSnapshot

    /// Runs `body` with the open database, holding the read side of `lock`.
    func withOpenDB<R>(_ body: (OpaquePointer) throws -> R) throws -> R {
        try lock.withReadLock {
            guard let db else { throw StoreError.closed }
            return try body(db)
        }
    }

    /// Call with the read side of `lock` held.
    func handle(_ column: String) throws -> OpaquePointer {
        guard let handle = handles[column] else { throw StoreError.unknownColumn(column) }
        return handle
    }

    func forgetSnapshot(_ handle: SnapshotHandle) {
        snapshotsLock.withLock { _ = liveSnapshots.removeValue(forKey: ObjectIdentifier(handle)) }
    }

    /// Call with the read side of `lock` held.
    func get(db: OpaquePointer, _ key: [UInt8], column: String,
             readOptions: OpaquePointer) throws -> [UInt8]? {
        let handle = try handle(column)
        // The pinned variant tells "absent" (nil) from "empty value" unambiguously and
        // avoids a malloc copy; the slice is freed with rocksdb_pinnableslice_destroy.
        let slice = try withCBytes(key) { k, kLength in
            try checked { rocksdb_get_pinned_cf(db, readOptions, handle, k, kLength, $0) }
        }
        guard let slice else { return nil }
        defer { rocksdb_pinnableslice_destroy(slice) }
        var length = 0
        let value = rocksdb_pinnableslice_value(slice, &length)
        return copyBytes(value, length)
    }

    /// Call with the read side of `lock` held. Bounds go to RocksDB as
    /// iterate_lower_bound / iterate_upper_bound, which stay valid (borrowed from `start`
    /// and `end`) for the whole iteration.
    func scan(db: OpaquePointer, snapshot: OpaquePointer?, column: String,
              from start: [UInt8], to end: [UInt8]?, reverse: Bool,
              _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        let handle = try handle(column)
        if let end, !start.lexicographicallyPrecedes(end) { return }  // empty range
        let scanOptions = rocksdb_readoptions_create()!
        defer { rocksdb_readoptions_destroy(scanOptions) }
        if let snapshot { rocksdb_readoptions_set_snapshot(scanOptions, snapshot) }
        try withCBytes(start) { s, sLength in
            try withCBytes(end ?? []) { e, eLength in
                rocksdb_readoptions_set_iterate_lower_bound(scanOptions, s, sLength)
                if end != nil { rocksdb_readoptions_set_iterate_upper_bound(scanOptions, e, eLength) }
                let iterator = rocksdb_create_iterator_cf(db, scanOptions, handle)!
                defer { rocksdb_iter_destroy(iterator) }
                if reverse { rocksdb_iter_seek_to_last(iterator) } else { rocksdb_iter_seek(iterator, s, sLength) }
                while rocksdb_iter_valid(iterator) != 0 {
                    var kLength = 0, vLength = 0
                    let k = rocksdb_iter_key(iterator, &kLength)
                    let v = rocksdb_iter_value(iterator, &vLength)
                    if try !body(copyBytes(k, kLength), copyBytes(v, vLength)) { return }
                    if reverse { rocksdb_iter_prev(iterator) } else { rocksdb_iter_next(iterator) }
                }
                try checked { rocksdb_iter_get_error(iterator, $0) }
            }
        }
    }
}

/// The C snapshot behind a `RocksDBSnapshot`, shared with the store so `close()` can
/// release it. Lock order: the store's lock, then this one.
final class SnapshotHandle: @unchecked Sendable {
    let lock = ReadWriteLock()
    // Guarded by `lock`; nil once released.
    private(set) var pointer: OpaquePointer?

    init(pointer: OpaquePointer) { self.pointer = pointer }

    /// Call with the store's lock held (either side) and `db` open.
    func release(db: OpaquePointer) {
        lock.withWriteLock {
            if let pointer { rocksdb_release_snapshot(db, pointer) }
            pointer = nil
        }
    }
}
