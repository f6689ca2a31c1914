/// Bech32m text encoding (BIP 350): a human-readable prefix, the separator `1`, base-32
/// data and a six-character checksum that detects any error in up to four characters.
/// Used for the text form of addresses.
public enum Bech32m {
    private static let charset: [UInt8] = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)
    private static let constant: UInt32 = 0x2bc830a3
    /// Longest text accepted, as in BIP 173.
    public static let maxLength = 90

    private static func polymod(_ values: [UInt8]) -> UInt32 {
        let gen: [UInt32] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]
        var chk: UInt32 = 1
        for v in values {
            let top = chk >> 25
            chk = (chk & 0x1ffffff) << 5 ^ UInt32(v)
            for i in 0..<5 where (top >> UInt32(i)) & 1 == 1 { chk ^= gen[i] }
        }
        return chk
    }

    private static func expand(_ hrp: [UInt8]) -> [UInt8] {
        hrp.map { $0 >> 5 } + [0] + hrp.map { $0 & 31 }
    }

    /// Regroups bits; `pad` adds zero bits at the end (encoding), otherwise leftover bits
    /// must be fewer than `from` and zero (decoding).
    static func convertBits(_ data: [UInt8], from: Int, to: Int, pad: Bool) -> [UInt8]? {
        var acc = 0, bits = 0
        var out = [UInt8]()
        let maxv = (1 << to) - 1
        for v in data {
            guard Int(v) >> from == 0 else { return nil }
            acc = (acc << from) | Int(v)
            bits += from
            while bits >= to {
                bits -= to
                out.append(UInt8((acc >> bits) & maxv))
            }
        }
        if pad {
            if bits > 0 { out.append(UInt8((acc << (to - bits)) & maxv)) }
        } else if bits >= from || ((acc << (to - bits)) & maxv) != 0 {
            return nil
        }
        return out
    }

    public static func encode(hrp: String, data: [UInt8]) -> String {
        let h = Array(hrp.utf8)
        let five = convertBits(data, from: 8, to: 5, pad: true)!
        let pm = polymod(expand(h) + five + [0, 0, 0, 0, 0, 0]) ^ constant
        var chars = h + [UInt8(ascii: "1")]
        for v in five { chars.append(charset[Int(v)]) }
        for i in 0..<6 { chars.append(charset[Int((pm >> UInt32(5 * (5 - i))) & 31)]) }
        return String(decoding: chars, as: UTF8.self)
    }

    public static func decode(_ text: String) throws(Bech32mError) -> (hrp: String, data: [UInt8]) {
        let raw = Array(text.utf8)
        guard raw.count <= maxLength else { throw .tooLong(raw.count) }
        let hasLower = raw.contains { $0 >= 97 && $0 <= 122 }
        let hasUpper = raw.contains { $0 >= 65 && $0 <= 90 }
        guard !(hasLower && hasUpper) else { throw .mixedCase }
        let chars = raw.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
        guard chars.allSatisfy({ $0 >= 33 && $0 <= 126 }) else { throw .invalidCharacter }
        guard let sep = chars.lastIndex(of: UInt8(ascii: "1")), sep >= 1, chars.count - sep - 1 >= 6 else {
            throw .missingSeparator
        }
        let hrp = Array(chars[..<sep])
        var values = [UInt8]()
        for c in chars[(sep + 1)...] {
            guard let v = charset.firstIndex(of: c) else { throw .invalidCharacter }
            values.append(UInt8(v))
        }
        guard polymod(expand(hrp) + values) == constant else { throw .badChecksum }
        guard let data = convertBits(Array(values.dropLast(6)), from: 5, to: 8, pad: false) else {
            throw .badPadding
        }
        return (String(decoding: hrp, as: UTF8.self), data)
    }
}

public enum Bech32mError: QuarryError, Equatable {
    case tooLong(Int), mixedCase, invalidCharacter, missingSeparator, badChecksum, badPadding

    public var code: String { "address.invalid_text" }
    public var description: String {
        switch self {
        case .tooLong(let n): return "text is \(n) characters; at most \(Bech32m.maxLength) allowed"
        case .mixedCase: return "text mixes upper and lower case"
        case .invalidCharacter: return "text has a character outside the bech32 alphabet"
        case .missingSeparator: return "text lacks the '1' separator or a full checksum"
        case .badChecksum: return "checksum does not match: the text was mistyped or altered"
        case .badPadding: return "text has invalid padding bits"
        }
    }
}
