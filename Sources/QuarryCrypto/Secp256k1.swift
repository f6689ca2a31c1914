import COpenSSL
import CSecp256k1
import QuarryCore

/// secp256k1 ECDSA over a 32-byte digest, computed by libsecp256k1. Signatures are
/// 64-byte compact `r || s` with low S (s <= n/2); verification rejects high S rather
/// than normalising it. See docs/spec/crypto.md.
enum Secp256k1 {
    static let n = Scalar.constant("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141")
    static let halfN = Scalar.constant("7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0")

    /// One context for the whole process, randomised once at creation (blinding for
    /// signing). libsecp256k1 functions taking a `const` context are thread-safe; the
    /// context is never modified after creation.
    final class Context: @unchecked Sendable {
        let pointer: OpaquePointer
        init() {
            guard let ctx = secp256k1_context_create(QUARRY_SECP256K1_CONTEXT_NONE) else {
                preconditionFailure("secp256k1_context_create failed")
            }
            let seed = OpenSSL.randomBytes(32)
            let ok = seed.withUnsafeBufferPointer { secp256k1_context_randomize(ctx, $0.baseAddress!) }
            precondition(ok == 1, "secp256k1_context_randomize failed")
            pointer = ctx
        }
        deinit { secp256k1_context_destroy(pointer) }
    }

    static let context = Context()

    static func parsePublicKey(_ raw: [UInt8]) -> secp256k1_pubkey? {
        var key = secp256k1_pubkey()
        let ok = raw.withUnsafeBufferPointer { secp256k1_ec_pubkey_parse(context.pointer, &key, $0.baseAddress!, $0.count) }
        return ok == 1 ? key : nil
    }

    static func serialize(_ key: secp256k1_pubkey, compressed: Bool) -> [UInt8] {
        var key = key
        var out = [UInt8](repeating: 0, count: compressed ? 33 : 65)
        var length = out.count
        let flags = compressed ? QUARRY_SECP256K1_EC_COMPRESSED : QUARRY_SECP256K1_EC_UNCOMPRESSED
        let ok = out.withUnsafeMutableBufferPointer {
            secp256k1_ec_pubkey_serialize(context.pointer, $0.baseAddress!, &length, &key, flags)
        }
        precondition(ok == 1 && length == out.count, "secp256k1_ec_pubkey_serialize failed")
        return out
    }
}

/// A secp256k1 private key: a scalar in [1, n-1].
public struct Secp256k1PrivateKey: Sendable {
    private let scalar: [UInt8]
    public let publicKey: Secp256k1PublicKey

    /// A fresh key from OpenSSL's private DRBG (seeded from the OS by getrandom),
    /// redrawn in the negligible case that it falls outside [1, n-1].
    public init() {
        while true {
            if let key = try? Secp256k1PrivateKey(rawRepresentation: OpenSSL.randomBytes(32)) {
                self = key
                return
            }
        }
    }

    /// A 32-byte big-endian scalar in [1, n-1].
    public init(rawRepresentation raw: [UInt8]) throws(CryptoError) {
        guard raw.count == 32 else {
            throw .wrongLength(what: "secp256k1 private key", expected: "32", actual: raw.count)
        }
        guard raw.withUnsafeBufferPointer({ secp256k1_ec_seckey_verify(Secp256k1.context.pointer, $0.baseAddress!) }) == 1 else {
            throw .privateKeyOutOfRange(scheme: .secp256k1)
        }
        var key = secp256k1_pubkey()
        let ok = raw.withUnsafeBufferPointer { secp256k1_ec_pubkey_create(Secp256k1.context.pointer, &key, $0.baseAddress!) }
        precondition(ok == 1, "secp256k1_ec_pubkey_create failed on a verified key")
        scalar = raw
        publicKey = Secp256k1PublicKey(parsed: key)
    }

    public var rawRepresentation: [UInt8] { scalar }

    /// ECDSA signature of `digest` with an RFC 6979 deterministic nonce; libsecp256k1
    /// always produces low S.
    public func signature(forDigest digest: Hash256) throws(CryptoError) -> Secp256k1Signature {
        var signature = secp256k1_ecdsa_signature()
        let signed = scalar.withUnsafeBufferPointer { key in
            digest.bytes.withUnsafeBufferPointer {
                secp256k1_ecdsa_sign(Secp256k1.context.pointer, &signature, $0.baseAddress!, key.baseAddress!, nil, nil)
            }
        }
        guard signed == 1 else { throw .libraryFailure("secp256k1_ecdsa_sign failed") }
        var compact = [UInt8](repeating: 0, count: 64)
        _ = compact.withUnsafeMutableBufferPointer {
            secp256k1_ecdsa_signature_serialize_compact(Secp256k1.context.pointer, $0.baseAddress!, &signature)
        }
        do { return try Secp256k1Signature(rawRepresentation: compact) } catch {
            throw .libraryFailure("libsecp256k1 produced an unusable signature: \(error)")
        }
    }
}

