import QuarryCore

/// Limits the parser enforces on untrusted input.
public struct JSONLimits: Sendable, Equatable {
    /// Largest document accepted, in bytes.
    public var documentBytesMax: Int
    /// Deepest nesting of arrays and objects accepted (the top-level value is depth 1).
    public var depthMax: Int

    public init(documentBytesMax: Int = 1 << 20, depthMax: Int = 64) {
        precondition(documentBytesMax > 0 && depthMax > 0)
        self.documentBytesMax = documentBytesMax
        self.depthMax = depthMax
    }
}

/// Why a document is not accepted. `offset` is the byte offset where parsing stopped.
public enum JSONParseError: QuarryError, Equatable {
    case tooLarge(bytes: Int, limit: Int)
    case tooDeep(limit: Int, offset: Int)
    case unexpectedEnd
    case unexpectedByte(UInt8, offset: Int)
    case trailingData(offset: Int)
    case invalidNumber(offset: Int)
    case invalidEscape(offset: Int)
    case invalidUTF8(offset: Int)
    case controlCharacterInString(offset: Int)
    case loneSurrogate(offset: Int)
    case duplicateKey(String, offset: Int)

    public var code: String {
        switch self {
        case .tooLarge: return "json.too_large"
        case .tooDeep: return "json.too_deep"
        case .duplicateKey: return "json.duplicate_key"
        default: return "json.invalid"
        }
    }

    public var description: String {
        switch self {
        case .tooLarge(let n, let l): return "JSON document of \(n) bytes exceeds the limit of \(l) bytes"
        case .tooDeep(let l, let o): return "JSON nesting deeper than \(l) levels at byte \(o)"
        case .unexpectedEnd: return "JSON text ends unexpectedly"
        case .unexpectedByte(let b, let o):
            let shown = (0x21...0x7e).contains(b) ? "'\(Character(Unicode.Scalar(b)))'" : "0x\(Hex.encode([b]))"
            return "unexpected \(shown) at byte \(o)"
        case .trailingData(let o): return "unexpected data after the JSON value at byte \(o)"
        case .invalidNumber(let o): return "invalid number at byte \(o)"
        case .invalidEscape(let o): return "invalid escape sequence at byte \(o)"
        case .invalidUTF8(let o): return "invalid UTF-8 at byte \(o)"
        case .controlCharacterInString(let o): return "unescaped control character in string at byte \(o)"
        case .loneSurrogate(let o): return "unpaired UTF-16 surrogate escape at byte \(o)"
        case .duplicateKey(let k, let o): return "duplicate object member \"\(k)\" at byte \(o)"
        }
    }
}

/// A strict RFC 8259 parser over UTF-8 bytes: no byte-order mark, no comments, no trailing
/// commas, no NaN/Infinity, no lone surrogates, strict UTF-8 (no overlong forms, no encoded
/// surrogates, nothing above U+10FFFF), duplicate object member names rejected, numbers kept
/// as their exact text.
struct JSONParser {
    private let bytes: [UInt8]
    private let limits: JSONLimits
    private var index = 0

