import NIOCore
import NIOPosix
import QuarryCore
import QuarryRPC

/// A JSON-RPC 2.0 client over HTTP/1.1 (docs/spec/json-rpc.md): one POST per call, named
/// params, a deadline per call, and the server's error objects turned into
/// `ClientError.remote` with their `data.code` and `data.reason`. Safe to share between
/// tasks; calls run concurrently.
public struct RPCClient: Sendable {
    public let endpoint: RPCEndpoint
    /// Deadline of one call (connect, request, answer), in milliseconds.
    public var timeoutMilliseconds: Int64
    private let transport: HTTPTransport
    private let ids = Counter()

    /// Answers larger than this are refused (the server's own body limit is 1 MiB for
    /// requests; answers such as a block with 2,000 transactions stay well below this).
    public static let responseBytesMax = 32 << 20

    public init(endpoint: RPCEndpoint, timeoutMilliseconds: Int64 = 10_000,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        precondition(timeoutMilliseconds > 0, "timeout must be positive")
        self.endpoint = endpoint
        self.timeoutMilliseconds = timeoutMilliseconds
        self.transport = HTTPTransport(group: group, responseBytesMax: RPCClient.responseBytesMax)
    }

    /// Calls `method` with named `params` and returns its `result`.
    public func call(_ method: String, _ params: [(String, JSONValue)] = [],
                     timeoutMilliseconds: Int64? = nil) async throws(ClientError) -> JSONValue {
        let id = ids.next()
        let response = try await transport.post(RPCClient.request(id: id, method, params).encoded, to: endpoint,
                                                timeoutMilliseconds: timeoutMilliseconds ?? self.timeoutMilliseconds)
        return try RPCClient.result(of: response, id: id)
    }

    /// Sends `calls` as one JSON-RPC batch (one HTTP POST; the server takes up to 100 per
    /// batch, json-rpc.md) and returns, in the order of `calls`, each call's result or the
    /// error object the server answered it with. The whole call fails (throws) only when
    /// the exchange itself fails or the answer is not a well-formed batch response.
    public func batch(_ calls: [(method: String, params: [(String, JSONValue)])],
                      timeoutMilliseconds: Int64? = nil) async throws(ClientError) -> [Result<JSONValue, RemoteError>] {
        guard !calls.isEmpty else { return [] }
        // Consecutive ids, reserved at once: other calls of this client may run meanwhile.
        let firstID = ids.next(count: calls.count)
        let requests = calls.enumerated().map { i, c in RPCClient.request(id: firstID + UInt64(i), c.method, c.params) }
        let response = try await transport.post(JSONValue.array(requests).encoded, to: endpoint,
                                                timeoutMilliseconds: timeoutMilliseconds ?? self.timeoutMilliseconds)
        return try RPCClient.results(of: response, firstID: firstID, count: calls.count)
    }

    /// Interprets the HTTP answer to a batch whose ids run from `firstID` to
    /// `firstID + count - 1`: the server may answer the members in any order.
    static func results(of response: HTTPTransport.Response, firstID: UInt64, count: Int) throws(ClientError) -> [Result<JSONValue, RemoteError>] {
        let parsed = try? JSONValue.parse(response.body, limits: JSONLimits(documentBytesMax: responseBytesMax, depthMax: 64))
        guard response.status == 200 else {
            throw .httpStatus(response.status, parsed?["error"].flatMap(RemoteError.init))
        }
        guard let message = parsed else { throw .malformedResponse("not JSON") }
        if message["error"] != nil, let remote = message["error"].flatMap(RemoteError.init) {
            // The batch as a whole was refused (for example longer than the server allows).
            throw .remote(remote)
        }
        guard let members = message.arrayValue else { throw .malformedResponse("a batch answered with something other than an array") }
        var slots = [Result<JSONValue, RemoteError>?](repeating: nil, count: count)
        for m in members {
            guard m["jsonrpc"]?.stringValue == "2.0", let id = m["id"]?.numberValue?.uint64Value,
                  id >= firstID, id - firstID < UInt64(count) else {
                throw .malformedResponse("a batch member that answers no request of the batch")
            }
            let slot = Int(id - firstID)
            guard slots[slot] == nil else { throw .malformedResponse("request \(id) answered twice") }
            if let error = m["error"] {
                guard let remote = RemoteError(error) else { throw .malformedResponse("an error member that is not an error object") }
                slots[slot] = .failure(remote)
            } else if let result = m["result"] {
                slots[slot] = .success(result)
            } else {
                throw .malformedResponse("neither result nor error")
            }
        }
        var out: [Result<JSONValue, RemoteError>] = []
        for (i, s) in slots.enumerated() {
            guard let s else { throw .malformedResponse("request \(firstID + UInt64(i)) of the batch has no answer") }
            out.append(s)
        }
        return out
    }

    /// One request object: named params (left out when there are none) and an id.
    static func request(id: UInt64, _ method: String, _ params: [(String, JSONValue)]) -> JSONValue {
        var members: [(String, JSONValue)] = [("jsonrpc", "2.0"), ("method", .string(method))]
        if !params.isEmpty { members.append(("params", .object(params))) }
        members.append(("id", .integer(id)))
        return .object(members)
    }

    /// Interprets one HTTP answer to request `id`.
    static func result(of response: HTTPTransport.Response, id: UInt64) throws(ClientError) -> JSONValue {
        let parsed = try? JSONValue.parse(response.body, limits: JSONLimits(documentBytesMax: responseBytesMax, depthMax: 64))
        guard response.status == 200 else {
            throw .httpStatus(response.status, parsed?["error"].flatMap(RemoteError.init))
        }
        guard let message = parsed else {
            do { _ = try JSONValue.parse(response.body, limits: JSONLimits(documentBytesMax: responseBytesMax)) } catch {
                throw .malformedResponse("not JSON: \(error.description)")
            }
            throw .malformedResponse("not JSON")
        }
        guard case .object = message, message["jsonrpc"]?.stringValue == "2.0" else {
            throw .malformedResponse("not a JSON-RPC 2.0 response object")
        }
        if let error = message["error"] {
            guard let remote = RemoteError(error) else { throw .malformedResponse("an error member that is not an error object") }
            throw .remote(remote)
        }
        guard message["id"]?.numberValue?.uint64Value == id else {
            throw .malformedResponse("the response answers another request (id \(message["id"]?.description ?? "missing"), expected \(id))")
        }
        guard let result = message["result"] else { throw .malformedResponse("neither result nor error") }
        return result
    }
}

/// Request ids: 1, 2, 3, ... per client.
private final class Counter: @unchecked Sendable {
    private let lock = Lock()
    private var value: UInt64 = 0

    func next() -> UInt64 { next(count: 1) }

    /// The first of `count` consecutive ids, none of them handed out before.
    func next(count: Int) -> UInt64 {
        lock.withLock {
            let first = value + 1
            value += UInt64(count)
            return first
        }
    }
}
