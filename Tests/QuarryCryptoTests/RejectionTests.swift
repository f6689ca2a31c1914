import Testing
import QuarryCore
@testable import QuarryCrypto

private let zero32 = [UInt8](repeating: 0, count: 32)
private let one32 = add(zero32, 1)
private let ff32 = [UInt8](repeating: 0xff, count: 32)

/// A P-256 key (not SM2) in SubjectPublicKeyInfo and PKCS#8, made with `openssl ecparam`.
private let p256SPKI = bytes("3059301306072a8648ce3d020106082a8648ce3d03010703420004b2494237959db7d33f380112b3bb8d201ddd34cb6040b90a8fe13e7c9aaf2e28b829d626f09deca8ac580e3acce3d780d3bed23df4d5a6e1fbdc426c00fe53a3")
private let p256PKCS8 = bytes("308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420e72cf8ffa80e607de81dca23d9384d6d0c166991061bb7a962b06f174f42cfc2a14403420004b2494237959db7d33f380112b3bb8d201ddd34cb6040b90a8fe13e7c9aaf2e28b829d626f09deca8ac580e3acce3d780d3bed23df4d5a6e1fbdc426c00fe53a3")
/// An SM2 key from `openssl genpkey -algorithm SM2` (PKCS#8 PEM), and the same key as a
/// SEC1 ECPrivateKey (not PKCS#8).
private let opensslSM2PEM = """
    -----BEGIN PRIVATE KEY-----
    MIGHAgEAMBMGByqGSM49AgEGCCqBHM9VAYItBG0wawIBAQQg/wE18bAmCERUWOZJ
    k+z8UHV6DmSdGykWyizf/gCuK96hRANCAAQkkIPPicVSTKzQJe+/bTDy8LcbLhTo
    08Nr7wpnkq/Cbig41q5/52qbj2emQ6XstuV+Hw4fTYrKEZdDfTaep0i+
    -----END PRIVATE KEY-----

    """
private let opensslSM2Private = bytes("ff0135f1b02608445458e64993ecfc50757a0e649d1b2916ca2cdffe00ae2bde")
private let opensslSM2Public = bytes("04249083cf89c5524cacd025efbf6d30f2f0b71b2e14e8d3c36bef0a6792afc26e2838d6ae7fe76a9b8f67a643a5ecb6e57e1f0e1f4d8aca1197437d369ea748be")
private let opensslSM2SEC1 = bytes("30770201010420ff0135f1b02608445458e64993ecfc50757a0e649d1b2916ca2cdffe00ae2bdea00a06082a811ccf5501822da14403420004249083cf89c5524cacd025efbf6d30f2f0b71b2e14e8d3c36bef0a6792afc26e2838d6ae7fe76a9b8f67a643a5ecb6e57e1f0e1f4d8aca1197437d369ea748be")

/// The ledger path (process-wide engine), and each engine named explicitly; all three must
/// agree, and the answer is returned.
private func sm2Valid(_ raw: [UInt8], _ message: [UInt8], _ key: [UInt8]) -> Bool {
    let ledger = SignatureVerification.isValid(signature: raw, message: message, publicKey: try! PublicKeyBytes(scheme: .sm2, bytes: key))
    for engine in SM2VerificationEngine.allCases {
        #expect(SM2.isValidSignature(raw, for: message, publicKey: key, engine: engine) == ledger, "\(engine)")
    }
    return ledger
}

private func k1Valid(_ raw: [UInt8], _ message: [UInt8], _ key: [UInt8]) -> Bool {
    SignatureVerification.isValid(signature: raw, message: message, publicKey: try! PublicKeyBytes(scheme: .secp256k1, bytes: key))
}

