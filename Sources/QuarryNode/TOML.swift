import QuarryCore

/// A strict reader for the subset of TOML that node configuration files use: comments,
/// `[table]` headers (one level), and `key = value` with basic strings, integers, booleans
/// and arrays of those (on one line or spread over several). Anything else is an error
/// naming the line, never silently ignored. Specified in docs/spec/config.md.
public enum TOMLValue: Equatable, Sendable {
    case string(String)
    case integer(Int64)
    case boolean(Bool)
    case array([TOMLValue])
}

public struct TOMLError: QuarryError, Equatable {
    public let line: Int
    public let reason: String
    public var code: String { "config.syntax" }
    public var description: String { "line \(line): \(reason)" }
}

public struct TOMLDocument: Sendable, Equatable {
    /// Values by table ("" for the top level), then by key, in file order.
    public private(set) var tables: [String: [(key: String, value: TOMLValue)]] = [:]
    public private(set) var tableOrder: [String] = [""]

    public static func == (a: TOMLDocument, b: TOMLDocument) -> Bool {
        a.tableOrder == b.tableOrder && a.tableOrder.allSatisfy { t in
            (a.tables[t] ?? []).map(\.key) == (b.tables[t] ?? []).map(\.key)
                && (a.tables[t] ?? []).map(\.value) == (b.tables[t] ?? []).map(\.value)
        }
    }

    public func value(_ key: String, in table: String = "") -> TOMLValue? {
        tables[table]?.first { $0.key == key }?.value
    }

    public init(parsing text: String, bytesMax: Int = 1 << 20) throws(TOMLError) {
        guard text.utf8.count <= bytesMax else { throw TOMLError(line: 0, reason: "file larger than \(bytesMax) bytes") }
        var parser = Parser(Array(text.unicodeScalars))
        var table = ""
        tables[""] = []
        while let lineNumber = parser.nextLogicalLine() {
            if parser.peek == "[" {
                parser.advance()
                let name = try parser.bareKey(line: lineNumber)
                guard parser.peek == "]" else { throw TOMLError(line: lineNumber, reason: "expected ']' after table name") }
                parser.advance()
                try parser.endOfLine(line: lineNumber)
                guard tables[name] == nil else { throw TOMLError(line: lineNumber, reason: "table [\(name)] defined twice") }
                tables[name] = []
                tableOrder.append(name)
                table = name
                continue
            }
            let key = try parser.bareKey(line: lineNumber)
            parser.skipSpaces()
            guard parser.peek == "=" else { throw TOMLError(line: lineNumber, reason: "expected '=' after key '\(key)'") }
            parser.advance()
            parser.skipSpaces()
            let value = try parser.value(line: lineNumber, depth: 0)
            try parser.endOfLine(line: lineNumber)
            guard !(tables[table] ?? []).contains(where: { $0.key == key }) else {
                throw TOMLError(line: lineNumber, reason: "key '\(key)' defined twice")
            }
            tables[table, default: []].append((key, value))
        }
    }

    private struct Parser {
        let s: [Unicode.Scalar]
        var i = 0
        var line = 1
        init(_ s: [Unicode.Scalar]) { self.s = s }

        var peek: Unicode.Scalar? { i < s.count ? s[i] : nil }
        mutating func advance() {
            if i < s.count, s[i] == "\n" { line += 1 }
            i += 1
        }

        mutating func skipSpaces() { while peek == " " || peek == "\t" { advance() } }

        /// Skips blank lines and comments; returns the line number of the next content.
        mutating func nextLogicalLine() -> Int? {
            while true {
                skipSpaces()
                guard let c = peek else { return nil }
                if c == "#" { while let d = peek, d != "\n" { advance() } }
                if peek == "\r" { advance() }
                if peek == "\n" { advance(); continue }
                if peek == nil { return nil }
                return line
            }
        }

        mutating func endOfLine(line n: Int) throws(TOMLError) {
            skipSpaces()
            if peek == "#" { while let d = peek, d != "\n" { advance() } }
            if peek == "\r" { advance() }
            guard peek == nil || peek == "\n" else { throw TOMLError(line: n, reason: "unexpected text after the value") }
        }

