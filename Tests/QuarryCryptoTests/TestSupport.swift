import QuarryCore
@testable import QuarryCrypto

/// Hex to bytes for test vectors (crashes the test on a typo, which is what we want).
func bytes(_ hex: String) -> [UInt8] { try! Hex.decode(hex.lowercased()) }

func hexOf(_ b: [UInt8]) -> String { Hex.encode(b) }

/// Adds a small integer to a 32-byte big-endian value (mod 2^256).
func add(_ x: [UInt8], _ k: Int) -> [UInt8] {
    var out = x
    var carry = k
    for i in stride(from: 31, through: 0, by: -1) where carry != 0 {
        let t = Int(out[i]) + carry
        out[i] = UInt8(t & 0xff)
        carry = t >> 8
    }
    return out
}

/// n - x for 32-byte big-endian values with x <= n.
func subtract(_ n: [UInt8], _ x: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 32)
    var borrow = 0
    for i in stride(from: 31, through: 0, by: -1) {
        var t = Int(n[i]) - Int(x[i]) - borrow
        borrow = t < 0 ? 1 : 0
        if t < 0 { t += 256 }
        out[i] = UInt8(t)
    }
    precondition(borrow == 0)
    return out
}

func flipBit(_ b: [UInt8], _ bit: Int) -> [UInt8] {
    var out = b
    out[bit / 8] ^= UInt8(1 << (bit % 8))
    return out
}
