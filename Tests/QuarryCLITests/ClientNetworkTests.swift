import Foundation
import QuarryClient
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryRPC
import Testing

/// The client side against a real network: 4 validators and a read-only node from
/// `quarry testnet`, each a `quarry node start` process on 127.0.0.1. Every transaction
/// kind goes through `quarry tx`, and its effect is read back with `quarry query` (from
/// the read-only node, which re-executes every block). Then the library's nonce handling,
/// and the demo workload for a bounded time. Every process is stopped at the end.
@Suite(.serialized) struct ClientNetworkTests {
    /// A network started for one test.
    final class LiveNetwork {
        let root: String
        let net: NetworkProcessTests.Network
        let base: Int

        /// Ports below Linux's ephemeral range (32768 and up), where outgoing connections of
        /// other processes cannot take them; away from the other process tests' ranges.
        init(portRange: Range<Int>) throws {
            root = try temporaryHome()
            base = portRange.lowerBound + Int.random(in: 0..<(portRange.count / 100)) * 100
            let made = try QuarryProcess.run(["testnet", "--output", root + "/net", "--validators", "4", "--read-only", "1",
                                              "--base-port", String(base), "--chain-id", "quarry-cli-test"])
            #expect(made.status == 0, "\(made.stderr)")
            net = NetworkProcessTests.Network(root: root + "/net")
        }

        var dir: String { root + "/net" }
        func rpc(_ node: Int) -> String { "http://127.0.0.1:\(base + 10 * node + 1)" }

        func start() throws { for i in 0..<5 { try net.start(i) } }

        func waitServing() async throws -> Bool {
            let client = QuarryClient(endpoint: try RPCEndpoint(parsing: rpc(0)), timeoutMilliseconds: 2_000)
            let deadline = ContinuousClock.now + .seconds(90)
            while ContinuousClock.now < deadline {
                if let s = try? await client.status(), s.height >= 1 { return true }
                try await Task.sleep(for: .milliseconds(300))
            }
            return false
        }

        func logTail(_ i: Int) -> String {
            String(((try? String(contentsOfFile: net.log(i), encoding: .utf8)) ?? "no log").suffix(1_500))
        }

