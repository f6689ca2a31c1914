import Testing
import QuarryCore
@testable import QuarryRPC

@Suite("JSON parser and serializer")
struct JSONTests {
    func parse(_ s: String, limits: JSONLimits = .init()) throws -> JSONValue { try JSONValue.parse(s, limits: limits) }
    func parse(_ b: [UInt8]) throws -> JSONValue { try JSONValue.parse(b) }

    @Test func scalarsAndContainers() throws {
        #expect(try parse("null") == .null)
        #expect(try parse(" true ") == .bool(true))
        #expect(try parse("\t\r\nfalse\n") == .bool(false))
        #expect(try parse("\"\"") == .string(""))
        #expect(try parse("[]") == .array([]))
        #expect(try parse("{}") == .object([]))
        #expect(try parse("[1,[2,[]],{\"a\":{}}]").description == "[1,[2,[]],{\"a\":{}}]")
        #expect(try parse(#"{"b":1,"a":2}"#).description == #"{"b":1,"a":2}"#)  // order kept
    }

    @Test func numbersKeepTheirExactText() throws {
        for text in ["0", "-0", "12345678901234567890123456789", "-9007199254740993", "1.5", "1.50",
                     "1e400", "1E-7", "-1.0e+10", "0.000000000000000000001"] {
            #expect(try parse(text) == .number(JSONNumber(text: text)!))
            #expect(try parse(text).description == text)
        }
        #expect(try parse("18446744073709551615").numberValue?.uint64Value == UInt64.max)
        #expect(try parse("18446744073709551616").numberValue?.uint64Value == nil)
        #expect(try parse("-1").numberValue?.uint64Value == nil)
        #expect(try parse("-0").numberValue?.uint64Value == nil)
        #expect(try parse("1.0").numberValue?.uint64Value == nil)
        #expect(try parse("-9223372036854775808").numberValue?.int64Value == Int64.min)
    }

    @Test(arguments: ["01", "-01", "1.", ".5", "+1", "1e", "1e+", "-", "--1", "NaN", "Infinity", "-Infinity",
                      "0x10", "1_000", "1.2.3", "00"])
    func invalidNumbers(text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
        #expect(JSONNumber(text: text) == nil)
    }

