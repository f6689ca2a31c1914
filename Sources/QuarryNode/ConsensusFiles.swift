#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuarryConsensus
import QuarryCore

/// File-system errors of the node's own files, with the path and the OS reason.
public struct NodeFileError: QuarryError, Equatable {
    public let code: String
    public let path: String
    public let reason: String

    public init(_ code: String, path: String, reason: String) {
        self.code = code
        self.path = path
        self.reason = reason
    }

    static func os(_ what: String, _ path: String) -> NodeFileError {
        NodeFileError("node.file_io", path: path, reason: "\(what): \(String(cString: strerror(errno)))")
    }

    public var description: String { "\(path): \(reason)" }
}

/// Small POSIX helpers: whole-file reads and an atomic, durable replace.
enum Files {
    static func read(_ path: String, limit: Int) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw NodeFileError.os("open", path)
        }
        defer { close(fd) }
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw NodeFileError.os("read", path)
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
            guard out.count <= limit else {
                throw NodeFileError("node.file_too_large", path: path, reason: "larger than \(limit) bytes")
            }
        }
        return out
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw NodeFileError.os("write", path)
            }
            offset += n
        }
    }

    /// Writes `bytes` to `path` so that after a crash the file holds either the old or the
    /// new content, whole: write a temporary file, fsync it, rename it over, fsync the
    /// directory.
    static func replaceDurably(_ path: String, with bytes: [UInt8]) throws {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw NodeFileError.os("open", temporary) }
        do {
            try writeAll(fd, bytes, path: temporary)
            guard fsync(fd) == 0 else { throw NodeFileError.os("fsync", temporary) }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw NodeFileError.os("rename", path) }
        try syncDirectory(of: path)
    }

    static func syncDirectory(of path: String) throws {
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let fd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw NodeFileError.os("open", dir) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw NodeFileError.os("fsync", dir) }
    }
}

/// The saved double-sign guard (`SignedState`), in its own small file replaced atomically.
/// Format: `"QRYSIG01"`, `u32` CRC-32C of the payload, then the canonical SignedState.
public struct SignedStateFile: Sendable {
    public static let magic: [UInt8] = Array("QRYSIG01".utf8)
    public let path: String

    public init(path: String) { self.path = path }

    /// The saved state, or an empty one when the file does not exist. A damaged file is an
    /// error, never silently replaced by an empty guard (that could allow a double-sign).
    public func load() throws -> SignedState {
        guard let bytes = try Files.read(path, limit: 64 * 1024) else { return SignedState() }
        guard bytes.count >= 12, bytes.prefix(8).elementsEqual(SignedStateFile.magic) else {
            throw NodeFileError("node.signed_state_corrupt", path: path, reason: "not a signed-state file")
        }
        let crc = bytes[8..<12].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let payload = Array(bytes[12...])
        guard CRC32C.checksum(payload) == crc, let state = try? SignedState(canonicalBytes: payload) else {
            throw NodeFileError("node.signed_state_corrupt", path: path,
                                reason: "checksum or encoding is wrong; refusing to sign until an operator checks it")
        }
        return state
    }

    /// Saves `state` durably; returns only once it would survive a crash.
    public func save(_ state: SignedState) throws {
        let payload = state.canonicalBytes
        var e = CanonicalEncoder(capacity: payload.count + 12)
        e.fixed(SignedStateFile.magic)
        e.u32(CRC32C.checksum(payload))
        e.fixed(payload)
        try Files.replaceDurably(path, with: e.bytes)
    }
}

/// The consensus write-ahead log on disk (`docs/spec/wal.md`): one height per file,
/// records appended before the core handles them, synced before any signature leaves the
/// node, a torn tail truncated on open.
public final class FileWAL {
    public let path: String
    private var fd: Int32
    private var unsynced = false

    /// What opening found: the intact inputs, and whether a torn tail was cut off.
    public private(set) var recovered: WALFormat.ScanResult

    /// Opens (or creates) the log, truncating any torn tail.
    public init(path: String) throws {
        self.path = path
        let existing = try Files.read(path, limit: 1 << 30) ?? []
        let scan: WALFormat.ScanResult
        do { scan = try WALFormat.scan(existing) } catch {
            throw NodeFileError("wal.bad_magic", path: path, reason: error.description)
        }
        recovered = scan
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw NodeFileError.os("open", path) }
        if existing.count < WALFormat.magic.count {
            // Empty, or a torn magic: start the file afresh.
            guard ftruncate(fd, 0) == 0 else { throw NodeFileError.os("ftruncate", path) }
            lseek(fd, 0, SEEK_SET)
            try Files.writeAll(fd, WALFormat.magic, path: path)
            try sync()
        } else {
            if scan.validLength < existing.count {
                guard ftruncate(fd, off_t(scan.validLength)) == 0 else { throw NodeFileError.os("ftruncate", path) }
                try sync()
            }
            lseek(fd, off_t(scan.validLength), SEEK_SET)
        }
    }

    deinit { close(fd) }

    /// Appends one input (may stay in the page cache until `sync`).
    public func append(_ input: ConsensusInput) throws {
        try Files.writeAll(fd, WALFormat.encodeRecord(input), path: path)
        unsynced = true
    }

    /// Makes every appended record durable.
    public func sync() throws {
        guard fdatasync(fd) == 0 else { throw NodeFileError.os("fdatasync", path) }
        unsynced = false
    }

    public var hasUnsyncedRecords: Bool { unsynced }

    /// Starts the log for a new height: a fresh file with the magic and `start`, synced,
    /// replacing the old one atomically.
    public func rotate(start: HeightStart) throws {
        let fresh = WALFormat.magic + WALFormat.encodeRecord(.start(start))
        close(fd)
        try Files.replaceDurably(path, with: fresh)
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw NodeFileError.os("open", path) }
        unsynced = false
        recovered = try WALFormat.scan(fresh)
    }
}
