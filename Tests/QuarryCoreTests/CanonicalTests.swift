import Testing
@testable import QuarryCore

/// A sample structure exercising every encoding form, used for round trips.
struct Sample: CanonicalCodable, Equatable {
    var a: UInt8
    var b: UInt16
    var c: UInt32
    var d: UInt64
    var e: Int64
    var flag: Bool
    var blob: [UInt8]
    var name: String
    var hash: Hash256
    var maybe: UInt64?
    var list: [UInt32]

    func encode(to enc: inout CanonicalEncoder) {
        enc.u8(a); enc.u16(b); enc.u32(c); enc.u64(d); enc.i64(e); enc.bool(flag)
        enc.bytes(blob); enc.string(name); enc.value(hash)
        enc.optional(maybe) { $0.u64($1) }
        enc.sequence(list) { $0.u32($1) }
    }

    init(a: UInt8, b: UInt16, c: UInt32, d: UInt64, e: Int64, flag: Bool, blob: [UInt8], name: String,
         hash: Hash256, maybe: UInt64?, list: [UInt32]) {
        self.a = a; self.b = b; self.c = c; self.d = d; self.e = e; self.flag = flag
        self.blob = blob; self.name = name; self.hash = hash; self.maybe = maybe; self.list = list
    }

    init(from dec: inout CanonicalDecoder) throws {
        a = try dec.u8(); b = try dec.u16(); c = try dec.u32(); d = try dec.u64(); e = try dec.i64()
        flag = try dec.bool()
        blob = try dec.bytes(limit: 64, field: "blob")
        name = try dec.string(limit: 32, field: "name")
        hash = try dec.value()
        maybe = try dec.optional { try $0.u64() }
        list = try dec.sequence(limit: 16, field: "list", minimumElementSize: 4) { try $0.u32() }
    }
}


func randomSample(_ rng: inout SplitMix64) -> Sample {
    let scalars = "aé€😀zQ".unicodeScalars.map { Character($0) }
    return Sample(
        a: .random(in: .min ... .max, using: &rng), b: .random(in: .min ... .max, using: &rng),
        c: .random(in: .min ... .max, using: &rng), d: .random(in: .min ... .max, using: &rng),
        e: .random(in: .min ... .max, using: &rng), flag: .random(using: &rng),
        blob: (0..<Int.random(in: 0...64, using: &rng)).map { _ in .random(in: 0...255, using: &rng) },
        name: String((0..<Int.random(in: 0...6, using: &rng)).map { _ in scalars.randomElement(using: &rng)! }),
        hash: Hash256(unchecked: (0..<32).map { _ in .random(in: 0...255, using: &rng) }),
        maybe: Bool.random(using: &rng) ? .random(in: .min ... .max, using: &rng) : nil,
        list: (0..<Int.random(in: 0...16, using: &rng)).map { _ in .random(in: .min ... .max, using: &rng) })
}

@Suite struct CanonicalEncodingTests {
    @Test func integersAreBigEndianFixedWidth() {
        var e = CanonicalEncoder()
        e.u16(0x0102); e.u32(0x0304_0506); e.u64(0x0708_090a_0b0c_0d0e); e.i64(-1)
        #expect(e.bytes == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14] + [UInt8](repeating: 0xff, count: 8))
    }

    static let varintCases: [(UInt64, [UInt8])] = [
        (0, [0x00]), (1, [0x01]), (127, [0x7f]), (128, [0x80, 0x01]),
        (300, [0xac, 0x02]), (16_383, [0xff, 0x7f]), (16_384, [0x80, 0x80, 0x01]),
        (0xFFFF_FFFF, [0xff, 0xff, 0xff, 0xff, 0x0f]),
    ]

    @Test(arguments: varintCases)
    func varintVectors(value: UInt64, bytes: [UInt8]) throws {
        var e = CanonicalEncoder()
        e.varint(value)
        #expect(e.bytes == bytes)
        var d = CanonicalDecoder(bytes)
        #expect(try d.varint() == value)
        try d.finish()
    }

    @Test(arguments: [[UInt8(0x80), 0x00], [0x81, 0x80, 0x00], [0xff, 0x80, 0x00]])
    func nonMinimalVarintsAreRejected(bytes: [UInt8]) {
        var d = CanonicalDecoder(bytes)
        #expect(throws: CanonicalError.nonMinimalVarint) { _ = try d.varint() }
    }