@Suite struct SM2RejectionTests {
    @Test func signatureValuesOutOfRange() throws {
        let n = SM2.n
        let nMinus1 = subtract(n, one32)
        let cases: [(String, [UInt8])] = [
            ("r = 0", zero32 + one32), ("s = 0", one32 + zero32),
            ("r = n", n + one32), ("s = n", one32 + n),
            ("r > n", ff32 + one32), ("s > n", one32 + ff32),
            ("r + s = n", one32 + nMinus1), ("r + s = n (other split)", subtract(n, add(zero32, 12345)) + add(zero32, 12345)),
        ]
        let key = SM2PrivateKey().publicKey
        for (name, raw) in cases {
            #expect(throws: CryptoError.self, "\(name)") { try SM2Signature(rawRepresentation: raw) }
            #expect(!sm2Valid(raw, [1], key.rawRepresentation), "\(name)")
        }
        // Boundary values are well formed (they just do not verify).
        #expect(throws: Never.self) { try SM2Signature(rawRepresentation: one32 + add(one32, 1)) }
        #expect(throws: Never.self) { try SM2Signature(rawRepresentation: nMinus1 + add(one32, 1)) }
    }

    @Test func signatureWrongLengths() {
        let sig = try! SM2PrivateKey().signature(for: [1])
        let key = sig.rawRepresentation // any 64 bytes
        for length in [0, 1, 32, 63, 65, 72, 128] {
            let raw = Array((key + key + key).prefix(length))
            #expect(throws: CryptoError.wrongLength(what: "SM2 signature", expected: "64", actual: length)) {
                try SM2Signature(rawRepresentation: raw)
            }
        }
        let priv = SM2PrivateKey()
        let good = try! priv.signature(for: [5]).rawRepresentation
        #expect(sm2Valid(good, [5], priv.publicKey.rawRepresentation))
        #expect(!sm2Valid(good + [0], [5], priv.publicKey.rawRepresentation))
        #expect(!sm2Valid(Array(good.dropLast()), [5], priv.publicKey.rawRepresentation))
        #expect(!sm2Valid(sig.derRepresentation, [5], priv.publicKey.rawRepresentation))
    }

    @Test func flippedBitsInMessageKeyAndSignature() throws {
        let priv = SM2PrivateKey()
        let message = Array("pay 100 stones".utf8)
        let sig = try priv.signature(for: message).rawRepresentation
        let pub = priv.publicKey.rawRepresentation
        #expect(sm2Valid(sig, message, pub))
        for bit in stride(from: 0, to: message.count * 8, by: 7) {
            #expect(!sm2Valid(sig, flipBit(message, bit), pub), "message bit \(bit)")
        }
        for bit in stride(from: 0, to: 512, by: 5) {
            #expect(!sm2Valid(flipBit(sig, bit), message, pub), "signature bit \(bit)")
        }
        for bit in stride(from: 0, to: 520, by: 5) {
            let key = flipBit(pub, bit)
            #expect(!sm2Valid(sig, message, key), "key bit \(bit)")
            // A flipped key is almost never a curve point at all.
            if bit >= 8 { #expect(throws: CryptoError.self) { try SM2PublicKey(rawRepresentation: key) } }
        }
        #expect(!sm2Valid(sig, message, SM2PrivateKey().publicKey.rawRepresentation))
    }

    @Test(arguments: SM2VerificationEngine.allCases)
    func publicKeyRejections(engine: SM2VerificationEngine) throws {
        func parse(_ raw: [UInt8]) throws(CryptoError) -> SM2PublicKey { try SM2PublicKey(rawRepresentation: raw, engine: engine) }
        let good = SM2PrivateKey().publicKey.rawRepresentation
        #expect(throws: CryptoError.self) { try parse(Array(good.dropLast())) }
        #expect(throws: CryptoError.self) { try parse(good + [0]) }
        #expect(throws: CryptoError.self) { try parse(Array(good.dropFirst())) }
        #expect(throws: CryptoError.self) { try parse([0]) }       // SEC1 infinity
        #expect(throws: CryptoError.self) { try parse([]) }
        // Compressed or hybrid prefixes on a 65-byte key.
        for prefix: UInt8 in [0x00, 0x02, 0x03, 0x06, 0x07, 0x05] {
            #expect(throws: CryptoError.self) { try parse([prefix] + good.dropFirst()) }
        }
        // Compressed form of a valid point is not accepted either (ledger keys are 65 bytes).
        #expect(throws: CryptoError.self) { try parse([0x02 | (good[64] & 1)] + good[1..<33]) }
        // (0, 0) and coordinates >= p.
        #expect(throws: CryptoError.self) { try parse([4] + zero32 + zero32) }
        #expect(throws: CryptoError.self) { try parse([4] + SM2.p + good[33...]) }
        #expect(throws: CryptoError.self) { try parse([4] + ff32 + ff32) }
        // x + p for a point whose x is small would alias; here: y replaced by p - y + p is
        // out of range, y replaced by p - y is the negated point and valid.
        let negY = subtract(SM2.p, Array(good[33...]))
        #expect(throws: Never.self) { try parse([4] + good[1..<33] + negY) }
        // Off the curve: y + 1.
        #expect(throws: CryptoError.self) { try parse([4] + good[1..<33] + add(Array(good[33...]), 1)) }
        do {
            _ = try parse([4] + good[1..<33] + add(Array(good[33...]), 1))
        } catch {
            #expect(error.code == "crypto.invalid_public_key")
            #expect(error.description.contains("not on the curve"))
        }
    }

    @Test func privateKeyRejections() throws {
        let n = SM2.n
        for raw in [zero32, subtract(n, one32), n, add(n, 1), ff32] {
            #expect(throws: CryptoError.privateKeyOutOfRange(scheme: .sm2)) { try SM2PrivateKey(rawRepresentation: raw) }
        }
        for length in [0, 31, 33] {
            #expect(throws: CryptoError.self) { try SM2PrivateKey(rawRepresentation: [UInt8](repeating: 1, count: length)) }
        }
        // The extremes of [1, n-2] are keys.
        #expect(throws: Never.self) { try SM2PrivateKey(rawRepresentation: one32) }
        let top = try SM2PrivateKey(rawRepresentation: subtract(n, add(zero32, 2)))
        let sig = try top.signature(for: [3])
        #expect(top.publicKey.isValidSignature(sig, for: [3]))
    }

    @Test func strictDERSignatures() throws {
        let sig = try SM2PrivateKey().signature(for: [1])
        let der = sig.derRepresentation
        #expect(try SM2Signature(derRepresentation: der) == sig)
        var bad: [(String, [UInt8])] = [
            ("empty", []),
            ("trailing byte", der + [0]),
            ("truncated", Array(der.dropLast())),
            ("wrong outer tag", [0x31] + der.dropFirst()),
            ("long-form sequence length", [0x30, 0x81, der[1]] + der[2...]),
            ("indefinite length", [0x30, 0x80] + der[2...] + [0, 0]),
            ("sequence length too big", [0x30, der[1] + 1] + der[2...]),
            ("only r", [0x30, 0x03, 0x02, 0x01, 0x01]),
            ("r = 0", [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01]),
            ("s = 0", [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00]),
            ("negative r", [0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01]),
            ("padded r", [0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01]),
            ("empty integer", [0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x01]),
            ("wrong integer tag", [0x30, 0x06, 0x03, 0x01, 0x01, 0x02, 0x01, 0x01]),
            ("three integers", [0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]),
            ("33-byte r without sign pad", [0x30, 0x26, 0x02, 0x21] + [0x01] + ff32 + [0x02, 0x01, 0x01]),
            ("r = n", SignatureDER.encode(r: SM2.n[...], s: one32[...])),
            ("r + s = n", SignatureDER.encode(r: one32[...], s: subtract(SM2.n, one32)[...])),
        ]
        // Long-form length on an integer.
        bad.append(("long-form integer length", [0x30, 0x07, 0x02, 0x81, 0x01, 0x01, 0x02, 0x01, 0x01]))
        for (name, bytes) in bad {
            #expect(throws: CryptoError.self, "\(name)") { try SM2Signature(derRepresentation: bytes) }
        }
    }

    @Test func keyEncodingRejections() throws {
        // The openssl CLI's SM2 PKCS#8 key parses to the same key.
        let fromCLI = try SM2PrivateKey(pemRepresentation: opensslSM2PEM)
        #expect(fromCLI.rawRepresentation == opensslSM2Private)
        #expect(fromCLI.publicKey.rawRepresentation == opensslSM2Public)
        #expect(try SM2PrivateKey(derRepresentation: fromCLI.derRepresentation).rawRepresentation == opensslSM2Private)

        #expect(throws: CryptoError.self, "SEC1 is not PKCS#8") { try SM2PrivateKey(derRepresentation: opensslSM2SEC1) }
        // The same key as PKCS#8 with a compressed embedded public key (`openssl ec
        // -conv_form compressed | openssl pkcs8 -topk8`) is accepted; with the parity byte
        // changed (another point) it is refused.
        let compressedPKCS8 = bytes("3067020100301306072a8648ce3d020106082a811ccf5501822d044d304b0201010420ff0135f1b02608445458e64993ecfc50757a0e649d1b2916ca2cdffe00ae2bdea12403220002249083cf89c5524cacd025efbf6d30f2f0b71b2e14e8d3c36bef0a6792afc26e")
        #expect(try SM2PrivateKey(derRepresentation: compressedPKCS8).publicKey.rawRepresentation == opensslSM2Public)
        var wrongParity = compressedPKCS8
        wrongParity[wrongParity.count - 33] = 0x03
        #expect(throws: CryptoError.self) { try SM2PrivateKey(derRepresentation: wrongParity) }
        #expect(throws: CryptoError.self, "P-256 key") { try SM2PrivateKey(derRepresentation: p256PKCS8) }
        #expect(throws: CryptoError.self, "P-256 key") { try SM2PublicKey(derRepresentation: p256SPKI) }
        let der = fromCLI.derRepresentation
        #expect(throws: CryptoError.self) { try SM2PrivateKey(derRepresentation: der + [0]) }
        #expect(throws: CryptoError.self) { try SM2PrivateKey(derRepresentation: Array(der.dropLast())) }
        #expect(throws: CryptoError.self) { try SM2PrivateKey(derRepresentation: []) }
        #expect(throws: CryptoError.self) { try SM2PrivateKey(pemRepresentation: "") }
        #expect(throws: CryptoError.self) { try SM2PrivateKey(pemRepresentation: fromCLI.publicKey.pemRepresentation) }

        let spki = fromCLI.publicKey.derRepresentation
        #expect(throws: CryptoError.self) { try SM2PublicKey(derRepresentation: spki + [0]) }
        #expect(throws: CryptoError.self) { try SM2PublicKey(derRepresentation: Array(spki.dropLast())) }
        #expect(throws: CryptoError.self) { try SM2PublicKey(derRepresentation: der) }
        #expect(throws: CryptoError.self) { try SM2PublicKey(pemRepresentation: fromCLI.pemRepresentation) }
        // An SPKI whose point is off the curve (last byte changed).
        var offCurve = spki
        offCurve[offCurve.count - 1] ^= 1
        #expect(throws: CryptoError.self) { try SM2PublicKey(derRepresentation: offCurve) }
        // A PKCS#8 whose embedded public key belongs to another private key.
        let other = SM2PrivateKey().publicKey.rawRepresentation
        var mismatched = der
        let at = mismatched.count - 65
        #expect(Array(mismatched[at...]) == opensslSM2Public)
        mismatched.replaceSubrange(at..., with: other)
        #expect(throws: CryptoError.self) { try SM2PrivateKey(derRepresentation: mismatched) }
    }
}

