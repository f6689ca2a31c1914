import ArgumentParser
import Foundation
import QuarryClient
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryRPC

struct TxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tx",
        abstract: "Build, sign and submit a transaction of any kind.",
        discussion: """
            Each subcommand builds one transaction kind (docs/spec/transactions.md), fills the \
            chain id and the nonce from the node (node_status, account_get), signs it with the \
            keystore key named by --from, submits it with tx_submit and waits as --wait says \
            (default: committed, which prints the block height and the ledger's result).

            Offline: --generate-only with --nonce N (and --chain-id, or a --home holding \
            genesis.json) prints the signed transaction in hex without contacting a node; \
            submit it later with any JSON-RPC client.

            Amounts are grains (1 stone = 100000000 grains) or take a unit: 150000000, \
            150000000grains and 1.5stones are the same amount.

            Exit codes: 0 done (committed without error, or admitted with --wait none/checked); \
            1 the node or the ledger refused it (the reason and its code are printed); 2 the \
            node could not be reached; 3 a local problem (key, passphrase, file, value); \
            4 the wait ran out and the outcome is unknown; 64 a usage error.
            """,
        subcommands: [
            TxRegisterVehicle.self, TxChangeOwner.self, TxDeactivateVehicle.self,
            TxSignAgreement.self, TxRevokeAgreement.self, TxClaim.self, TxGrantCrystals.self,
            TxOpenSeason.self, TxDraw.self, TxDrawResult.self, TxCloseSeason.self,
            TxUpsertItem.self, TxRedeem.self, TxFulfil.self, TxReject.self, TxTransfer.self,
            TxPropose.self, TxVote.self,
        ])
}

/// Flags every `quarry tx` subcommand takes.
struct TxOptions: ParsableArguments {
    @OptionGroup var client: ClientOptions

    @Option(help: ArgumentHelp("Name of the keystore key that signs (and pays).", valueName: "key"))
    var from: String?

    @OptionGroup var secret: PassphraseOptions

    @Option(help: "When tx_submit answers: none (queued), checked (admitted to the mempool), committed (in a block, with the result).")
    var wait: WaitMode = .committed

    @Flag(help: "Only print the signed transaction (hex); needs --nonce, sends nothing.")
    var generateOnly = false

    @Option(help: "Use this nonce instead of asking the node (account_get).")
    var nonce: UInt64?

    @Option(name: .customLong("chain-id"), help: "Chain id to sign for (default: the node's, or <home>/genesis.json offline).")
    var chainID: String?

    func validate() throws {
        guard let from else { throw ValidationError("--from KEY is required: the name of the key that signs (see 'quarry keys list')") }
        guard (try? Keystore.validate(name: from)) != nil else { throw ValidationError("--from: '\(from)' is not a valid key name") }
        if generateOnly && nonce == nil {
            throw ValidationError("--generate-only needs --nonce N: without a node the nonce cannot be looked up")
        }
        if let chainID, chainID.isEmpty || chainID.utf8.count > Limits.chainIDBytesMax {
            throw ValidationError("--chain-id must be 1 to \(Limits.chainIDBytesMax) bytes")
        }
    }

    var keys: String? { client.keys }
    var keysURL: URL { keysDirectory(client.keys, home: client.home) }

    func loadKey() throws -> SigningKey {
        let store = Keystore(directory: keysURL)
        let name = from!
        let info: Keystore.KeyInfo
        do { info = try store.info(name: name) } catch let e as KeystoreError {
            throw ClientFailure(exit: .local, description: "--from: \(e.description) (\(store.directory.path))")
        }
        return try store.load(name: name, passphrase: info.encrypted ? secret.passphrase(confirm: false) : nil)
    }

    /// The chain id for offline signing: --chain-id, else <home>/genesis.json.
    func offlineChainID() throws -> String {
        if let chainID { return chainID }
        let url = client.home.homeURL.appendingPathComponent("genesis.json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ValidationError("--generate-only needs --chain-id ID (no genesis.json in \(client.home.homeURL.path))")
        }
        do { return try Genesis.load(json: Array(data)).chainID } catch {
            throw ClientFailure(exit: .local, description: "\(url.path): \(error)")
        }
    }
}

/// What a transaction subcommand has at hand while it builds its payload.
struct TxContext {
    let options: TxOptions
    let key: SigningKey
    let chainID: String
    /// Nil in offline mode (--generate-only).
    let client: QuarryClient?

    var address: Address { key.address }

