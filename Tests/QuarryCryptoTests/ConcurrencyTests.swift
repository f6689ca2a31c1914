import Foundation
import Testing
import QuarryCore
@testable import QuarryCrypto

@Suite struct ConcurrencyTests {
    /// Many threads verify at once, with keys shared between them, and each answer must be
    /// exactly right: a signature is valid for its own key and message only. (A reused
    /// EVP context once made a signature by key A verify under key B; see TOOLCHAIN.md.)
    @Test(arguments: SignatureScheme.allCases)
    func concurrentVerificationIsExact(scheme: SignatureScheme) throws {
        let keys = (0..<6).map { _ in SigningKey(scheme: scheme) }
        let messages = (0..<6).map { Array("message \($0)".utf8) }
        let signatures = try keys.indices.map { try keys[$0].sign(messages[$0]) }
        let publicKeys = keys.map(\.publicKeyBytes)
        let rounds = 4
        let total = rounds * keys.count * keys.count
        let mistakes = Lock()
        nonisolated(unsafe) var wrong: [String] = []
        DispatchQueue.concurrentPerform(iterations: total) { job in
            let pair = job % (keys.count * keys.count)
            let signer = pair / keys.count, verifier = pair % keys.count
            let valid = SignatureVerification.isValid(signature: signatures[signer], message: messages[signer],
                                                      publicKey: publicKeys[verifier])
            if valid != (signer == verifier) {
                mistakes.withLock { wrong.append("signer \(signer) verifier \(verifier) -> \(valid)") }
            }
        }
        #expect(wrong.isEmpty, "\(wrong)")
    }

    @Test func concurrentSigningWithOneKey() throws {
        // One SM2 key (one EVP_PKEY) signing from many threads, each result verified.
        let key = SM2PrivateKey()
        let failures = Lock()
        nonisolated(unsafe) var failed = 0
        DispatchQueue.concurrentPerform(iterations: 48) { i in
            let message = [UInt8(i)]
            let ok = (try? key.signature(for: message)).map { key.publicKey.isValidSignature($0, for: message) } ?? false
            if !ok { failures.withLock { failed += 1 } }
        }
        #expect(failed == 0)
    }

    @Test func keysAreSendableValues() async throws {
        let key = SigningKey(scheme: .sm2)
        let message: [UInt8] = [1, 2, 3]
        // Keys cross task boundaries as values.
        let signature = try await Task.detached { try key.sign(message) }.value
        let valid = await Task.detached { SignatureVerification.isValid(signature: signature, message: message, publicKey: key.publicKeyBytes) }.value
        #expect(valid)
    }
}

@Suite struct VerificationKeyCacheTests {
    @Test func boundedAndNeverStoresInvalidKeys() throws {
        let cache = VerificationKeyCache(capacity: 3)
        let keys = (0..<7).map { _ in SM2PrivateKey().publicKey.rawRepresentation }
        for key in keys {
            #expect(cache.sm2(key)?.rawRepresentation == key)
            #expect(cache.count <= 3)
        }
        #expect(cache.sm2([4] + [UInt8](repeating: 7, count: 64)) == nil)
        #expect(cache.secp256k1([2] + [UInt8](repeating: 0xff, count: 32)) == nil)
        let k1 = Secp256k1PrivateKey().publicKey.rawRepresentation
        #expect(cache.secp256k1(k1)?.rawRepresentation == k1)
        #expect(cache.secp256k1(k1)?.rawRepresentation == k1)
        #expect(cache.count <= 6)
    }

    @Test func cachedKeysGiveTheSameAnswers() throws {
        // Warm the shared cache with one key, then check answers for it and for a key
        // differing in one bit (which must not hit the cached entry).
        let key = SigningKey(scheme: .sm2)
        let message: [UInt8] = [4, 2]
        let sig = try key.sign(message)
        for _ in 0..<3 {
            #expect(SignatureVerification.isValid(signature: sig, message: message, publicKey: key.publicKeyBytes))
            #expect(!SignatureVerification.isValid(signature: sig, message: message + [1], publicKey: key.publicKeyBytes))
        }
        let flipped = try PublicKeyBytes(scheme: .sm2, bytes: flipBit(key.publicKeyBytes.bytes, 300))
        #expect(!SignatureVerification.isValid(signature: sig, message: message, publicKey: flipped))
    }
}
