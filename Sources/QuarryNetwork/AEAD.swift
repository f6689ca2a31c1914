import COpenSSL
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuarryCore

/// ChaCha20-Poly1305 (RFC 8439) through OpenSSL's EVP interface: 32-byte key, 12-byte nonce,
/// 16-byte tag appended to the ciphertext. One instance seals or opens one direction of a
/// connection and keeps its cipher context between frames (only the nonce changes).
final class ChaChaPoly: @unchecked Sendable {
    static let keySize = 32
    static let nonceSize = 12
    static let tagSize = 16

    private let context: OpaquePointer
    private let encrypting: Bool

    init(key: [UInt8], encrypting: Bool) {
        precondition(key.count == Self.keySize, "ChaCha20-Poly1305 key must be 32 bytes")
        guard let ctx = EVP_CIPHER_CTX_new() else { fatalError("EVP_CIPHER_CTX_new failed: out of memory") }
        context = ctx
        self.encrypting = encrypting
        let ok = key.withUnsafeBufferPointer { k in
            encrypting ? EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), nil, k.baseAddress, nil)
                       : EVP_DecryptInit_ex(ctx, EVP_chacha20_poly1305(), nil, k.baseAddress, nil)
        }
        precondition(ok == 1, "OpenSSL lacks ChaCha20-Poly1305")
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// The 96-bit nonce for frame number `counter`: four zero bytes, then the counter as a
    /// big-endian u64.
    static func nonce(counter: UInt64) -> [UInt8] {
        var n = [UInt8](repeating: 0, count: nonceSize)
        for i in 0..<8 { n[4 + i] = UInt8(truncatingIfNeeded: counter >> (56 - 8 * UInt64(i))) }
        return n
    }

    /// Encrypts `plaintext` and returns ciphertext || tag.
    func seal(_ plaintext: UnsafeRawBufferPointer, counter: UInt64, aad: [UInt8]) -> [UInt8] {
        seal(plaintext, nonce: Self.nonce(counter: counter), aad: aad)
    }

    func seal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], aad: [UInt8]) -> [UInt8] {
        precondition(encrypting && nonce.count == Self.nonceSize)
        var out = [UInt8](repeating: 0, count: plaintext.count + Self.tagSize)
        var outLength: Int32 = 0
        var ok = nonce.withUnsafeBufferPointer { EVP_EncryptInit_ex(context, nil, nil, nil, $0.baseAddress) } == 1
        ok = ok && aad.withUnsafeBufferPointer {
            EVP_EncryptUpdate(context, nil, &outLength, $0.baseAddress, Int32($0.count))
        } == 1
        out.withUnsafeMutableBufferPointer { o in
            var n: Int32 = 0
            if plaintext.count > 0 {
                ok = ok && EVP_EncryptUpdate(context, o.baseAddress, &n,
                                             plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                             Int32(plaintext.count)) == 1
            }
            var m: Int32 = 0
            ok = ok && EVP_EncryptFinal_ex(context, o.baseAddress! + Int(n), &m) == 1
            ok = ok && EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(Self.tagSize),
                                           o.baseAddress! + plaintext.count) == 1
        }
        precondition(ok, "ChaCha20-Poly1305 encryption failed")
        return out
    }

    func seal(_ plaintext: [UInt8], counter: UInt64, aad: [UInt8]) -> [UInt8] {
        plaintext.withUnsafeBytes { seal($0, counter: counter, aad: aad) }
    }

    /// Decrypts ciphertext || tag. Returns nil if the tag does not match.
    func open(_ sealed: UnsafeRawBufferPointer, counter: UInt64, aad: [UInt8]) -> [UInt8]? {
        open(sealed, nonce: Self.nonce(counter: counter), aad: aad)
    }

    func open(_ sealed: UnsafeRawBufferPointer, nonce: [UInt8], aad: [UInt8]) -> [UInt8]? {
        precondition(!encrypting && nonce.count == Self.nonceSize)
        guard sealed.count >= Self.tagSize else { return nil }
        let bodyCount = sealed.count - Self.tagSize
        var out = [UInt8](repeating: 0, count: bodyCount)
        var scratch: Int32 = 0
        var ok = nonce.withUnsafeBufferPointer { EVP_DecryptInit_ex(context, nil, nil, nil, $0.baseAddress) } == 1
        ok = ok && aad.withUnsafeBufferPointer {
            EVP_DecryptUpdate(context, nil, &scratch, $0.baseAddress, Int32($0.count))
        } == 1
        let base = sealed.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var tag = Array(UnsafeBufferPointer(start: base + bodyCount, count: Self.tagSize))
        out.withUnsafeMutableBufferPointer { o in
            var n: Int32 = 0
            if bodyCount > 0 {
                ok = ok && EVP_DecryptUpdate(context, o.baseAddress, &n, base, Int32(bodyCount)) == 1
            }
            ok = ok && tag.withUnsafeMutableBufferPointer {
                EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(Self.tagSize), $0.baseAddress)
            } == 1
            var m: Int32 = 0
            var end = UInt8(0)
            ok = ok && (bodyCount > 0 ? EVP_DecryptFinal_ex(context, o.baseAddress! + Int(n), &m)
                                      : EVP_DecryptFinal_ex(context, &end, &m)) == 1
        }
        ERR_clear_error()
        return ok ? out : nil
    }

    func open(_ sealed: [UInt8], counter: UInt64, aad: [UInt8]) -> [UInt8]? {
        sealed.withUnsafeBytes { open($0, counter: counter, aad: aad) }
    }

    // MARK: - Frame fast path: plaintext = one header byte || payload, no intermediate copies.

    private func withNonce<R>(_ counter: UInt64, _ body: (UnsafePointer<UInt8>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.nonceSize) { n in
            for i in 0..<4 { n[i] = 0 }
            for i in 0..<8 { n[4 + i] = UInt8(truncatingIfNeeded: counter >> (56 - 8 * UInt64(i))) }
            return body(UnsafePointer(n.baseAddress!))
        }
    }

    /// Writes ciphertext || tag of `header || payload` to `out`, which must hold exactly
    /// `1 + payload.count + tagSize` bytes.
    func sealFrame(header: UInt8, payload: UnsafeRawBufferPointer, counter: UInt64,
                   aad: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) {
        precondition(encrypting && out.count == 1 + payload.count + Self.tagSize)
        let o = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let ok = withNonce(counter) { nonce -> Bool in
            var n: Int32 = 0
            var h = header
            var ok = EVP_EncryptInit_ex(context, nil, nil, nil, nonce) == 1
            ok = ok && EVP_EncryptUpdate(context, nil, &n, aad.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                         Int32(aad.count)) == 1
            ok = ok && EVP_EncryptUpdate(context, o, &n, &h, 1) == 1 && n == 1
            if payload.count > 0 {
                ok = ok && EVP_EncryptUpdate(context, o + 1, &n, payload.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                             Int32(payload.count)) == 1 && Int(n) == payload.count
            }
            ok = ok && EVP_EncryptFinal_ex(context, o + 1 + payload.count, &n) == 1
            ok = ok && EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(Self.tagSize),
                                           o + 1 + payload.count) == 1
            return ok
        }
        precondition(ok, "ChaCha20-Poly1305 encryption failed")
    }

    /// Opens ciphertext || tag whose plaintext is `header || payload`; nil if the tag fails.
    func openFrame(_ sealed: UnsafeRawBufferPointer, counter: UInt64,
                   aad: UnsafeRawBufferPointer) -> (header: UInt8, payload: [UInt8])? {
        precondition(!encrypting)
        guard sealed.count >= 1 + Self.tagSize else { return nil }
        let payloadCount = sealed.count - 1 - Self.tagSize
        let base = sealed.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var header: UInt8 = 0
        var ok = true
        let payload = [UInt8](unsafeUninitializedCapacity: payloadCount) { buf, initialized in
            ok = withNonce(counter) { nonce -> Bool in
                var n: Int32 = 0
                var ok = EVP_DecryptInit_ex(context, nil, nil, nil, nonce) == 1
                ok = ok && EVP_DecryptUpdate(context, nil, &n, aad.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                             Int32(aad.count)) == 1
                ok = ok && EVP_DecryptUpdate(context, &header, &n, base, 1) == 1
                if payloadCount > 0 {
                    ok = ok && EVP_DecryptUpdate(context, buf.baseAddress, &n, base + 1, Int32(payloadCount)) == 1
                }
                ok = ok && EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(Self.tagSize),
                                               UnsafeMutableRawPointer(mutating: base + 1 + payloadCount)) == 1
                var end: UInt8 = 0
                ok = ok && EVP_DecryptFinal_ex(context, &end, &n) == 1
                return ok
            }
            if !ok { buf.initialize(repeating: 0) }  // never hand out unauthenticated plaintext
            initialized = payloadCount
        }
        ERR_clear_error()
        return ok ? (header, payload) : nil
    }
}

