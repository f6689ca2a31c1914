import Testing
@testable import QuarryCore

@Suite struct Bech32mTests {
    /// Valid Bech32m strings from BIP 350's test vectors.
    @Test(arguments: ["A1LQFN3A", "a1lqfn3a", "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
                      "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
                      "?1v759aa"])
    func bip350ValidVectors(text: String) throws {
        _ = try Bech32m.decode(text)
    }

    @Test(arguments: ["a1lqfn3b", "A1LQFN3a", "1xj0phk", "qyrz8wqd2c9m", "abc1rzg", "pzry9x0s0muk",
                      "y1p0xqf7f6", "lt1igcx5c0", "in1muywd", "mm1crxm3i", "au1s5cgom", "M1VUXWEZ"])
    func bip350InvalidVectors(text: String) {
        #expect(throws: Bech32mError.self) { _ = try Bech32m.decode(text) }
    }
}

@Suite struct AddressTests {
    let digest: [UInt8] = (0..<20).map { UInt8($0 * 7 + 3) }

    @Test func textRoundTrip() throws {
        let a = Address(scheme: .sm2, digest20: digest)
        #expect(a.text.hasPrefix("quarry1"))
        #expect(try Address(text: a.text) == a)
        #expect(try Address(text: a.text.uppercased()) == a)
        #expect(a.scheme == .sm2)
        let b = Address(scheme: .secp256k1, digest20: digest)
        #expect(a.text != b.text)
        #expect(try Address(text: b.text).scheme == .secp256k1)
    }

    @Test func everySingleCharacterTypoIsCaught() throws {
        let text = Array(Address(scheme: .sm2, digest20: digest).text)
        let alphabet = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l")
        for i in 7..<text.count {
            for c in alphabet where c != text[i] {
                var t = text
                t[i] = c
                #expect(throws: AddressError.self) { _ = try Address(text: String(t)) }
            }
        }
    }

    @Test func wrongPrefixAndBadBytesAreRejected() throws {
        let other = Bech32m.encode(hrp: "cosmos", data: [1] + digest)
        #expect(throws: AddressError.wrongPrefix("cosmos")) { _ = try Address(text: other) }
        let badScheme = Bech32m.encode(hrp: "quarry", data: [9] + digest)
        #expect(throws: AddressError.unknownScheme(9)) { _ = try Address(text: badScheme) }
        let short = Bech32m.encode(hrp: "quarry", data: [1] + digest.dropLast())
        #expect(throws: AddressError.wrongLength(20)) { _ = try Address(text: short) }
    }

    @Test func canonicalRoundTrip() throws {
        let a = Address(scheme: .secp256k1, digest20: digest)
        #expect(try Address(canonicalBytes: a.canonicalBytes) == a)
        var bad = a.canonicalBytes
        bad[0] = 0
        #expect(throws: CanonicalError.self) { _ = try Address(canonicalBytes: bad) }
    }
}

@Suite struct KeyValueStoreTests {
    @Test func inMemoryScanIsOrderedAndBounded() throws {
        let s = InMemoryStore()
        var b = WriteBatch()
        for k: [UInt8] in [[2], [1, 0xff], [1], [1, 0], [0xff], []] { b.put(k, k, column: "c") }
        try s.write(b, sync: true)
        var seen: [[UInt8]] = []
        try s.scan(column: "c", prefix: [1]) { k, _ in seen.append(k); return true }
        #expect(seen == [[1], [1, 0], [1, 0xff]])
        seen = []
        try s.scan(column: "c", from: [], to: nil) { k, _ in seen.append(k); return seen.count < 3 }
        #expect(seen == [[], [1], [1, 0]])
        var d = WriteBatch()
        d.delete([1], column: "c")
        try s.write(d, sync: false)
        #expect(try s.get([1], column: "c") == nil)
        #expect(try s.get([2], column: "c") == [2])
    }

    @Test func prefixSuccessorEdgeCases() {
        #expect(prefixSuccessor([1, 2]) == [1, 3])
        #expect(prefixSuccessor([1, 0xff]) == [2])
        #expect(prefixSuccessor([0xff, 0xff]) == nil)
        #expect(prefixSuccessor([]) == nil)
    }
}
