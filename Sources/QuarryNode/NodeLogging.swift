#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import QuarryCore
import QuarryNetwork

/// Receives complete log lines (newline included), one call per line.
public typealias LogLineSink = @Sendable (String) -> Void

public enum LogSinks {
    private static let standardErrorLock = Lock()

    /// Standard error, one `write` per line under a process-wide lock, so lines from
    /// different threads never interleave.
    public static let standardError: LogLineSink = { line in
        let bytes = Array(line.utf8)
        standardErrorLock.withLock {
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}

/// A swift-log handler that writes logfmt lines (docs/spec/logs.md):
///
///     time=2026-05-01T10:00:00.123Z level=info subsystem=consensus msg=committed height=12 hash=… txs=0 state=…
///
/// Fixed fields first (`time`, `level`, `subsystem`, `msg`), then the event's fields: the
/// short fields scripts parse (`height`, `hash`, `txs`, `state`) in that order when present,
/// then every other key in ascending order (dotted keys such as `block.height`, `peer.id`).
/// Values are written bare when they hold only printable ASCII without spaces, quotes or
/// `=`; otherwise quoted with `\"`, `\\`, `\n`, `\r`, `\t` and `\u{…}` escapes. One record
/// is always one line.
public struct LogfmtLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public var metadataProvider: Logger.MetadataProvider?
    private let subsystem: String
    private let sink: LogLineSink
    private let clock: @Sendable () -> UInt64

    /// - Parameters:
    ///   - label: the logger's label; a leading `quarry.` is dropped for the `subsystem` field.
    ///   - clock: Unix milliseconds for the `time` field (the wall clock unless a test fixes it).
    public init(label: String, level: Logger.Level, sink: @escaping LogLineSink = LogSinks.standardError,
                clock: @escaping @Sendable () -> UInt64 = wallClockMilliseconds) {
        subsystem = label.hasPrefix("quarry.") ? String(label.dropFirst(7)) : label
        logLevel = level
        self.sink = sink
        self.clock = clock
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Keys written right after `msg`, in this order, when present.
    static let leadingKeys = ["height", "hash", "txs", "state"]

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { _, new in new } }
        if let own = event.metadata { fields.merge(own) { _, new in new } }
        if let error = event.error, fields["error"] == nil { fields["error"] = "\(error)" }
        sink(LogfmtLogHandler.format(timeMilliseconds: clock(), level: event.level, subsystem: subsystem,
                                     message: event.message.description, fields: fields))
    }

    /// One record as a line, newline included.
    public static func format(timeMilliseconds: UInt64, level: Logger.Level, subsystem: String, message: String,
                              fields: Logger.Metadata) -> String {
        var line = "time=\(timestamp(timeMilliseconds)) level=\(level.rawValue) subsystem=\(value(subsystem)) msg=\(value(message))"
        var rest = Set(fields.keys)
        for key in leadingKeys {
            guard let v = fields[key] else { continue }
            line += " \(key)=\(value(render(v)))"
            rest.remove(key)
        }
        for key in rest.sorted() {
            line += " \(LogfmtLogHandler.key(key))=\(value(render(fields[key]!)))"
        }
        return line + "\n"
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC.
    public static func timestamp(_ milliseconds: UInt64) -> String {
        var seconds = time_t(milliseconds / 1_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds % 1_000), 3))Z"
    }

    static func render(_ v: Logger.MetadataValue) -> String {
        switch v {
        case .string(let s): s
        case .stringConvertible(let c): c.description
        case .array(let items): items.map(render).joined(separator: ",")
        case .dictionary(let d): d.keys.sorted().map { "\($0):\(render(d[$0]!))" }.joined(separator: ",")
        }
    }

    /// A key keeps only `A-Z a-z 0-9 . _ -`; anything else becomes `_`.
    static func key(_ k: String) -> String {
        let cleaned = String(k.unicodeScalars.map { c -> Character in
            let ok = (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "." || c == "_" || c == "-"
            return ok ? Character(c) : "_"
        })
        return cleaned.isEmpty ? "_" : cleaned
    }

    /// A value, bare when safe, else quoted and escaped.
    static func value(_ s: String) -> String {
        let bare = !s.isEmpty && s.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7f && $0 != "\"" && $0 != "=" && $0 != "\\" }
        if bare { return s }
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if c.value < 0x20 || c.value == 0x7f {
                    out += "\\u{\(String(c.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out + "\""
    }
}

/// The loggers of one node, one per subsystem, all at the configured `log_level`, all
/// writing through one sink. Labels: `quarry.node` (the runtime), `quarry.consensus`,
/// `quarry.sync`, `quarry.mempool`, `quarry.p2p`, `quarry.metrics`.
public struct NodeLoggers: Sendable {
    public var node: Logger
    public var consensus: Logger
    public var sync: Logger
    public var mempool: Logger
    public var p2p: Logger
    public var metrics: Logger

    /// - Parameter context: metadata added to every line (e.g. `node.moniker`).
    public init(level: Logger.Level, sink: @escaping LogLineSink = LogSinks.standardError,
                context: Logger.Metadata = [:], clock: @escaping @Sendable () -> UInt64 = wallClockMilliseconds) {
        func make(_ name: String) -> Logger {
            var logger = Logger(label: "quarry.\(name)") { label in
                LogfmtLogHandler(label: label, level: level, sink: sink, clock: clock)
            }
            for (k, v) in context { logger[metadataKey: k] = v }
            return logger
        }
        node = make("node"); consensus = make("consensus"); sync = make("sync")
        mempool = make("mempool"); p2p = make("p2p"); metrics = make("metrics")
    }

    /// Loggers that drop everything (the default of library types).
    public static var disabled: NodeLoggers {
        var l = NodeLoggers(level: .critical, sink: { _ in })
        for path in [\NodeLoggers.node, \.consensus, \.sync, \.mempool, \.p2p, \.metrics] as [WritableKeyPath<NodeLoggers, Logger>] {
            l[keyPath: path] = Logger(label: l[keyPath: path].label) { _ in SwiftLogNoOpLogHandler() }
        }
        return l
    }

    /// A `config.toml` `log_level` (`trace` … `critical`), or nil when unknown.
    public static func level(named name: String) -> Logger.Level? { Logger.Level(rawValue: name) }

    /// The P2P transport's log callback, writing through `p2p` (its levels map onto
    /// swift-log's: trace, debug, info, warning).
    public var p2pLogHandler: P2PLogHandler {
        let logger = p2p
        return { level, message, fields in
            let mapped: Logger.Level = switch level {
            case .trace: .trace
            case .debug: .debug
            case .info: .info
            case .warning: .warning
            }
            logger.log(level: mapped, "\(message)", metadata: fields.mapValues { .string($0) })
        }
    }
}
