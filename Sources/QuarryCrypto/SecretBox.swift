import COpenSSL
import QuarryCore

/// Passphrase-based encryption for secrets at rest (the keystore): scrypt derives a
/// 256-bit key from the passphrase and a random salt, and AES-256-GCM encrypts and
/// authenticates the secret together with associated data (the key file's header).
public enum SecretBox {
    /// scrypt cost parameters. The defaults (N = 2^15, r = 8, p = 1) take about 0.1 s and
    /// 32 MiB here, the usual interactive setting.
    public struct ScryptParameters: Sendable, Equatable, Codable {
        public var logN: UInt8
        public var r: UInt32
        public var p: UInt32
        public init(logN: UInt8 = 15, r: UInt32 = 8, p: UInt32 = 1) {
            self.logN = logN; self.r = r; self.p = p
        }
        /// Bounds accepted when reading a file, so a hostile file cannot demand
        /// unbounded memory or time.
        public var isWithinLimits: Bool { logN >= 10 && logN <= 20 && r >= 1 && r <= 32 && p >= 1 && p <= 16 }
    }

    public struct Sealed: Sendable, Equatable {
        public var parameters: ScryptParameters
        public var salt: [UInt8]      // 16 bytes
        public var nonce: [UInt8]     // 12 bytes
        public var ciphertext: [UInt8]
        public var tag: [UInt8]       // 16 bytes
    }

    public static func randomBytes(_ n: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        let ok = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(n)) }
        precondition(ok == 1, "the system random generator failed")
        return out
    }

    static func deriveKey(passphrase: String, salt: [UInt8], parameters: ScryptParameters) throws(SecretBoxError) -> [UInt8] {
        guard parameters.isWithinLimits else { throw .parametersOutOfRange }
        let pass = Array(passphrase.utf8)
        var key = [UInt8](repeating: 0, count: 32)
        let n = UInt64(1) << UInt64(parameters.logN)
        let maxmem = UInt64(256) * n * UInt64(parameters.r) * UInt64(parameters.p)
        let ok = passphrase.withCString { cpass in
            salt.withUnsafeBufferPointer { sp in
                key.withUnsafeMutableBufferPointer { kp in
                    EVP_PBE_scrypt(cpass, pass.count, sp.baseAddress, salt.count,
                                   n, UInt64(parameters.r), UInt64(parameters.p), maxmem,
                                   kp.baseAddress, 32)
                }
            }
        }
        guard ok == 1 else { throw .kdfFailed }
        return key
    }

    /// Encrypts `secret` under `passphrase`, binding `associatedData`.
    public static func seal(_ secret: [UInt8], passphrase: String, associatedData: [UInt8],
                            parameters: ScryptParameters = .init()) throws(SecretBoxError) -> Sealed {
        let salt = randomBytes(16)
        let nonce = randomBytes(12)
        let key = try deriveKey(passphrase: passphrase, salt: salt, parameters: parameters)
        let (ct, tag) = try gcm(encrypt: true, key: key, nonce: nonce, input: secret, aad: associatedData, tag: nil)
        return Sealed(parameters: parameters, salt: salt, nonce: nonce, ciphertext: ct, tag: tag)
    }

    /// Decrypts; throws `.wrongPassphraseOrTampered` when the passphrase is wrong or any
    /// byte of the ciphertext, tag or associated data was changed.
    public static func open(_ sealed: Sealed, passphrase: String, associatedData: [UInt8]) throws(SecretBoxError) -> [UInt8] {
        guard sealed.salt.count == 16, sealed.nonce.count == 12, sealed.tag.count == 16 else { throw .malformed }
        let key = try deriveKey(passphrase: passphrase, salt: sealed.salt, parameters: sealed.parameters)
        return try gcm(encrypt: false, key: key, nonce: sealed.nonce, input: sealed.ciphertext,
                       aad: associatedData, tag: sealed.tag).output
    }

    private static func gcm(encrypt: Bool, key: [UInt8], nonce: [UInt8], input: [UInt8], aad: [UInt8],
                            tag: [UInt8]?) throws(SecretBoxError) -> (output: [UInt8], tag: [UInt8]) {
        guard let ctx = EVP_CIPHER_CTX_new() else { throw .cipherFailed }
        defer { EVP_CIPHER_CTX_free(ctx) }
        let initFn = encrypt ? EVP_EncryptInit_ex : EVP_DecryptInit_ex
        let updateFn = encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate
        guard initFn(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, Int32(nonce.count), nil) == 1,
              initFn(ctx, nil, nil, key, nonce) == 1 else { throw .cipherFailed }
        var outLen: Int32 = 0
        if !aad.isEmpty {
            guard updateFn(ctx, nil, &outLen, aad, Int32(aad.count)) == 1 else { throw .cipherFailed }
        }
        var output = [UInt8](repeating: 0, count: input.count + 16)
        var total: Int32 = 0
        if !input.isEmpty {
            let ok = output.withUnsafeMutableBufferPointer { updateFn(ctx, $0.baseAddress, &outLen, input, Int32(input.count)) }
            guard ok == 1 else { throw .cipherFailed }
            total = outLen
        }
        if encrypt {
            let ok = output.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx, $0.baseAddress! + Int(total), &outLen) }
            guard ok == 1 else { throw .cipherFailed }
            total += outLen
            var t = [UInt8](repeating: 0, count: 16)
            guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, &t) == 1 else { throw .cipherFailed }
            return (Array(output[..<Int(total)]), t)
        } else {
            var t = tag ?? []
            guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, &t) == 1 else { throw .cipherFailed }
            let ok = output.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress! + Int(total), &outLen) }
            guard ok == 1 else { throw .wrongPassphraseOrTampered }
            total += outLen
            return (Array(output[..<Int(total)]), t)
        }
    }
}

public enum SecretBoxError: QuarryError, Equatable {
    case parametersOutOfRange, kdfFailed, cipherFailed, malformed, wrongPassphraseOrTampered

    public var code: String {
        switch self {
        case .wrongPassphraseOrTampered: return "keystore.wrong_passphrase"
        default: return "keystore.crypto_failed"
        }
    }

    public var description: String {
        switch self {
        case .parametersOutOfRange: return "key file asks for scrypt parameters outside the accepted range"
        case .kdfFailed: return "scrypt key derivation failed"
        case .cipherFailed: return "AES-256-GCM failed"
        case .malformed: return "encrypted key has a salt, nonce or tag of the wrong size"
        case .wrongPassphraseOrTampered: return "wrong passphrase, or the key file was altered"
        }
    }
}
