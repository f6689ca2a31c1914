import QuarryCore
import QuarryRPC

/// An error object a node sent back (docs/spec/json-rpc.md section 3): the JSON-RPC code and
/// message, and Quarry's stable `data.code` and human `data.reason` (the ledger's or node's
/// own words, for example "odometer span overlaps the previous claim").
public struct RemoteError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: Int
    public let message: String
    /// `data.code`, for example `claim.odometer_overlap` or `rpc.invalid_params`.
    public let dataCode: String?
    /// `data.reason`.
    public let reason: String?
    /// The whole `data` member, for anything else the server put there (`limit`, ...).
    public let data: JSONValue?

    public init(code: Int, message: String, data: JSONValue?) {
        self.code = code
        self.message = message
        self.data = data
        self.dataCode = data?["code"]?.stringValue
        self.reason = data?["reason"]?.stringValue
    }

    /// Parses a JSON-RPC error object; nil when it is not one.
    init?(_ value: JSONValue) {
        guard let code = value["code"]?.numberValue?.int64Value, let message = value["message"]?.stringValue else { return nil }
        self.init(code: Int(code), message: message, data: value["data"])
    }

    public var description: String {
        let what = reason ?? message
        if let dataCode { return "\(what) (\(dataCode), JSON-RPC error \(code))" }
        return "\(what) (JSON-RPC error \(code))"
    }
}

/// Everything that can go wrong between a client and a node. `code` is stable: the
/// `client.*` codes are this library's own; an error from the node keeps the node's
/// `data.code`.
public enum ClientError: QuarryError, Equatable {
    /// `--rpc` is not a usable `http://host:port` address.
    case invalidEndpoint(String, String)
    /// No connection could be made (nothing listens, refused, unreachable).
    case unreachable(endpoint: String, reason: String)
    /// The exchange did not finish within the client's deadline.
    case timedOut(endpoint: String, milliseconds: Int64)
    /// The connection broke mid-exchange.
    case transport(endpoint: String, reason: String)
    /// An HTTP status other than 200 (the body's JSON-RPC error, when there is one).
    case httpStatus(Int, RemoteError?)
    /// The node's answer is not the JSON-RPC response or the result shape the spec promises.
    case malformedResponse(String)
    /// The node answered with a JSON-RPC error.
    case remote(RemoteError)
    /// A value given to the client is not acceptable (checked before anything is sent).
    case invalidArgument(String, String)

    public var code: String {
        switch self {
        case .invalidEndpoint: return "client.invalid_endpoint"
        case .unreachable: return "client.unreachable"
        case .timedOut: return "client.timeout"
        case .transport: return "client.transport"
        case .httpStatus(_, let e): return e?.dataCode ?? "client.http_status"
        case .malformedResponse: return "client.malformed_response"
        case .remote(let e): return e.dataCode ?? "rpc.error_\(-e.code)"
        case .invalidArgument: return "client.invalid_argument"
        }
    }

    public var description: String {
        switch self {
        case .invalidEndpoint(let text, let why): return "invalid RPC address '\(text)': \(why)"
        case .unreachable(let endpoint, let reason):
            return "cannot reach the node at \(endpoint): \(reason) (is it running? give its address with --rpc)"
        case .timedOut(let endpoint, let ms): return "no answer from \(endpoint) within \(ms) ms"
        case .transport(let endpoint, let reason): return "connection to \(endpoint) failed: \(reason)"
        case .httpStatus(let status, let e):
            if let e { return "the node answered HTTP \(status): \(e)" }
            return "the node answered HTTP \(status)"
        case .malformedResponse(let why): return "the node's answer is malformed: \(why)"
        case .remote(let e): return e.description
        case .invalidArgument(let name, let why): return "\(name): \(why)"
        }
    }

    /// The node's error object, when the node answered with one.
    public var remote: RemoteError? {
        switch self {
        case .remote(let e): return e
        case .httpStatus(_, let e): return e
        default: return nil
        }
    }
}
