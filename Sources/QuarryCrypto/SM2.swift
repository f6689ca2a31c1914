import COpenSSL
import QuarryCore

/// SM2 digital signatures (GB/T 32918.2) on the recommended curve sm2p256v1
/// (GB/T 32918.5), computed by OpenSSL 3.0. See docs/spec/crypto.md.
///
/// Quarry computes the user value Z itself and hands OpenSSL only the final digest
/// `e = SM3(Z || M)` (`EVP_PKEY_sign` / `EVP_PKEY_verify`), so the distinguishing ID is
/// always applied, and no `EVP_MD_CTX` is ever reused (TOOLCHAIN.md).
public enum SM2 {
    /// The default distinguishing ID of GB/T 35276: the ASCII bytes "1234567812345678".
    public static let defaultID: [UInt8] = Array("1234567812345678".utf8)
    /// ENTL is the ID's length in bits as 2 bytes, so an ID is at most 8191 bytes.
    public static let maximumIDBytes = 8191

    public static let privateKeySize = 32
    public static let publicKeySize = 65
    public static let signatureSize = 64

    // Domain parameters of sm2p256v1 (GB/T 32918.5), big-endian.
    static let p = Scalar.constant("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF")
    static let a = Scalar.constant("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC")
    static let b = Scalar.constant("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93")
    static let gx = Scalar.constant("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7")
    static let gy = Scalar.constant("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0")
    static let n = Scalar.constant("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123")
    /// n - 1: private keys must be below it (1 + d must be invertible mod n).
    static let nMinus1 = Scalar.constant("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54122")

    static let group = OpenSSLGroup(curve: QUARRY_NID_sm2)

    /// ZA = SM3(ENTLA || ID || a || b || xG || yG || xA || yA), where ENTLA is the ID's
    /// length in bits as a 2-byte big-endian integer and `publicKey` is `04 || xA || yA`.
    public static func userValue(publicKey: SM2PublicKey, id: [UInt8] = defaultID) throws(CryptoError) -> Hash256 {
        try z(rawPublicKey: publicKey.rawRepresentation, id: id)
    }

    static func z(rawPublicKey: [UInt8], id: [UInt8]) throws(CryptoError) -> Hash256 {
        guard id.count <= maximumIDBytes else { throw .identifierTooLong(bytes: id.count) }
        precondition(rawPublicKey.count == 65, "SM2 public key must be 65 bytes")
        let bits = id.count * 8
        var h = SM3()
        h.update([UInt8(bits >> 8), UInt8(bits & 0xff)])
        h.update(id)
        h.update(a)
        h.update(b)
        h.update(gx)
        h.update(gy)
        h.update(rawPublicKey[1...])
        return h.finalize()
    }

    /// e = SM3(Z || M), the value the signature equation signs.
    static func messageDigest(z: Hash256, message: [UInt8]) -> Hash256 {
        var h = SM3()
        h.update(z.bytes)
        h.update(message)
        return h.finalize()
    }

    /// Checks what both engines check the same way, in Swift, before either looks at the
    /// point: 65 bytes, the uncompressed prefix 04, both coordinates below p.
    static func validateEncoding(_ raw: [UInt8]) throws(CryptoError) {
        guard raw.count == publicKeySize else {
            throw .wrongLength(what: "SM2 public key", expected: "65", actual: raw.count)
        }
        guard raw[0] == 0x04 else {
            throw .invalidPublicKey(scheme: .sm2, reason: "must be uncompressed (first byte 04), got \(raw[0])")
        }
        guard Scalar.compare(raw[1..<33], p) < 0, Scalar.compare(raw[33..<65], p) < 0 else {
            throw .invalidPublicKey(scheme: .sm2, reason: "coordinate not below the field prime")
        }
    }

    static let notOnCurve = CryptoError.invalidPublicKey(scheme: .sm2, reason: "point is not on the curve sm2p256v1")

    /// Checks a 65-byte `04 || X || Y` encoding with OpenSSL: uncompressed prefix,
    /// coordinates below p, on the curve, not the point at infinity. (The cofactor is 1,
    /// so every such point is in the prime-order group.)
    static func validatePublicPoint(_ raw: [UInt8]) throws(CryptoError) {
        try validateEncoding(raw)
        let point = OpenSSLPoint(group: group)
        let parsed = raw.withUnsafeBufferPointer {
            EC_POINT_oct2point(group.pointer, point.pointer, $0.baseAddress, $0.count, nil)
        }
        guard parsed == 1, EC_POINT_is_on_curve(group.pointer, point.pointer, nil) == 1 else {
            OpenSSL.clearErrors()
            throw notOnCurve
        }
        guard EC_POINT_is_at_infinity(group.pointer, point.pointer) == 0 else {
            throw .invalidPublicKey(scheme: .sm2, reason: "point at infinity")
        }
    }