    func requireClient(for what: String) throws -> QuarryClient {
        guard let client else { throw ValidationError("\(what) needs the node; it cannot be built with --generate-only") }
        return client
    }
}

typealias PayloadMaker = @Sendable (UInt64) throws(ClientError) -> Payload

protocol TxRunner: AsyncParsableCommand {
    static var kind: String { get }
    var tx: TxOptions { get }
    /// Builds the payload (given the nonce it will carry).
    func build(_ context: TxContext) async throws -> PayloadMaker
    /// Extra lines printed after a successful submission (text output).
    func notes(_ context: TxContext, _ submission: Submission) -> [String]
}

extension TxRunner {
    static var kind: String { configuration.commandName ?? "tx" }
    func notes(_ context: TxContext, _ submission: Submission) -> [String] { [] }

    func run() async throws {
        try await reportingErrors {
            let key = try tx.loadKey()
            if tx.generateOnly {
                let chainID = try tx.offlineChainID()
                let context = TxContext(options: tx, key: key, chainID: chainID, client: nil)
                let nonce = tx.nonce!
                let maker = try await build(context)
                let signed = try TransactionSigner(chainID: chainID, key: key).sign(try maker(nonce), nonce: nonce)
                switch tx.client.output {
                case .text: print(Hex.encode(signed.canonicalBytes))
                case .json:
                    Render.emit(["tx": .hex(signed.canonicalBytes), "hash": .string(signed.hash.hex), "kind": .string(Self.kind),
                                 "sender": .string(signed.sender.text), "nonce": .integer(nonce), "chainId": .string(chainID)],
                                format: .json)
                }
                return
            }
            let client = try tx.client.client()
            let chainID: String
            if let given = tx.chainID { chainID = given } else { chainID = try await client.status().chainID }
            let context = TxContext(options: tx, key: key, chainID: chainID, client: client)
            let maker = try await build(context)
            let submission: Submission
            if let nonce = tx.nonce {
                let signed = try TransactionSigner(chainID: chainID, key: key).sign(try maker(nonce), nonce: nonce)
                submission = Submission(transaction: signed, status: try await client.submit(signed, wait: tx.wait))
            } else {
                let sender = Sender(client: client, key: key, chainID: chainID)
                submission = try await sender.submit(wait: tx.wait, build: maker)
            }
            try report(submission, context)
        }
    }

    func report(_ s: Submission, _ context: TxContext) throws {
        let status = s.status
        switch tx.client.output {
        case .json:
            guard case .object(var members) = status.raw else { Render.emit(status.raw, format: .json); break }
            members.append(("kind", .string(Self.kind)))
            members.append(("sender", .string(s.transaction.sender.text)))
            members.append(("nonce", .integer(s.transaction.body.nonce)))
            Render.emit(.object(members), format: .json)
        case .text:
            print("transaction \(s.hash.hex)")
            print("  kind:   \(Self.kind)")
            print("  sender: \(s.transaction.sender.text) (nonce \(s.transaction.body.nonce))")
            var line = "  status: \(status.status.rawValue)"
            if let h = status.height { line += " at height \(h)" }
            if status.status == .pending { line += " (--wait \(tx.wait.rawValue); follow it with 'quarry query tx \(s.hash.hex)')" }
            print(line)
            if let result = status.result, status.failure == nil {
                print("  result:")
                print(Render.text(result, indent: "    "))
            }
            if status.failure == nil { for n in notes(context, s) { print("  \(n)") } }
        }
        if let failure = status.failure {
            throw ClientFailure(exit: .refused, description: "the \(status.height != nil ? "ledger" : "node") refused the transaction: \(failure.reason) (\(failure.code))")
        }
        if status.status == .unknown {
            throw ClientFailure(exit: .unknownOutcome, description: "the node does not know the transaction \(s.hash.hex)")
        }
    }
}

func constant(_ payload: Payload) -> PayloadMaker { { _ in payload } }

/// Maps a ClientError from a payload builder to a usage error naming the flag.
func building(_ flag: String, _ body: () throws -> Payload) throws -> Payload {
    do { return try body() } catch let error as ClientError {
        if case .invalidArgument(let what, let why) = error { throw ValidationError("\(flag) \(what) \(why)") }
        throw error
    }
}

// MARK: registry

