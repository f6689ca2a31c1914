import COpenSSL

// Owners of OpenSSL objects (see docs/adr/0010-crypto-engines.md). Each `final class`
// owns exactly one C object, never mutates it after construction, and frees it in
// `deinit`. Immutable OpenSSL keys and groups may be read from several threads at once;
// per-operation state (EVP_PKEY_CTX, BN_CTX, EC_POINT) is always created per call.

/// An `EVP_PKEY` that is never modified after construction.
final class OpenSSLKey: @unchecked Sendable {
    let pointer: OpaquePointer
    init(taking pointer: OpaquePointer) { self.pointer = pointer }
    deinit { EVP_PKEY_free(pointer) }
}

/// An `EC_GROUP`, read-only after construction.
final class OpenSSLGroup: @unchecked Sendable {
    let pointer: OpaquePointer
    init(curve nid: Int32) {
        guard let group = EC_GROUP_new_by_curve_name(nid) else {
            preconditionFailure("OpenSSL lacks curve \(nid): \(OpenSSL.lastError())")
        }
        pointer = group
    }
    deinit { EC_GROUP_free(pointer) }
}

/// A BIGNUM that frees itself (and clears itself if it held a secret).
final class OpenSSLNumber {
    let pointer: OpaquePointer
    private let secret: Bool

    init(bytes: [UInt8], secret: Bool = false) {
        guard let bn = bytes.withUnsafeBufferPointer({ BN_bin2bn($0.baseAddress, Int32($0.count), nil) }) else {
            preconditionFailure("BN_bin2bn: out of memory")
        }
        pointer = bn
        self.secret = secret
    }

    init(taking pointer: OpaquePointer, secret: Bool = false) {
        self.pointer = pointer
        self.secret = secret
    }

    convenience init() {
        guard let bn = BN_new() else { preconditionFailure("BN_new: out of memory") }
        self.init(taking: bn)
    }

    /// Big-endian, left-padded to `width` bytes.
    func bytes(width: Int = 32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width)
        let n = out.withUnsafeMutableBufferPointer { BN_bn2binpad(pointer, $0.baseAddress, Int32(width)) }
        precondition(n == Int32(width), "number wider than \(width) bytes")
        return out
    }

    deinit { if secret { BN_clear_free(pointer) } else { BN_free(pointer) } }
}

/// A BN_CTX for one operation.
final class OpenSSLNumberContext {
    let pointer: OpaquePointer
    init() {
        guard let ctx = BN_CTX_new() else { preconditionFailure("BN_CTX_new: out of memory") }
        pointer = ctx
    }
    deinit { BN_CTX_free(pointer) }
}

/// An EC_POINT for one operation.
final class OpenSSLPoint {
    let pointer: OpaquePointer
    init(group: OpenSSLGroup) {
        guard let p = EC_POINT_new(group.pointer) else { preconditionFailure("EC_POINT_new: out of memory") }
        pointer = p
    }
    deinit { EC_POINT_free(pointer) }
}

enum OpenSSL {
    /// Drains this thread's OpenSSL error queue into one line.
    static func lastError() -> String {
        var parts: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            parts.append(String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return parts.isEmpty ? "unknown error" : parts.joined(separator: "; ")
    }

    /// Forgets whatever errors a failed check left on this thread's queue.
    static func clearErrors() { ERR_clear_error() }

    /// Fills `count` bytes from OpenSSL's private DRBG (seeded from the OS via getrandom).
    static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBufferPointer { RAND_priv_bytes($0.baseAddress, Int32(count)) }
        precondition(ok == 1, "RAND_priv_bytes failed: \(lastError())")
        return out
    }

    /// Serialises a key with an OSSL_ENCODER as DER or PEM; `structure` is one of the
    /// static `QUARRY_NAME_*` strings (OpenSSL keeps the pointer).
    static func encode(_ key: OpenSSLKey, selection: Int32, pem: Bool, structure: UnsafePointer<CChar>) -> [UInt8] {
        let output = pem ? QUARRY_NAME_PEM : QUARRY_NAME_DER
        guard let ctx = OSSL_ENCODER_CTX_new_for_pkey(key.pointer, selection, output, structure, nil) else {
            preconditionFailure("OSSL_ENCODER_CTX_new_for_pkey: \(lastError())")
        }
        defer { OSSL_ENCODER_CTX_free(ctx) }
        var data: UnsafeMutablePointer<UInt8>? = nil
        var length = 0
        guard OSSL_ENCODER_to_data(ctx, &data, &length) == 1, let data else {
            preconditionFailure("OSSL_ENCODER_to_data: \(lastError())")
        }
        defer { quarry_openssl_free(data) }
        return Array(UnsafeBufferPointer(start: data, count: length))
    }

