/// A 32-byte digest (SM3 output): block ids, transaction hashes, state roots.
public struct Hash256: Hashable, Comparable, Sendable, CanonicalCodable, CustomStringConvertible {
    public static let byteCount = 32
    public static let zero = Hash256(unchecked: [UInt8](repeating: 0, count: 32))

    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(CanonicalError) {
        guard bytes.count == Hash256.byteCount else {
            throw .invalidValue(field: "hash", reason: "expected 32 bytes, got \(bytes.count)")
        }
        self.bytes = bytes
    }

    /// For callers that have already produced exactly 32 bytes (a hash function).
    public init(unchecked bytes: [UInt8]) {
        precondition(bytes.count == Hash256.byteCount, "Hash256 needs 32 bytes")
        self.bytes = bytes
    }

    public init(hex: String) throws {
        try self.init(bytes: Hex.decode(hex))
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    public static func < (a: Hash256, b: Hash256) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    public func encode(to e: inout CanonicalEncoder) { e.fixed(bytes) }
    public init(from d: inout CanonicalDecoder) throws { self.init(unchecked: try d.fixed(32)) }
}

/// The signature schemes Quarry accepts. Validators and vehicles use SM2; client
/// accounts may also use secp256k1.
public enum SignatureScheme: UInt8, Sendable, CaseIterable, CanonicalCodable, CustomStringConvertible {
    case sm2 = 1
    case secp256k1 = 2

    /// Size of a public key of this scheme as carried on the ledger (65-byte uncompressed
    /// SEC1 point for SM2, 33-byte compressed SEC1 point for secp256k1).
    public var publicKeySize: Int {
        switch self {
        case .sm2: return 65
        case .secp256k1: return 33
        }
    }

    /// Every scheme's ledger signature is 64 bytes: `r || s`, big-endian.
    public var signatureSize: Int { 64 }

    public var name: String {
        switch self {
        case .sm2: return "sm2"
        case .secp256k1: return "secp256k1"
        }
    }

    public var description: String { name }

    public init?(name: String) {
        switch name.lowercased() {
        case "sm2": self = .sm2
        case "secp256k1": self = .secp256k1
        default: return nil
        }
    }

    public func encode(to e: inout CanonicalEncoder) { e.u8(rawValue) }
    public init(from d: inout CanonicalDecoder) throws {
        let tag = try d.u8()
        guard let s = SignatureScheme(rawValue: tag) else { throw CanonicalError.unknownTag(type: "SignatureScheme", tag: tag) }
        self = s
    }
}

/// A public key together with its scheme, as it appears on the ledger.
public struct PublicKeyBytes: Hashable, Sendable, CanonicalCodable {
    public let scheme: SignatureScheme
    public let bytes: [UInt8]

    public init(scheme: SignatureScheme, bytes: [UInt8]) throws(CanonicalError) {
        guard bytes.count == scheme.publicKeySize else {
            throw .invalidValue(field: "public key", reason: "\(scheme) key must be \(scheme.publicKeySize) bytes, got \(bytes.count)")
        }
        self.scheme = scheme
        self.bytes = bytes
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.value(scheme)
        e.fixed(bytes)
    }

    public init(from d: inout CanonicalDecoder) throws {
        let scheme = try d.value(SignatureScheme.self)
        try self.init(scheme: scheme, bytes: d.fixed(scheme.publicKeySize))
    }
}
