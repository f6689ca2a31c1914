/// Arithmetic-free checks on 256-bit scalars held as 32-byte big-endian arrays, and the
/// strict DER form of an ECDSA/SM2 signature (`SEQUENCE { INTEGER r, INTEGER s }`).
enum Scalar {
    static let byteCount = 32

    /// True when every byte is zero.
    static func isZero<C: Collection<UInt8>>(_ x: C) -> Bool { x.allSatisfy { $0 == 0 } }

    /// Big-endian comparison of two 32-byte values: -1, 0 or 1.
    static func compare<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Int {
        precondition(a.count == b.count, "scalar widths differ")
        for (x, y) in zip(a, b) where x != y { return x < y ? -1 : 1 }
        return 0
    }

    /// True when 1 <= x <= limit - 1.
    static func isInRange<C: Collection<UInt8>>(_ x: C, below limit: [UInt8]) -> Bool {
        !isZero(x) && compare(x, limit) < 0
    }

    /// True when a + b equals `n` exactly (as integers, no reduction). For a, b in
    /// [1, n-1] this is the same as a + b = 0 mod n.
    static func sumEquals(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>, _ n: [UInt8]) -> Bool {
        precondition(a.count == 32 && b.count == 32 && n.count == 32, "scalar widths differ")
        var carry = 0
        var sum = [UInt8](repeating: 0, count: 32)
        let av = Array(a), bv = Array(b)
        for i in stride(from: 31, through: 0, by: -1) {
            let t = Int(av[i]) + Int(bv[i]) + carry
            sum[i] = UInt8(t & 0xff)
            carry = t >> 8
        }
        return carry == 0 && sum == n
    }

    /// Parses hex known at compile time (curve constants).
    static func constant(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var it = hex.utf8.makeIterator()
        func nibble(_ c: UInt8) -> UInt8 {
            switch c {
            case 48...57: return c - 48
            case 65...70: return c - 55
            case 97...102: return c - 87
            default: preconditionFailure("bad hex constant")
            }
        }
        while let hi = it.next() {
            guard let lo = it.next() else { preconditionFailure("odd hex constant") }
            out.append(nibble(hi) << 4 | nibble(lo))
        }
        return out
    }
}

/// Strict DER for `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` with r, s < 2^256.
/// Only the minimal encoding is accepted: short-form lengths, no superfluous leading zero,
/// no negative integers, no trailing bytes.
enum SignatureDER {
    /// Encodes two 32-byte big-endian values.
    static func encode(r: ArraySlice<UInt8>, s: ArraySlice<UInt8>) -> [UInt8] {
        let ri = integer(r), si = integer(s)
        return [0x30, UInt8(ri.count + si.count)] + ri + si
    }

    private static func integer(_ v: ArraySlice<UInt8>) -> [UInt8] {
        var body = Array(v.drop(while: { $0 == 0 }))
        if body.isEmpty { body = [0] }
        if body[0] & 0x80 != 0 { body.insert(0, at: 0) }
        return [0x02, UInt8(body.count)] + body
    }

    /// Decodes to 64 bytes `r || s`, or explains why the bytes are not strict DER.
    static func decode(_ der: [UInt8]) throws(CryptoError) -> [UInt8] {
        func fail(_ reason: String) -> CryptoError { .invalidEncoding(what: "DER signature", reason: reason) }
        guard der.count >= 8, der.count <= 72 else { throw fail("length \(der.count) is outside 8...72") }
        guard der[0] == 0x30 else { throw fail("does not start with a SEQUENCE") }
        guard der[1] < 0x80 else { throw fail("sequence length is not in short form") }
        guard Int(der[1]) == der.count - 2 else { throw fail("sequence length does not match the input (trailing or missing bytes)") }
        var index = 2
        func readInteger() throws(CryptoError) -> [UInt8] {
            guard index + 2 <= der.count, der[index] == 0x02 else { throw fail("expected an INTEGER") }
            let len = Int(der[index + 1])
            guard der[index + 1] < 0x80 else { throw fail("integer length is not in short form") }
            guard len >= 1, index + 2 + len <= der.count else { throw fail("integer length out of bounds") }
            let body = Array(der[(index + 2)..<(index + 2 + len)])
            index += 2 + len
            guard body[0] & 0x80 == 0 else { throw fail("negative integer") }
            if body.count > 1, body[0] == 0, body[1] & 0x80 == 0 { throw fail("integer has a superfluous leading zero") }
            let magnitude = body.count > 1 && body[0] == 0 ? Array(body.dropFirst()) : body
            guard magnitude.count <= 32 else { throw fail("integer wider than 256 bits") }
            return [UInt8](repeating: 0, count: 32 - magnitude.count) + magnitude
        }
        let r = try readInteger()
        let s = try readInteger()
        guard index == der.count else { throw fail("trailing bytes inside the sequence") }
        return r + s
    }
}
