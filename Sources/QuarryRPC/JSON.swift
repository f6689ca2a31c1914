import QuarryCore

/// A JSON number kept as its exact text, so that integers beyond 2^53 (and any other
/// number) survive a round trip unchanged. The text always matches RFC 8259's `number`
/// grammar: the parser only builds valid ones, and the public initialisers take integers.
public struct JSONNumber: Hashable, Sendable, CustomStringConvertible {
    /// The number exactly as written, for example `-0`, `12.50`, `1e400`.
    public let text: String

    init(validatedText: String) { self.text = validatedText }

    public init(_ value: Int64) { self.text = String(value) }
    public init(_ value: UInt64) { self.text = String(value) }
    public init(_ value: Int) { self.text = String(value) }

    /// Parses `text` as a JSON number; nil when it does not match the RFC 8259 grammar.
    public init?(text: String) {
        var parser = JSONParser(bytes: Array(text.utf8), limits: .init())
        guard case .number(let n)? = try? parser.parseDocument() else { return nil }
        self = n
    }

    /// True for the plain integer form (`-`? digits, no fraction, no exponent).
    public var isInteger: Bool {
        !text.utf8.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") })
    }

    /// The value when it is written as an integer that fits `UInt64`; `-0` is not one.
    public var uint64Value: UInt64? {
        guard isInteger, !text.hasPrefix("-") else { return nil }
        return UInt64(text)
    }

    /// The value when it is written as an integer that fits `Int64`.
    public var int64Value: Int64? {
        guard isInteger else { return nil }
        return Int64(text)
    }

    public var description: String { text }
}

/// A JSON value. Objects keep their members in the order written (and reject duplicate
/// names when parsed), so output is deterministic and ids, numbers and strings are echoed
/// exactly as received.
public enum JSONValue: Hashable, Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            // Member order does not matter for equality; names are unique.
            guard x.count == y.count else { return false }
            for (k, v) in x {
                guard let w = y.first(where: { $0.0 == k })?.1, w == v else { return false }
            }
            return true
        default: return false
        }
    }

    public func hash(into h: inout Hasher) {
        switch self {
        case .null: h.combine(0)
        case .bool(let b): h.combine(1); h.combine(b)
        case .number(let n): h.combine(2); h.combine(n)
        case .string(let s): h.combine(3); h.combine(s)
        case .array(let a): h.combine(4); h.combine(a)
        case .object(let o):
            // Order-independent, to agree with ==.
            h.combine(5); h.combine(o.count)
            var acc = 0
            for (k, v) in o {
                var inner = Hasher(); inner.combine(k); inner.combine(v)
                acc ^= inner.finalize()
            }
            h.combine(acc)
        }
    }

    /// The member named `key` of an object; nil for other values or a missing member.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first(where: { $0.0 == key })?.1
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var numberValue: JSONNumber? { if case .number(let n) = self { return n }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: [(String, JSONValue)]? { if case .object(let o) = self { return o }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }

    /// Compact UTF-8 encoding (no insignificant whitespace).
    public var encoded: [UInt8] {
        var out = [UInt8]()
        write(to: &out)
        return out
    }

    public var description: String { String(decoding: encoded, as: UTF8.self) }

    /// Parses one JSON document (RFC 8259) from UTF-8 bytes under `limits`.
    public static func parse(_ bytes: [UInt8], limits: JSONLimits = .init()) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes: bytes, limits: limits)
        return try parser.parseDocument()
    }

    public static func parse(_ text: String, limits: JSONLimits = .init()) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8), limits: limits)
    }

    /// Appends the compact encoding of this value to `out`.
    public func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let n): out.append(contentsOf: n.text.utf8)
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                v.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            for (i, (k, v)) in o.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(k, to: &out)
                out.append(UInt8(ascii: ":"))
                v.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Writes a string literal: `"` and `\` escaped, control characters (U+0000..U+001F)
    /// as short escapes or `\u00XX`; everything else, including non-ASCII, as UTF-8.
    static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x00..<0x20:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hexDigits[Int(b >> 4)])
                out.append(hexDigits[Int(b & 0x0f)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByStringLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(JSONNumber(value)) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// Keeps the members in the order written. A repeated name is a programming error.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var seen = Set<String>()
        for (k, _) in elements { precondition(seen.insert(k).inserted, "duplicate JSON member \(k)") }
        self = .object(elements)
    }
}

extension JSONValue {
    /// Convenience constructors for the house conventions (amounts as decimal strings,
    /// bytes as lowercase hex).
    public static func integer(_ v: UInt64) -> JSONValue { .number(JSONNumber(v)) }
    public static func integer(_ v: Int64) -> JSONValue { .number(JSONNumber(v)) }
    public static func amount(_ grains: UInt64) -> JSONValue { .string(String(grains)) }
    public static func hex(_ bytes: [UInt8]) -> JSONValue { .string(Hex.encode(bytes)) }
}
