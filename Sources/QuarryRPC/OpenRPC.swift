import QuarryCore

/// The OpenRPC description of a server (served by `rpc.discover`), and a check that a
/// hand-maintained document (docs/openrpc.json) agrees with a server's registry.
///
/// Each method object carries `x-quarry-status`: `"implemented"` (a server answers it) or
/// `"planned"` (specified by the project, not yet served). Topics are listed under the
/// top-level `x-quarry-topics`, with the same status field.
public enum OpenRPC {
    public static let specVersion = "1.3.2"
    public static let implemented = "implemented"
    public static let planned = "planned"

    /// Methods every server answers by itself.
    static var builtinMethods: [(name: String, summary: String, params: [RPCParamSpec], result: JSONValue)] {
        [
            ("rpc.discover", "Returns this OpenRPC document.", [], ["type": "object"]),
            ("subscribe", "Subscribes this WebSocket connection to a topic; returns the subscription id.",
             RPCSubscriptionHub.subscribeParams, ["type": "string"]),
            ("unsubscribe", "Ends a subscription of this WebSocket connection.",
             RPCSubscriptionHub.unsubscribeParams, ["type": "boolean", "const": true]),
        ]
    }

    static func paramJSON(_ p: RPCParamSpec) -> JSONValue {
        ["name": .string(p.name), "summary": .string(p.summary), "required": .bool(p.required), "schema": p.type.schema]
    }

    static func methodJSON(name: String, summary: String, params: [RPCParamSpec], result: JSONValue) -> JSONValue {
        [
            "name": .string(name),
            "summary": .string(summary),
            "paramStructure": "either",
            "params": .array(params.map(paramJSON)),
            "result": ["name": "result", "schema": result],
            "x-quarry-status": .string(implemented),
        ]
    }

    static func topicJSON(_ t: RPCTopic) -> JSONValue {
        [
            "name": .string(t.name),
            "summary": .string(t.summary),
            "filter": .array(t.filter.map(paramJSON)),
            "result": ["name": "result", "schema": t.payloadSchema],
            "x-quarry-status": .string(implemented),
        ]
    }

    /// The document describing the built-in methods, `methods` and `topics`.
    public static func document(title: String, version: String, methods: [RPCMethod], topics: [RPCTopic]) -> JSONValue {
        let builtins = builtinMethods.map { methodJSON(name: $0.name, summary: $0.summary, params: $0.params, result: $0.result) }
        let registered = methods.map { methodJSON(name: $0.name, summary: $0.summary, params: $0.params, result: $0.resultSchema) }
        return [
            "openrpc": .string(specVersion),
            "info": ["title": .string(title), "version": .string(version)],
            "methods": .array(builtins + registered),
            "x-quarry-topics": .array(topics.map(topicJSON)),
        ]
    }

    /// Every disagreement between `document` (for example docs/openrpc.json) and what a
    /// server with these methods and topics answers; empty when they agree.
    ///
    /// - Every built-in and registered method must be described, marked implemented, with the
    ///   same params (names in order, required flags, schemas) and result schema.
    /// - Every method the document marks implemented must be registered; one marked planned
    ///   must not be (update the document when implementing it).
    /// - The same rules for topics (filter fields and payload schema).
    public static func differences(document: JSONValue, methods: [RPCMethod], topics: [RPCTopic]) -> [String] {
        var problems: [String] = []
        guard document["openrpc"]?.stringValue != nil else { return ["document has no \"openrpc\" version"] }
        guard let described = document["methods"]?.arrayValue else { return ["document has no \"methods\" array"] }

        var served: [(name: String, params: [RPCParamSpec], result: JSONValue)] =
            builtinMethods.map { ($0.name, $0.params, $0.result) }
        served += methods.map { ($0.name, $0.params, $0.resultSchema) }

        problems += compare(kind: "method", paramsKey: "params", described: described,
                            served: served.map { ($0.name, $0.params, $0.result) })
        let describedTopics = document["x-quarry-topics"]?.arrayValue ?? []
        problems += compare(kind: "topic", paramsKey: "filter", described: describedTopics,
                            served: topics.map { ($0.name, $0.filter, $0.payloadSchema) })
        return problems
    }

    private static func compare(kind: String, paramsKey: String, described: [JSONValue],
                                served: [(String, [RPCParamSpec], JSONValue)]) -> [String] {
        var problems: [String] = []
        var byName: [String: JSONValue] = [:]
        for entry in described {
            guard let name = entry["name"]?.stringValue else { problems.append("a \(kind) without a name"); continue }
            if byName[name] != nil { problems.append("\(kind) \(name) is described twice") }
            byName[name] = entry
        }
        let servedNames = Set(served.map(\.0))
        for (name, params, result) in served {
            guard let entry = byName[name] else {
                problems.append("\(kind) \(name) is served but not described")
                continue
            }
            let status = entry["x-quarry-status"]?.stringValue ?? implemented
            if status != implemented {
                problems.append("\(kind) \(name) is served but described as \(status)")
            }
            let describedParams = entry[paramsKey]?.arrayValue ?? []
            let names = describedParams.map { $0["name"]?.stringValue ?? "?" }
            if names != params.map(\.name) {
                problems.append("\(kind) \(name): described \(paramsKey) \(names) but served \(params.map(\.name))")
            } else {
                for (p, d) in zip(params, describedParams) {
                    if (d["required"]?.boolValue ?? false) != p.required {
                        problems.append("\(kind) \(name): \(p.name) required is \(p.required) when served")
                    }
                    if d["schema"] != p.type.schema {
                        problems.append("\(kind) \(name): schema of \(p.name) differs: described \(d["schema"]?.description ?? "none"), served \(p.type.schema)")
                    }
                }
            }
            if entry["result"]?["schema"] != result {
                problems.append("\(kind) \(name): result schema differs: described \(entry["result"]?["schema"]?.description ?? "none"), served \(result)")
            }
        }
        for (name, entry) in byName.sorted(by: { $0.key < $1.key }) where !servedNames.contains(name) {
            let status = entry["x-quarry-status"]?.stringValue ?? implemented
            if status != planned {
                problems.append("\(kind) \(name) is described as \(status) but not served")
            }
        }
        return problems
    }
}
