/// Quarry's canonical binary encoding (specified in `docs/spec/encoding.md`).
///
/// Every value that is hashed or signed has exactly one encoding:
/// - fixed-width unsigned integers, big-endian;
/// - booleans as one byte, `0x00` or `0x01`;
/// - lengths and counts as minimal unsigned LEB128 ("varint"), at most 2^32 - 1;
/// - byte strings and UTF-8 strings as a varint length then the bytes;
/// - fixed-size byte strings (hashes, keys, signatures) as the raw bytes;
/// - optionals as `0x00`, or `0x01` then the value;
/// - sequences as a varint count then the elements;
/// - tagged unions as a one-byte tag then the variant's fields;
/// - structures as their fields in declared order, with nothing between them.
/// Every length and count is checked against a limit that the field declares, and a
/// top-level decode fails unless it consumes the input exactly.

/// Largest length or count the encoding can carry.
public let canonicalVarintMax: UInt64 = 0xFFFF_FFFF

public enum CanonicalError: QuarryError, Equatable {
    case truncated(needed: Int, available: Int)
    case trailingBytes(Int)
    case nonMinimalVarint
    case varintTooLarge
    case lengthOverLimit(field: String, length: UInt64, limit: Int)
    case invalidBool(UInt8)
    case unknownTag(type: String, tag: UInt8)
    case invalidUTF8(field: String)
    case invalidValue(field: String, reason: String)

    public var code: String {
        switch self {
        case .truncated: return "encoding.truncated"
        case .trailingBytes: return "encoding.trailing_bytes"
        case .nonMinimalVarint: return "encoding.non_minimal_varint"
        case .varintTooLarge: return "encoding.varint_too_large"
        case .lengthOverLimit: return "encoding.length_over_limit"
        case .invalidBool: return "encoding.invalid_bool"
        case .unknownTag: return "encoding.unknown_tag"
        case .invalidUTF8: return "encoding.invalid_utf8"
        case .invalidValue: return "encoding.invalid_value"
        }
    }

    public var description: String {
        switch self {
        case .truncated(let needed, let available):
            return "input ends early: needed \(needed) more byte(s), \(available) left"
        case .trailingBytes(let n): return "\(n) unexpected byte(s) after the value"
        case .nonMinimalVarint: return "varint is not in its shortest form"
        case .varintTooLarge: return "varint exceeds 2^32 - 1"
        case .lengthOverLimit(let field, let length, let limit):
            return "\(field): length \(length) exceeds the limit of \(limit)"
        case .invalidBool(let b): return "boolean byte must be 0x00 or 0x01, got 0x\(Hex.encode([b]))"
        case .unknownTag(let type, let tag): return "\(type): unknown tag \(tag)"
        case .invalidUTF8(let field): return "\(field): not valid UTF-8"
        case .invalidValue(let field, let reason): return "\(field): \(reason)"
        }
    }
}

/// Appends canonical bytes. Encoding never fails; limits are the caller's invariant and
/// are re-checked by the decoder.
public struct CanonicalEncoder: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }

    public mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    public mutating func u32(_ v: UInt32) {
        var shift: UInt32 = 24
        while true {
            bytes.append(UInt8(truncatingIfNeeded: v >> shift))
            if shift == 0 { break }
            shift -= 8
        }
    }

    public mutating func u64(_ v: UInt64) {
        var shift: UInt64 = 56
        while true {
            bytes.append(UInt8(truncatingIfNeeded: v >> shift))
            if shift == 0 { break }
            shift -= 8
        }
    }

    /// Signed 64-bit integer as its two's-complement bit pattern, big-endian.
    public mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }

    public mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }

    /// Minimal unsigned LEB128. `v` must not exceed `canonicalVarintMax`.
    public mutating func varint(_ v: UInt64) {
        precondition(v <= canonicalVarintMax, "varint out of range")
        var rest = v
        repeat {
            var byte = UInt8(rest & 0x7f)
            rest >>= 7
            if rest != 0 { byte |= 0x80 }
            bytes.append(byte)
        } while rest != 0
    }

    public mutating func length(_ n: Int) { varint(UInt64(n)) }

    /// A variable-length byte string: varint length, then the bytes.
    public mutating func bytes<C: Collection>(_ v: C) where C.Element == UInt8 {
        length(v.count)
        bytes.append(contentsOf: v)
    }

    /// A fixed-size byte string: the bytes only (the size is part of the type).
    public mutating func fixed<C: Collection>(_ v: C) where C.Element == UInt8 {
        bytes.append(contentsOf: v)
    }

    public mutating func string(_ v: String) { bytes(Array(v.utf8)) }

    public mutating func optional<T>(_ v: T?, _ body: (inout CanonicalEncoder, T) -> Void) {
        if let v {
            bytes.append(1)
            body(&self, v)
        } else {
            bytes.append(0)
        }
    }

    public mutating func sequence<S: Collection>(_ v: S, _ body: (inout CanonicalEncoder, S.Element) -> Void) {
        length(v.count)
        for e in v { body(&self, e) }
    }

    public mutating func value<T: CanonicalEncodable>(_ v: T) { v.encode(to: &self) }
}