    @Test(arguments: ["", " ", "[", "]", "{", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{'a':1}",
                      "'x'", "[1 2]", "1 2", "nul", "truex", "tru", "[1]]", "// c\n1", "/* c */1", "{\"a\":}",
                      "\"abc", "\"\\\"", "[\"a\",", "{\"a\":1 \"b\":2}", "{1:2}", "\u{00A0}1"])
    func invalidDocuments(text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test func stringEscapes() throws {
        #expect(try parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{08}\u{0C}\n\r\t"))
        #expect(try parse(#""\u0041\u00e9\u4e2d""#) == .string("Aé中"))
        #expect(try parse(#""\uD83D\uDE00""#) == .string("😀"))
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try parse(#""\u0000""#) == .string("\u{0}"))
        #expect(try parse("\"é中😀\"") == .string("é中😀"))
    }

    @Test(arguments: [#""\x41""#, #""\u12""#, #""\u12G4""#, #""\uD800""#, #""\uDC00""#, #""\uD800\u0041""#,
                      #""\uDE00\uD83D""#, #""\uD800x""#, #""\'""#, #""\U0041""#])
    func invalidEscapes(text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test func controlCharactersMustBeEscaped() {
        for c: UInt8 in [0x00, 0x01, 0x09, 0x0A, 0x1F] {
            #expect(throws: JSONParseError.self) { try parse([0x22, c, 0x22]) }
        }
        #expect(throws: Never.self) { try parse([0x22, 0x7F, 0x22]) }  // DEL is allowed
    }

    @Test(arguments: [
        [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF],
        [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xF0, 0x80, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF],
        [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xFE], [0xC3], [0xE4, 0xB8],
        [0xF0, 0x9F, 0x98], [0xC3, 0x41], [0xE4, 0x41, 0xAD],
    ] as [[UInt8]])
    func invalidUTF8InStrings(bytes: [UInt8]) {
        #expect(throws: JSONParseError.self) { try parse([0x22] + bytes + [0x22]) }
    }

    @Test func validUTF8Boundaries() throws {
        for bytes: [UInt8] in [[0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xEF, 0xBF, 0xBF], [0xEE, 0x80, 0x80],
                               [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], [0xED, 0x9F, 0xBF]] {
            let v = try parse([0x22] + bytes + [0x22])
            #expect(Array(v.stringValue!.utf8) == bytes)
        }
    }

    @Test func byteOrderMarkAndNonASCIIOutsideStringsAreRejected() {
        #expect(throws: JSONParseError.self) { try parse([0xEF, 0xBB, 0xBF] + Array("1".utf8)) }
        #expect(throws: JSONParseError.self) { try parse([0x5B, 0xC3, 0xA9, 0x5D]) }
    }

    @Test func duplicateKeysAreRejected() {
        #expect(throws: JSONParseError.duplicateKey("a", offset: 8)) { try parse(#"{"a":1, "a":2}"#) }
        // Escapes are decoded before comparing: "\u0061" is "a".
        #expect(throws: JSONParseError.self) { try parse(#"{"a":1,"\u0061":2}"#) }
        #expect(throws: Never.self) { try parse(#"{"a":{"a":1},"b":[{"a":1},{"a":2}]}"#) }
    }

    @Test func depthLimit() throws {
        let limits = JSONLimits(documentBytesMax: 1 << 20, depthMax: 8)
        let ok = String(repeating: "[", count: 8) + String(repeating: "]", count: 8)
        #expect(throws: Never.self) { try parse(ok, limits: limits) }
        let deep = String(repeating: "[", count: 9) + String(repeating: "]", count: 9)
        #expect(throws: JSONParseError.tooDeep(limit: 8, offset: 8)) { try parse(deep, limits: limits) }
        let deepObject = String(repeating: "{\"a\":", count: 9) + "1" + String(repeating: "}", count: 9)
        #expect(throws: JSONParseError.self) { try parse(deepObject, limits: limits) }
        // Far past the default limit: rejected quickly, no stack overflow.
        let huge = String(repeating: "[", count: 100_000)
        #expect(throws: JSONParseError.tooDeep(limit: 64, offset: 64)) { try parse(huge) }
    }

    @Test func sizeLimit() {
        let limits = JSONLimits(documentBytesMax: 10, depthMax: 4)
        #expect(throws: Never.self) { try parse("[1,2,3,45]", limits: limits) }
        #expect(throws: JSONParseError.tooLarge(bytes: 11, limit: 10)) { try parse("[1,2,3,456]", limits: limits) }
    }

    @Test func serializerEscapesWhatItMust() throws {
        let s = "q\"b\\s/\u{0}\u{1}\u{1F}\n\r\t\u{08}\u{0C}\u{7F}é😀"
        let encoded = JSONValue.string(s).description
        #expect(encoded == "\"q\\\"b\\\\s/\\u0000\\u0001\\u001f\\n\\r\\t\\b\\f\u{7F}é😀\"")
        #expect(try parse(encoded) == .string(s))
    }

    @Test func objectEqualityIgnoresMemberOrder() throws {
        #expect(try parse(#"{"a":1,"b":[true,null]}"#) == parse(#"{"b":[true,null],"a":1}"#))
        #expect(try parse(#"{"a":1}"#) != parse(#"{"a":1,"b":2}"#))
        #expect(try parse("[1,2]") != parse("[2,1]"))
        #expect(try parse("1.0") != parse("1"))  // numbers compare by exact text
        var set = Set<JSONValue>()
        set.insert(try parse(#"{"a":1,"b":2}"#))
        #expect(set.contains(try parse(#"{"b":2,"a":1}"#)))
    }

    /// Random values survive encode-then-parse unchanged (seeded, reproducible).
    @Test func randomRoundTrips() throws {
        var rng = SplitMix64(seed: 0x5eed_0001)
        for _ in 0..<400 {
            let value = randomJSON(&rng, depth: 0)
            let text = value.encoded
            let back = try JSONValue.parse(text)
            #expect(back == value)
            #expect(back.encoded == text)
        }
    }
}


func randomString(_ rng: inout SplitMix64) -> String {
    let pool: [Unicode.Scalar] = ["a", "Z", "0", " ", "\"", "\\", "/", "\u{0}", "\u{1F}", "\n", "é", "中", "😀", "\u{7F}", "\u{FFFF}", "\u{10FFFF}"]
    var s = String.UnicodeScalarView()
    for _ in 0..<Int.random(in: 0...8, using: &rng) { s.append(pool.randomElement(using: &rng)!) }
    return String(s)
}

func randomJSON(_ rng: inout SplitMix64, depth: Int) -> JSONValue {
    switch Int.random(in: 0..<(depth > 4 ? 5 : 7), using: &rng) {
    case 0: return .null
    case 1: return .bool(Bool.random(using: &rng))
    case 2:
        let forms = ["0", "-0", "1.25e-3", "123456789012345678901234567890", "-42", "3.14159", "1E+2"]
        if Bool.random(using: &rng) { return .number(JSONNumber(text: forms.randomElement(using: &rng)!)!) }
        return .number(JSONNumber(Int64.random(in: Int64.min...Int64.max, using: &rng)))
    case 3, 4: return .string(randomString(&rng))
    case 5: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in randomJSON(&rng, depth: depth + 1) })
    default:
        var members: [(String, JSONValue)] = []
        for i in 0..<Int.random(in: 0...4, using: &rng) {
            members.append((randomString(&rng) + "#\(i)", randomJSON(&rng, depth: depth + 1)))
        }
        return .object(members)
    }
}
