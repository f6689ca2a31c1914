/// An account address: one scheme byte followed by the first 20 bytes of
/// `SM3(scheme byte || public key)`. Derivation lives in QuarryCrypto (it needs SM3);
/// this type only carries, encodes and parses addresses.
///
/// Text form: Bech32m with the prefix `quarry`, the same on every chain, for example
/// `quarry1q...`. A mistyped address fails its checksum.
public struct Address: Hashable, Comparable, Sendable, CanonicalCodable, CustomStringConvertible {
    public static let byteCount = 21
    public static let textPrefix = "quarry"

    /// `scheme.rawValue` followed by the 20-byte key digest.
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(AddressError) {
        guard bytes.count == Address.byteCount else { throw .wrongLength(bytes.count) }
        guard SignatureScheme(rawValue: bytes[0]) != nil else { throw .unknownScheme(bytes[0]) }
        self.bytes = bytes
    }

    /// Builds an address from a scheme and the 20-byte digest of its key.
    public init(scheme: SignatureScheme, digest20: [UInt8]) {
        precondition(digest20.count == 20, "address digest must be 20 bytes")
        self.bytes = [scheme.rawValue] + digest20
    }

    /// Parses the Bech32m text form, rejecting a wrong prefix or checksum.
    public init(text: String) throws(AddressError) {
        let decoded: (hrp: String, data: [UInt8])
        do { decoded = try Bech32m.decode(text) } catch { throw .invalidText(error) }
        guard decoded.hrp == Address.textPrefix else { throw .wrongPrefix(decoded.hrp) }
        try self.init(bytes: decoded.data)
    }

    public var scheme: SignatureScheme { SignatureScheme(rawValue: bytes[0])! }
    public var text: String { Bech32m.encode(hrp: Address.textPrefix, data: bytes) }
    public var description: String { text }

    public static func < (a: Address, b: Address) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    public func encode(to e: inout CanonicalEncoder) { e.fixed(bytes) }
    public init(from d: inout CanonicalDecoder) throws {
        let raw = try d.fixed(Address.byteCount)
        do { try self.init(bytes: raw) } catch {
            throw CanonicalError.invalidValue(field: "address", reason: error.description)
        }
    }
}

public enum AddressError: QuarryError, Equatable {
    case wrongLength(Int)
    case unknownScheme(UInt8)
    case wrongPrefix(String)
    case invalidText(Bech32mError)

    public var code: String { "address.invalid" }
    public var description: String {
        switch self {
        case .wrongLength(let n): return "address must be \(Address.byteCount) bytes, got \(n)"
        case .unknownScheme(let s): return "address names unknown signature scheme \(s)"
        case .wrongPrefix(let p): return "address prefix must be '\(Address.textPrefix)', got '\(p)'"
        case .invalidText(let e): return "invalid address: \(e.description)"
        }
    }
}
