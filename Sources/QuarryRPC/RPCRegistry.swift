import QuarryCore

/// A registered method: its name, description, declared params, result schema and handler.
public struct RPCMethod: Sendable {
    public typealias Handler = @Sendable (RPCParams) async throws -> JSONValue

    public let name: String
    public let summary: String
    public let params: [RPCParamSpec]
    /// JSON Schema of the result (for the OpenRPC document).
    public let resultSchema: JSONValue
    public let handler: Handler

    public init(name: String, summary: String, params: [RPCParamSpec], resultSchema: JSONValue,
                handler: @escaping Handler) {
        self.name = name
        self.summary = summary
        self.params = params
        self.resultSchema = resultSchema
        self.handler = handler
    }
}

/// The methods a server answers, by name. Thread-safe; methods are normally registered
/// before the server starts but may be added later.
public final class RPCRegistry: Sendable {
    /// Names handled by the server itself (`rpc.discover`, `subscribe`, `unsubscribe`).
    public static let builtinNames: Set<String> = ["rpc.discover", "subscribe", "unsubscribe"]

    private let lock = Lock()
    nonisolated(unsafe) private var methods: [String: RPCMethod] = [:]

    public init() {}

    /// Adds a method. Registering a name twice, a built-in name or any other `rpc.` name is a
    /// programming error.
    public func register(_ method: RPCMethod) {
        precondition(!RPCRegistry.builtinNames.contains(method.name) && !method.name.hasPrefix("rpc."),
                     "method name \(method.name) is reserved")
        precondition(!method.name.isEmpty, "method name must not be empty")
        var seen = Set<String>()
        for p in method.params { precondition(seen.insert(p.name).inserted, "duplicate param \(p.name) in \(method.name)") }
        lock.withLock {
            precondition(methods[method.name] == nil, "method \(method.name) registered twice")
            methods[method.name] = method
        }
    }

    public func method(named name: String) -> RPCMethod? { lock.withLock { methods[name] } }

    /// All registered methods sorted by name.
    public var all: [RPCMethod] { lock.withLock { methods.values.sorted { $0.name < $1.name } } }
}

/// Where a request came from: HTTP has no connection state; a WebSocket connection can hold
/// subscriptions.
enum RPCTransport: Sendable {
    case http
    case webSocket(any RPCSubscriber)
}

/// Turns request bytes into response bytes: JSON-RPC 2.0 framing, batches, notifications,
/// ids, params validation and error mapping. Independent of the transport.
final class RPCDispatcher: Sendable {
    let registry: RPCRegistry
    let hub: RPCSubscriptionHub
    let limits: RPCServerConfiguration
    let discover: @Sendable () -> JSONValue
    let onInternalError: (@Sendable (String, any Error) -> Void)?

    init(registry: RPCRegistry, hub: RPCSubscriptionHub, limits: RPCServerConfiguration,
         onInternalError: (@Sendable (String, any Error) -> Void)? = nil,
         discover: @escaping @Sendable () -> JSONValue) {
        self.registry = registry
        self.hub = hub
        self.limits = limits
        self.onInternalError = onInternalError
        self.discover = discover
    }

