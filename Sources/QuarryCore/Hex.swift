/// Lowercase hexadecimal text for byte strings, used by the CLI, JSON-RPC and docs.
public enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lowercase hex of `bytes`, two characters per byte, no prefix.
    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes hex text (either case, optional `0x` prefix). Throws on odd length or a
    /// character that is not a hex digit.
    public static func decode(_ text: String) throws(HexError) -> [UInt8] {
        var utf8 = Array(text.utf8)
        if utf8.count >= 2, utf8[0] == UInt8(ascii: "0"), utf8[1] == UInt8(ascii: "x") || utf8[1] == UInt8(ascii: "X") {
            utf8.removeFirst(2)
        }
        guard utf8.count % 2 == 0 else { throw .oddLength(utf8.count) }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = value(utf8[i]) else { throw .invalidCharacter(position: i) }
            guard let lo = value(utf8[i + 1]) else { throw .invalidCharacter(position: i + 1) }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

public enum HexError: Error, Equatable, CustomStringConvertible {
    case oddLength(Int)
    case invalidCharacter(position: Int)

    public var description: String {
        switch self {
        case .oddLength(let n): return "hex text has an odd number of digits (\(n))"
        case .invalidCharacter(let p): return "hex text has a non-hex character at position \(p)"
        }
    }
}
