import QuarryCore
import QuarryLedger
import QuarryRPC

/// Typed access to a Quarry node's JSON-RPC methods (docs/openrpc.json). Each method sends
/// exactly the documented params; results whose shape the spec fixes come back as typed
/// values (with the raw JSON kept in `raw`), the others as `JSONValue`.
public struct QuarryClient: Sendable {
    public let rpc: RPCClient

    public init(rpc: RPCClient) { self.rpc = rpc }

    public init(endpoint: RPCEndpoint, timeoutMilliseconds: Int64 = 10_000) {
        self.rpc = RPCClient(endpoint: endpoint, timeoutMilliseconds: timeoutMilliseconds)
    }

    // MARK: node and chain

    public func status() async throws(ClientError) -> NodeStatus {
        try NodeStatus(await rpc.call("node_status"))
    }

    public func block(height: UInt64) async throws(ClientError) -> JSONValue {
        try await rpc.call("chain_getBlock", [("height", .integer(height))])
    }

    public func validators(height: UInt64? = nil) async throws(ClientError) -> JSONValue {
        try await rpc.call("chain_getValidators", height.map { [("height", .integer($0))] } ?? [])
    }

    // MARK: transactions

    /// The longest a `committed` wait is given by default: the server bounds its own wait
    /// and answers -32005 when it runs out; the client waits a little longer than that.
    public static let committedWaitMilliseconds: Int64 = 60_000

    /// Submits encoded transaction bytes and waits as `wait` says.
    public func submit(_ bytes: [UInt8], wait: WaitMode, timeoutMilliseconds: Int64? = nil) async throws(ClientError) -> TransactionStatus {
        let timeout = timeoutMilliseconds ?? (wait == .committed ? max(rpc.timeoutMilliseconds, QuarryClient.committedWaitMilliseconds) : rpc.timeoutMilliseconds)
        let outcome: Result<JSONValue, ClientError>
        do {
            outcome = .success(try await rpc.call("tx_submit", [("tx", .hex(bytes)), ("wait", .string(wait.rawValue))],
                                                  timeoutMilliseconds: timeout))
        } catch {
            outcome = .failure(error)
        }
        switch outcome {
        case .success(let result):
            return try TransactionStatus(result, method: "tx_submit")
        case .failure(let error):
            // Refused by the ledger in a committed block: a status, like tx_get's "rejected".
            if let remote = error.remote, let refused = TransactionStatus(ledgerRefusal: remote) { return refused }
            throw error
        }
    }

    public func submit(_ tx: SignedTransaction, wait: WaitMode, timeoutMilliseconds: Int64? = nil) async throws(ClientError) -> TransactionStatus {
        try await submit(tx.canonicalBytes, wait: wait, timeoutMilliseconds: timeoutMilliseconds)
    }

    public func transaction(hash: Hash256) async throws(ClientError) -> TransactionStatus {
        try TransactionStatus(await rpc.call("tx_get", [("hash", .string(hash.hex))]), method: "tx_get")
    }

    // MARK: state

    public func account(_ address: Address, proof: Bool = false) async throws(ClientError) -> AccountState {
        try AccountState(await rawAccount(address, proof: proof))
    }

    public func rawAccount(_ address: Address, proof: Bool = false) async throws(ClientError) -> JSONValue {
        var params: [(String, JSONValue)] = [("address", .string(address.text))]
        if proof { params.append(("proof", true)) }
        return try await rpc.call("account_get", params)
    }

    public func vehicle(_ id: Hash256, proof: Bool = false) async throws(ClientError) -> JSONValue {
        var params: [(String, JSONValue)] = [("vehicleId", .string(id.hex))]
        if proof { params.append(("proof", true)) }
        return try await rpc.call("vehicle_get", params)
    }

    /// One page of a batch: up to `limit` participants after `cursor` (a vehicle id).
    public func batch(_ index: UInt64, cursor: Hash256? = nil, limit: UInt64? = nil) async throws(ClientError) -> JSONValue {
        var params: [(String, JSONValue)] = [("index", .integer(index))]
        if let cursor { params.append(("cursor", .string(cursor.hex))) }
        if let limit { params.append(("limit", .integer(limit))) }
        return try await rpc.call("batch_get", params)
    }

    /// The parameters in force (economic ones as governance last set them; consensus ones
    /// from genesis), as `chain_getParameters` returns them.
    public func parameters() async throws(ClientError) -> JSONValue {
        try await rpc.call("chain_getParameters")
    }

    public func supply() async throws(ClientError) -> SupplyState {
        try SupplyState(await rpc.call("supply_get"))
    }

    public func season(_ id: UInt64, proof: Bool = false) async throws(ClientError) -> JSONValue {
        var params: [(String, JSONValue)] = [("id", .string(String(id)))]
        if proof { params.append(("proof", true)) }
        return try await rpc.call("season_get", params)
    }

    public func draw(season: UInt64, index: UInt64) async throws(ClientError) -> JSONValue {
        try await rpc.call("draw_get", [("id", .string(QuarryClient.drawID(season: season, index: index)))])
    }

    /// One page of the catalog (of one merchant, or all), after `cursor` (the `nextCursor`
    /// of the previous page).
    public func catalog(merchant: Address? = nil, cursor: String? = nil, limit: UInt64? = nil) async throws(ClientError) -> JSONValue {
        var params: [(String, JSONValue)] = []
        if let merchant { params.append(("merchant", .string(merchant.text))) }
        if let cursor { params.append(("cursor", .string(cursor))) }
        if let limit { params.append(("limit", .integer(limit))) }
        return try await rpc.call("catalog_list", params)
    }

    public func redemption(_ id: UInt64, proof: Bool = false) async throws(ClientError) -> JSONValue {
        var params: [(String, JSONValue)] = [("id", .string(String(id)))]
        if proof { params.append(("proof", true)) }
        return try await rpc.call("redemption_get", params)
    }

    /// The text id of request `index` of season `season`, as `draw_get` takes it.
    public static func drawID(season: UInt64, index: UInt64) -> String { "\(season)/\(index)" }
}
