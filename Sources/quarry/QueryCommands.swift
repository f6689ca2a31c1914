import ArgumentParser
import Foundation
import QuarryClient
import QuarryCore
import QuarryCrypto
import QuarryRPC

struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Read the chain through a node's JSON-RPC: status, blocks, transactions, accounts, vehicles, batches, supply, parameters, seasons, draws, catalog, redemptions.",
        discussion: """
            Every subcommand calls one JSON-RPC method (docs/spec/json-rpc.md) and prints its \
            result: as an outline with --output text (amounts also shown in stones), or as the \
            node's JSON with --output json. Exit codes: 0 found, 1 the node refused or the thing \
            does not exist, 2 the node could not be reached, 64 a usage error.
            """,
        subcommands: [QueryStatus.self, QueryBlock.self, QueryValidators.self, QueryTransaction.self, QueryAccount.self,
                      QueryVehicle.self, QueryBatch.self, QuerySupply.self, QueryParameters.self, QuerySeason.self, QueryDraw.self,
                      QueryCatalog.self, QueryRedemption.self])
}

/// What a query subcommand does: one call, one printed result.
protocol QueryRunner: AsyncParsableCommand {
    var client: ClientOptions { get }
    func fetch(_ q: QuarryClient) async throws -> JSONValue
}

extension QueryRunner {
    func run() async throws {
        try await reportingErrors {
            let value = try await fetch(try client.client())
            Render.emit(value, format: client.output)
        }
    }
}

struct QueryStatus: QueryRunner {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "The node's chain, height, latest block and role (node_status).")
    @OptionGroup var client: ClientOptions
    func fetch(_ q: QuarryClient) async throws -> JSONValue { try await q.status().raw }
}

struct QueryBlock: QueryRunner {
    static let configuration = CommandConfiguration(commandName: "block", abstract: "A committed block: header, transaction hashes, commit certificate (chain_getBlock).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Block height (1 is the first block).") var height: UInt64
    func fetch(_ q: QuarryClient) async throws -> JSONValue { try await q.block(height: height) }
}

struct QueryValidators: QueryRunner {
    static let configuration = CommandConfiguration(commandName: "validators", abstract: "The validator set in force (chain_getValidators).")
    @OptionGroup var client: ClientOptions
    @Option(help: "At this height (default: the latest).") var height: UInt64?
    func fetch(_ q: QuarryClient) async throws -> JSONValue { try await q.validators(height: height) }
}

struct QueryTransaction: QueryRunner {
    static let configuration = CommandConfiguration(commandName: "tx", abstract: "A transaction's status, height and result or ledger error (tx_get).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Transaction hash (64 hex digits).") var hash: String
    func validate() throws { _ = try Parse.hash(hash, flag: "HASH") }
    func fetch(_ q: QuarryClient) async throws -> JSONValue {
        try await q.transaction(hash: Parse.hash(hash, flag: "HASH")).raw
    }
}

struct QueryAccount: QueryRunner {
    static let configuration = CommandConfiguration(
        commandName: "account", abstract: "An account's balance and next nonce (account_get).",
        discussion: "ACCOUNT is an address (quarry1...) or the name of a key in the keystore.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Address or key name.") var account: String
    @Flag(help: "Include the state proof against a block's state root.") var proof = false
    func fetch(_ q: QuarryClient) async throws -> JSONValue {
        let address = try resolveAddress(account, keys: client.keys, home: client.home, what: "ACCOUNT")
        return try await q.rawAccount(address, proof: proof)
    }
}

struct QueryVehicle: QueryRunner {
    static let configuration = CommandConfiguration(commandName: "vehicle", abstract: "A registered vehicle: owner, status, odometer (vehicle_get).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Vehicle id (64 hex digits).") var vehicleID: String
    @Flag(help: "Include the state proof against a block's state root.") var proof = false
    func validate() throws { _ = try Parse.hash(vehicleID, flag: "VEHICLE-ID") }
    func fetch(_ q: QuarryClient) async throws -> JSONValue {
        try await q.vehicle(Parse.hash(vehicleID, flag: "VEHICLE-ID"), proof: proof)
    }
}

struct QueryBatch: QueryRunner {
    static let configuration = CommandConfiguration(commandName: "batch", abstract: "A mileage batch: drop, distances and payouts (batch_get).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Batch index: batch N covers [genesisTime + N*batchSeconds, genesisTime + (N+1)*batchSeconds).") var index: UInt64
    @Option(help: ArgumentHelp("Participants after this vehicle id (the nextCursor of the previous page).", valueName: "hex")) var cursor: String?
    @Option(help: "Participants per page (1 to 1000; the node's default is 100).") var limit: UInt64?
    func validate() throws {
        if let cursor { _ = try Parse.hash(cursor, flag: "--cursor") }
        if let limit, !(1...1_000).contains(limit) { throw ValidationError("--limit must be 1 to 1000") }
    }
    func fetch(_ q: QuarryClient) async throws -> JSONValue {
        try await q.batch(index, cursor: try cursor.map { try Parse.hash($0, flag: "--cursor") }, limit: limit)
    }
}

