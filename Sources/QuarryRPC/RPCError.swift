import QuarryCore

/// A JSON-RPC error object: `{"code": Int, "message": String, "data"?: any}`.
///
/// Standard codes (JSON-RPC 2.0): -32700 parse error, -32600 invalid request, -32601 method
/// not found, -32602 invalid params, -32603 internal error. Quarry's server-defined codes
/// (all in the reserved -32000...-32099 range, see docs/spec/json-rpc.md) always carry
/// `data: {"code": "<stable.code>", "reason": "<human text>", ...}`.
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    // Standard codes.
    public static let parseErrorCode = -32700
    public static let invalidRequestCode = -32600
    public static let methodNotFoundCode = -32601
    public static let invalidParamsCode = -32602
    public static let internalErrorCode = -32603
    // Quarry server codes.
    /// The node understood the request and refused it: the ledger's (or node's) reason is
    /// in `data.code` / `data.reason` (a `QuarryError`).
    public static let applicationErrorCode = -32000
    /// The thing asked for (block, transaction, account, ...) does not exist.
    public static let notFoundCode = -32001
    /// A server limit was hit (batch length, subscriptions, in-flight requests, ...).
    public static let limitExceededCode = -32002
    /// The node cannot serve the request now (shutting down, still catching up, ...).
    public static let unavailableCode = -32003
    /// The method exists but not on this transport (subscriptions need a WebSocket).
    public static let wrongTransportCode = -32004
    /// The request took longer than its wait allowed (for example `tx_submit` waiting for
    /// a commit); the outcome is unknown to the client and may still happen.
    public static let timeoutCode = -32005

    static func withData(_ code: Int, _ message: String, _ dataCode: String, _ reason: String,
                         _ extra: [(String, JSONValue)] = []) -> RPCError {
        RPCError(code: code, message: message,
                 data: .object([("code", .string(dataCode)), ("reason", .string(reason))] + extra))
    }

    public static func parseError(_ reason: String) -> RPCError {
        withData(parseErrorCode, "Parse error", "rpc.parse_error", reason)
    }
    public static func invalidRequest(_ reason: String) -> RPCError {
        withData(invalidRequestCode, "Invalid Request", "rpc.invalid_request", reason)
    }
    public static func methodNotFound(_ method: String) -> RPCError {
        withData(methodNotFoundCode, "Method not found", "rpc.method_not_found", "no method named \"\(method)\"")
    }
    public static func invalidParams(_ reason: String) -> RPCError {
        withData(invalidParamsCode, "Invalid params", "rpc.invalid_params", reason)
    }
    /// The client sees only a generic message; details belong in the node's log.
    public static func internalError() -> RPCError {
        withData(internalErrorCode, "Internal error", "rpc.internal", "the server failed to process the request")
    }
    public static func application(_ error: some QuarryError) -> RPCError {
        withData(applicationErrorCode, "Application error", error.code, error.description)
    }
    public static func notFound(code dataCode: String, _ reason: String) -> RPCError {
        withData(notFoundCode, "Not found", dataCode, reason)
    }
    public static func limitExceeded(code dataCode: String, _ reason: String, limit: Int) -> RPCError {
        withData(limitExceededCode, "Limit exceeded", dataCode, reason, [("limit", .integer(Int64(limit)))])
    }
    public static func unavailable(code dataCode: String, _ reason: String) -> RPCError {
        withData(unavailableCode, "Unavailable", dataCode, reason)
    }
    public static func wrongTransport(_ reason: String) -> RPCError {
        withData(wrongTransportCode, "Wrong transport", "rpc.wrong_transport", reason)
    }
    public static func timeout(code dataCode: String, _ reason: String) -> RPCError {
        withData(timeoutCode, "Timeout", dataCode, reason)
    }

    /// The error object as JSON.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("code", .integer(Int64(code))), ("message", .string(message))]
        if let data { members.append(("data", data)) }
        return .object(members)
    }

    public var description: String {
        if let reason = data?["reason"]?.stringValue { return "\(code) \(message): \(reason)" }
        return "\(code) \(message)"
    }
}

/// An error type that picks its own JSON-RPC error (for example a "no such block" error
/// that should be -32001 rather than the generic -32000 application error).
public protocol RPCErrorConvertible: Error {
    var rpcError: RPCError { get }
}

extension RPCError {
    /// Maps whatever a handler threw: an `RPCError` as it is; an `RPCErrorConvertible` by
    /// its own mapping; any other `QuarryError` to -32000 with its code and description;
    /// anything else to -32603 with no details (they may be internal).
    public static func from(_ error: any Error) -> RPCError {
        if let e = error as? RPCError { return e }
        if let e = error as? any RPCErrorConvertible { return e.rpcError }
        if let e = error as? any QuarryError { return .application(e) }
        return .internalError()
    }
}