    /// `d * G` as `04 || X || Y`.
    static func publicPoint(privateScalar d: [UInt8]) -> [UInt8] {
        let scalar = OpenSSLNumber(bytes: d, secret: true)
        let point = OpenSSLPoint(group: group)
        let ctx = OpenSSLNumberContext()
        guard EC_POINT_mul(group.pointer, point.pointer, scalar.pointer, nil, nil, ctx.pointer) == 1 else {
            preconditionFailure("EC_POINT_mul: \(OpenSSL.lastError())")
        }
        var out = [UInt8](repeating: 0, count: 65)
        let written = out.withUnsafeMutableBufferPointer {
            EC_POINT_point2oct(group.pointer, point.pointer, POINT_CONVERSION_UNCOMPRESSED, $0.baseAddress, 65, ctx.pointer)
        }
        precondition(written == 65, "EC_POINT_point2oct wrote \(written) bytes")
        return out
    }

    /// Builds an OpenSSL SM2 key from validated raw parts.
    static func makeKey(publicKey: [UInt8], privateScalar: [UInt8]?) -> OpenSSLKey {
        guard let key = importKey(publicKey: publicKey, privateScalar: privateScalar) else {
            preconditionFailure("EVP_PKEY_fromdata(SM2) rejected a validated key: \(OpenSSL.lastError())")
        }
        return key
    }

    /// An OpenSSL SM2 key from raw parts, or nil if OpenSSL refuses them.
    static func importKey(publicKey: [UInt8], privateScalar: [UInt8]?) -> OpenSSLKey? {
        guard let builder = OSSL_PARAM_BLD_new() else { preconditionFailure("OSSL_PARAM_BLD_new: out of memory") }
        defer { OSSL_PARAM_BLD_free(builder) }
        // The builder copies every value, so nothing needs to outlive these calls.
        var ok = OSSL_PARAM_BLD_push_utf8_string(builder, QUARRY_PARAM_GROUP_NAME, QUARRY_NAME_SM2, 0) == 1
        ok = ok && publicKey.withUnsafeBufferPointer {
            OSSL_PARAM_BLD_push_octet_string(builder, QUARRY_PARAM_PUB_KEY, $0.baseAddress, $0.count) == 1
        }
        var secret: OpenSSLNumber? = nil
        if let privateScalar {
            let number = OpenSSLNumber(bytes: privateScalar, secret: true)
            secret = number
            ok = ok && OSSL_PARAM_BLD_push_BN(builder, QUARRY_PARAM_PRIV_KEY, number.pointer) == 1
        }
        precondition(ok, "OSSL_PARAM_BLD_push: \(OpenSSL.lastError())")
        guard let params = OSSL_PARAM_BLD_to_param(builder) else { preconditionFailure("OSSL_PARAM_BLD_to_param: \(OpenSSL.lastError())") }
        defer { OSSL_PARAM_free(params) }
        withExtendedLifetime(secret) {}
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, QUARRY_NAME_SM2, nil) else {
            preconditionFailure("OpenSSL lacks SM2: \(OpenSSL.lastError())")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        var key: OpaquePointer? = nil
        let selection = privateScalar == nil ? QUARRY_EVP_PKEY_PUBLIC_KEY : QUARRY_EVP_PKEY_KEYPAIR
        guard EVP_PKEY_fromdata_init(ctx) == 1, EVP_PKEY_fromdata(ctx, &key, selection, params) == 1, let key else {
            OpenSSL.clearErrors()
            return nil
        }
        return OpenSSLKey(taking: key)
    }
}

// MARK: - Keys

/// An SM2 private key: a scalar d in [1, n-2] and its public point.
public struct SM2PrivateKey: Sendable {
    private let scalar: [UInt8]
    public let publicKey: SM2PublicKey
    let key: OpenSSLKey