/// HKDF (RFC 5869) with SM3 as the hash, through OpenSSL's EVP_KDF "HKDF".
enum HKDFSM3 {
    static func derive(secret: [UInt8], salt: [UInt8], info: [UInt8], count: Int) -> [UInt8] {
        guard let kdf = EVP_KDF_fetch(nil, "HKDF", nil) else { fatalError("OpenSSL lacks HKDF") }
        defer { EVP_KDF_free(kdf) }
        guard let ctx = EVP_KDF_CTX_new(kdf) else { fatalError("EVP_KDF_CTX_new failed") }
        defer { EVP_KDF_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: count)
        // OSSL_PARAM keeps pointers: copy everything into C memory that lives until derive returns.
        func cCopy(_ bytes: [UInt8]) -> UnsafeMutableRawBufferPointer {
            let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
            p.copyBytes(from: bytes)
            return p
        }
        let digestName = strdup("SM3")!
        let k = cCopy(secret), s = cCopy(salt), i = cCopy(info)
        let keyName = strdup("key")!, saltName = strdup("salt")!, infoName = strdup("info")!, mdName = strdup("digest")!
        defer {
            k.deallocate(); s.deallocate(); i.deallocate()
            free(digestName); free(keyName); free(saltName); free(infoName); free(mdName)
        }
        var params = [
            OSSL_PARAM_construct_utf8_string(mdName, digestName, 0),
            OSSL_PARAM_construct_octet_string(keyName, k.baseAddress, secret.count),
            OSSL_PARAM_construct_octet_string(saltName, s.baseAddress, salt.count),
            OSSL_PARAM_construct_octet_string(infoName, i.baseAddress, info.count),
            OSSL_PARAM_construct_end(),
        ]
        let ok = params.withUnsafeMutableBufferPointer { p in
            out.withUnsafeMutableBufferPointer { EVP_KDF_derive(ctx, $0.baseAddress, count, p.baseAddress) }
        }
        precondition(ok == 1, "HKDF-SM3 derivation failed")
        return out
    }
}