struct TxRegisterVehicle: TxRunner {
    static let configuration = CommandConfiguration(
        commandName: "register-vehicle",
        abstract: "Registrar: register a vehicle (its id, SM2 key, model, cohort tags, owner).",
        discussion: """
            The vehicle id is either given (--vehicle-id) or computed from the VIN and the \
            registrar's salt (--vin with --vin-salt): SM3(salt || VIN). The VIN itself never \
            goes on chain.
            """)
    @OptionGroup var tx: TxOptions
    @Option(help: ArgumentHelp("Vehicle id (64 hex digits).", valueName: "hex")) var vehicleID: String?
    @Option(help: "The VIN (17 characters); the id is SM3(salt || VIN).") var vin: String?
    @Option(help: ArgumentHelp("The registrar's VIN salt (16 to 64 bytes of hex).", valueName: "hex")) var vinSalt: String?
    @Option(help: ArgumentHelp("The vehicle's SM2 public key (65 bytes hex).", valueName: "hex")) var vehicleKey: String?
    @Option(help: ArgumentHelp("Or: the keystore key holding the vehicle's key.", valueName: "key")) var vehicleKeyName: String?
    @Option(help: "Model name, for example LS6.") var model: String
    @Option(name: .customLong("cohort"), help: ArgumentHelp("A cohort tag (repeat for several), for example angel-wheel.", valueName: "tag"))
    var cohorts: [String] = []
    @Option(help: ArgumentHelp("Owner: an address or a key name.", valueName: "account")) var owner: String
    @Option(help: "Odometer reading at registration, in metres.") var odometer: UInt64 = 0

    func validate() throws {
        guard (vehicleID == nil) != (vin == nil) else { throw ValidationError("give either --vehicle-id or --vin (with --vin-salt)") }
        if vin != nil && vinSalt == nil { throw ValidationError("--vin needs --vin-salt") }
        guard (vehicleKey == nil) != (vehicleKeyName == nil) else { throw ValidationError("give either --vehicle-key or --vehicle-key-name") }
    }

    func build(_ c: TxContext) async throws -> PayloadMaker {
        let id: Hash256
        if let vehicleID {
            id = try Parse.hash(vehicleID, flag: "--vehicle-id")
        } else {
            let salt = try Parse.hex(vinSalt!, flag: "--vin-salt")
            do { id = try PayloadBuilder.vehicleID(vin: vin!, salt: salt) } catch {
                throw ValidationError("\(error.description)")
            }
        }
        let key: PublicKeyBytes
        if let vehicleKey {
            key = try Parse.sm2PublicKey(vehicleKey, flag: "--vehicle-key")
        } else {
            do { key = try Keystore(directory: tx.keysURL).info(name: vehicleKeyName!).publicKey } catch let e as KeystoreError {
                throw ValidationError("--vehicle-key-name: \(e.description) (\(tx.keysURL.path)); or give the key itself with --vehicle-key")
            }
        }
        let ownerAddress = try resolveAddress(owner, keys: tx.keys, home: tx.client.home, what: "--owner")
        return constant(try building("--vehicle-key/--model/--cohort:") {
            try PayloadBuilder.registerVehicle(vehicleID: id, vehicleKey: key, model: model, cohortTags: cohorts,
                                               owner: ownerAddress, odometerMetres: odometer)
        })
    }

    func notes(_ c: TxContext, _ s: Submission) -> [String] {
        guard case .registerVehicle(let id, _, _, _, _, _) = s.transaction.body.payload else { return [] }
        return ["vehicle id: \(id.hex)"]
    }
}

struct TxChangeOwner: TxRunner {
    static let configuration = CommandConfiguration(commandName: "change-owner", abstract: "Registrar: record a vehicle's new owner.")
    @OptionGroup var tx: TxOptions
    @Option(help: ArgumentHelp("Vehicle id (64 hex digits).", valueName: "hex")) var vehicleID: String
    @Option(help: ArgumentHelp("The new owner: an address or a key name.", valueName: "account")) var newOwner: String
    func build(_ c: TxContext) async throws -> PayloadMaker {
        constant(PayloadBuilder.changeOwner(vehicleID: try Parse.hash(vehicleID, flag: "--vehicle-id"),
                                            newOwner: try resolveAddress(newOwner, keys: tx.keys, home: tx.client.home, what: "--new-owner")))
    }
}

struct TxDeactivateVehicle: TxRunner {
    static let configuration = CommandConfiguration(commandName: "deactivate-vehicle", abstract: "Registrar: deactivate a vehicle (no further claims).")
    @OptionGroup var tx: TxOptions
    @Option(help: ArgumentHelp("Vehicle id (64 hex digits).", valueName: "hex")) var vehicleID: String
    func build(_ c: TxContext) async throws -> PayloadMaker {
        constant(PayloadBuilder.deactivateVehicle(vehicleID: try Parse.hash(vehicleID, flag: "--vehicle-id")))
    }
}