    init(bytes: [UInt8], limits: JSONLimits) {
        self.bytes = bytes
        self.limits = limits
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        guard bytes.count <= limits.documentBytesMax else {
            throw .tooLarge(bytes: bytes.count, limit: limits.documentBytesMax)
        }
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        guard index == bytes.count else { throw .trailingData(offset: index) }
        return value
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private func peek() throws(JSONParseError) -> UInt8 {
        guard index < bytes.count else { throw .unexpectedEnd }
        return bytes[index]
    }

    private mutating func expectLiteral(_ word: StaticString, _ value: JSONValue) throws(JSONParseError) -> JSONValue {
        let w = word.utf8Start
        for i in 0..<word.utf8CodeUnitCount {
            guard index < bytes.count else { throw .unexpectedEnd }
            guard bytes[index] == w[i] else { throw .unexpectedByte(bytes[index], offset: index) }
            index += 1
        }
        return value
    }

    private mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        let b = try peek()
        switch b {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try expectLiteral("true", .bool(true))
        case UInt8(ascii: "f"): return try expectLiteral("false", .bool(false))
        case UInt8(ascii: "n"): return try expectLiteral("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw .unexpectedByte(b, offset: index)
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= limits.depthMax else { throw .tooDeep(limit: limits.depthMax, offset: index) }
        index += 1  // {
        var members: [(String, JSONValue)] = []
        var names = Set<String>()
        skipWhitespace()
        if try peek() == UInt8(ascii: "}") { index += 1; return .object(members) }
        while true {
            skipWhitespace()
            let keyOffset = index
            let b = try peek()
            guard b == UInt8(ascii: "\"") else { throw .unexpectedByte(b, offset: index) }
            let key = try parseString()
            guard names.insert(key).inserted else { throw .duplicateKey(key, offset: keyOffset) }
            skipWhitespace()
            let colon = try peek()
            guard colon == UInt8(ascii: ":") else { throw .unexpectedByte(colon, offset: index) }
            index += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            members.append((key, value))
            skipWhitespace()
            let next = try peek()
            index += 1
            if next == UInt8(ascii: ",") { continue }
            if next == UInt8(ascii: "}") { return .object(members) }
            throw .unexpectedByte(next, offset: index - 1)
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= limits.depthMax else { throw .tooDeep(limit: limits.depthMax, offset: index) }
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if try peek() == UInt8(ascii: "]") { index += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            let next = try peek()
            index += 1
            if next == UInt8(ascii: ",") { continue }
            if next == UInt8(ascii: "]") { return .array(elements) }
            throw .unexpectedByte(next, offset: index - 1)
        }
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    private mutating func parseNumber() throws(JSONParseError) -> JSONNumber {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw .unexpectedEnd }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if Self.isDigit(bytes[index]) {
            while index < bytes.count, Self.isDigit(bytes[index]) { index += 1 }
        } else {
            throw .invalidNumber(offset: index)
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, Self.isDigit(bytes[index]) else { throw .invalidNumber(offset: index) }
            while index < bytes.count, Self.isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, Self.isDigit(bytes[index]) else { throw .invalidNumber(offset: index) }
            while index < bytes.count, Self.isDigit(bytes[index]) { index += 1 }
        }
        // A number directly followed by a digit (as in "01") is caught as trailing data or
        // an unexpected byte by the caller.
        return JSONNumber(validatedText: String(decoding: bytes[start..<index], as: UTF8.self))
    }

    private static func hexValue(_ b: UInt8) -> UInt32? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(b - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw .unexpectedEnd }
        var v: UInt32 = 0
        for i in 0..<4 {
            guard let d = Self.hexValue(bytes[index + i]) else { throw .invalidEscape(offset: index + i) }
            v = v << 4 | d
        }
        index += 4
        return v
    }

    private static func appendScalar(_ v: UInt32, to out: inout [UInt8]) {
        switch v {
        case 0..<0x80: out.append(UInt8(v))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | (v >> 6)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | (v >> 12)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (v >> 18)))
            out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        }
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        index += 1  // opening quote
        var out = [UInt8]()
        while true {
            guard index < bytes.count else { throw .unexpectedEnd }
            let b = bytes[index]
            switch b {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: out, as: UTF8.self)  // every byte was validated on the way
            case UInt8(ascii: "\\"):
                let escapeStart = index
                index += 1
                guard index < bytes.count else { throw .unexpectedEnd }
                let e = bytes[index]
                index += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    let unit = try parseHex4()
                    if unit >= 0xD800 && unit < 0xDC00 {
                        // A high surrogate must be followed by an escaped low surrogate.
                        guard index + 2 <= bytes.count, bytes[index] == UInt8(ascii: "\\"),
                              bytes[index + 1] == UInt8(ascii: "u") else { throw .loneSurrogate(offset: escapeStart) }
                        index += 2
                        let low = try parseHex4()
                        guard low >= 0xDC00 && low < 0xE000 else { throw .loneSurrogate(offset: escapeStart) }
                        Self.appendScalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), to: &out)
                    } else if unit >= 0xDC00 && unit < 0xE000 {
                        throw .loneSurrogate(offset: escapeStart)
                    } else {
                        Self.appendScalar(unit, to: &out)
                    }
                default: throw .invalidEscape(offset: escapeStart)
                }
            case 0x00..<0x20:
                throw .controlCharacterInString(offset: index)
            case 0x20..<0x80:
                out.append(b)
                index += 1
            default:
                let n = try validateUTF8Sequence(at: index)
                out.append(contentsOf: bytes[index..<(index + n)])
                index += n
            }
        }
    }

    /// Checks one multi-byte UTF-8 sequence starting at `i` (RFC 3629, Table 3-7 of the
    /// Unicode standard) and returns its length.
    private func validateUTF8Sequence(at i: Int) throws(JSONParseError) -> Int {
        let b0 = bytes[i]
        let length: Int
        var lowerBound: UInt8 = 0x80, upperBound: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lowerBound = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; upperBound = 0x9F  // no encoded surrogates
        case 0xF0: length = 4; lowerBound = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; upperBound = 0x8F  // nothing above U+10FFFF
        default: throw .invalidUTF8(offset: i)
        }
        guard i + length <= bytes.count else { throw .invalidUTF8(offset: i) }
        let b1 = bytes[i + 1]
        guard b1 >= lowerBound && b1 <= upperBound else { throw .invalidUTF8(offset: i + 1) }
        for k in 2..<max(2, length) {
            guard bytes[i + k] & 0xC0 == 0x80 else { throw .invalidUTF8(offset: i + k) }
        }
        return length
    }
}
