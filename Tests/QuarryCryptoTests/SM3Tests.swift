import Testing
import QuarryCore
@testable import QuarryCrypto

@Suite struct SM3Tests {
    // GB/T 32905 examples and the empty string.
    @Test(arguments: [
        ("abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
        (String(repeating: "abcd", count: 16), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
        ("", "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"),
    ])
    func knownAnswers(input: String, expected: String) {
        #expect(SM3.hash(Array(input.utf8)).hex == expected)
        var h = SM3()
        h.update(Array(input.utf8))
        #expect(h.finalize().hex == expected)
        // The reused-context hasher gives the same digest, also after other inputs.
        let hasher = SM3Hasher()
        _ = hasher.hash(Array("something else first".utf8))
        #expect(Hex.encode(hasher.hash(Array(input.utf8))) == expected)
        #expect(Hex.encode(hasher.hash(Array(input.utf8))) == expected)
    }

    @Test func hasherTaggedPairEqualsConcatenation() {
        let hasher = SM3Hasher()
        for i in 0..<50 {
            let a = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) }
            let b = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 3 &* i) }
            let tag = UInt8(i % 2)
            #expect(hasher.hash(tag: tag, a, b) == SM3.hash([tag] + a + b).bytes)
        }
    }

    @Test func streamingEqualsOneShot() {
        // A deterministic byte pattern crossing several 64-byte blocks.
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let expected = SM3.hash(data)
        for split in [0, 1, 55, 56, 63, 64, 65, 127, 128, 500, 999, 1000] {
            var h = SM3()
            h.update(Array(data[..<split]))
            h.update(Array(data[split...]))
            #expect(h.finalize() == expected, "split at \(split)")
        }
        var byteByByte = SM3()
        for b in data { byteByByte.update([b]) }
        #expect(byteByByte.finalize() == expected)
        #expect(SM3.hash(parts: [Array(data[..<300]), [], Array(data[300...])]) == expected)
        #expect(SM3.hash(data[...]) == expected)
    }

    @Test func differentInputsDiffer() {
        #expect(SM3.hash([0]) != SM3.hash([]))
        #expect(SM3.hash([0, 0]) != SM3.hash([0]))
    }
}
