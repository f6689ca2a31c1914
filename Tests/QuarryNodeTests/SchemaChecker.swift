import Foundation
import QuarryRPC

/// A JSON Schema checker for the subset docs/openrpc.json uses: `type` (string, integer,
/// boolean, object, array, null), `pattern`, `maxLength`, `minimum`/`maximum` (integers of
/// any size, compared exactly), `enum`, `const`, `properties`, `required`,
/// `additionalProperties` (false or a schema), `items`, `oneOf`, and the annotations
/// `description` and `x-quarry-format`. Any other keyword is reported, so a schema the
/// checker would silently half-check cannot pass.
enum SchemaChecker {
    static let keywords: Set<String> = ["type", "pattern", "maxLength", "minimum", "maximum", "enum", "const", "properties",
                                        "required", "additionalProperties", "items", "oneOf", "description", "x-quarry-format"]

    static func unsupportedKeywords(in schema: JSONValue) -> [String] {
        guard case .object(let members) = schema else { return [] }
        var out: [String] = []
        for (k, v) in members {
            if !keywords.contains(k) { out.append(k) }
            switch k {
            case "properties": for (_, s) in v.objectValue ?? [] { out += unsupportedKeywords(in: s) }
            case "items", "additionalProperties": out += unsupportedKeywords(in: v)
            case "oneOf": for s in v.arrayValue ?? [] { out += unsupportedKeywords(in: s) }
            default: break
            }
        }
        return out
    }

    /// Every way `value` breaks `schema`, each with the JSON path where it happens.
    static func problems(_ value: JSONValue, _ schema: JSONValue, path: String = "$") -> [String] {
        guard case .object = schema else { return ["\(path): schema is not an object"] }
        var out: [String] = []
        if let options = schema["oneOf"]?.arrayValue {
            let matching = options.filter { problems(value, $0, path: path).isEmpty }.count
            if matching != 1 { out.append("\(path): matches \(matching) of the oneOf schemas, not exactly one (\(value.description.prefix(80)))") }
        }
        if let type = schema["type"]?.stringValue {
            let ok: Bool
            switch (type, value) {
            case ("string", .string), ("boolean", .bool), ("object", .object), ("array", .array), ("null", .null): ok = true
            case ("integer", .number(let n)): ok = n.isInteger
            default: ok = false
            }
            if !ok { return out + ["\(path): expected \(type), got \(value.description.prefix(80))"] }
        }
        if let c = schema["const"], c != value { out.append("\(path): must be \(c)") }
        if let e = schema["enum"]?.arrayValue, !e.contains(value) { out.append("\(path): \(value) is not one of \(e)") }
        if case .string(let s) = value {
            if let max = schema["maxLength"]?.numberValue?.int64Value, s.unicodeScalars.count > max {
                out.append("\(path): longer than \(max)")
            }
            if let pattern = schema["pattern"]?.stringValue {
                let regex = try! NSRegularExpression(pattern: pattern)
                let range = NSRange(s.startIndex..., in: s)
                if regex.firstMatch(in: s, range: range) == nil { out.append("\(path): \"\(s.prefix(80))\" does not match \(pattern)") }
            }
        }
        if case .number(let n) = value {
            if let min = schema["minimum"]?.numberValue, compare(n, min) < 0 { out.append("\(path): \(n) < minimum \(min)") }
            if let max = schema["maximum"]?.numberValue, compare(n, max) > 0 { out.append("\(path): \(n) > maximum \(max)") }
        }
        if case .object(let members) = value {
            let properties = schema["properties"]?.objectValue ?? []
            for name in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where value[name] == nil {
                out.append("\(path): missing required \"\(name)\"")
            }
            for (k, v) in members {
                if let s = properties.first(where: { $0.0 == k })?.1 {
                    out += problems(v, s, path: "\(path).\(k)")
                } else if let extra = schema["additionalProperties"] {
                    if extra == .bool(false) {
                        out.append("\(path): undocumented member \"\(k)\"")
                    } else if case .object = extra {
                        out += problems(v, extra, path: "\(path).\(k)")
                    }
                }
            }
        }
        if case .array(let items) = value, let s = schema["items"] {
            for (i, item) in items.enumerated() { out += problems(item, s, path: "\(path)[\(i)]") }
        }
        return out
    }

    /// Exact comparison of two JSON integers written in decimal.
    static func compare(_ a: JSONNumber, _ b: JSONNumber) -> Int {
        func parts(_ n: JSONNumber) -> (negative: Bool, digits: String) {
            var t = n.text
            let negative = t.hasPrefix("-")
            if negative { t.removeFirst() }
            while t.count > 1, t.hasPrefix("0") { t.removeFirst() }
            return (negative && t != "0", t)
        }
        let (na, da) = parts(a), (nb, db) = parts(b)
        if na != nb { return na ? -1 : 1 }
        let magnitude = da.count != db.count ? (da.count < db.count ? -1 : 1) : (da == db ? 0 : (da < db ? -1 : 1))
        return na ? -magnitude : magnitude
    }
}