@Suite struct Secp256k1RejectionTests {
    @Test func signatureValuesOutOfRange() throws {
        let n = Secp256k1.n
        let priv = Secp256k1PrivateKey()
        let digest = SM3.hash([1, 2, 3])
        let good = try priv.signature(forDigest: digest).rawRepresentation
        let r = Array(good[..<32]), s = Array(good[32...])
        let highS = r + subtract(n, s)
        // The high-S twin is mathematically valid ECDSA but refused, not normalised.
        let cases: [(String, [UInt8])] = [
            ("r = 0", zero32 + s), ("s = 0", r + zero32), ("r = n", n + s), ("s = n", r + n),
            ("r > n", ff32 + s), ("s > n", r + ff32), ("high S", highS),
            ("s = n/2 + 1", r + add(Secp256k1.halfN, 1)),
        ]
        for (name, raw) in cases {
            #expect(throws: CryptoError.self, "\(name)") { try Secp256k1Signature(rawRepresentation: raw) }
        }
        #expect(throws: Never.self) { try Secp256k1Signature(rawRepresentation: r + Secp256k1.halfN) }
        do {
            _ = try Secp256k1Signature(rawRepresentation: highS)
        } catch {
            #expect(error.description.contains("high S"))
        }
        // Through the ledger path: SigningKey signs SM3(message).
        let key = SigningKey.secp256k1(priv)
        let message = Array("m".utf8)
        let sig = try key.sign(message)
        let pub = key.publicKeyBytes.bytes
        #expect(k1Valid(sig, message, pub))
        let high = Array(sig[..<32]) + subtract(n, Array(sig[32...]))
        #expect(!k1Valid(high, message, pub))
        for length in [0, 63, 65] {
            #expect(!k1Valid(Array((sig + sig).prefix(length)), message, pub))
            #expect(throws: CryptoError.self) { try Secp256k1Signature(rawRepresentation: Array((sig + sig).prefix(length))) }
        }
        for (_, raw) in cases { #expect(!k1Valid(raw, message, pub)) }
    }

    @Test func flippedBitsInMessageKeyAndSignature() throws {
        let key = SigningKey(scheme: .secp256k1)
        let message = Array("odometer 1200 km".utf8)
        let sig = try key.sign(message)
        let pub = key.publicKeyBytes.bytes
        #expect(k1Valid(sig, message, pub))
        for bit in stride(from: 0, to: message.count * 8, by: 7) { #expect(!k1Valid(sig, flipBit(message, bit), pub)) }
        for bit in stride(from: 0, to: 512, by: 5) { #expect(!k1Valid(flipBit(sig, bit), message, pub)) }
        for bit in stride(from: 0, to: 264, by: 3) { #expect(!k1Valid(sig, message, flipBit(pub, bit))) }
    }

    @Test func publicKeyRejections() throws {
        let priv = Secp256k1PrivateKey()
        let compressed = priv.publicKey.rawRepresentation
        let uncompressed = priv.publicKey.uncompressedRepresentation
        for raw in [[UInt8](), [2], Array(compressed.dropLast()), compressed + [0], Array(uncompressed.dropLast()), uncompressed + [0]] {
            #expect(throws: CryptoError.self) { try Secp256k1PublicKey(rawRepresentation: raw) }
        }
        for prefix: UInt8 in [0x00, 0x01, 0x04, 0x05] {
            #expect(throws: CryptoError.self) { try Secp256k1PublicKey(rawRepresentation: [prefix] + compressed.dropFirst()) }
        }
        // Hybrid encodings (06/07) are valid for libsecp256k1 but refused here.
        for prefix: UInt8 in [0x06, 0x07, 0x02, 0x03] {
            #expect(throws: CryptoError.self) { try Secp256k1PublicKey(rawRepresentation: [prefix] + uncompressed.dropFirst()) }
        }
        // x >= p, and an x with no point (x = 5: 5^3 + 7 = 132 is not a square mod p).
        #expect(throws: CryptoError.self) { try Secp256k1PublicKey(rawRepresentation: [2] + ff32) }
        #expect(throws: CryptoError.self) { try Secp256k1PublicKey(rawRepresentation: [2] + add(zero32, 5)) }
        #expect(throws: CryptoError.self) { try Secp256k1PublicKey(rawRepresentation: [4] + uncompressed[1..<33] + add(Array(uncompressed[33...]), 1)) }
        // The ledger path only takes 33-byte keys (PublicKeyBytes enforces it too).
        #expect(throws: CanonicalError.self) { try PublicKeyBytes(scheme: .secp256k1, bytes: uncompressed) }
    }

    @Test func privateKeyRejections() throws {
        let n = Secp256k1.n
        for raw in [zero32, n, add(n, 1), ff32] {
            #expect(throws: CryptoError.privateKeyOutOfRange(scheme: .secp256k1)) { try Secp256k1PrivateKey(rawRepresentation: raw) }
        }
        for length in [0, 31, 33] {
            #expect(throws: CryptoError.self) { try Secp256k1PrivateKey(rawRepresentation: [UInt8](repeating: 1, count: length)) }
        }
        #expect(throws: Never.self) { try Secp256k1PrivateKey(rawRepresentation: subtract(n, one32)) }
    }

    @Test func strictDERSignatures() throws {
        let sig = try Secp256k1PrivateKey().signature(forDigest: SM3.hash([9]))
        let der = sig.derRepresentation
        #expect(try Secp256k1Signature(derRepresentation: der) == sig)
        #expect(throws: CryptoError.self) { try Secp256k1Signature(derRepresentation: der + [0]) }
        #expect(throws: CryptoError.self) { try Secp256k1Signature(derRepresentation: [0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01]) }
        let high = SignatureDER.encode(r: sig.rawRepresentation[..<32], s: subtract(Secp256k1.n, Array(sig.rawRepresentation[32...]))[...])
        #expect(throws: CryptoError.self) { try Secp256k1Signature(derRepresentation: high) }
    }
}

@Suite struct GenericRejectionTests {
    @Test func crossSchemeAndMalformedInputsAreInvalid() throws {
        let sm2 = SigningKey(scheme: .sm2), k1 = SigningKey(scheme: .secp256k1)
        let message = [UInt8]("x".utf8)
        let sm2Sig = try sm2.sign(message), k1Sig = try k1.sign(message)
        #expect(SignatureVerification.isValid(signature: sm2Sig, message: message, publicKey: sm2.publicKeyBytes))
        #expect(SignatureVerification.isValid(signature: k1Sig, message: message, publicKey: k1.publicKeyBytes))
        #expect(!SignatureVerification.isValid(signature: k1Sig, message: message, publicKey: sm2.publicKeyBytes))
        #expect(!SignatureVerification.isValid(signature: sm2Sig, message: message, publicKey: k1.publicKeyBytes))
        #expect(!SignatureVerification.isValid(signature: [UInt8](repeating: 0, count: 64), message: message, publicKey: sm2.publicKeyBytes))
        #expect(!SignatureVerification.isValid(signature: [], message: message, publicKey: k1.publicKeyBytes))
        // Keys that pass the length check of PublicKeyBytes but are not points.
        let junkSM2 = try PublicKeyBytes(scheme: .sm2, bytes: [4] + [UInt8](repeating: 7, count: 64))
        let junkK1 = try PublicKeyBytes(scheme: .secp256k1, bytes: [9] + [UInt8](repeating: 7, count: 32))
        #expect(!SignatureVerification.isValid(signature: sm2Sig, message: message, publicKey: junkSM2))
        #expect(!SignatureVerification.isValid(signature: k1Sig, message: message, publicKey: junkK1))
    }
}
