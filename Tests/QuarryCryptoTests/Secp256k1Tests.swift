import Testing
import QuarryCore
@testable import QuarryCrypto

@Suite struct Secp256k1Tests {
    @Test func generatorFromKeyOne() throws {
        let one = add([UInt8](repeating: 0, count: 32), 1)
        let key = try Secp256k1PrivateKey(rawRepresentation: one)
        #expect(hexOf(key.publicKey.rawRepresentation) == "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
        #expect(hexOf(key.publicKey.uncompressedRepresentation) == "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8")
        let fromUncompressed = try Secp256k1PublicKey(rawRepresentation: key.publicKey.uncompressedRepresentation)
        #expect(fromUncompressed == key.publicKey)
        #expect(fromUncompressed.rawRepresentation.count == 33)
    }

    @Test func signAndVerifyRoundTrip() throws {
        let key = Secp256k1PrivateKey()
        let digest = SM3.hash(Array("hello".utf8))
        let sig = try key.signature(forDigest: digest)
        #expect(key.publicKey.isValidSignature(sig, forDigest: digest))
        #expect(!key.publicKey.isValidSignature(sig, forDigest: SM3.hash(Array("hellp".utf8))))
        #expect(!Secp256k1PrivateKey().publicKey.isValidSignature(sig, forDigest: digest))
        // RFC 6979: deterministic.
        #expect(try key.signature(forDigest: digest) == sig)
        #expect(Scalar.compare(sig.rawRepresentation[32...], Secp256k1.halfN) <= 0)
        #expect(try Secp256k1Signature(derRepresentation: sig.derRepresentation) == sig)
    }

    @Test func randomKeysDiffer() {
        #expect(Secp256k1PrivateKey().rawRepresentation != Secp256k1PrivateKey().rawRepresentation)
        #expect(SM2PrivateKey().rawRepresentation != SM2PrivateKey().rawRepresentation)
    }
}