    /// The response body for `body`, or nil when nothing is to be sent (a notification or a
    /// batch of notifications only).
    func handle(body: [UInt8], transport: RPCTransport) async -> [UInt8]? {
        let document: JSONValue
        do {
            document = try JSONValue.parse(body, limits: JSONLimits(documentBytesMax: limits.bodyBytesMax,
                                                                    depthMax: limits.depthMax))
        } catch {
            var e = RPCError.parseError(error.description)
            e.data = .object([("code", .string(error.code)), ("reason", .string(error.description))])
            return RPCDispatcher.response(id: .null, outcome: .failure(e))
        }
        switch document {
        case .array(let entries):
            guard !entries.isEmpty else {
                return RPCDispatcher.response(id: .null, outcome: .failure(.invalidRequest("empty batch")))
            }
            guard entries.count <= limits.batchLengthMax else {
                return RPCDispatcher.response(id: .null, outcome: .failure(.limitExceeded(
                    code: "rpc.batch_too_long",
                    "batch of \(entries.count) requests exceeds the limit of \(limits.batchLengthMax)",
                    limit: limits.batchLengthMax)))
            }
            let replies = await withTaskGroup(of: (Int, [UInt8]?).self) { group in
                for (i, entry) in entries.enumerated() {
                    group.addTask { (i, await self.handleOne(entry, transport: transport)) }
                }
                var slots = [[UInt8]?](repeating: nil, count: entries.count)
                for await (i, reply) in group { slots[i] = reply }
                return slots.compactMap { $0 }
            }
            if replies.isEmpty { return nil }
            var out: [UInt8] = [UInt8(ascii: "[")]
            for (i, r) in replies.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: r)
            }
            out.append(UInt8(ascii: "]"))
            return out
        default:
            return await handleOne(document, transport: transport)
        }
    }

    private static let allowedMembers: Set<String> = ["jsonrpc", "method", "params", "id"]

    /// One request object: its response bytes, or nil for a notification.
    func handleOne(_ request: JSONValue, transport: RPCTransport) async -> [UInt8]? {
        guard case .object(let members) = request else {
            return RPCDispatcher.response(id: .null, outcome: .failure(.invalidRequest("a request must be an object, got \(request.kindName)")))
        }
        // The id, when it is a valid one, is echoed even in an Invalid Request reply.
        let rawID = request["id"]
        var id: JSONValue = .null
        switch rawID {
        case nil, .null?, .string?, .number?: id = rawID ?? .null
        case let other?:
            return RPCDispatcher.response(id: .null, outcome: .failure(.invalidRequest("id must be a string, a number or null, got \(other.kindName)")))
        }
        if let unknown = members.first(where: { !RPCDispatcher.allowedMembers.contains($0.0) }) {
            return RPCDispatcher.response(id: id, outcome: .failure(.invalidRequest("unknown member \"\(unknown.0)\" in request")))
        }
        guard request["jsonrpc"] == .string("2.0") else {
            return RPCDispatcher.response(id: id, outcome: .failure(.invalidRequest("member \"jsonrpc\" must be exactly \"2.0\"")))
        }
        guard case .string(let name)? = request["method"] else {
            return RPCDispatcher.response(id: id, outcome: .failure(.invalidRequest("member \"method\" must be a string")))
        }
        let params = request["params"]
        switch params {
        case nil, .array?, .object?: break
        case let other?:
            return RPCDispatcher.response(id: id, outcome: .failure(.invalidRequest("member \"params\" must be an array or an object, got \(other.kindName)")))
        }
        let isNotification = rawID == nil
        let outcome = await call(name, params: params, transport: transport)
        return isNotification ? nil : RPCDispatcher.response(id: id, outcome: outcome)
    }

    private func call(_ name: String, params: JSONValue?, transport: RPCTransport) async -> Result<JSONValue, RPCError> {
        do {
            switch name {
            case "rpc.discover":
                _ = try RPCParams.validate(method: name, raw: params, specs: [])
                return .success(discover())
            case "subscribe", "unsubscribe":
                guard case .webSocket(let subscriber) = transport else {
                    throw RPCError.wrongTransport("\(name) needs a WebSocket connection (GET /websocket)")
                }
                if name == "subscribe" {
                    let p = try RPCParams.validate(method: name, raw: params, specs: RPCSubscriptionHub.subscribeParams)
                    return .success(.string(try hub.subscribe(subscriber, params: p)))
                }
                let p = try RPCParams.validate(method: name, raw: params, specs: RPCSubscriptionHub.unsubscribeParams)
                try hub.unsubscribe(subscriber, id: try p.string("subscription"))
                return .success(.bool(true))
            default:
                guard let method = registry.method(named: name) else { throw RPCError.methodNotFound(name) }
                let p = try RPCParams.validate(method: name, raw: params, specs: method.params)
                return .success(try await method.handler(p))
            }
        } catch {
            let mapped = RPCError.from(error)
            if mapped.code == RPCError.internalErrorCode, !(error is RPCError) { onInternalError?(name, error) }
            return .failure(mapped)
        }
    }

    static func response(id: JSONValue, outcome: Result<JSONValue, RPCError>) -> [UInt8] {
        var out = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
        id.write(to: &out)
        switch outcome {
        case .success(let result):
            out.append(contentsOf: #","result":"#.utf8)
            result.write(to: &out)
        case .failure(let error):
            out.append(contentsOf: #","error":"#.utf8)
            error.json.write(to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }
}