// MARK: consent

struct TxSignAgreement: TxRunner {
    static let configuration = CommandConfiguration(
        commandName: "sign-agreement",
        abstract: "Owner: sign the data-rights agreement (its version digest) so the owner's vehicles' mileage counts.")
    @OptionGroup var tx: TxOptions
    @Option(help: ArgumentHelp("The agreement's version digest (64 hex digits).", valueName: "hex")) var agreementVersion: String?
    @Option(help: ArgumentHelp("Or: the agreement text; its SM3 digest is the version.", valueName: "file")) var agreementFile: String?
    func validate() throws {
        guard (agreementVersion == nil) != (agreementFile == nil) else { throw ValidationError("give either --agreement-version or --agreement-file") }
    }
    func build(_ c: TxContext) async throws -> PayloadMaker {
        if let agreementVersion { return constant(PayloadBuilder.signAgreement(version: try Parse.hash(agreementVersion, flag: "--agreement-version"))) }
        return constant(PayloadBuilder.signAgreement(version: PayloadBuilder.agreementVersion(text: try Parse.file(agreementFile!, flag: "--agreement-file"))))
    }
}

struct TxRevokeAgreement: TxRunner {
    static let configuration = CommandConfiguration(
        commandName: "revoke-agreement", abstract: "Owner: revoke the data-rights agreement (stops new claims; keeps what was earned).")
    @OptionGroup var tx: TxOptions
    func build(_ c: TxContext) async throws -> PayloadMaker { constant(PayloadBuilder.revokeAgreement()) }
}

// MARK: mileage

struct TxClaim: TxRunner {
    static let configuration = CommandConfiguration(
        commandName: "claim",
        abstract: "Vehicle: a signed mileage claim for a span of driving (--from is the vehicle's own key).",
        discussion: """
            The ledger rejects a claim, with its reason, when the vehicle is unknown or inactive, \
            the owner has not signed the agreement, the signer is not the vehicle's key, the span \
            overlaps or goes behind the previous claim, the distance is too fast for the span, or \
            the span ends in the future or too long ago.
            """)
    @OptionGroup var tx: TxOptions
    @Option(help: ArgumentHelp("Vehicle id (64 hex digits).", valueName: "hex")) var vehicleID: String
    @Option(help: "Odometer at the start of the span, in metres.") var odometerStart: UInt64
    @Option(help: "Odometer at the end of the span, in metres.") var odometerEnd: UInt64
    @Option(help: ArgumentHelp("Start of the span, Unix seconds.", valueName: "seconds")) var spanStart: UInt64
    @Option(help: ArgumentHelp("End of the span, Unix seconds (default: now).", valueName: "seconds")) var spanEnd: UInt64?
    @Option(help: ArgumentHelp("SM3 digest of the desensitised trip data (64 hex digits).", valueName: "hex")) var tripDigest: String?
    @Option(help: ArgumentHelp("Or: the trip data file; its SM3 digest is used.", valueName: "file")) var tripFile: String?
    func validate() throws {
        guard (tripDigest == nil) != (tripFile == nil) else { throw ValidationError("give either --trip-digest or --trip-file") }
    }
    func build(_ c: TxContext) async throws -> PayloadMaker {
        let digest = try tripDigest.map { try Parse.hash($0, flag: "--trip-digest") } ?? SM3.hash(try Parse.file(tripFile!, flag: "--trip-file"))
        let end = spanEnd ?? UInt64(Date().timeIntervalSince1970)
        let id = try Parse.hash(vehicleID, flag: "--vehicle-id")
        return constant(try building("--odometer-start/--odometer-end/--span-start/--span-end:") {
            try PayloadBuilder.mileageClaim(vehicleID: id, odometerStartMetres: odometerStart,
                                            odometerEndMetres: odometerEnd, spanStart: spanStart, spanEnd: end, tripDigest: digest)
        })
    }
}

// MARK: crystals and blind boxes

struct TxGrantCrystals: TxRunner {
    static let configuration = CommandConfiguration(commandName: "grant-crystals", abstract: "Crystal issuer: grant crystals (points) to an account.")
    @OptionGroup var tx: TxOptions
    @Option(help: ArgumentHelp("The account: an address or a key name.", valueName: "account")) var to: String
    @Option(help: "Number of crystals (positive).") var amount: UInt64
    func build(_ c: TxContext) async throws -> PayloadMaker {
        let address = try resolveAddress(to, keys: tx.keys, home: tx.client.home, what: "--to")
        return constant(try building("--amount") { try PayloadBuilder.grantCrystals(to: address, amount: amount) })
    }
}