    /// A fresh key from OpenSSL's key generation (seeded from the operating system).
    public init() {
        while true {
            guard let ctx = EVP_PKEY_CTX_new_from_name(nil, QUARRY_NAME_SM2, nil) else {
                preconditionFailure("OpenSSL lacks SM2: \(OpenSSL.lastError())")
            }
            defer { EVP_PKEY_CTX_free(ctx) }
            var generated: OpaquePointer? = nil
            guard EVP_PKEY_keygen_init(ctx) == 1, EVP_PKEY_generate(ctx, &generated) == 1, let generated else {
                preconditionFailure("SM2 key generation failed: \(OpenSSL.lastError())")
            }
            let owner = OpenSSLKey(taking: generated)
            guard let d = OpenSSL.privateScalar(of: owner), let key = try? SM2PrivateKey(rawRepresentation: d) else {
                continue  // d = n-1 is allowed by some generators and not by SM2 signing; draw again
            }
            self = key
            return
        }
    }

    /// A 32-byte big-endian scalar in [1, n-2].
    public init(rawRepresentation raw: [UInt8]) throws(CryptoError) {
        guard raw.count == SM2.privateKeySize else {
            throw .wrongLength(what: "SM2 private key", expected: "32", actual: raw.count)
        }
        guard Scalar.isInRange(raw, below: SM2.nMinus1) else { throw .privateKeyOutOfRange(scheme: .sm2) }
        let publicRaw = SM2.publicPoint(privateScalar: raw)
        scalar = raw
        key = SM2.makeKey(publicKey: publicRaw, privateScalar: raw)
        publicKey = SM2PublicKey(validated: publicRaw)
    }

    /// PKCS#8 `PrivateKeyInfo` DER (algorithm id-ecPublicKey, curve sm2p256v1), exactly
    /// one structure and nothing after it. A public key inside the structure, if any,
    /// must match the private scalar. (SEC1 `ECPrivateKey` alone is refused.)
    public init(derRepresentation der: [UInt8]) throws(CryptoError) {
        let what = "SM2 private key DER"
        guard let decoded = OpenSSL.decodePrivateKeyInfo(der) else {
            throw .invalidEncoding(what: what, reason: "not a PKCS#8 PrivateKeyInfo")
        }
        guard OpenSSL.groupName(of: decoded) == "SM2" else {
            throw .invalidEncoding(what: what, reason: "key is not on the curve sm2p256v1")
        }
        guard let d = OpenSSL.privateScalar(of: decoded) else {
            throw .invalidEncoding(what: what, reason: "no private scalar")
        }
        try self.init(rawRepresentation: d)
        if let embedded = OpenSSL.octets(of: decoded, parameter: QUARRY_PARAM_PUB_KEY) {
            let raw = publicKey.rawRepresentation
            let compressed = [0x02 | (raw[64] & 1)] + raw[1..<33]
            guard embedded == raw || embedded == compressed else {
                throw .invalidEncoding(what: what, reason: "embedded public key does not match the private key")
            }
        }
    }

    /// PEM with the label `PRIVATE KEY` (unencrypted) around PKCS#8 DER.
    public init(pemRepresentation pem: String) throws(CryptoError) {
        guard let der = OpenSSL.pemBody(pem, label: "PRIVATE KEY") else {
            throw .invalidEncoding(what: "SM2 private key PEM", reason: "no unencrypted PEM block labelled PRIVATE KEY")
        }
        try self.init(derRepresentation: der)
    }

    public var rawRepresentation: [UInt8] { scalar }

    public var derRepresentation: [UInt8] {
        OpenSSL.encode(key, selection: QUARRY_EVP_PKEY_KEYPAIR, pem: false, structure: QUARRY_NAME_PRIVATE_KEY_INFO)
    }

    public var pemRepresentation: String {
        String(decoding: OpenSSL.encode(key, selection: QUARRY_EVP_PKEY_KEYPAIR, pem: true, structure: QUARRY_NAME_PRIVATE_KEY_INFO),
               as: UTF8.self)
    }

