import QuarryCore
import Testing
@testable import QuarryNetwork

@Suite struct PrimitiveTests {
    @Test func x25519MatchesRFC7748() throws {
        let alice = try X25519PrivateKey(rawRepresentation: try Hex.decode(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
        let bob = try X25519PrivateKey(rawRepresentation: try Hex.decode(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
        #expect(Hex.encode(alice.publicKeyBytes) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        #expect(Hex.encode(bob.publicKeyBytes) == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        #expect(Hex.encode(try alice.sharedSecret(with: bob.publicKeyBytes)) == shared)
        #expect(Hex.encode(try bob.sharedSecret(with: alice.publicKeyBytes)) == shared)
    }

    @Test func x25519RejectsSmallOrderPointsAndBadLengths() {
        let key = X25519PrivateKey()
        #expect(throws: P2PError.self) { try key.sharedSecret(with: [UInt8](repeating: 0, count: 32)) }
        #expect(throws: P2PError.self) { try key.sharedSecret(with: [1] + [UInt8](repeating: 0, count: 31)) }
        #expect(throws: P2PError.self) { try key.sharedSecret(with: [UInt8](repeating: 9, count: 31)) }
        #expect(throws: P2PError.self) { try X25519PrivateKey(rawRepresentation: [1, 2, 3]) }
    }

    @Test func chaChaPolyMatchesRFC8439() throws {
        let key = (0x80...0x9f).map { UInt8($0) }
        let nonce = try Hex.decode("070000004041424344454647")
        let aad = try Hex.decode("50515253c0c1c2c3c4c5c6c7")
        let text = Array("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".utf8)
        let sealed = text.withUnsafeBytes { ChaChaPoly(key: key, encrypting: true).seal($0, nonce: nonce, aad: aad) }
        #expect(Hex.encode(sealed) == "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b61161ae10b594f09e26a7e902ecbd0600691")
        let opener = ChaChaPoly(key: key, encrypting: false)
        #expect(sealed.withUnsafeBytes { opener.open($0, nonce: nonce, aad: aad) } == text)
        var tampered = sealed
        tampered[5] ^= 1
        #expect(tampered.withUnsafeBytes { opener.open($0, nonce: nonce, aad: aad) } == nil)
        #expect(sealed.withUnsafeBytes { opener.open($0, nonce: nonce, aad: [0]) } == nil)
    }

    @Test func chaChaPolyCounterNonces() {
        #expect(ChaChaPoly.nonce(counter: 0x0102_0304_0506_0708) == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
        let key = [UInt8](repeating: 7, count: 32)
        let sealer = ChaChaPoly(key: key, encrypting: true)
        let opener = ChaChaPoly(key: key, encrypting: false)
        let a = sealer.seal([], counter: 0, aad: [])
        #expect(a.count == 16)
        #expect(opener.open(a, counter: 0, aad: []) == [])
        let b = sealer.seal([1, 2, 3], counter: 1, aad: [9])
        #expect(opener.open(b, counter: 1, aad: [9]) == [1, 2, 3])
        #expect(opener.open(b, counter: 2, aad: [9]) == nil)
    }

    /// Expected values computed independently with Python's hmac over hashlib's SM3.
    @Test func hkdfSM3KnownAnswers() throws {
        let okm = HKDFSM3.derive(secret: (0..<22).map { UInt8($0) }, salt: (0..<13).map { UInt8($0) },
                                 info: (0xf0..<0xfa).map { UInt8($0) }, count: 42)
        #expect(Hex.encode(okm) == "0d83625e1178bec7152c1f162ccd6420b41978ed24f0aaaefba3644f13b0f49fcf52d5fed31d97c3071b")
        let okm2 = HKDFSM3.derive(secret: [UInt8](repeating: 0x0b, count: 22), salt: [], info: [], count: 32)
        #expect(Hex.encode(okm2) == "c8c91a38ae2fb3b023a7c38ce9f0748f28230d59b6b950ba3ba949bf0d713a57")
    }

    @Test func backoffGrowsCapsAndJitters() {
        let backoff = ReconnectBackoff(delayMinMilliseconds: 100, delayMaxMilliseconds: 1_000)
        #expect((0..<6).map { backoff.ceilingMilliseconds(attempt: $0) } == [100, 200, 400, 800, 1_000, 1_000])
        #expect(backoff.ceilingMilliseconds(attempt: 1_000_000) == 1_000)
        var rng = SplitMix64(seed: 42)
        var seen = Set<Int64>()
        for attempt in 0..<50 {
            let d = backoff.delayMilliseconds(attempt: attempt, using: &rng)
            let c = backoff.ceilingMilliseconds(attempt: attempt)
            #expect(d >= c / 2 && d <= c)
            seen.insert(d)
        }
        #expect(seen.count > 10)
        var a = SplitMix64(seed: 7), b = SplitMix64(seed: 7)
        #expect(backoff.delayMilliseconds(attempt: 3, using: &a) == backoff.delayMilliseconds(attempt: 3, using: &b))
    }
}
