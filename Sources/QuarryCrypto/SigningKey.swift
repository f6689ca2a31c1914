import QuarryCore

/// A private key of either scheme, and scheme-generic signing as the ledger uses it:
/// SM2 signs the message itself (Z with the default ID); secp256k1 signs SM3(message).
public enum SigningKey: Sendable {
    case sm2(SM2PrivateKey)
    case secp256k1(Secp256k1PrivateKey)

    /// A fresh random key of `scheme`.
    public init(scheme: SignatureScheme) {
        switch scheme {
        case .sm2: self = .sm2(SM2PrivateKey())
        case .secp256k1: self = .secp256k1(Secp256k1PrivateKey())
        }
    }

    /// A key of `scheme` from its 32-byte raw private scalar.
    public init(scheme: SignatureScheme, rawRepresentation: [UInt8]) throws(CryptoError) {
        switch scheme {
        case .sm2: self = .sm2(try SM2PrivateKey(rawRepresentation: rawRepresentation))
        case .secp256k1: self = .secp256k1(try Secp256k1PrivateKey(rawRepresentation: rawRepresentation))
        }
    }

    public var scheme: SignatureScheme {
        switch self {
        case .sm2: return .sm2
        case .secp256k1: return .secp256k1
        }
    }

    /// The 32-byte private scalar.
    public var rawRepresentation: [UInt8] {
        switch self {
        case .sm2(let key): return key.rawRepresentation
        case .secp256k1(let key): return key.rawRepresentation
        }
    }

    /// The public key as carried on the ledger (65-byte SM2, 33-byte compressed secp256k1).
    public var publicKeyBytes: PublicKeyBytes {
        switch self {
        case .sm2(let key): return try! PublicKeyBytes(scheme: .sm2, bytes: key.publicKey.rawRepresentation)
        case .secp256k1(let key): return try! PublicKeyBytes(scheme: .secp256k1, bytes: key.publicKey.rawRepresentation)
        }
    }

    public var address: Address { Address(publicKey: publicKeyBytes) }

    /// A 64-byte `r || s` signature of `message`.
    public func sign(_ message: [UInt8]) throws(CryptoError) -> [UInt8] {
        switch self {
        case .sm2(let key): return try key.signature(for: message).rawRepresentation
        case .secp256k1(let key): return try key.signature(forDigest: SM3.hash(message)).rawRepresentation
        }
    }
}

/// Scheme-generic verification as the ledger uses it (see ``SigningKey/sign(_:)``).
public enum SignatureVerification {
    /// True only if `signature` (64 bytes `r || s`) is a valid signature of `message` by
    /// `publicKey`. Malformed keys or signatures, out-of-range values and high-S
    /// secp256k1 signatures are all simply invalid. Thread-safe.
    ///
    /// SM2 runs on the process-wide engine (``SM2/verificationEngine``, docs/adr/0012).
    /// Parsed keys are kept in a bounded process-wide cache (``VerificationKeyCache``),
    /// which saves the point validation, the engine's form of the key and Z for accounts
    /// that sign often; under the fast engine a kept SM2 key also keeps its precomputed
    /// table, which makes its verifications about twice as fast again. The cache never
    /// changes a result: only valid keys are stored, and a key is stored under its own
    /// exact bytes.
    public static func isValid(signature: [UInt8], message: [UInt8], publicKey: PublicKeyBytes) -> Bool {
        switch publicKey.scheme {
        case .sm2:
            guard let sig = try? SM2Signature(rawRepresentation: signature),
                  let key = VerificationKeyCache.shared.sm2(publicKey.bytes) else { return false }
            return key.isValidSignature(sig, for: message)
        case .secp256k1:
            guard publicKey.bytes.count == 33,
                  let sig = try? Secp256k1Signature(rawRepresentation: signature),
                  let key = VerificationKeyCache.shared.secp256k1(publicKey.bytes) else { return false }
            return key.isValidSignature(sig, forDigest: SM3.hash(message))
        }
    }
}

/// Parsed public keys by their ledger bytes, at most `capacity` per scheme. When a table
/// is full it is emptied (simple, bounded, no per-entry bookkeeping); invalid keys are
/// never stored. Safe to use from many threads. An SM2 key under the fast engine holds a
/// 2 KiB table from its second verification on, so the shared cache holds at most about
/// 17 MiB of SM2 tables.
public final class VerificationKeyCache: @unchecked Sendable {
    public static let shared = VerificationKeyCache(capacity: 8192)

    public let capacity: Int
    private let lock = Lock()
    private var sm2Keys: [[UInt8]: SM2PublicKey] = [:]
    private var secp256k1Keys: [[UInt8]: Secp256k1PublicKey] = [:]

    public init(capacity: Int) {
        precondition(capacity > 0, "cache capacity must be positive")
        self.capacity = capacity
    }

    /// The parsed SM2 key for `bytes`, or nil if they are not a valid SM2 public key.
    public func sm2(_ bytes: [UInt8]) -> SM2PublicKey? {
        if let hit = lock.withLock({ sm2Keys[bytes] }) { return hit }
        guard let key = try? SM2PublicKey(rawRepresentation: bytes) else { return nil }
        lock.withLock {
            if sm2Keys.count >= capacity { sm2Keys.removeAll(keepingCapacity: true) }
            sm2Keys[bytes] = key
        }
        return key
    }

    /// The parsed secp256k1 key for `bytes`, or nil if they are not a valid public key.
    public func secp256k1(_ bytes: [UInt8]) -> Secp256k1PublicKey? {
        if let hit = lock.withLock({ secp256k1Keys[bytes] }) { return hit }
        guard let key = try? Secp256k1PublicKey(rawRepresentation: bytes) else { return nil }
        lock.withLock {
            if secp256k1Keys.count >= capacity { secp256k1Keys.removeAll(keepingCapacity: true) }
            secp256k1Keys[bytes] = key
        }
        return key
    }

    /// Number of cached keys of both schemes.
    public var count: Int { lock.withLock { sm2Keys.count + secp256k1Keys.count } }
}

extension Address {
    /// The address of a public key: the scheme byte followed by the first 20 bytes of
    /// SM3(scheme byte || key bytes as on the ledger).
    public init(publicKey: PublicKeyBytes) {
        let digest = SM3.hash(parts: [[publicKey.scheme.rawValue], publicKey.bytes])
        self.init(scheme: publicKey.scheme, digest20: Array(digest.bytes.prefix(20)))
    }
}