struct QueryParameters: QueryRunner {
    static let configuration = CommandConfiguration(
        commandName: "parameters",
        abstract: "The parameters in force: claim rules, transfers, schedule, block limits (chain_getParameters).",
        discussion: "Economic values come from the committed state, so a governance setParameter shows here; consensus values are those of genesis.")
    @OptionGroup var client: ClientOptions
    func fetch(_ q: QuarryClient) async throws -> JSONValue { try await q.parameters() }
}

struct QuerySupply: QueryRunner {
    static let configuration = CommandConfiguration(
        commandName: "supply", abstract: "Where every grain is: pools, balances, treasury, escrow; mileage paid against the schedule (supply_get).",
        discussion: "Text output ends with the conservation check: the parts must add up to the total exactly.")
    @OptionGroup var client: ClientOptions
    func fetch(_ q: QuarryClient) async throws -> JSONValue {
        let s = try await q.supply()
        guard client.output == .text else { return s.raw }
        guard case .object(var members) = s.raw else { return s.raw }
        members.append(("conservation", .string(s.isConserved
            ? "ok: pools + balances + treasury + escrow = total, mileage paid <= schedule"
            : "VIOLATED: parts add up to \(s.sumOfParts.map(String.init) ?? "more than 2^64") grains, total \(s.totalGrains)")))
        return .object(members)
    }
}

struct QuerySeason: QueryRunner {
    static let configuration = CommandConfiguration(commandName: "season", abstract: "A blind-box season: terms, odds, budget left, requests (season_get).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Season id (0, 1, ...).") var id: UInt64
    @Flag(help: "Include the state proof against a block's state root.") var proof = false
    func fetch(_ q: QuarryClient) async throws -> JSONValue { try await q.season(id, proof: proof) }
}

struct QueryDraw: QueryRunner {
    static let configuration = CommandConfiguration(commandName: "draw", abstract: "A draw request and its result (draw_get).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Season id.") var season: UInt64
    @Argument(help: "Request index within the season.") var index: UInt64
    func fetch(_ q: QuarryClient) async throws -> JSONValue { try await q.draw(season: season, index: index) }
}

struct QueryCatalog: QueryRunner {
    static let configuration = CommandConfiguration(commandName: "catalog", abstract: "Every catalog item: merchant, id, title, price, stock, eligibility (catalog_list).")
    @OptionGroup var client: ClientOptions
    @Option(help: ArgumentHelp("Only this merchant's items: an address or a key name.", valueName: "account")) var merchant: String?
    @Option(help: ArgumentHelp("Items after this point (the nextCursor of the previous page).", valueName: "hex")) var cursor: String?
    @Option(help: "Items per page (1 to 1000; the node's default is 100).") var limit: UInt64?
    func validate() throws {
        if let limit, !(1...1_000).contains(limit) { throw ValidationError("--limit must be 1 to 1000") }
        if let cursor { _ = try Parse.hex(cursor, flag: "--cursor") }
    }
    func fetch(_ q: QuarryClient) async throws -> JSONValue {
        let m = try merchant.map { try resolveAddress($0, keys: client.keys, home: client.home, what: "--merchant") }
        return try await q.catalog(merchant: m, cursor: cursor, limit: limit)
    }
}

struct QueryRedemption: QueryRunner {
    static let configuration = CommandConfiguration(commandName: "redemption", abstract: "A redemption: redeemer, item, price, status (redemption_get).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Redemption id (0, 1, ...).") var id: UInt64
    @Flag(help: "Include the state proof against a block's state root.") var proof = false
    func fetch(_ q: QuarryClient) async throws -> JSONValue { try await q.redemption(id, proof: proof) }
}

/// An address given as text, or the address of a named key in the keystore.
func resolveAddress(_ text: String, keys: String?, home: HomeOptions, what: String) throws -> Address {
    if text.hasPrefix(Address.textPrefix + "1") { return try Parse.address(text, flag: what) }
    guard (try? Keystore.validate(name: text)) != nil else {
        throw ValidationError("\(what) must be an address (quarry1...) or a key name, got '\(text)'")
    }
    let store = Keystore(directory: keysDirectory(keys, home: home))
    do { return try store.info(name: text).address } catch let e as KeystoreError {
        throw ValidationError("\(what): '\(text)' is not an address, and \(e.description) (\(store.directory.path))")
    }
}

func keysDirectory(_ keys: String?, home: HomeOptions) -> URL {
    if let keys { return URL(fileURLWithPath: (keys as NSString).expandingTildeInPath) }
    return home.keysURL
}