/// Reads canonical bytes, rejecting anything that is not the one encoding of a value.
public struct CanonicalDecoder: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.offset = 0
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset == bytes.count }

    private mutating func take(_ n: Int) throws(CanonicalError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw .truncated(needed: n, available: remaining) }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    public mutating func u8() throws(CanonicalError) -> UInt8 {
        guard remaining >= 1 else { throw .truncated(needed: 1, available: 0) }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func u16() throws(CanonicalError) -> UInt16 {
        let s = try take(2)
        return UInt16(s[s.startIndex]) << 8 | UInt16(s[s.startIndex + 1])
    }

    public mutating func u32() throws(CanonicalError) -> UInt32 {
        var v: UInt32 = 0
        for b in try take(4) { v = v << 8 | UInt32(b) }
        return v
    }

    public mutating func u64() throws(CanonicalError) -> UInt64 {
        var v: UInt64 = 0
        for b in try take(8) { v = v << 8 | UInt64(b) }
        return v
    }

    public mutating func i64() throws(CanonicalError) -> Int64 { Int64(bitPattern: try u64()) }

    public mutating func bool() throws(CanonicalError) -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        case let b: throw .invalidBool(b)
        }
    }

    /// Minimal unsigned LEB128 up to 2^32 - 1 (at most five bytes).
    public mutating func varint() throws(CanonicalError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        var count = 0
        while true {
            let byte = try u8()
            count += 1
            if count > 5 { throw .varintTooLarge }
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 {
                // A multi-byte varint whose last byte is zero has a shorter form.
                if count > 1 && byte == 0 { throw .nonMinimalVarint }
                break
            }
            shift += 7
        }
        guard value <= canonicalVarintMax else { throw .varintTooLarge }
        return value
    }

    /// A length or count, checked against `limit` and against the bytes left, so a
    /// hostile length never causes a large allocation.
    public mutating func length(limit: Int, field: String, minimumElementSize: Int = 1) throws(CanonicalError) -> Int {
        let n = try varint()
        guard n <= UInt64(limit) else { throw .lengthOverLimit(field: field, length: n, limit: limit) }
        let needed = Int(n) * max(minimumElementSize, 0)
        guard needed <= remaining else { throw .truncated(needed: needed, available: remaining) }
        return Int(n)
    }

    public mutating func bytes(limit: Int, field: String) throws(CanonicalError) -> [UInt8] {
        let n = try length(limit: limit, field: field)
        return Array(try take(n))
    }

    public mutating func fixed(_ n: Int) throws(CanonicalError) -> [UInt8] {
        Array(try take(n))
    }

    public mutating func string(limit: Int, field: String) throws(CanonicalError) -> String {
        let raw = try bytes(limit: limit, field: field)
        guard let s = String(validating: raw, as: UTF8.self) else { throw .invalidUTF8(field: field) }
        return s
    }

    public mutating func optional<T>(_ body: (inout CanonicalDecoder) throws -> T) throws -> T? {
        if try bool() { return try body(&self) }
        return nil
    }

    public mutating func sequence<T>(limit: Int, field: String, minimumElementSize: Int = 1,
                                     _ body: (inout CanonicalDecoder) throws -> T) throws -> [T] {
        let n = try length(limit: limit, field: field, minimumElementSize: minimumElementSize)
        var out = [T]()
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try body(&self)) }
        return out
    }

    public mutating func value<T: CanonicalDecodable>(_: T.Type = T.self) throws -> T {
        try T(from: &self)
    }

    /// Fails unless every byte has been consumed.
    public func finish() throws(CanonicalError) {
        guard isAtEnd else { throw .trailingBytes(remaining) }
    }
}

public protocol CanonicalEncodable {
    func encode(to encoder: inout CanonicalEncoder)
}

public protocol CanonicalDecodable {
    init(from decoder: inout CanonicalDecoder) throws
}

public typealias CanonicalCodable = CanonicalEncodable & CanonicalDecodable

extension CanonicalEncodable {
    /// The one canonical encoding of this value.
    public var canonicalBytes: [UInt8] {
        var e = CanonicalEncoder()
        encode(to: &e)
        return e.bytes
    }
}

extension CanonicalDecodable {
    /// Decodes a value that must occupy `bytes` exactly.
    public init(canonicalBytes bytes: [UInt8]) throws {
        var d = CanonicalDecoder(bytes)
        self = try Self(from: &d)
        try d.finish()
    }
}
