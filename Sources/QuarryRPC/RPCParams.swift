import QuarryCore

/// The type of one parameter (or one subscription-filter field). Each type validates a
/// JSON value and describes itself as a JSON Schema for the OpenRPC document.
public enum RPCParamType: Sendable, Equatable {
    /// Any JSON string, at most `lengthMax` UTF-8 bytes.
    case string(lengthMax: Int)
    case boolean
    /// A JSON number written as a non-negative integer that fits 64 bits (heights, indexes).
    case unsignedInteger
    /// An amount of grains: a decimal string of digits, no sign, no leading zeros, < 2^64.
    case amount
    /// Lowercase hex without prefix: exactly `byteCount` bytes, or (nil) any length up to
    /// `bytesMax` bytes.
    case hex(byteCount: Int?, bytesMax: Int)
    /// An account address in its Bech32m text form (`quarry1...`).
    case address
    /// One of the listed strings.
    case oneOf([String])
    /// Any JSON object (checked further by the handler).
    case object
    /// Any JSON value.
    case any

    /// A 32-byte hash as 64 lowercase hex digits.
    public static let hash = RPCParamType.hex(byteCount: 32, bytesMax: 32)

    /// The JSON Schema describing accepted values.
    public var schema: JSONValue {
        switch self {
        case .string(let max): return ["type": "string", "maxLength": .integer(Int64(max))]
        case .boolean: return ["type": "boolean"]
        case .unsignedInteger:
            return ["type": "integer", "minimum": 0, "maximum": .integer(UInt64.max)]
        case .amount: return ["type": "string", "pattern": "^(0|[1-9][0-9]{0,19})$", "x-quarry-format": "grains"]
        case .hex(let count?, _):
            return ["type": "string", "pattern": .string("^([0-9a-f]{2}){\(count)}$")]
        case .hex(nil, let max):
            return ["type": "string", "pattern": .string("^([0-9a-f]{2}){0,\(max)}$")]
        case .address: return ["type": "string", "pattern": "^quarry1[02-9ac-hj-np-z]{40}$", "x-quarry-format": "address"]
        case .oneOf(let values): return ["type": "string", "enum": .array(values.map { .string($0) })]
        case .object: return ["type": "object"]
        case .any: return [:]
        }
    }

    /// Nil when `value` is acceptable, else what is wrong with it (completing "must be ...").
    func problem(with value: JSONValue) -> String? {
        switch self {
        case .string(let max):
            guard case .string(let s) = value else { return "must be a string, got \(value.kindName)" }
            return s.utf8.count <= max ? nil : "must be at most \(max) bytes long, got \(s.utf8.count)"
        case .boolean:
            return value.boolValue == nil ? "must be true or false, got \(value.kindName)" : nil
        case .unsignedInteger:
            guard case .number(let n) = value, n.uint64Value != nil else {
                return "must be a non-negative integer below 2^64, got \(value.shortDescription)"
            }
            return nil
        case .amount:
            guard case .string(let s) = value else { return "must be a decimal string of grains, got \(value.kindName)" }
            return RPCParamType.parseAmount(s) == nil
                ? "must be a decimal string of grains (digits only, no leading zeros, below 2^64), got \(value.shortDescription)"
                : nil
        case .hex(let count, let max):
            guard case .string(let s) = value else { return "must be a lowercase hex string, got \(value.kindName)" }
            let digits = s.utf8
            guard digits.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
                return "must be lowercase hex digits without a 0x prefix"
            }
            guard digits.count % 2 == 0 else { return "must have an even number of hex digits, got \(digits.count)" }
            if let count, digits.count != count * 2 {
                return "must be \(count) bytes (\(count * 2) hex digits), got \(digits.count) digits"
            }
            return digits.count / 2 <= max ? nil : "must be at most \(max) bytes, got \(digits.count / 2)"
        case .address:
            guard case .string(let s) = value else { return "must be an address string, got \(value.kindName)" }
            do { _ = try Address(text: s); return nil } catch { return "must be a valid address: \(error.description)" }
        case .oneOf(let values):
            guard case .string(let s) = value, values.contains(s) else {
                return "must be one of \(values.map { "\"\($0)\"" }.joined(separator: ", ")), got \(value.shortDescription)"
            }
            return nil
        case .object:
            return value.objectValue == nil ? "must be an object, got \(value.kindName)" : nil
        case .any:
            return nil
        }
    }

    static func parseAmount(_ s: String) -> UInt64? {
        let u = Array(s.utf8)
        guard !u.isEmpty, u.count <= 20, u.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        guard u.count == 1 || u[0] != UInt8(ascii: "0") else { return nil }
        return UInt64(s)
    }
}

/// One declared parameter of a method (or field of a subscription filter).
public struct RPCParamSpec: Sendable, Equatable {
    public var name: String
    public var type: RPCParamType
    public var required: Bool
    public var summary: String

    public init(_ name: String, _ type: RPCParamType, required: Bool = true, summary: String = "") {
        self.name = name
        self.type = type
        self.required = required
        self.summary = summary
    }
}