struct TxOpenSeason: TxRunner {
    static let configuration = CommandConfiguration(
        commandName: "open-season",
        abstract: "Box operator: open a blind-box season with its price, odds, prizes, budget, times and randomness commitment.",
        discussion: """
            The commitment is the head of an SM3 hash chain whose seed is derived from the \
            operator's key, the chain id and this transaction's nonce, so no secret is written \
            anywhere (docs/cli.md, "Blind-box hash chains"). A public index file \
            <chains-dir>/<commitment>.json lets 'quarry tx draw-result' find the chain later.
            """)
    @OptionGroup var tx: TxOptions
    @Option(help: "Crystals one draw costs.") var priceCrystals: UInt64
    @Option(help: ArgumentHelp("Odds of SSR,S,A,B in parts per million, summing to 1000000.", valueName: "ssr,s,a,b")) var odds: String
    @Option(help: ArgumentHelp("Stone prize of SSR,S,A,B (amounts; 0 for none).", valueName: "ssr,s,a,b")) var stonePrizes: String
    @Option(help: ArgumentHelp("Crystals given instead of the stone prize (to non-owners, or when the budget is spent).", valueName: "ssr,s,a,b"))
    var substituteCrystals: String
    @Option(help: "The season's stone budget (taken from the cultivation pool).") var budget: String
    @Option(help: ArgumentHelp("Start, Unix seconds (default: now).", valueName: "seconds")) var start: UInt64?
    @Option(help: ArgumentHelp("End, Unix seconds (default: start + --duration).", valueName: "seconds")) var end: UInt64?
    @Option(help: ArgumentHelp("Length when --end is not given.", valueName: "seconds")) var duration: UInt64 = 7 * 86_400
    @Option(help: ArgumentHelp("A request unanswered this long is refunded.", valueName: "seconds")) var responseWindow: UInt64 = 3_600
    @Option(help: "Length of the hash chain: the most results the season can reveal.") var chainLength: Int = BoxChain.lengthDefault
    @Option(help: ArgumentHelp("Where the chain index files go (default: <home>/box-chains).", valueName: "dir")) var chainsDir: String?

    func build(_ c: TxContext) async throws -> PayloadMaker {
        let oddsValues = try Parse.integers(odds, count: 4, flag: "--odds")
        guard oddsValues.allSatisfy({ $0 <= 1_000_000 }) else { throw ValidationError("--odds values must be at most 1000000") }
        let stones = try stonePrizes.split(separator: ",", omittingEmptySubsequences: false).map {
            try Parse.grains(String($0).trimmingCharacters(in: .whitespaces), flag: "--stone-prizes")
        }
        guard stones.count == 4 else { throw ValidationError("--stone-prizes must be 4 comma-separated amounts (SSR,S,A,B)") }
        let crystals = try Parse.integers(substituteCrystals, count: 4, flag: "--substitute-crystals")
        let budgetGrains = try Parse.grains(budget, flag: "--budget")
        let startTime = start ?? UInt64(Date().timeIntervalSince1970)
        let endTime = end ?? startTime + duration
        guard (1...BoxChain.lengthMax).contains(chainLength) else { throw ValidationError("--chain-length must be 1 to \(BoxChain.lengthMax)") }
        let directory = chainsDirectory(chainsDir, home: tx.client.home)
        let key = c.key, chainID = c.chainID, length = chainLength
        let prizes = (0..<4).map { Prize(stoneGrains: stones[$0], substituteCrystals: crystals[$0]) }
        let base = SeasonTerms(priceCrystals: priceCrystals, oddsPPM: oddsValues.map { UInt32($0) }, prizes: prizes,
                               budgetGrains: budgetGrains, startTime: startTime, endTime: endTime, commitment: .zero,
                               responseWindowSeconds: responseWindow)
        _ = try building("--price-crystals/--odds/--end/--response-window:") { try PayloadBuilder.openSeason(base) }
        return { nonce throws(ClientError) in
            let chain = try BoxChain(key: key, chainID: chainID, openNonce: nonce, length: length)
            try chain.saveIndex(directory: directory, operatorAddress: key.address)
            var terms = base
            terms.commitment = chain.commitment
            return try PayloadBuilder.openSeason(terms)
        }
    }

