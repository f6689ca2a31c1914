import Testing
import QuarryCore
@testable import QuarryCrypto

/// A small deterministic generator (xorshift64*), so mutation tests are reproducible.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2685821657736338717
    }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

/// Every decoder meets damaged input: each byte of a valid encoding changed, every
/// truncation, and random bytes. Nothing may crash; whatever is accepted must be a
/// valid, canonical value.
@Suite struct MutationTests {
    @Test func sm2PublicKeyDER() {
        let pub = SM2PrivateKey().publicKey
        let der = pub.derRepresentation
        var accepted = 0
        for i in der.indices {
            for mask: UInt8 in [0x01, 0x80, 0xff] {
                var mutated = der
                mutated[i] ^= mask
                if let key = try? SM2PublicKey(derRepresentation: mutated) {
                    accepted += 1
                    #expect(key.derRepresentation == mutated)  // only canonical encodings get through
                }
            }
        }
        // A changed coordinate is (all but certainly) off the curve; a changed header is
        // not a canonical SM2 SPKI.
        #expect(accepted == 0)
        for length in 0..<der.count {
            #expect(throws: CryptoError.self) { try SM2PublicKey(derRepresentation: Array(der.prefix(length))) }
        }
    }

    @Test func sm2PrivateKeyDER() {
        let key = SM2PrivateKey()
        let der = key.derRepresentation
        for i in der.indices {
            for mask: UInt8 in [0x01, 0x80, 0xff] {
                var mutated = der
                mutated[i] ^= mask
                if let parsed = try? SM2PrivateKey(derRepresentation: mutated) {
                    // Survivable changes cannot alter the scalar without the embedded public
                    // key catching it, so the key is either the same or self-consistent.
                    #expect(parsed.publicKey.rawRepresentation == SM2.publicPoint(privateScalar: parsed.rawRepresentation))
                }
            }
        }
        for length in 0..<der.count {
            #expect(throws: CryptoError.self) { try SM2PrivateKey(derRepresentation: Array(der.prefix(length))) }
        }
    }

    @Test func signatureDERAndRandomInputs() throws {
        var random = TestRandom(seed: 0x5eed_c0de)
        let sig = try SM2PrivateKey().signature(for: [1])
        let der = sig.derRepresentation
        for i in der.indices {
            for mask: UInt8 in [0x01, 0x80, 0xff] {
                var mutated = der
                mutated[i] ^= mask
                if let parsed = try? SM2Signature(derRepresentation: mutated) {
                    #expect(parsed.derRepresentation == mutated)  // strict: re-encodes identically
                }
            }
        }
        for _ in 0..<2000 {
            let length = Int(random.next() % 80)
            var input = random.bytes(length)
            if length >= 2, random.next() % 2 == 0 { input[0] = 0x30; input[1] = UInt8(length - 2) }
            if let parsed = try? SM2Signature(derRepresentation: input) { #expect(parsed.derRepresentation == input) }
            if let parsed = try? Secp256k1Signature(derRepresentation: input) { #expect(parsed.derRepresentation == input) }
            _ = try? SM2PublicKey(derRepresentation: input)
            _ = try? SM2PrivateKey(derRepresentation: input)
            _ = try? Secp256k1PublicKey(rawRepresentation: input)
            _ = try? SM2PublicKey(rawRepresentation: input)
        }
    }

    @Test func pemDamage() throws {
        let key = SM2PrivateKey()
        let pem = key.pemRepresentation
        #expect(throws: CryptoError.self) { try SM2PrivateKey(pemRepresentation: pem.replacing("PRIVATE KEY", with: "EC PRIVATE KEY")) }
        #expect(throws: CryptoError.self) { try SM2PrivateKey(pemRepresentation: String(pem.dropLast(30))) }
        #expect(throws: CryptoError.self) { try SM2PrivateKey(pemRepresentation: "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n") }
        let encryptedHeader = pem.replacing("-----BEGIN PRIVATE KEY-----\n",
            with: "-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\n")
        #expect(throws: CryptoError.self) { try SM2PrivateKey(pemRepresentation: encryptedHeader) }
        // Surrounding text is tolerated, as PEM allows.
        #expect(try SM2PrivateKey(pemRepresentation: "my key:\n" + pem + "\n").rawRepresentation == key.rawRepresentation)
    }
}
