import QuarryCore
import QuarryConsensus

/// The simulator's only source of randomness: QuarryCore's SplitMix64, seeded from one
/// UInt64, with the draws the simulator needs.
public struct SimRandom: Sendable {
    private var generator: SplitMix64
    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    public mutating func next() -> UInt64 { generator.next() }

    /// Uniform in 0..<n (n > 0); the modulo bias is irrelevant for a simulator.
    public mutating func below(_ n: UInt64) -> UInt64 { next() % n }
    public mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(below(UInt64(range.upperBound - range.lowerBound + 1)))
    }
    /// True with probability perMille / 1000.
    public mutating func chance(_ perMille: UInt64) -> Bool { below(1000) < perMille }
}

/// A fast keyed 128-bit mixing function. NOT a cryptographic MAC: it stands in for SM2
/// only inside the simulator, where code structure (not hardness) guarantees that only a
/// validator's own node holds its secret. Production signs with SM2.
public enum TestMAC {
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public static func tag(key: UInt64, _ bytes: [UInt8]) -> (UInt64, UInt64) {
        var a = mix(key ^ 0x5151_7A7A_0101_3C3C)
        var b = mix(key &+ 0x0F0F_E1E1_2323_9999)
        var word: UInt64 = 0
        var n = 0
        for byte in bytes {
            word = word << 8 | UInt64(byte)
            n += 1
            if n == 8 {
                a = mix(a ^ word) &+ b
                b = mix(b &+ word) ^ a
                word = 0
                n = 0
            }
        }
        a = mix(a ^ word ^ UInt64(bytes.count))
        b = mix(b &+ word &+ UInt64(n) &* 0x1000_0000_0000_0001) ^ a
        return (mix(a ^ key), mix(b &+ key))
    }

    public static func bytes(_ t: (UInt64, UInt64)) -> [UInt8] {
        var e = CanonicalEncoder(capacity: 16)
        e.u64(t.0)
        e.u64(t.1)
        return e.bytes
    }

    /// A 32-byte test digest for block ids (not SM3; simulation only).
    public static func digest(_ bytes: [UInt8]) -> Hash256 {
        let t1 = tag(key: 0x1234_5678_9ABC_DEF0, bytes)
        let t2 = tag(key: 0x0FED_CBA9_8765_4321, bytes)
        var e = CanonicalEncoder(capacity: 32)
        e.u64(t1.0); e.u64(t1.1); e.u64(t2.0); e.u64(t2.1)
        return Hash256(unchecked: e.bytes)
    }
}

/// Public key (8 bytes) -> secret. The verifier looks the secret up to recompute the tag;
/// signers hold only their own secret.
public final class TestKeyRegistry: @unchecked Sendable {
    private var secrets: [[UInt8]: UInt64] = [:]
    public init() {}

    public func register(secret: UInt64) -> [UInt8] {
        var e = CanonicalEncoder(capacity: 8)
        e.u64(TestMAC.mix(secret ^ 0x7075_626B_6579_2121))
        secrets[e.bytes] = secret
        return e.bytes
    }

    func secret(for publicKey: [UInt8]) -> UInt64? { secrets[publicKey] }
}

public struct TestSigner: ConsensusSigner {
    public let publicKey: [UInt8]
    let secret: UInt64
    public init(secret: UInt64, registry: TestKeyRegistry) {
        self.secret = secret
        self.publicKey = registry.register(secret: secret)
    }
    public func sign(_ message: [UInt8]) throws -> [UInt8] { TestMAC.bytes(TestMAC.tag(key: secret, message)) }
}

/// Real verification of the test scheme: a wrong or forged tag is rejected.
public struct TestVerifier: SignatureVerifier {
    let registry: TestKeyRegistry
    public init(registry: TestKeyRegistry) { self.registry = registry }
    public func isValid(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard signature.count == 16, let secret = registry.secret(for: publicKey) else { return false }
        return signature == TestMAC.bytes(TestMAC.tag(key: secret, message))
    }
}
