import Testing
import QuarryCore
@testable import QuarryCrypto

@Suite struct SigningKeyTests {
    @Test(arguments: SignatureScheme.allCases)
    func genericSignAndVerify(scheme: SignatureScheme) throws {
        let key = SigningKey(scheme: scheme)
        #expect(key.scheme == scheme)
        #expect(key.publicKeyBytes.scheme == scheme)
        #expect(key.publicKeyBytes.bytes.count == scheme.publicKeySize)
        let message = Array("transfer 10 to quarry1...".utf8)
        let sig = try key.sign(message)
        #expect(sig.count == 64)
        #expect(SignatureVerification.isValid(signature: sig, message: message, publicKey: key.publicKeyBytes))
        #expect(!SignatureVerification.isValid(signature: sig, message: message + [0], publicKey: key.publicKeyBytes))
        let other = SigningKey(scheme: scheme)
        #expect(!SignatureVerification.isValid(signature: sig, message: message, publicKey: other.publicKeyBytes))
        let restored = try SigningKey(scheme: scheme, rawRepresentation: key.rawRepresentation)
        #expect(restored.publicKeyBytes == key.publicKeyBytes)
    }

    @Test func secp256k1SignsTheSM3OfTheMessage() throws {
        let key = Secp256k1PrivateKey()
        let message = Array("claim".utf8)
        let sig = try SigningKey.secp256k1(key).sign(message)
        #expect(key.publicKey.isValidSignature(try Secp256k1Signature(rawRepresentation: sig), forDigest: SM3.hash(message)))
    }

    @Test(arguments: SignatureScheme.allCases)
    func addressDerivationAndText(scheme: SignatureScheme) throws {
        let key = SigningKey(scheme: scheme)
        let address = key.address
        let expectedDigest = SM3.hash([scheme.rawValue] + key.publicKeyBytes.bytes)
        #expect(address.bytes == [scheme.rawValue] + Array(expectedDigest.bytes.prefix(20)))
        #expect(address == Address(publicKey: key.publicKeyBytes))
        #expect(address.scheme == scheme)
        let text = address.text
        #expect(text.hasPrefix("quarry1"))
        #expect(try Address(text: text) == address)
    }

    @Test func addressOfStandardExampleKey() throws {
        // Fixed input, fixed output: SM3(01 || 04 || X || Y) truncated to 20 bytes.
        let pub = try PublicKeyBytes(scheme: .sm2, bytes: GBT32918Example.publicKey)
        let address = Address(publicKey: pub)
        #expect(hexOf(address.bytes) == "01" + String(SM3.hash([1] + GBT32918Example.publicKey).hex.prefix(40)))
        // Computed independently in Python (gmssl's SM3, BIP 350's reference Bech32m).
        #expect(hexOf(address.bytes) == "016a0fd8b812133c179bcdb7f8dd1c1922a60c0490")
        #expect(address.text == "quarry1q94qlk9czgfnc9umekml3hgury32vrqyjq6g8k69")
        #expect(try Address(text: "quarry1q94qlk9czgfnc9umekml3hgury32vrqyjq6g8k69") == address)
    }

    @Test func wrongChecksumIsRejected() throws {
        let text = SigningKey(scheme: .sm2).address.text
        var chars = Array(text)
        let last = chars.count - 1
        chars[last] = chars[last] == "q" ? "p" : "q"
        let mangled = String(chars)
        #expect(throws: AddressError.self) { try Address(text: mangled) }
        do {
            _ = try Address(text: mangled)
        } catch {
            #expect(error.code == "address.invalid")
            #expect(error.description.contains("checksum"), "message was: \(error.description)")
        }
    }
}

@Suite struct SecretHygieneTests {
    @Test(arguments: SignatureScheme.allCases)
    func descriptionsDoNotRevealPrivateKeys(scheme: SignatureScheme) {
        let key = SigningKey(scheme: scheme)
        let secret = Hex.encode(key.rawRepresentation)
        var dumped = ""
        dump(key, to: &dumped)
        for text in [String(describing: key), String(reflecting: key), "\(key)", dumped] {
            #expect(!text.lowercased().contains(secret), "leaked in: \(text)")
            #expect(!text.contains(String(describing: key.rawRepresentation)))
        }
    }
}