    func notes(_ c: TxContext, _ s: Submission) -> [String] {
        guard case .openSeason(let t) = s.transaction.body.payload else { return [] }
        return ["commitment: \(t.commitment.hex) (chain index in \(chainsDirectory(chainsDir, home: tx.client.home).path))"]
    }
}

func chainsDirectory(_ dir: String?, home: HomeOptions) -> URL {
    if let dir { return URL(fileURLWithPath: (dir as NSString).expandingTildeInPath) }
    return home.homeURL.appendingPathComponent("box-chains")
}

struct TxDraw: TxRunner {
    static let configuration = CommandConfiguration(commandName: "draw", abstract: "Anyone: request a draw in a season (burns the season's price in crystals).")
    @OptionGroup var tx: TxOptions
    @Option(help: "Season id.") var season: UInt64
    func build(_ c: TxContext) async throws -> PayloadMaker { constant(PayloadBuilder.drawRequest(seasonID: season)) }
}

struct TxDrawResult: TxRunner {
    static let configuration = CommandConfiguration(
        commandName: "draw-result",
        abstract: "Box operator: answer the oldest unanswered draw of a season, revealing the next hash-chain pre-image.",
        discussion: """
            The CLI reads the season (odds, chain tip) and the request (its block) from the node, \
            derives the pre-image from the operator key (found through the chain index written by \
            open-season, or --open-nonce and --chain-length), computes the outcome every validator \
            will compute, and submits it. Offline (--generate-only) give --request, --revealed, \
            --odds, --draw-height and --draw-previous-hash instead.
            """)
    @OptionGroup var tx: TxOptions
    @Option(help: "Season id.") var season: UInt64
    @Option(help: "Request index (default: the oldest unanswered).") var request: UInt64?
    @Option(help: ArgumentHelp("Chain index directory (default: <home>/box-chains).", valueName: "dir")) var chainsDir: String?
    @Option(help: "Nonce of the season's open-season transaction (when its index file is missing).") var openNonce: UInt64?
    @Option(help: "Chain length given at open-season (with --open-nonce).") var chainLength: Int = BoxChain.lengthDefault
    @Option(help: "Offline: pre-images the season has revealed so far (its answered results).") var revealed: UInt64?
    @Option(help: ArgumentHelp("Offline: the season's odds.", valueName: "ssr,s,a,b")) var odds: String?
    @Option(help: "Offline: height of the block that included the request.") var drawHeight: UInt64?
    @Option(help: ArgumentHelp("Offline: previous-block hash of that block.", valueName: "hex")) var drawPreviousHash: String?

    func validate() throws {
        if tx.generateOnly {
            guard request != nil, revealed != nil, odds != nil, drawHeight != nil, drawPreviousHash != nil, openNonce != nil else {
                throw ValidationError("draw-result --generate-only needs --request, --revealed, --odds, --draw-height, --draw-previous-hash and --open-nonce")
            }
        }
    }

    func build(_ c: TxContext) async throws -> PayloadMaker {
        let given: BoxChain? = try openNonce.map { n throws(ClientError) in try BoxChain(key: c.key, chainID: c.chainID, openNonce: n, length: chainLength) }
        if let client = c.client {
            let (payload, _, _) = try await BoxOperator.answer(season: season, index: request, client: client, key: c.key, chain: given,
                                                               chainsDirectory: chainsDirectory(chainsDir, home: tx.client.home))
            return constant(payload)
        }
        let oddsValues = try Parse.integers(odds!, count: 4, flag: "--odds").map { UInt32(clamping: $0) }
        guard oddsValues.reduce(UInt64(0), { $0 + UInt64($1) }) == 1_000_000 else { throw ValidationError("--odds must sum to 1000000") }
        let preimage = try given!.preimage(afterRevealing: revealed!, key: c.key)
        let rarity = BoxOperator.outcome(preimage: preimage, seasonID: season, index: request!, height: drawHeight!,
                                         previousBlockHash: try Parse.hash(drawPreviousHash!, flag: "--draw-previous-hash"), oddsPPM: oddsValues)
        return constant(PayloadBuilder.drawResult(seasonID: season, requestIndex: request!, preimage: preimage, rarity: rarity))
    }

    func notes(_ c: TxContext, _ s: Submission) -> [String] {
        guard case .drawResult(_, let index, _, let rarity) = s.transaction.body.payload else { return [] }
        return ["request \(index): \(rarity)"]
    }
}

