import Foundation
import Testing
import QuarryCore
import QuarryRPC
@testable import QuarryNode

/// docs/openrpc.json against the node's real registry: every method and topic the node
/// serves is described exactly (params, schemas, result) and marked implemented.
///
/// To regenerate the document after changing a method, run this suite with
/// `QUARRY_WRITE_OPENRPC=/tmp/openrpc.json` and pretty-print that file over docs/openrpc.json
/// (`python3 -m json.tool --indent 2`): descriptions and error lists are kept from the old
/// document, everything the registry declares is taken from it.
@Suite("Node OpenRPC document")
struct NodeOpenRPCTests {
    static var docsURL: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/openrpc.json")
    }

    static func loadDocs() throws -> JSONValue {
        try JSONValue.parse([UInt8](Data(contentsOf: docsURL)))
    }

    /// The methods as a node registers them (handlers unused here).
    static func servedMethods() -> [RPCMethod] {
        NodeRPC.methods.map { spec in
            RPCMethod(name: spec.name, summary: spec.summary, params: spec.params, resultSchema: spec.result) { _ in .null }
        }
    }

    /// Error objects each method can answer with, beyond the generic ones.
    static let errors: [String: [String]] = [
        "node_status": ["Unavailable"],
        "chain_getBlock": ["InvalidParams", "NotFound"],
        "chain_getValidators": ["InvalidParams", "NotFound"],
        "tx_submit": ["InvalidParams", "Application", "LimitExceeded", "Timeout", "Unavailable"],
        "tx_get": ["InvalidParams"],
        "account_get": ["InvalidParams"],
        "vehicle_get": ["InvalidParams", "NotFound"],
        "batch_get": ["InvalidParams", "NotFound"],
        "supply_get": ["Unavailable"],
        "chain_getParameters": ["Unavailable"],
        "season_get": ["InvalidParams", "NotFound"],
        "draw_get": ["InvalidParams", "NotFound"],
        "catalog_list": ["InvalidParams"],
        "redemption_get": ["InvalidParams", "NotFound"],
    ]

    /// The document with every served method and topic taken from the registry.
    static func regenerated(from old: JSONValue) -> JSONValue {
        let generated = OpenRPC.document(title: "Quarry JSON-RPC", version: "0.1.0", methods: servedMethods(),
                                         topics: NodeRPC.topics)
        func merge(_ fresh: [JSONValue], _ previous: [JSONValue], extra: (String) -> [(String, JSONValue)]) -> [JSONValue] {
            fresh.map { entry in
                let name = entry["name"]?.stringValue ?? ""
                var members = entry.objectValue ?? []
                let before = previous.first { $0["name"]?.stringValue == name }
                if let d = before?["description"] { members.insert(("description", d), at: 2) }
                members.append(contentsOf: extra(name))
                if let e = before?["errors"], extra(name).isEmpty { members.append(("errors", e)) }
                return .object(members)
            }
        }
        let methods = merge(generated["methods"]?.arrayValue ?? [], old["methods"]?.arrayValue ?? []) { name in
            guard let refs = errors[name] else { return [] }
            return [("errors", .array(refs.map { ["$ref": .string("#/components/errors/\($0)")] }))]
        }
        let topics = merge(generated["x-quarry-topics"]?.arrayValue ?? [], old["x-quarry-topics"]?.arrayValue ?? []) { _ in [] }
        var members = old.objectValue ?? []
        for (i, (key, _)) in members.enumerated() {
            if key == "methods" { members[i].1 = .array(methods) }
            if key == "x-quarry-topics" { members[i].1 = .array(topics) }
        }
        return .object(members)
    }

    @Test func documentDescribesExactlyWhatTheNodeServes() throws {
        let doc = try Self.loadDocs()
        if let path = ProcessInfo.processInfo.environment["QUARRY_WRITE_OPENRPC"] {
            try Data(Self.regenerated(from: doc).encoded).write(to: URL(fileURLWithPath: path))
        }
        let differences = OpenRPC.differences(document: doc, methods: Self.servedMethods(), topics: NodeRPC.topics)
        #expect(differences == [], "docs/openrpc.json disagrees with the node: \(differences)")
        // Nothing is left planned.
        for m in doc["methods"]?.arrayValue ?? [] {
            #expect(m["x-quarry-status"] == "implemented", "\(m["name"] ?? "?") is not implemented")
        }
    }

    @Test func everyResultSchemaIsOneTheCheckerUnderstands() throws {
        for spec in NodeRPC.methods {
            #expect(SchemaChecker.unsupportedKeywords(in: spec.result).isEmpty,
                    "\(spec.name): \(SchemaChecker.unsupportedKeywords(in: spec.result))")
        }
        for topic in NodeRPC.topics {
            #expect(SchemaChecker.unsupportedKeywords(in: topic.payloadSchema).isEmpty, "\(topic.name)")
        }
    }
}