    @Test func oversizedVarintsAreRejected() {
        var d = CanonicalDecoder([0x80, 0x80, 0x80, 0x80, 0x10]) // 2^32
        #expect(throws: CanonicalError.varintTooLarge) { _ = try d.varint() }
        var d6 = CanonicalDecoder([0x80, 0x80, 0x80, 0x80, 0x80, 0x01])
        #expect(throws: CanonicalError.varintTooLarge) { _ = try d6.varint() }
    }

    @Test func booleansMustBeZeroOrOne() {
        var d = CanonicalDecoder([2])
        #expect(throws: CanonicalError.invalidBool(2)) { _ = try d.bool() }
    }

    @Test func trailingBytesAreRejected() throws {
        var rng = SplitMix64(seed: 1)
        let bytes = randomSample(&rng).canonicalBytes
        #expect(throws: CanonicalError.trailingBytes(1)) { _ = try Sample(canonicalBytes: bytes + [0]) }
    }

    @Test func truncationIsRejectedAtEveryLength() throws {
        var rng = SplitMix64(seed: 2)
        let bytes = randomSample(&rng).canonicalBytes
        for n in 0..<bytes.count {
            #expect(throws: (any Error).self) { _ = try Sample(canonicalBytes: Array(bytes[..<n])) }
        }
    }

    @Test func lengthsOverTheLimitAreRejectedBeforeAllocating() {
        var e = CanonicalEncoder()
        e.varint(65) // blob limit is 64
        var d = CanonicalDecoder(e.bytes + [UInt8](repeating: 0, count: 65))
        #expect(throws: CanonicalError.lengthOverLimit(field: "blob", length: 65, limit: 64)) {
            _ = try d.bytes(limit: 64, field: "blob")
        }
        // A count whose elements cannot fit in what is left fails without allocating.
        var huge = CanonicalDecoder([0xff, 0xff, 0xff, 0xff, 0x0f])
        #expect(throws: CanonicalError.self) {
            _ = try huge.sequence(limit: Int(UInt32.max), field: "x") { try $0.u8() }
        }
    }

    @Test func invalidUTF8IsRejected() {
        var d = CanonicalDecoder([2, 0xc3, 0x28])
        #expect(throws: CanonicalError.invalidUTF8(field: "name")) { _ = try d.string(limit: 8, field: "name") }
    }

    @Test func optionalTagMustBeZeroOrOne() {
        var d = CanonicalDecoder([7, 0])
        #expect(throws: CanonicalError.invalidBool(7)) { _ = try d.optional { try $0.u8() } }
    }

    @Test func randomizedRoundTrip() throws {
        var rng = SplitMix64(seed: 0xC0FFEE)
        for _ in 0..<2_000 {
            let s = randomSample(&rng)
            let bytes = s.canonicalBytes
            let back = try Sample(canonicalBytes: bytes)
            #expect(back == s)
            #expect(back.canonicalBytes == bytes)
        }
    }

    /// Any mutation either fails to decode, or decodes to a value whose encoding is exactly
    /// the mutated bytes: no two byte strings decode to the same value.
    @Test func mutatedBytesNeverDecodeSilentlyToAnotherEncoding() throws {
        var rng = SplitMix64(seed: 0xBADC0DE)
        var decodedMutants = 0
        for _ in 0..<2_000 {
            var bytes = randomSample(&rng).canonicalBytes
            let original = bytes
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: // flip one bit
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            case 1: // insert a byte
                bytes.insert(.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
            case 2: // delete a byte
                bytes.remove(at: Int.random(in: 0..<bytes.count, using: &rng))
            default: // overwrite a byte
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = .random(in: 0...255, using: &rng)
            }
            guard let decoded = try? Sample(canonicalBytes: bytes) else { continue }
            decodedMutants += 1
            #expect(decoded.canonicalBytes == bytes, "mutant decoded to a value with another encoding")
            if bytes != original { #expect(decoded != (try Sample(canonicalBytes: original))) }
        }
        #expect(decodedMutants > 0)
    }
}

@Suite struct HexTests {
    @Test func roundTrip() throws {
        #expect(Hex.encode([0x00, 0xab, 0xff]) == "00abff")
        #expect(try Hex.decode("00ABff") == [0x00, 0xab, 0xff])
        #expect(try Hex.decode("0x0a") == [0x0a])
        #expect(try Hex.decode("") == [])
    }

    @Test func rejectsBadText() {
        #expect(throws: HexError.oddLength(3)) { _ = try Hex.decode("abc") }
        #expect(throws: HexError.invalidCharacter(position: 1)) { _ = try Hex.decode("0g") }
    }
}