struct TxCloseSeason: TxRunner {
    static let configuration = CommandConfiguration(commandName: "close-season", abstract: "Box operator: close an ended season (releases the unspent budget).")
    @OptionGroup var tx: TxOptions
    @Option(help: "Season id.") var season: UInt64
    func build(_ c: TxContext) async throws -> PayloadMaker { constant(PayloadBuilder.closeSeason(seasonID: season)) }
}

// MARK: redemption

struct TxUpsertItem: TxRunner {
    static let configuration = CommandConfiguration(commandName: "upsert-item", abstract: "Merchant: list a catalog item, or replace one with the same id.")
    @OptionGroup var tx: TxOptions
    @Option(help: "Item id (at most 64 bytes).") var itemID: String
    @Option(help: "Title (at most 128 bytes).") var title: String
    @Option(help: "Price (an amount).") var price: String
    @Option(help: "Units in stock.") var stock: UInt64
    @Option(help: "Eligibility: the vehicle must be of this model.") var ruleModel: String?
    @Option(help: "Eligibility: the vehicle must carry this cohort tag.") var ruleCohort: String?
    @Option(help: "Eligibility: metres the vehicle claimed in the trailing year, at least.") var ruleMinMetres: UInt64 = 0
    func build(_ c: TxContext) async throws -> PayloadMaker {
        let grains = try Parse.grains(price, flag: "--price")
        return constant(try building("--item-id/--title/--price/--rule-*:") {
            try PayloadBuilder.upsertItem(itemID: itemID, title: title, priceGrains: grains, stock: stock,
                                          rule: EligibilityRule(model: ruleModel, cohortTag: ruleCohort, minimumMetresLastYear: ruleMinMetres))
        })
    }
}

struct TxRedeem: TxRunner {
    static let configuration = CommandConfiguration(commandName: "redeem", abstract: "Owner: redeem a catalog item (the price goes into escrow until the merchant decides).")
    @OptionGroup var tx: TxOptions
    @Option(help: ArgumentHelp("The item's merchant: an address or a key name.", valueName: "account")) var merchant: String
    @Option(help: "Item id.") var itemID: String
    @Option(help: ArgumentHelp("The vehicle the eligibility rule is checked on (64 hex digits).", valueName: "hex")) var vehicleID: String?
    func build(_ c: TxContext) async throws -> PayloadMaker {
        let m = try resolveAddress(merchant, keys: tx.keys, home: tx.client.home, what: "--merchant")
        let v = try vehicleID.map { try Parse.hash($0, flag: "--vehicle-id") }
        return constant(try building("--item-id") { try PayloadBuilder.redeem(merchant: m, itemID: itemID, vehicleID: v) })
    }
}

struct TxFulfil: TxRunner {
    static let configuration = CommandConfiguration(commandName: "fulfil", abstract: "Merchant: fulfil a pending redemption (escrow goes to the treasury).")
    @OptionGroup var tx: TxOptions
    @Option(help: "Redemption id.") var redemption: UInt64
    func build(_ c: TxContext) async throws -> PayloadMaker { constant(PayloadBuilder.fulfilRedemption(redemption)) }
}

struct TxReject: TxRunner {
    static let configuration = CommandConfiguration(commandName: "reject", abstract: "Merchant: reject a pending redemption (the stones go back, stock is restored).")
    @OptionGroup var tx: TxOptions
    @Option(help: "Redemption id.") var redemption: UInt64
    func build(_ c: TxContext) async throws -> PayloadMaker { constant(PayloadBuilder.rejectRedemption(redemption)) }
}

// MARK: transfer and governance

struct TxTransfer: TxRunner {
    static let configuration = CommandConfiguration(commandName: "transfer", abstract: "Send stones to another account (only when genesis enables transfers).")
    @OptionGroup var tx: TxOptions
    @Option(help: ArgumentHelp("The recipient: an address or a key name.", valueName: "account")) var to: String
    @Option(help: "The amount.") var amount: String
    func build(_ c: TxContext) async throws -> PayloadMaker {
        let address = try resolveAddress(to, keys: tx.keys, home: tx.client.home, what: "--to")
        let grains = try Parse.grains(amount, flag: "--amount")
        return constant(try building("--amount") { try PayloadBuilder.transfer(to: address, amount: grains) })
    }
}

