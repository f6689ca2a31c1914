import QuarryCore

/// Every failure QuarryStore reports. RocksDB's own status text is kept in `message`;
/// `code` is stable and documented in docs/spec/storage.md.
public enum StoreError: QuarryError, Equatable {
    /// The database could not be opened (missing directory, bad options, I/O failure).
    case openFailed(path: String, message: String)
    /// Another process, or another `RocksDBStore` in this process, holds the database's LOCK.
    case locked(path: String, message: String)
    /// A read or write failed in the file system (including a full disk).
    case io(message: String)
    /// RocksDB found damaged data (checksum mismatch, truncated file).
    case corruption(message: String)
    /// The column (column family) was not opened with the store.
    case unknownColumn(String)
    /// The store was closed; nothing is read or written after `close()`.
    case closed
    /// The snapshot was released (explicitly, or by closing its store).
    case snapshotReleased
    /// A name or option RocksDB or QuarryStore cannot accept.
    case invalidArgument(message: String)
    /// Any other RocksDB status (busy, aborted, timed out, ...), with its text.
    case other(message: String)

    public var code: String {
        switch self {
        case .openFailed: "store.open_failed"
        case .locked: "store.locked"
        case .io: "store.io"
        case .corruption: "store.corruption"
        case .unknownColumn: "store.unknown_column"
        case .closed: "store.closed"
        case .snapshotReleased: "store.snapshot_released"
        case .invalidArgument: "store.invalid_argument"
        case .other: "store.rocksdb"
        }
    }

    public var description: String {
        switch self {
        case .openFailed(let path, let m): "cannot open the database at \(path): \(m)"
        case .locked(let path, let m):
            "the database at \(path) is in use by another process or store (\(m))"
        case .io(let m): "storage I/O error: \(m)"
        case .corruption(let m): "the database is corrupt: \(m)"
        case .unknownColumn(let c): "unknown column '\(c)' (not opened with the store)"
        case .closed: "the store is closed"
        case .snapshotReleased: "the snapshot was released"
        case .invalidArgument(let m): "invalid argument: \(m)"
        case .other(let m): "RocksDB error: \(m)"
        }
    }

    /// Classifies a RocksDB status string (`Status::ToString()`: "IO error: ...",
    /// "Corruption: ...", "Invalid argument: ...") for an operation on an open database.
    static func classify(_ message: String) -> StoreError {
        if message.hasPrefix("Corruption") { return .corruption(message: message) }
        if message.hasPrefix("IO error") { return .io(message: message) }
        if message.hasPrefix("Invalid argument") { return .invalidArgument(message: message) }
        return .other(message: message)
    }

    /// Classifies a status string returned while opening the database at `path`.
    static func classifyOpen(_ message: String, path: String) -> StoreError {
        // PosixEnv reports "While lock file: <dir>/LOCK: Resource temporarily unavailable"
        // for another process and "lock hold by current process" for this one.
        if message.contains("/LOCK:") || message.contains("lock hold by current process") {
            return .locked(path: path, message: message)
        }
        if message.hasPrefix("Corruption") { return .corruption(message: message) }
        return .openFailed(path: path, message: message)
    }
}