    /// Signs `message` (GB/T 32918.2 with e = SM3(Z || message)) with a fresh random
    /// nonce from OpenSSL.
    public func signature(for message: [UInt8], id: [UInt8] = SM2.defaultID) throws(CryptoError) -> SM2Signature {
        let z = try publicKey.userValue(id: id)
        let e = SM2.messageDigest(z: z, message: message)
        guard let ctx = EVP_PKEY_CTX_new_from_pkey(nil, key.pointer, nil) else {
            throw .libraryFailure("EVP_PKEY_CTX_new_from_pkey: \(OpenSSL.lastError())")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        guard EVP_PKEY_sign_init(ctx) == 1 else { throw .libraryFailure("EVP_PKEY_sign_init: \(OpenSSL.lastError())") }
        var der = [UInt8](repeating: 0, count: 80)
        var length = der.count
        let signed = der.withUnsafeMutableBufferPointer { out in
            e.bytes.withUnsafeBufferPointer { EVP_PKEY_sign(ctx, out.baseAddress, &length, $0.baseAddress, $0.count) }
        }
        guard signed == 1 else { throw .libraryFailure("EVP_PKEY_sign(SM2): \(OpenSSL.lastError())") }
        do {
            return try SM2Signature(rawRepresentation: SignatureDER.decode(Array(der.prefix(length))))
        } catch {
            throw .libraryFailure("OpenSSL produced an unusable SM2 signature: \(error)")
        }
    }

    /// TEST ONLY: the SM2 signing equation with a caller-chosen nonce `k`, to reproduce
    /// published examples (GB/T 32918.5). Reusing or revealing k reveals the private
    /// key; production code signs with ``signature(for:id:)``. Computed independently of
    /// OpenSSL's signer, with BIGNUM/EC_POINT arithmetic:
    /// (x1, y1) = k*G, r = (e + x1) mod n, s = ((1 + d)^-1 * (k - r*d)) mod n.
    func signatureWithFixedNonce(_ k: [UInt8], for message: [UInt8], id: [UInt8] = SM2.defaultID) throws(CryptoError) -> SM2Signature {
        guard k.count == 32, Scalar.isInRange(k, below: SM2.n) else {
            throw .signatureOutOfRange(scheme: .sm2, reason: "nonce must be 32 bytes in [1, n-1]")
        }
        let e = SM2.messageDigest(z: try publicKey.userValue(id: id), message: message)
        let group = SM2.group
        let ctx = OpenSSLNumberContext()
        let order = OpenSSLNumber(bytes: SM2.n)
        let kNumber = OpenSSLNumber(bytes: k, secret: true)
        let d = OpenSSLNumber(bytes: scalar, secret: true)
        let point = OpenSSLPoint(group: group)
        let x1 = OpenSSLNumber(), r = OpenSSLNumber(), s = OpenSSLNumber()
        let t = OpenSSLNumber(), u = OpenSSLNumber(), one = OpenSSLNumber(bytes: [1])
        let eNumber = OpenSSLNumber(bytes: e.bytes)
        var ok = EC_POINT_mul(group.pointer, point.pointer, kNumber.pointer, nil, nil, ctx.pointer) == 1
        ok = ok && EC_POINT_get_affine_coordinates(group.pointer, point.pointer, x1.pointer, nil, ctx.pointer) == 1
        ok = ok && BN_mod_add(r.pointer, eNumber.pointer, x1.pointer, order.pointer, ctx.pointer) == 1   // r = e + x1
        ok = ok && BN_mod_mul(t.pointer, r.pointer, d.pointer, order.pointer, ctx.pointer) == 1          // t = r*d
        ok = ok && BN_mod_sub(t.pointer, kNumber.pointer, t.pointer, order.pointer, ctx.pointer) == 1    // t = k - r*d
        ok = ok && BN_mod_add(u.pointer, one.pointer, d.pointer, order.pointer, ctx.pointer) == 1        // u = 1 + d
        ok = ok && BN_mod_inverse(u.pointer, u.pointer, order.pointer, ctx.pointer) != nil               // u = (1+d)^-1
        ok = ok && BN_mod_mul(s.pointer, u.pointer, t.pointer, order.pointer, ctx.pointer) == 1          // s = u*t
        guard ok else { throw .libraryFailure("SM2 fixed-nonce arithmetic: \(OpenSSL.lastError())") }
        // SM2 asks for a new k when r = 0, r + k = n or s = 0; SM2Signature rejects those.
        return try SM2Signature(rawRepresentation: r.bytes() + s.bytes())
    }
}

extension SM2PrivateKey: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Never shows the private scalar (logs, test failures, `dump`).
    public var description: String { "SM2PrivateKey(public: \(Hex.encode(publicKey.rawRepresentation)))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["publicKey": publicKey]) }
}

/// An SM2 public key: a point of sm2p256v1, neither infinity nor off the curve.
///
/// Verification runs on the process-wide engine (``SM2/verificationEngine``) unless one is
/// named. Each engine's form of the key (OpenSSL's `EVP_PKEY`, the fast engine's decoded
/// point and, from the key's second fast verification on, its precomputed table) is made
/// when first needed and kept with the key, so a key that is kept (for example in
/// ``VerificationKeyCache``) pays for it once.
public struct SM2PublicKey: Sendable, Hashable {
    public let rawRepresentation: [UInt8]
    let storage: SM2KeyStorage
    /// Z for the default ID, computed once per key.
    let defaultUserValue: Hash256