struct TxPropose: TxRunner {
    static let configuration = CommandConfiguration(
        commandName: "propose",
        abstract: "Validator: propose a governance change (counts as the proposer's approval).",
        discussion: """
            Give exactly one action: --add-validator KEY (with --name and --power), \
            --remove-validator KEY, --set-role ROLE --address ACCOUNT (roles: registrar, \
            crystal-issuer, box-operator), --add-merchant ACCOUNT, --remove-merchant ACCOUNT, or \
            --set-parameter NAME --value N (max-speed-kmh, claim-staleness-seconds, \
            clock-tolerance-seconds, claim-span-max-seconds, transfers-enabled (0 or 1)). \
            The validator key is the node's SM2 public key in hex.
            """)
    @OptionGroup var tx: TxOptions
    @Option(help: ArgumentHelp("Add a validator with this SM2 public key.", valueName: "hex")) var addValidator: String?
    @Option(help: "The new validator's name.") var name: String?
    @Option(help: "The new validator's voting power.") var power: UInt64?
    @Option(help: ArgumentHelp("Remove the validator with this SM2 public key.", valueName: "hex")) var removeValidator: String?
    @Option(help: "Give a role to --address: registrar, crystal-issuer or box-operator.") var setRole: String?
    @Option(help: ArgumentHelp("The account for --set-role.", valueName: "account")) var address: String?
    @Option(help: ArgumentHelp("Add a merchant.", valueName: "account")) var addMerchant: String?
    @Option(help: ArgumentHelp("Remove a merchant.", valueName: "account")) var removeMerchant: String?
    @Option(help: "Change a parameter (see above) to --value.") var setParameter: String?
    @Option(help: "The parameter's new value.") var value: UInt64?
    @Option(help: "Blocks the proposal stays open for votes (1 to 100000).") var votingPeriod: UInt64 = 1_000

    static let roles: [String: GovernanceAction.Role] = ["registrar": .registrar, "crystal-issuer": .crystalIssuer, "box-operator": .boxOperator]
    static let parameters: [String: GovernanceAction.GovernableParameter] = [
        "max-speed-kmh": .maxSpeedKmh, "claim-staleness-seconds": .claimStalenessSeconds,
        "clock-tolerance-seconds": .clockToleranceSeconds, "claim-span-max-seconds": .claimSpanMaxSeconds,
        "transfers-enabled": .transfersEnabled,
    ]

    func validate() throws {
        let given = [addValidator, removeValidator, setRole, addMerchant, removeMerchant, setParameter].compactMap { $0 }.count
        guard given == 1 else {
            throw ValidationError("give exactly one of --add-validator, --remove-validator, --set-role, --add-merchant, --remove-merchant, --set-parameter")
        }
        if addValidator != nil && (name == nil || power == nil) { throw ValidationError("--add-validator needs --name and --power") }
        if let setRole, Self.roles[setRole] == nil { throw ValidationError("--set-role must be registrar, crystal-issuer or box-operator, not '\(setRole)'") }
        if setRole != nil && address == nil { throw ValidationError("--set-role needs --address") }
        if let setParameter, Self.parameters[setParameter] == nil {
            throw ValidationError("--set-parameter must be one of \(Self.parameters.keys.sorted().joined(separator: ", ")), not '\(setParameter)'")
        }
        if setParameter != nil && value == nil { throw ValidationError("--set-parameter needs --value") }
    }

    func build(_ c: TxContext) async throws -> PayloadMaker {
        func account(_ s: String, _ flag: String) throws -> Address { try resolveAddress(s, keys: tx.keys, home: tx.client.home, what: flag) }
        let action: GovernanceAction
        if let addValidator {
            action = .addValidator(GenesisValidator(name: name!, publicKey: try Parse.sm2PublicKey(addValidator, flag: "--add-validator"), power: power!))
        } else if let removeValidator {
            action = .removeValidator(try Parse.sm2PublicKey(removeValidator, flag: "--remove-validator"))
        } else if let setRole {
            action = .setRole(Self.roles[setRole]!, try account(address!, "--address"))
        } else if let addMerchant {
            action = .addMerchant(try account(addMerchant, "--add-merchant"))
        } else if let removeMerchant {
            action = .removeMerchant(try account(removeMerchant, "--remove-merchant"))
        } else {
            action = .setParameter(Self.parameters[setParameter!]!, value!)
        }
        return constant(try building("--voting-period/--name/--power:") { try PayloadBuilder.propose(action, votingPeriodBlocks: votingPeriod) })
    }
}

struct TxVote: TxRunner {
    static let configuration = CommandConfiguration(commandName: "vote", abstract: "Validator: approve a governance proposal.")
    @OptionGroup var tx: TxOptions
    @Option(help: "Proposal id.") var proposal: UInt64
    func build(_ c: TxContext) async throws -> PayloadMaker { constant(PayloadBuilder.vote(proposalID: proposal)) }
}