/// The validated parameters of one call, by name (positional params are mapped to the
/// declared names in order). Absent optional params and explicit `null`s read as absent.
/// The typed accessors throw `RPCError.invalidParams` with a precise message; for declared
/// params the server has already checked types, so they fail only on a handler's own misuse.
public struct RPCParams: Sendable {
    public let method: String
    /// Validated values by declared name, in declaration order.
    public let values: [(String, JSONValue)]
    /// The params exactly as received (nil when the request had none).
    public let raw: JSONValue?

    public init(method: String, values: [(String, JSONValue)], raw: JSONValue?) {
        self.method = method
        self.values = values
        self.raw = raw
    }

    /// Checks `raw` (absent, an array or an object) against `specs` and names the values.
    public static func validate(method: String, raw: JSONValue?, specs: [RPCParamSpec],
                                what: String = "param") throws(RPCError) -> RPCParams {
        var named: [(String, JSONValue)] = []
        switch raw {
        case nil, .null?:
            break
        case .array(let items)?:
            guard items.count <= specs.count else {
                throw .invalidParams("\(method) takes at most \(specs.count) positional \(what)s, got \(items.count)")
            }
            for (spec, item) in zip(specs, items) where !item.isNull { named.append((spec.name, item)) }
        case .object(let members)?:
            for (key, _) in members where !specs.contains(where: { $0.name == key }) {
                let accepted = specs.isEmpty ? "none" : specs.map(\.name).joined(separator: ", ")
                throw .invalidParams("unknown \(what) \"\(key)\" for \(method) (accepted: \(accepted))")
            }
            named = members.filter { !$0.1.isNull }
        case let other?:
            throw .invalidParams("\(what)s of \(method) must be an array or an object, got \(other.kindName)")
        }
        var ordered: [(String, JSONValue)] = []
        for spec in specs {
            if let v = named.first(where: { $0.0 == spec.name })?.1 {
                if let problem = spec.type.problem(with: v) {
                    throw .invalidParams("\(what) \"\(spec.name)\" of \(method) \(problem)")
                }
                ordered.append((spec.name, v))
            } else if spec.required {
                throw .invalidParams("missing required \(what) \"\(spec.name)\" of \(method)")
            }
        }
        return RPCParams(method: method, values: ordered, raw: raw)
    }

    public func has(_ name: String) -> Bool { values.contains(where: { $0.0 == name }) }

    public func value(_ name: String) -> JSONValue? { values.first(where: { $0.0 == name })?.1 }

    private func required(_ name: String) throws(RPCError) -> JSONValue {
        guard let v = value(name) else { throw .invalidParams("missing required param \"\(name)\" of \(method)") }
        return v
    }

    private func wrong(_ name: String, _ problem: String) -> RPCError {
        .invalidParams("param \"\(name)\" of \(method) \(problem)")
    }

    public func string(_ name: String) throws(RPCError) -> String {
        let v = try required(name)
        guard let s = v.stringValue else { throw wrong(name, "must be a string, got \(v.kindName)") }
        return s
    }

    public func bool(_ name: String) throws(RPCError) -> Bool {
        let v = try required(name)
        guard let b = v.boolValue else { throw wrong(name, "must be true or false, got \(v.kindName)") }
        return b
    }

    public func uint64(_ name: String) throws(RPCError) -> UInt64 {
        let v = try required(name)
        if let problem = RPCParamType.unsignedInteger.problem(with: v) { throw wrong(name, problem) }
        return v.numberValue!.uint64Value!
    }

    /// An amount of grains given as a decimal string.
    public func amount(_ name: String) throws(RPCError) -> UInt64 {
        let v = try required(name)
        if let problem = RPCParamType.amount.problem(with: v) { throw wrong(name, problem) }
        return RPCParamType.parseAmount(v.stringValue!)!
    }

    /// Bytes given as lowercase hex; `byteCount` checks an exact length.
    public func bytes(_ name: String, byteCount: Int? = nil, bytesMax: Int = 1 << 20) throws(RPCError) -> [UInt8] {
        let v = try required(name)
        if let problem = RPCParamType.hex(byteCount: byteCount, bytesMax: bytesMax).problem(with: v) {
            throw wrong(name, problem)
        }
        return (try? Hex.decode(v.stringValue!)) ?? []
    }

    public func hash(_ name: String) throws(RPCError) -> Hash256 {
        let raw = try bytes(name, byteCount: 32)
        guard let h = try? Hash256(bytes: raw) else { throw wrong(name, "must be a 32-byte hash") }
        return h
    }

    public func address(_ name: String) throws(RPCError) -> Address {
        let v = try required(name)
        guard let s = v.stringValue else { throw wrong(name, "must be an address string, got \(v.kindName)") }
        do { return try Address(text: s) } catch { throw wrong(name, "must be a valid address: \(error.description)") }
    }
}

extension JSONValue {
    /// "string", "number", ... for error messages.
    var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// The value for an error message, cut to a readable length.
    var shortDescription: String {
        let text = description
        if text.utf8.count <= 40 { return text }
        return String(decoding: Array(text.utf8.prefix(37)), as: UTF8.self) + "..."
    }
}