extension Secp256k1PrivateKey: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Never shows the private scalar (logs, test failures, `dump`).
    public var description: String { "Secp256k1PrivateKey(public: \(Hex.encode(publicKey.rawRepresentation)))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["publicKey": publicKey]) }
}

/// A secp256k1 public key (a valid curve point, not infinity).
public struct Secp256k1PublicKey: Sendable, Hashable {
    /// 33-byte compressed SEC1 encoding, the form carried on the ledger.
    public let rawRepresentation: [UInt8]
    private let parsed: secp256k1_pubkey

    /// 33-byte compressed (`02`/`03` || X) or 65-byte uncompressed (`04` || X || Y)
    /// SEC1; hybrid encodings (`06`/`07`) are refused.
    public init(rawRepresentation raw: [UInt8]) throws(CryptoError) {
        switch raw.count {
        case 33:
            guard raw[0] == 0x02 || raw[0] == 0x03 else {
                throw .invalidPublicKey(scheme: .secp256k1, reason: "compressed key must start with 02 or 03, got \(raw[0])")
            }
        case 65:
            guard raw[0] == 0x04 else {
                throw .invalidPublicKey(scheme: .secp256k1, reason: "uncompressed key must start with 04, got \(raw[0])")
            }
        default:
            throw .wrongLength(what: "secp256k1 public key", expected: "33 or 65", actual: raw.count)
        }
        guard let key = Secp256k1.parsePublicKey(raw) else {
            throw .invalidPublicKey(scheme: .secp256k1, reason: "point is not on the curve secp256k1")
        }
        self.init(parsed: key)
    }

    init(parsed key: secp256k1_pubkey) {
        parsed = key
        rawRepresentation = Secp256k1.serialize(key, compressed: true)
    }

    /// 65-byte `04 || X || Y`.
    public var uncompressedRepresentation: [UInt8] { Secp256k1.serialize(parsed, compressed: false) }

    /// True only if `signature` is a valid low-S ECDSA signature of `digest` under this
    /// key. A high-S signature is refused, not normalised. Thread-safe.
    public func isValidSignature(_ signature: Secp256k1Signature, forDigest digest: Hash256) -> Bool {
        let raw = signature.rawRepresentation
        guard Scalar.isInRange(raw[0..<32], below: Secp256k1.n),
              Scalar.isInRange(raw[32..<64], below: Secp256k1.n),
              Scalar.compare(raw[32..<64], Secp256k1.halfN) <= 0 else { return false }
        let ctx = Secp256k1.context.pointer
        var parsedSignature = secp256k1_ecdsa_signature()
        guard raw.withUnsafeBufferPointer({ secp256k1_ecdsa_signature_parse_compact(ctx, &parsedSignature, $0.baseAddress!) }) == 1 else {
            return false
        }
        var key = parsed
        return digest.bytes.withUnsafeBufferPointer {
            secp256k1_ecdsa_verify(ctx, &parsedSignature, $0.baseAddress!, &key)
        } == 1
    }

    public static func == (a: Secp256k1PublicKey, b: Secp256k1PublicKey) -> Bool { a.rawRepresentation == b.rawRepresentation }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawRepresentation) }
}

/// A secp256k1 ECDSA signature with r, s in [1, n-1] and low S (s <= n/2).
public struct Secp256k1Signature: Sendable, Hashable {
    /// 64 bytes `r || s` (libsecp256k1's compact form).
    public let rawRepresentation: [UInt8]

    public init(rawRepresentation raw: [UInt8]) throws(CryptoError) {
        guard raw.count == 64 else {
            throw .wrongLength(what: "secp256k1 signature", expected: "64", actual: raw.count)
        }
        guard Scalar.isInRange(raw[0..<32], below: Secp256k1.n) else {
            throw .signatureOutOfRange(scheme: .secp256k1, reason: "r is not in [1, n-1]")
        }
        guard Scalar.isInRange(raw[32..<64], below: Secp256k1.n) else {
            throw .signatureOutOfRange(scheme: .secp256k1, reason: "s is not in [1, n-1]")
        }
        guard Scalar.compare(raw[32..<64], Secp256k1.halfN) <= 0 else {
            throw .signatureOutOfRange(scheme: .secp256k1, reason: "high S (s > n/2) is not canonical")
        }
        rawRepresentation = raw
    }

    /// Strict DER `SEQUENCE { INTEGER r, INTEGER s }`.
    public init(derRepresentation der: [UInt8]) throws(CryptoError) {
        try self.init(rawRepresentation: SignatureDER.decode(der))
    }

    public var derRepresentation: [UInt8] {
        SignatureDER.encode(r: rawRepresentation[0..<32], s: rawRepresentation[32..<64])
    }
}
