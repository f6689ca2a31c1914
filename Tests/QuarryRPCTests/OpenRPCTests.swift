import Foundation
import QuarryCore
import QuarryRPCTestSupport
import Testing
@testable import QuarryRPC

/// docs/openrpc.json against the server: the document describes every method and topic a
/// server answers and vice versa. The node adds one more check of this kind with its real
/// registry: `OpenRPC.differences(document:methods:topics:)` must be empty.
@Suite("OpenRPC document")
struct OpenRPCTests {
    static func loadDocs() throws -> JSONValue {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("docs/openrpc.json"))
        return try JSONValue.parse([UInt8](data))
    }

    /// The methods the interface issue names, and those added since (chain_getParameters:
    /// the parameters in force, for clients that build transactions from the docs alone).
    static let issue6Methods = ["node_status", "chain_getBlock", "chain_getValidators", "tx_submit", "tx_get",
                                "account_get", "vehicle_get", "batch_get", "supply_get", "season_get", "draw_get",
                                "catalog_list", "redemption_get", "subscribe", "unsubscribe", "rpc.discover",
                                "chain_getParameters"]

    @Test func documentDescribesTheSpecifiedInterface() throws {
        let doc = try Self.loadDocs()
        #expect(doc["openrpc"] == "1.3.2")
        let methods = try #require(doc["methods"]?.arrayValue)
        let names = methods.compactMap { $0["name"]?.stringValue }
        #expect(Set(names) == Set(Self.issue6Methods))
        #expect(names.count == Set(names).count)
        for method in methods {
            let name = method["name"]?.stringValue ?? "?"
            #expect(method["params"]?.arrayValue != nil, "\(name) has no params array")
            #expect(method["result"]?["schema"] != nil, "\(name) has no result schema")
            #expect(method["summary"]?.stringValue?.isEmpty == false, "\(name) has no summary")
            let status = method["x-quarry-status"]?.stringValue
            #expect(status == "implemented" || status == "planned", "\(name): status \(String(describing: status))")
            // The node serves every method of the interface (Tests/QuarryNodeTests/NodeOpenRPCTests.swift).
            #expect(status == "implemented", "\(name) is \(status ?? "?")")
        }
        // The supply fields of issue 6, all amounts in grains.
        let supply = try #require(methods.first { $0["name"] == "supply_get" })
        let fields = supply["result"]?["schema"]?["properties"]?.objectValue?.map(\.0) ?? []
        #expect(Array(fields.prefix(8)) == ["totalGrains", "mileagePoolGrains", "cultivationPoolGrains", "balancesGrains",
                                            "treasuryGrains", "escrowGrains", "mintedMileageGrains", "scheduledMileageGrains"])
        let topics = try #require(doc["x-quarry-topics"]?.arrayValue)
        #expect(topics.compactMap { $0["name"]?.stringValue } == ["newBlocks", "transactions", "batchDrops", "drawResults"])
    }

    /// Every param schema in the document is one a server can declare with RPCParamType,
    /// so the node can register the methods exactly as described.
    @Test func everyParamSchemaIsExpressible() throws {
        let doc = try Self.loadDocs()
        let expressible: [JSONValue] = [
            RPCParamType.string(lengthMax: 64).schema, RPCParamType.boolean.schema, RPCParamType.unsignedInteger.schema,
            RPCParamType.amount.schema, RPCParamType.hash.schema, RPCParamType.hex(byteCount: nil, bytesMax: 65536).schema,
            RPCParamType.hex(byteCount: nil, bytesMax: 85).schema,
            RPCParamType.address.schema, RPCParamType.oneOf(["none", "checked", "committed"]).schema,
            RPCParamType.object.schema,
        ]
        let entries = (doc["methods"]?.arrayValue ?? []).flatMap { $0["params"]?.arrayValue ?? [] }
            + (doc["x-quarry-topics"]?.arrayValue ?? []).flatMap { $0["filter"]?.arrayValue ?? [] }
        #expect(!entries.isEmpty)
        for entry in entries {
            let schema = try #require(entry["schema"])
            #expect(expressible.contains(schema), "\(entry["name"] ?? "?"): \(schema)")
        }
        // The address pattern fits real addresses.
        let text = Address(scheme: .sm2, digest20: [UInt8](repeating: 9, count: 20)).text
        #expect(text.hasPrefix("quarry1") && text.utf8.count == 7 + 40)
    }

    /// A server with only the built-ins is told about every method and topic the document
    /// says is implemented (the node's own registry agrees with it exactly: NodeOpenRPCTests).
    @Test func aServerWithOnlyTheBuiltinsLacksTheNodeMethods() throws {
        let doc = try Self.loadDocs()
        let expected = (Self.issue6Methods.filter { !RPCRegistry.builtinNames.contains($0) }.map {
            "method \($0) is described as implemented but not served"
        } + ["batchDrops", "drawResults", "newBlocks", "transactions"].map {
            "topic \($0) is described as implemented but not served"
        })
        #expect(Set(OpenRPC.differences(document: doc, methods: [], topics: [])) == Set(expected))
    }

    /// `doc` with the method `name` marked `status`.
    static func marking(_ doc: JSONValue, _ name: String, _ status: String) -> JSONValue {
        guard case .object(var members) = doc, let i = members.firstIndex(where: { $0.0 == "methods" }),
              case .array(var methods) = members[i].1,
              let j = methods.firstIndex(where: { $0["name"]?.stringValue == name }), case .object(let m) = methods[j] else { return doc }
        methods[j] = .object(m.map { $0.0 == "x-quarry-status" ? ($0.0, .string(status)) : $0 })
        members[i].1 = .array(methods)
        return .object(members)
    }

    @Test func differencesAreFoundInBothDirections() async throws {
        let doc = try Self.loadDocs()
        let server = RPCServer(configuration: RPCServerConfiguration())
        // A served method the document lacks.
        registerDemo(server)
        let demo = OpenRPC.differences(document: doc, methods: server.registry.all, topics: server.subscriptions.allTopics)
        await server.shutdown()
        #expect(demo.contains("method echo is served but not described"))
        #expect(demo.contains("topic demo_blocks is served but not described"))

        // A planned method, once served, must be marked implemented.
        let status = RPCMethod(name: "node_status", summary: "", params: [],
                               resultSchema: try #require(doc["methods"]?.arrayValue?.first { $0["name"] == "node_status" }?["result"]?["schema"])) { _ in .null }
        #expect(OpenRPC.differences(document: Self.marking(doc, "node_status", "planned"), methods: [status], topics: [])
                .contains("method node_status is served but described as planned"))

        // Params that differ in name, requiredness or type.
        let wrongParams = RPCMethod(name: "chain_getBlock", summary: "", params: [RPCParamSpec("height", .string(lengthMax: 64))],
                                    resultSchema: [:]) { _ in .null }
        let found = OpenRPC.differences(document: doc, methods: [wrongParams], topics: [])
        #expect(found.contains { $0.contains("schema of height differs") })
        #expect(found.contains { $0.contains("result schema differs") })
        let optional = RPCMethod(name: "tx_get", summary: "", params: [RPCParamSpec("hash", .hash, required: false)],
                                 resultSchema: [:]) { _ in .null }
        #expect(OpenRPC.differences(document: doc, methods: [optional], topics: []).contains { $0.contains("hash required is false") })
        let renamed = RPCMethod(name: "tx_get", summary: "", params: [RPCParamSpec("txHash", .hash)],
                                resultSchema: [:]) { _ in .null }
        #expect(OpenRPC.differences(document: doc, methods: [renamed], topics: []).contains { $0.contains("described params") })

        // A document missing a built-in, or claiming an unserved method is implemented.
        guard case .object(var members) = doc, let i = members.firstIndex(where: { $0.0 == "methods" }),
              case .array(var methods) = members[i].1 else { Issue.record("no methods"); return }
        methods.removeAll { $0["name"] == "subscribe" }
        members[i].1 = .array(methods)
        let edited = OpenRPC.differences(document: Self.marking(.object(members), "batch_get", "planned"), methods: [], topics: [])
        #expect(edited.contains("method subscribe is served but not described"))
        #expect(edited.contains("method tx_get is described as implemented but not served"))
        #expect(!edited.contains { $0.contains("batch_get") }, "a planned method that is not served is fine")
    }

    /// rpc.discover serves the server's own description, which always agrees with it.
    @Test func rpcDiscoverServesTheServersOwnDescription() async throws {
        try await withDemoServer { server, port in
            let r = try await post(port, #"{"jsonrpc":"2.0","method":"rpc.discover","id":1}"#)
            let served = try #require(r.json?["result"])
            #expect(served == server.openRPCDocument)
            #expect(OpenRPC.differences(document: served, methods: server.registry.all,
                                        topics: server.subscriptions.allTopics) == [])
            let names = served["methods"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            #expect(names == ["rpc.discover", "subscribe", "unsubscribe", "add", "big", "crash", "describe", "echo",
                              "missing", "reject", "sleep"])
            let describe = served["methods"]?.arrayValue?.first { $0["name"] == "describe" }
            #expect(describe?["params"]?.arrayValue?.first?["schema"] == RPCParamType.unsignedInteger.schema)
        }
    }
}