        mutating func bareKey(line n: Int) throws(TOMLError) -> String {
            var out = ""
            while let c = peek, (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "_" || c == "-" {
                out.unicodeScalars.append(c)
                advance()
            }
            guard !out.isEmpty else { throw TOMLError(line: n, reason: "expected a bare key (letters, digits, '_', '-')") }
            return out
        }

        mutating func value(line n: Int, depth: Int) throws(TOMLError) -> TOMLValue {
            guard depth < 4 else { throw TOMLError(line: n, reason: "arrays nested too deeply") }
            guard let c = peek else { throw TOMLError(line: n, reason: "missing value") }
            switch c {
            case "\"": return .string(try string(line: n))
            case "[": return .array(try array(line: n, depth: depth))
            case "t", "f":
                var word = ""
                while let d = peek, d >= "a" && d <= "z" { word.unicodeScalars.append(d); advance() }
                if word == "true" { return .boolean(true) }
                if word == "false" { return .boolean(false) }
                throw TOMLError(line: n, reason: "unsupported value '\(word)' (strings must be quoted)")
            case "-", "+", "0"..."9":
                var text = ""
                while let d = peek, (d >= "0" && d <= "9") || d == "_" || d == "-" || d == "+" { text.unicodeScalars.append(d); advance() }
                let digits = String(text.filter { $0 != "_" })
                guard !text.hasPrefix("_"), !text.hasSuffix("_"), !text.contains("__"),
                      let v = Int64(digits) else {
                    throw TOMLError(line: n, reason: "'\(text)' is not a supported integer")
                }
                if let d = peek, d == "." || d == "e" || d == "E" || d == ":" {
                    throw TOMLError(line: n, reason: "floats and dates are not supported here")
                }
                return .integer(v)
            default:
                throw TOMLError(line: n, reason: "unsupported value starting with '\(c)'")
            }
        }

        mutating func string(line n: Int) throws(TOMLError) -> String {
            advance()  // opening quote
            var out = ""
            while true {
                guard let c = peek, c != "\n" else { throw TOMLError(line: n, reason: "unterminated string") }
                advance()
                if c == "\"" { return out }
                if c == "\\" {
                    guard let e = peek else { throw TOMLError(line: n, reason: "unterminated escape") }
                    advance()
                    switch e {
                    case "\"": out += "\""
                    case "\\": out += "\\"
                    case "n": out += "\n"
                    case "t": out += "\t"
                    case "r": out += "\r"
                    case "u":
                        var hex = ""
                        for _ in 0..<4 { if let h = peek { hex.unicodeScalars.append(h); advance() } }
                        guard hex.count == 4, let v = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(v) else {
                            throw TOMLError(line: n, reason: "bad \\u escape")
                        }
                        out.unicodeScalars.append(scalar)
                    default: throw TOMLError(line: n, reason: "unsupported escape '\\\(e)'")
                    }
                    continue
                }
                guard c.value >= 0x20 || c == "\t" else { throw TOMLError(line: n, reason: "control character in string") }
                out.unicodeScalars.append(c)
            }
        }

        mutating func skipWhitespaceAndComments() {
            while let c = peek {
                if c == " " || c == "\t" || c == "\n" || c == "\r" { advance(); continue }
                if c == "#" { while let d = peek, d != "\n" { advance() }; continue }
                break
            }
        }

        mutating func array(line n: Int, depth: Int) throws(TOMLError) -> [TOMLValue] {
            advance()  // [
            var out: [TOMLValue] = []
            while true {
                skipWhitespaceAndComments()
                guard let c = peek else { throw TOMLError(line: n, reason: "unterminated array") }
                if c == "]" { advance(); return out }
                out.append(try value(line: line, depth: depth + 1))
                guard out.count <= 1_024 else { throw TOMLError(line: n, reason: "array longer than 1024 elements") }
                skipWhitespaceAndComments()
                if peek == "," { advance(); continue }
                guard peek == "]" else { throw TOMLError(line: line, reason: "expected ',' or ']' in array") }
            }
        }
    }
}