    /// Parses PKCS#8 `PrivateKeyInfo` DER; nil unless the bytes are exactly one such
    /// structure (a SEC1 `ECPrivateKey` or anything else is refused).
    static func decodePrivateKeyInfo(_ der: [UInt8]) -> OpenSSLKey? {
        defer { clearErrors() }
        return der.withUnsafeBufferPointer { buffer -> OpenSSLKey? in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            guard buffer.count > 0, let info = d2i_PKCS8_PRIV_KEY_INFO(nil, &cursor, buffer.count) else { return nil }
            defer { PKCS8_PRIV_KEY_INFO_free(info) }
            guard cursor == buffer.baseAddress! + buffer.count, let key = EVP_PKCS82PKEY(info) else { return nil }
            return OpenSSLKey(taking: key)
        }
    }

    /// Parses X.509 `SubjectPublicKeyInfo` DER; nil unless the bytes are exactly one.
    static func decodeSubjectPublicKeyInfo(_ der: [UInt8]) -> OpenSSLKey? {
        defer { clearErrors() }
        return der.withUnsafeBufferPointer { buffer -> OpenSSLKey? in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            guard buffer.count > 0, let key = d2i_PUBKEY(nil, &cursor, buffer.count) else { return nil }
            let owner = OpenSSLKey(taking: key)
            return cursor == buffer.baseAddress! + buffer.count ? owner : nil
        }
    }

    /// The DER inside the first PEM block of `text`, if its label is `label`.
    static func pemBody(_ text: String, label: String) -> [UInt8]? {
        defer { clearErrors() }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { buffer -> [UInt8]? in
            guard buffer.count > 0, let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            var name: UnsafeMutablePointer<CChar>? = nil
            var header: UnsafeMutablePointer<CChar>? = nil
            var data: UnsafeMutablePointer<UInt8>? = nil
            var length = 0
            guard PEM_read_bio(bio, &name, &header, &data, &length) == 1 else { return nil }
            defer { quarry_openssl_free(name); quarry_openssl_free(header); quarry_openssl_free(data) }
            guard let name, let data, String(cString: name) == label,
                  let header, header.pointee == 0 else { return nil }  // no encryption headers
            return Array(UnsafeBufferPointer(start: data, count: length))
        }
    }

    /// The curve name of an EC-family key ("SM2", "secp256k1", ...), if it has one.
    static func groupName(of key: OpenSSLKey) -> String? {
        var buffer = [CChar](repeating: 0, count: 64)
        var length = 0
        guard EVP_PKEY_get_utf8_string_param(key.pointer, QUARRY_PARAM_GROUP_NAME, &buffer, buffer.count, &length) == 1 else {
            clearErrors()
            return nil
        }
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// An octet-string parameter of a key (for example the encoded public point), if set.
    static func octets(of key: OpenSSLKey, parameter: UnsafePointer<CChar>, maximum: Int = 133) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: maximum)
        var length = 0
        guard EVP_PKEY_get_octet_string_param(key.pointer, parameter, &buffer, maximum, &length) == 1 else {
            clearErrors()
            return nil
        }
        return Array(buffer.prefix(length))
    }

    /// The private scalar of a key, big-endian and padded to 32 bytes, if it has one
    /// that fits.
    static func privateScalar(of key: OpenSSLKey) -> [UInt8]? {
        var bn: OpaquePointer? = nil
        guard EVP_PKEY_get_bn_param(key.pointer, QUARRY_PARAM_PRIV_KEY, &bn) == 1, let bn else {
            clearErrors()
            return nil
        }
        let number = OpenSSLNumber(taking: bn, secret: true)
        guard BN_num_bytes_quarry(number.pointer) <= 32 else { return nil }
        return number.bytes()
    }

    /// BN_num_bytes is a macro; this is the same computation.
    private static func BN_num_bytes_quarry(_ bn: OpaquePointer) -> Int { (Int(BN_num_bits(bn)) + 7) / 8 }
}