        func stop() {
            net.stopAll()
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    /// Runs the CLI and parses its JSON output.
    struct CLI {
        let network: LiveNetwork
        let keys: String

        /// `quarry tx KIND ARGS --from KEY` against validator 0 (or `node`), JSON output.
        @discardableResult
        func tx(_ args: [String], from: String, keys keyDir: String? = nil, node: Int = 0, expect status: Int32 = 0,
                sourceLocation: SourceLocation = #_sourceLocation) throws -> (json: JSONValue?, stderr: String) {
            let r = try QuarryProcess.run(["tx"] + args + ["--keys", keyDir ?? keys, "--from", from, "--rpc", network.rpc(node), "--output", "json"])
            #expect(r.status == status, "tx \(args.first ?? ""): \(r.stderr) \(r.stdout)", sourceLocation: sourceLocation)
            return (try? JSONValue.parse(r.stdout), r.stderr)
        }

        /// `quarry query ARGS` against the read-only node (node 4), JSON output.
        func query(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue {
            let r = try QuarryProcess.run(["query"] + args + ["--rpc", network.rpc(4), "--output", "json", "--keys", keys])
            #expect(r.status == 0, "query \(args): \(r.stderr)", sourceLocation: sourceLocation)
            return try JSONValue.parse(r.stdout)
        }

        /// Polls a query until `condition` holds (the read-only node may be a block behind).
        func eventually(_ args: [String], seconds: Int = 30, sourceLocation: SourceLocation = #_sourceLocation,
                        _ condition: (JSONValue) -> Bool) async throws -> JSONValue {
            let deadline = ContinuousClock.now + .seconds(seconds)
            var last: JSONValue = .null
            while ContinuousClock.now < deadline {
                let r = try QuarryProcess.run(["query"] + args + ["--rpc", network.rpc(4), "--output", "json", "--keys", keys])
                if r.status == 0, let v = try? JSONValue.parse(r.stdout) {
                    last = v
                    if condition(v) { return v }
                }
                try await Task.sleep(for: .milliseconds(300))
            }
            Issue.record("query \(args) never matched; last answer \(last)", sourceLocation: sourceLocation)
            return last
        }
    }

    static func now() -> UInt64 { UInt64(Date().timeIntervalSince1970) }

    @Test(.timeLimit(.minutes(8))) func everyKindThroughTheCLI() async throws {
        let network = try LiveNetwork(portRange: 12_000..<18_000)
        defer { network.stop() }
        try network.start()
        let serving = try await network.waitServing()
        #expect(serving, "the network did not serve JSON-RPC: \(network.logTail(0))")
        guard serving else { return }
        let keysHome = network.root + "/client"
        for (name, scheme) in [("owner", "sm2"), ("owner2", "secp256k1"), ("car", "sm2"), ("fan", "secp256k1")] {
            let r = try QuarryProcess.run(["keys", "new", name, "--scheme", scheme, "--home", keysHome, "--insecure-plaintext"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let cli = CLI(network: network, keys: keysHome + "/keys")
        let roles = network.dir + "/role-keys"
        let store = Keystore(directory: URL(fileURLWithPath: cli.keys))
        let owner = try store.info(name: "owner").address.text
        let owner2 = try store.info(name: "owner2").address.text
        let fan = try store.info(name: "fan").address.text
        let carAddress = try store.info(name: "car").address.text

        // register-vehicle: the id comes from the VIN and the registrar's salt.
        let salt = String(repeating: "5a", count: 16)
        let carKey = Hex.encode(try store.info(name: "car").publicKey.bytes)
        let registered = try cli.tx(["register-vehicle", "--vin", "LSJW74C99NZ765432", "--vin-salt", salt, "--vehicle-key", carKey,
                                     "--model", "LS6", "--cohort", "angel-wheel", "--owner", owner, "--odometer", "10000"],
                                    from: "registrar", keys: roles)
        #expect(registered.json?["status"] == "committed")
        let vehicleID = try PayloadBuilder.vehicleID(vin: "LSJW74C99NZ765432", salt: Hex.decode(salt)).hex
        let vehicle = try await cli.eventually(["vehicle", vehicleID]) { $0["owner"]?.stringValue == owner }
        #expect(vehicle["model"] == "LS6" && vehicle["active"] == true && vehicle["address"]?.stringValue == carAddress)
        let registeredAt = try #require(vehicle["lastSpanEnd"]?.numberValue?.uint64Value)

        // A claim before the owner consented: the ledger refuses, and the CLI prints why.
        try await Task.sleep(for: .seconds(2))
        var end = Self.now()
        let early = try cli.tx(["claim", "--vehicle-id", vehicleID, "--odometer-start", "10000", "--odometer-end", "10100",
                                "--span-start", String(registeredAt), "--span-end", String(end), "--trip-digest", String(repeating: "11", count: 32)],
                               from: "car", expect: 1)
        #expect(early.stderr.contains("claim.no_consent"), "\(early.stderr)")
        #expect(early.stderr.contains("the ledger refused the transaction"), "\(early.stderr)")
        #expect(early.json?["status"] == "rejected")

        // sign-agreement, from an agreement text.
        let agreement = network.root + "/agreement.txt"
        try Data("data-rights agreement v1".utf8).write(to: URL(fileURLWithPath: agreement))
        try cli.tx(["sign-agreement", "--agreement-file", agreement], from: "owner")
        let version = SM3.hash(Array("data-rights agreement v1".utf8)).hex
        _ = try await cli.eventually(["account", "owner"]) { $0["agreement"]?.stringValue == version }

        // claim: accepted, counted in a batch.
        end = Self.now()
        let claim = try cli.tx(["claim", "--vehicle-id", vehicleID, "--odometer-start", "10000", "--odometer-end", "10100",
                                "--span-start", String(registeredAt), "--span-end", String(end), "--trip-digest", String(repeating: "11", count: 32)],
                               from: "car")
        let events = claim.json?["result"]?["events"]?.arrayValue ?? []
        let accepted = try #require(events.first { $0["kind"] == "claim.accepted" })
        let batch = try #require(accepted["attributes"]?["batch"]?.stringValue)
        // The same span again: the odometer overlaps; the reason is printed, nothing changes.
        let replay = try cli.tx(["claim", "--vehicle-id", vehicleID, "--odometer-start", "10000", "--odometer-end", "10100",
                                 "--span-start", String(registeredAt), "--span-end", String(end), "--trip-digest", String(repeating: "12", count: 32)],
                                from: "car", expect: 1)
        #expect(replay.stderr.contains("claim.odometer_overlap") && replay.stderr.contains("already claimed"), "\(replay.stderr)")
        // The batch settles: the owner is paid the whole drop (the only participant).
        let settled = try await cli.eventually(["batch", batch], seconds: 40) { $0["status"] == "settled" }
        let pool = try #require(settled["poolGrains"]?.stringValue.flatMap { UInt64($0) })
        #expect(pool >= 500 * Grains.perStone)
        let paid = try await cli.eventually(["account", "owner"]) { ($0["balanceGrains"]?.stringValue.flatMap { UInt64($0) } ?? 0) > 0 }
        #expect(paid["balanceGrains"]?.stringValue == String(pool), "one participant takes the whole pool, to the grain")

        // grant-crystals, open-season, draw, draw-result.
        try cli.tx(["grant-crystals", "--to", owner, "--amount", "100"], from: "crystal-issuer", keys: roles)
        _ = try await cli.eventually(["account", "owner"]) { $0["crystals"] == 100 }
        let chains = network.root + "/chains"
        let opened = try cli.tx(["open-season", "--price-crystals", "10", "--odds", "100000,200000,300000,400000",
                                 "--stone-prizes", "100stones,10stones,1stone,0.1stones", "--substitute-crystals", "50,20,10,5",
                                 "--budget", "1000stones", "--duration", "86400", "--response-window", "600", "--chain-length", "50",
                                 "--chains-dir", chains], from: "box-operator", keys: roles)
        #expect(opened.json?["status"] == "committed")
        let season = try cli.query(["season", "0"])
        #expect(season["priceCrystals"] == 10 && season["requests"] == 0)
        try cli.tx(["draw", "--season", "0"], from: "owner")
        let result = try cli.tx(["draw-result", "--season", "0", "--chains-dir", chains], from: "box-operator", keys: roles)
        let drawEvent = result.json?["result"]?["events"]?.arrayValue?.first { $0["kind"] == "draw.result" }
        let rarity = try #require(drawEvent?["attributes"]?["rarity"]?.stringValue)
        let draw = try await cli.eventually(["draw", "0", "0"]) { $0["status"] == "answered" }
        #expect(draw["outcome"]?["rarity"]?.stringValue == rarity)
        let afterDraw = try cli.query(["season", "0"])
        #expect(afterDraw["settled"] == 1)
        // The revealed pre-image hashes to the commitment.
        let tip = try Hash256(hex: try #require(afterDraw["chainTip"]?.stringValue))
        #expect(SM3.hash(tip.bytes).hex == afterDraw["commitment"]?.stringValue)

        // upsert-item, redeem, fulfil; redeem again, reject.
        try cli.tx(["upsert-item", "--item-id", "voucher", "--title", "Charging voucher", "--price", "5stones", "--stock", "3",
                    "--rule-model", "LS6"], from: "merchant", keys: roles)
        let merchant = try Keystore(directory: URL(fileURLWithPath: roles)).info(name: "merchant").address.text
        let catalog = try await cli.eventually(["catalog", "--merchant", merchant]) { ($0["items"]?.arrayValue?.count ?? 0) == 1 }
        #expect(catalog["items"]?.arrayValue?.first?["priceGrains"] == "500000000")
        let redeemed = try cli.tx(["redeem", "--merchant", merchant, "--item-id", "voucher", "--vehicle-id", vehicleID], from: "owner")
        let redemptionID = try #require(redeemed.json?["result"]?["events"]?.arrayValue?.first { $0["kind"] == "redemption.created" }?["attributes"]?["redemption"]?.stringValue)
        _ = try await cli.eventually(["redemption", redemptionID]) { $0["status"] == "pending" }
        try cli.tx(["fulfil", "--redemption", redemptionID], from: "merchant", keys: roles)
        _ = try await cli.eventually(["redemption", redemptionID]) { $0["status"] == "fulfilled" }
        let second = try cli.tx(["redeem", "--merchant", merchant, "--item-id", "voucher", "--vehicle-id", vehicleID], from: "owner")
        let secondID = try #require(second.json?["result"]?["events"]?.arrayValue?.first { $0["kind"] == "redemption.created" }?["attributes"]?["redemption"]?.stringValue)
        try cli.tx(["reject", "--redemption", secondID], from: "merchant", keys: roles)
        _ = try await cli.eventually(["redemption", secondID]) { $0["status"] == "rejected" }

        // change-owner, revoke-agreement, deactivate-vehicle.
        try cli.tx(["change-owner", "--vehicle-id", vehicleID, "--new-owner", owner2], from: "registrar", keys: roles)
        _ = try await cli.eventually(["vehicle", vehicleID]) { $0["owner"]?.stringValue == owner2 }
        try cli.tx(["revoke-agreement"], from: "owner")
        _ = try await cli.eventually(["account", "owner"]) { $0["agreement"]?.isNull == true }
        try cli.tx(["deactivate-vehicle", "--vehicle-id", vehicleID], from: "registrar", keys: roles)
        _ = try await cli.eventually(["vehicle", vehicleID]) { $0["active"] == false }

        // close-season: a season that ends in a few seconds.
        let startsAt = Self.now() - 5
        try cli.tx(["open-season", "--price-crystals", "1", "--odds", "0,0,0,1000000", "--stone-prizes", "0,0,0,0",
                    "--substitute-crystals", "1,1,1,1", "--budget", "0", "--start", String(startsAt), "--end", String(Self.now() + 4),
                    "--chain-length", "10", "--chains-dir", chains], from: "box-operator", keys: roles)
        try await Task.sleep(for: .seconds(7))
        try cli.tx(["close-season", "--season", "1"], from: "box-operator", keys: roles)
        _ = try await cli.eventually(["season", "1"]) { $0["closed"] == true }

        // transfer is off by genesis: refused with the ledger's reason...
        let refusedTransfer = try cli.tx(["transfer", "--to", fan, "--amount", "1"], from: "owner", expect: 1)
        #expect(refusedTransfer.stderr.contains("transfer.disabled"), "\(refusedTransfer.stderr)")
        // ...until governance turns it on: validator 0 proposes, validators 1 and 2 vote
        // (30 of 40 power: more than two thirds).
        #expect(try cli.query(["parameters"])["economics"]?["transfersEnabled"] == false)
        let proposed = try cli.tx(["propose", "--set-parameter", "transfers-enabled", "--value", "1", "--voting-period", "100"],
                                  from: "node", keys: network.dir + "/node0/keys")
        let proposalID = proposed.json?["result"]?["events"]?.arrayValue?.compactMap { $0["attributes"]?["proposal"]?.stringValue }.first ?? "0"
        try cli.tx(["vote", "--proposal", proposalID], from: "node", keys: network.dir + "/node1/keys")
        try cli.tx(["vote", "--proposal", proposalID], from: "node", keys: network.dir + "/node2/keys")
        try cli.tx(["transfer", "--to", fan, "--amount", "1"], from: "owner")
        _ = try await cli.eventually(["account", fan]) { $0["balanceGrains"] == "1" }
        // The parameters in force show the change; genesis still says off.
        #expect(try cli.query(["parameters"])["economics"]?["transfersEnabled"] == true)

        // The supply is conserved after all of it (text output says so too).
        let supply = try cli.query(["supply"])
        let parts = ["mileagePoolGrains", "cultivationPoolGrains", "balancesGrains", "treasuryGrains", "escrowGrains"]
            .compactMap { supply[$0]?.stringValue.flatMap { UInt64($0) } }
        #expect(parts.count == 5 && parts.reduce(0, +) == Grains.totalSupply)
        let text = try QuarryProcess.run(["query", "supply", "--rpc", network.rpc(4)])
        #expect(text.stdout.contains("conservation: ok"), "\(text.stdout)")
        // The treasury holds the fulfilled redemption's price, to the grain.
        #expect(supply["treasuryGrains"] == "500000000")
    }

    @Test(.timeLimit(.minutes(5))) func senderKeepsNoncesAcrossPipelinedSubmissions() async throws {
        let network = try LiveNetwork(portRange: 18_000..<24_000)
        defer { network.stop() }
        try network.start()
        let serving = try await network.waitServing()
        #expect(serving, "the network did not serve JSON-RPC: \(network.logTail(0))")
        guard serving else { return }
        let client = QuarryClient(endpoint: try RPCEndpoint(parsing: network.rpc(0)))
        let issuerKey = try Keystore(directory: URL(fileURLWithPath: network.dir + "/role-keys")).load(name: "crystal-issuer", passphrase: nil)
        let fan = SigningKey(scheme: .secp256k1).address
        let sender = Sender(client: client, key: issuerKey)
        // Ten grants at once from concurrent tasks: one sender hands out ten consecutive nonces.
        let submissions = try await withThrowingTaskGroup(of: Submission.self) { group in
            for _ in 0..<10 { group.addTask { try await sender.submit(PayloadBuilder.grantCrystals(to: fan, amount: 3), wait: .checked) } }
            var all: [Submission] = []
            for try await s in group { all.append(s) }
            return all
        }
        #expect(Set(submissions.map(\.transaction.body.nonce)) == Set(0..<10))
        #expect(try await sender.nonce() == 10)
        // A second sender with the same key does not know about them: the node says the
        // nonce is taken, and it moves on to a free one.
        let other = Sender(client: client, key: issuerKey)
        let late = try await other.submit(PayloadBuilder.grantCrystals(to: fan, amount: 3), wait: .committed)
        #expect(late.status.succeeded, "\(late.status)")
        #expect(late.transaction.body.nonce == 10)
        let account = try await client.rawAccount(fan)
        #expect(account["crystals"] == 33)
        #expect(try await client.account(issuerKey.address).nonce == 11)
        // A transaction the ledger refuses uses no nonce: the next one reuses it.
        let refused = try await sender.submit(PayloadBuilder.transfer(to: fan, amount: 1), wait: .committed)
        #expect(refused.status.status == .rejected && refused.status.failure?.code == "transfer.disabled")
        let next = try await sender.submit(PayloadBuilder.grantCrystals(to: fan, amount: 1), wait: .committed)
        #expect(next.status.succeeded)
        #expect(next.transaction.body.nonce == refused.transaction.body.nonce)
        // The local nonce was stale (the other sender used 10): it re-read the account.
        #expect(next.transaction.body.nonce == 11)
    }

    @Test(.timeLimit(.minutes(5))) func demoWorkloadRunsForABoundedTime() throws {
        let root = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let base = 24_000 + Int.random(in: 0..<20) * 100
        let made = try QuarryProcess.run(["testnet", "--output", root + "/net", "--validators", "4", "--read-only", "1",
                                          "--base-port", String(base), "--chain-id", "quarry-demo-test"])
        #expect(made.status == 0, "\(made.stderr)")
        let r = try QuarryProcess.run(["devnet", "--network", root + "/net", "--vehicles", "3", "--duration", "45", "--progress-interval", "3"])
        #expect(r.status == 0, "\(r.stderr)\n\(r.stdout)")
        let out = r.stdout
        if !out.contains("supply:       conserved") {
            for i in 0..<5 {
                let log = (try? String(contentsOfFile: root + "/net/node\(i).log", encoding: .utf8)) ?? "no log"
                Issue.record("node\(i).log: \(log.prefix(1_500)) ... \(log.suffix(1_500))")
            }
        }
        func number(after label: String) -> Int? {
            guard let range = out.range(of: label) else { return nil }
            return Int(out[range.upperBound...].prefix { $0.isNumber })
        }
        #expect(out.contains("registering 3 vehicles"), "\(out)")
        #expect(out.contains("vehicles:     3 registered, 3 owners signed the agreement"), "\(out)")
        #expect((number(after: "claims:       ") ?? 0) > 0, "\(out)")
        #expect(out.contains("1 claim.odometer_overlap"), "the replayed claim is refused with its reason: \(out)")
        #expect((number(after: "batches:      ") ?? 0) > 0, "\(out)")
        #expect(out.contains("supply:       conserved"), "\(out)")
        #expect(out.contains("height "), "live progress lines: \(out)")
        // Every node stopped cleanly and left its data.
        for i in 0..<5 {
            let log = (try? String(contentsOfFile: root + "/net/node\(i).log", encoding: .utf8)) ?? ""
            #expect(log.contains("stopped at height"), "node \(i) did not stop gracefully")
            #expect(FileManager.default.fileExists(atPath: root + "/net/node\(i)/data/db"))
        }
        #expect(FileManager.default.fileExists(atPath: root + "/net/demo-keys"))
    }
}