    /// 65 bytes `04 || X || Y`, checked by the process-wide engine.
    public init(rawRepresentation raw: [UInt8]) throws(CryptoError) {
        try self.init(rawRepresentation: raw, engine: SM2.verificationEngine)
    }

    /// 65 bytes `04 || X || Y`, checked by `engine` (both engines accept exactly the same
    /// keys: docs/spec/crypto.md 3.2).
    public init(rawRepresentation raw: [UInt8], engine: SM2VerificationEngine) throws(CryptoError) {
        switch engine {
        case .openSSL:
            try SM2.validatePublicPoint(raw)
            self.init(storage: SM2KeyStorage(raw: raw, openSSLKey: SM2.makeKey(publicKey: raw, privateScalar: nil)))
        case .fast:
            try SM2.validateEncoding(raw)
            guard let point = SM2Fast.decode(raw) else { throw SM2.notOnCurve }
            self.init(storage: SM2KeyStorage(raw: raw, fastPoint: point))
        }
    }

    /// A point OpenSSL computed (d * G).
    init(validated raw: [UInt8]) {
        self.init(storage: SM2KeyStorage(raw: raw, openSSLKey: SM2.makeKey(publicKey: raw, privateScalar: nil)))
    }

    private init(storage: SM2KeyStorage) {
        self.storage = storage
        rawRepresentation = storage.raw
        defaultUserValue = try! SM2.z(rawPublicKey: storage.raw, id: SM2.defaultID)  // the default ID is 16 bytes
    }

    /// OpenSSL's form of the key (imported on first use).
    var key: OpenSSLKey {
        guard let key = storage.openSSLKey() else {
            preconditionFailure("OpenSSL refuses an SM2 public key the fast engine accepted: \(Hex.encode(rawRepresentation))")
        }
        return key
    }

    /// X.509 `SubjectPublicKeyInfo` DER (id-ecPublicKey, curve sm2p256v1, uncompressed
    /// point). Only the exact encoding Quarry itself produces is accepted.
    public init(derRepresentation der: [UInt8]) throws(CryptoError) {
        let what = "SM2 public key DER"
        guard let decoded = OpenSSL.decodeSubjectPublicKeyInfo(der) else {
            throw .invalidEncoding(what: what, reason: "not a SubjectPublicKeyInfo")
        }
        guard OpenSSL.groupName(of: decoded) == "SM2" else {
            throw .invalidEncoding(what: what, reason: "key is not on the curve sm2p256v1")
        }
        guard let point = OpenSSL.octets(of: decoded, parameter: QUARRY_PARAM_PUB_KEY) else {
            throw .invalidEncoding(what: what, reason: "no public point")
        }
        try self.init(rawRepresentation: point)
        guard derRepresentation == der else {
            throw .invalidEncoding(what: what, reason: "not the canonical SubjectPublicKeyInfo encoding")
        }
    }

    /// PEM with the label `PUBLIC KEY` around SubjectPublicKeyInfo DER.
    public init(pemRepresentation pem: String) throws(CryptoError) {
        guard let der = OpenSSL.pemBody(pem, label: "PUBLIC KEY") else {
            throw .invalidEncoding(what: "SM2 public key PEM", reason: "no PEM block labelled PUBLIC KEY")
        }
        try self.init(derRepresentation: der)
    }

    public var derRepresentation: [UInt8] {
        OpenSSL.encode(key, selection: QUARRY_EVP_PKEY_PUBLIC_KEY, pem: false, structure: QUARRY_NAME_SUBJECT_PUBLIC_KEY_INFO)
    }

    public var pemRepresentation: String {
        String(decoding: OpenSSL.encode(key, selection: QUARRY_EVP_PKEY_PUBLIC_KEY, pem: true, structure: QUARRY_NAME_SUBJECT_PUBLIC_KEY_INFO),
               as: UTF8.self)
    }

    /// Z for `id` (cached for the default ID).
    func userValue(id: [UInt8]) throws(CryptoError) -> Hash256 {
        id == SM2.defaultID ? defaultUserValue : try SM2.z(rawPublicKey: rawRepresentation, id: id)
    }

    /// True only if `signature` is a valid SM2 signature of `message` under this key and
    /// `id`, checked by the process-wide engine. Safe to call from many threads at once.
    public func isValidSignature(_ signature: SM2Signature, for message: [UInt8], id: [UInt8] = SM2.defaultID) -> Bool {
        isValidSignature(signature, for: message, id: id, engine: SM2.verificationEngine)
    }

    /// The same check by a named engine. Both engines give the same answer for every input
    /// (docs/spec/crypto.md 3.5); the differential tests hold them to it.
    public func isValidSignature(_ signature: SM2Signature, for message: [UInt8], id: [UInt8] = SM2.defaultID,
                                 engine: SM2VerificationEngine) -> Bool {
        guard let z = try? userValue(id: id) else { return false }
        let e = SM2.messageDigest(z: z, message: message)
        let raw = signature.rawRepresentation
        // SM2Signature already guarantees this; checked again because it is cheap and
        // verification is the last line of defence.
        guard Scalar.isInRange(raw[0..<32], below: SM2.n), Scalar.isInRange(raw[32..<64], below: SM2.n),
              !Scalar.sumEquals(raw[0..<32], raw[32..<64], SM2.n) else { return false }
        return isValid(rawSignature: raw, digest: e.bytes, engine: engine)
    }

    /// The verification equation alone, for the digest e and any 64 bytes `r || s`: each
    /// engine applies its own range checks (OpenSSL's inside `EVP_PKEY_verify`). Tests use
    /// it to compare the engines on values no `SM2Signature` can hold.
    func isValid(rawSignature raw: [UInt8], digest e: [UInt8], engine: SM2VerificationEngine) -> Bool {
        precondition(raw.count == 64 && e.count == 32, "r || s must be 64 bytes and e 32 bytes")
        switch engine {
        case .fast:
            return storage.fastVerify(digest: e, signature: raw)
        case .openSSL:
            guard let key = storage.openSSLKey() else { return false }
            let der = SignatureDER.encode(r: raw[0..<32], s: raw[32..<64])
            guard let ctx = EVP_PKEY_CTX_new_from_pkey(nil, key.pointer, nil) else {
                OpenSSL.clearErrors()
                return false
            }
            defer { EVP_PKEY_CTX_free(ctx) }
            guard EVP_PKEY_verify_init(ctx) == 1 else {
                OpenSSL.clearErrors()
                return false
            }
            let result = der.withUnsafeBufferPointer { sig in
                e.withUnsafeBufferPointer { EVP_PKEY_verify(ctx, sig.baseAddress, sig.count, $0.baseAddress, $0.count) }
            }
            if result != 1 { OpenSSL.clearErrors() }
            return result == 1
        }
    }

    public static func == (a: SM2PublicKey, b: SM2PublicKey) -> Bool { a.rawRepresentation == b.rawRepresentation }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawRepresentation) }
}

/// An SM2 signature (r, s) with r, s in [1, n-1] and r + s != n.
public struct SM2Signature: Sendable, Hashable {
    /// 64 bytes `r || s`, each 32-byte big-endian: the form carried on the ledger.
    public let rawRepresentation: [UInt8]

    public init(rawRepresentation raw: [UInt8]) throws(CryptoError) {
        guard raw.count == SM2.signatureSize else {
            throw .wrongLength(what: "SM2 signature", expected: "64", actual: raw.count)
        }
        guard Scalar.isInRange(raw[0..<32], below: SM2.n) else {
            throw .signatureOutOfRange(scheme: .sm2, reason: "r is not in [1, n-1]")
        }
        guard Scalar.isInRange(raw[32..<64], below: SM2.n) else {
            throw .signatureOutOfRange(scheme: .sm2, reason: "s is not in [1, n-1]")
        }
        guard !Scalar.sumEquals(raw[0..<32], raw[32..<64], SM2.n) else {
            throw .signatureOutOfRange(scheme: .sm2, reason: "r + s = 0 mod n")
        }
        rawRepresentation = raw
    }

    /// Strict DER `SEQUENCE { INTEGER r, INTEGER s }` (minimal encoding only).
    public init(derRepresentation der: [UInt8]) throws(CryptoError) {
        try self.init(rawRepresentation: SignatureDER.decode(der))
    }

    public var derRepresentation: [UInt8] {
        SignatureDER.encode(r: rawRepresentation[0..<32], s: rawRepresentation[32..<64])
    }
}
