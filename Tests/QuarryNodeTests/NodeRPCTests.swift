import Foundation
import Testing
import QuarryConsensus
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryRPC
import QuarryRPCTestSupport
@testable import QuarryNode

/// The node's JSON-RPC methods against four real validators in this process, as a client
/// sees them: every method's success and error paths, every result checked against its
/// OpenRPC schema, submissions through one node committed on all, ledger refusals mapped to
/// -32000 with the ledger's code, proofs verified against block headers, subscriptions
/// delivered over WebSocket.
@Suite(.serialized) struct NodeRPCTests {
    let registrar = SigningKey(scheme: .sm2)
    let issuer = SigningKey(scheme: .sm2)
    let box = SigningKey(scheme: .sm2)
    let merchant = SigningKey(scheme: .secp256k1)
    let owner = SigningKey(scheme: .secp256k1)
    let vehicleKey = SigningKey(scheme: .sm2)

    func makeGenesis(keys: [SM2PrivateKey], batchSeconds: UInt64 = 2) -> Genesis {
        var economics = EconomicParameters()
        economics.batchSeconds = batchSeconds
        economics.claimStalenessSeconds = 3_600
        var consensus = ConsensusParameters()
        consensus.timeoutCommitMilliseconds = 200
        return Genesis(
            chainID: "quarry-rpc-test", genesisTime: wallClockMilliseconds() / 1_000 - 1,
            validators: keys.enumerated().map { i, k in
                GenesisValidator(name: "v\(i)", publicKey: try! PublicKeyBytes(scheme: .sm2, bytes: k.publicKey.rawRepresentation), power: 10)
            },
            roles: Roles(registrar: registrar.address, crystalIssuer: issuer.address, boxOperator: box.address,
                         merchants: [merchant.address]),
            economics: economics, consensus: consensus)
    }

    static func u64(_ v: JSONValue?) -> UInt64 { v?.numberValue?.uint64Value ?? UInt64.max }
    static func grains(_ v: JSONValue?) -> UInt64 { v?.stringValue.flatMap { UInt64($0) } ?? UInt64.max }

    /// Submits with `wait: "committed"` and returns the result (which must be committed).
    func commit(_ net: RPCNetwork, _ node: Int, _ tx: JSONValue,
                sourceLocation: SourceLocation = #_sourceLocation) async throws -> JSONValue {
        let r = try await net.result(node, "tx_submit", ["tx": tx, "wait": "committed"], sourceLocation: sourceLocation)
        #expect(r["status"] == "committed", "\(r)", sourceLocation: sourceLocation)
        return r
    }

    @Test(.timeLimit(.minutes(3))) func clientsDriveTheProgramThroughJSONRPC() async throws {
        let keys = (0..<4).map { _ in SM2PrivateKey() }
        let genesis = makeGenesis(keys: keys)
        let net = try await RPCNetwork(genesis: genesis, keys: keys) { i, c in
            if i == 3 { c.commitWaitMilliseconds = 1_500 }
        }
        let s = TestSigner(chainID: genesis.chainID)
        let vehicleID = SM3.hash(Array("salt|VIN-TEST-0001".utf8))
        try await net.run { net in
            // Subscribers on node 3, before anything happens.
            let subscriber = try await TestSubscriber(port: net.ports[3])
            defer { subscriber.close() }
            _ = try await subscriber.subscribe("newBlocks")
            _ = try await subscriber.subscribe("transactions", filter: ["vehicleId": .string(vehicleID.hex)])
            _ = try await subscriber.subscribe("batchDrops")
            _ = try await subscriber.subscribe("drawResults", filter: ["account": .string(owner.address.text)])

            // node_status on every node, then wait for a few blocks.
            for i in 0..<4 {
                let status = try await net.result(i, "node_status")
                #expect(status["chainId"] == .string(genesis.chainID))
                #expect(status["validator"] == true)
                #expect(status["genesisHash"] == .string(genesis.hash.hex))
            }
            try await net.eventually("height 2") { Self.u64(try await net.result(0, "node_status")["height"]) >= 2 }

            // Register a vehicle through node 0 and wait for its block.
            let registered = try await commit(net, 0, try s.hex(registrar, .registerVehicle(
                vehicleID: vehicleID, vehicleKey: vehicleKey.publicKeyBytes, model: "LS6", cohortTags: ["angel"],
                owner: owner.address, odometerMetres: 0)))
            let registeredHeight = Self.u64(registered["height"])
            #expect(registered["result"]?["events"]?.arrayValue?.first?["kind"] == "vehicle.registered")
            // Committed on every node: each one's vehicle_get finds it.
            for i in 0..<4 {
                try await net.eventually("vehicle on node \(i)") {
                    let r = try await net.call(i, "vehicle_get", ["vehicleId": .string(vehicleID.hex)])
                    return r["result"]?["owner"] == .string(owner.address.text)
                }
            }
            let vehicle = try await net.result(1, "vehicle_get", ["vehicleId": .string(vehicleID.hex), "proof": true])
            #expect(vehicle["model"] == "LS6" && vehicle["active"] == true)
            try await checkProof(net, node: 1, vehicle["proof"], key: StateKey.vehicle(vehicleID)) { value in
                (try? Vehicle(canonicalBytes: value))?.owner == owner.address
            }
            try await net.error(1, "vehicle_get", ["vehicleId": .string(SM3.hash([1]).hex)], code: -32001, dataCode: "vehicle.not_found")

            // Consent (checked at node 1, followed by tx_get), crystals (committed at node 2).
            let consent = try await net.result(1, "tx_submit", ["tx": try s.hex(owner, .signAgreement(version: SM3.hash(Array("v1".utf8))))])
            #expect(consent["status"] == "pending")
            let consentHash = try #require(consent["hash"]?.stringValue)
            try await net.eventually("consent committed") {
                try await net.result(0, "tx_get", ["hash": .string(consentHash)])["status"] == "committed"
            }
            _ = try await commit(net, 2, try s.hex(issuer, .grantCrystals(to: owner.address, amount: 50)))

            // A mileage claim signed by the vehicle, through node 2.
            let registeredBlock = try await net.result(2, "chain_getBlock", ["height": .integer(registeredHeight)])
            let start = Self.u64(registeredBlock["header"]?["timeMilliseconds"]) / 1_000
            let claim = MileageClaim(vehicleID: vehicleID, odometerStartMetres: 0, odometerEndMetres: 500,
                                     spanStart: start, spanEnd: start + 10, tripDigest: SM3.hash(Array("trip".utf8)))
            let claimed = try await commit(net, 2, try s.hex(vehicleKey, .mileageClaim(claim)))
            let claimBatch = UInt64(claimed["result"]?["events"]?.arrayValue?.first?["attributes"]?["batch"]?.stringValue ?? "") ?? 0

            // The same span again: the ledger refuses it in its block, and the client sees why.
            let overlap = MileageClaim(vehicleID: vehicleID, odometerStartMetres: 100, odometerEndMetres: 600,
                                       spanStart: start + 10, spanEnd: start + 12, tripDigest: SM3.hash(Array("trip2".utf8)))
            let refused = try await net.error(2, "tx_submit", ["tx": try s.hex(vehicleKey, .mileageClaim(overlap), nonce: 1),
                                                               "wait": "committed"],
                                              code: -32000, dataCode: "claim.odometer_overlap")
            let refusedHash = try #require(refused["data"]?["hash"]?.stringValue)
            let refusedStatus = try await net.result(2, "tx_get", ["hash": .string(refusedHash)])
            #expect(refusedStatus["status"] == "rejected")
            #expect(refusedStatus["error"]?["code"] == "claim.odometer_overlap")
            #expect(refusedStatus["height"] == refused["data"]?["height"])

            // Mempool refusals are -32000 with the mempool's code; bad params are -32602.
            try await net.error(0, "tx_submit", ["tx": "00ff"], code: -32000, dataCode: "mempool.decode")
            try await net.error(0, "tx_submit", ["tx": try s.hex(issuer, .grantCrystals(to: owner.address, amount: 1), nonce: 0)],
                                code: -32000, dataCode: "mempool.nonce_too_low")
            try await net.error(0, "tx_submit", ["tx": "0G"], code: -32602)
            try await net.error(0, "tx_submit", ["tx": "00", "wait": "soon"], code: -32602)
            // Waiting for a transaction that cannot be included yet (a nonce gap) times out.
            try await net.error(3, "tx_submit", ["tx": try s.hex(issuer, .grantCrystals(to: owner.address, amount: 1), nonce: 5),
                                                 "wait": "committed"], code: -32005, dataCode: "tx.commit_timeout")
            #expect(try await net.result(3, "tx_get", ["hash": .string(SM3.hash([9]).hex)])["status"] == "unknown")

            // The batch closes and settles: one participant takes the whole pool.
            try await net.eventually("batch \(claimBatch) settled", seconds: 40) {
                try await net.result(1, "batch_get", ["index": .integer(claimBatch)])["status"] == "settled"
            }
            let batch = try await net.result(1, "batch_get", ["index": .integer(claimBatch)])
            #expect(batch["participants"] == 1 && batch["totalMetres"] == 500)
            #expect(batch["distances"] == [["vehicleId": .string(vehicleID.hex), "owner": .string(owner.address.text), "metres": 500]])
            let pool = Self.grains(batch["poolGrains"])
            #expect(pool >= genesis.economics.schedule.drop(batch: claimBatch))
            #expect(Self.grains(batch["paidGrains"]) == pool)
            #expect(batch["payouts"]?.arrayValue?.map { Self.grains($0["grains"]) } == [pool])
            #expect(batch["nextCursor"] == .null)
            try await net.error(1, "batch_get", ["index": .integer(UInt64(1) << 40)], code: -32001, dataCode: "batch.not_started")
            try await net.error(1, "batch_get", ["index": 0, "limit": 0], code: -32602)
            // An empty batch before the claim's was carried.
            if claimBatch > 0 {
                #expect(try await net.result(1, "batch_get", ["index": 0])["status"] == "carried")
            }

            // The payout is on every node, and the supply adds up to the grain.
            for i in 0..<4 {
                try await net.eventually("payout on node \(i)") {
                    Self.grains(try await net.result(i, "account_get", ["address": .string(owner.address.text)])["balanceGrains"]) == pool
                }
            }
            let account = try await net.result(3, "account_get", ["address": .string(owner.address.text), "proof": true])
            #expect(account["crystals"] == 50 && account["activeVehicles"] == 1 && account["nonce"] == 1)
            try await checkProof(net, node: 3, account["proof"], key: StateKey.account(owner.address)) { value in
                (try? Account(canonicalBytes: value))?.balanceGrains == pool
            }
            // An account that never received anything reads as zero, with an absence proof.
            let nobody = SigningKey(scheme: .sm2).address
            let empty = try await net.result(0, "account_get", ["address": .string(nobody.text), "proof": true])
            #expect(empty["balanceGrains"] == "0" && empty["proof"]?["value"] == .null)
            try await checkProof(net, node: 0, empty["proof"], key: StateKey.account(nobody)) { _ in false }
            try await net.error(0, "account_get", ["address": "quarry1nope"], code: -32602)
            let supply = try await net.result(0, "supply_get")
            let parts = ["mileagePoolGrains", "cultivationPoolGrains", "balancesGrains", "treasuryGrains", "escrowGrains"]
                .map { Self.grains(supply[$0]) }
            #expect(parts.reduce(0, +) == Grains.totalSupply && Self.grains(supply["totalGrains"]) == Grains.totalSupply)
            #expect(Self.grains(supply["mintedMileageGrains"]) == pool)
            #expect(Self.grains(supply["mintedMileageGrains"]) <= Self.grains(supply["scheduledMileageGrains"]))
            // The parameters in force: those of genesis, since no governance changed them.
            let params = try await net.result(2, "chain_getParameters")
            let e = genesis.economics, c = genesis.consensus
            #expect(params["economics"]?["maxSpeedKmh"] == .integer(e.maxSpeedKmh))
            #expect(params["economics"]?["clockToleranceSeconds"] == .integer(e.clockToleranceSeconds))
            #expect(params["economics"]?["claimStalenessSeconds"] == .integer(e.claimStalenessSeconds))
            #expect(params["economics"]?["transfersEnabled"] == .bool(e.transfersEnabled))
            #expect(Self.grains(params["economics"]?["initialDropGrains"]) == e.initialDropGrains)
            #expect(params["consensus"]?["blockTransactionsMax"] == .integer(c.blockTransactionsMax))
            #expect(params["consensus"]?["timeoutCommitMs"] == .integer(c.timeoutCommitMilliseconds))
            try await net.error(2, "chain_getParameters", ["extra": 1], code: -32602)

            // A blind-box season, a draw and its result.
            let chain = BlindBox.hashChain(seed: SM3.hash(Array("seed".utf8)), length: 3)
            let terms = SeasonTerms(priceCrystals: 10, oddsPPM: [100_000, 200_000, 300_000, 400_000],
                                    prizes: [Prize(stoneGrains: 400, substituteCrystals: 1), Prize(stoneGrains: 300, substituteCrystals: 2),
                                             Prize(stoneGrains: 200, substituteCrystals: 3), Prize(stoneGrains: 100, substituteCrystals: 4)],
                                    budgetGrains: 10_000, startTime: genesis.genesisTime, endTime: genesis.genesisTime + 3_600,
                                    commitment: chain[3], responseWindowSeconds: 600)
            _ = try await commit(net, 0, try s.hex(box, .openSeason(terms)))
            let season = try await net.result(0, "season_get", ["id": "0", "proof": true])
            #expect(season["commitment"] == .string(chain[3].hex) && season["budgetLeftGrains"] == "10000")
            #expect(season["oddsPPM"] == ["SSR": 100_000, "S": 200_000, "A": 300_000, "B": 400_000])
            try await checkProof(net, node: 0, season["proof"], key: StateKey.season(0)) { (try? Season(canonicalBytes: $0))?.terms == terms }
            try await net.error(1, "season_get", ["id": "7"], code: -32001, dataCode: "season.not_found")
            try await net.error(1, "season_get", ["id": "01"], code: -32602)

            let requested = try await commit(net, 1, try s.hex(owner, .drawRequest(seasonID: 0)))
            let pendingDraw = try await net.result(1, "draw_get", ["id": "0/0"])
            #expect(pendingDraw["status"] == "pending" && pendingDraw["crystals"] == 10)
            #expect(pendingDraw["requestTransaction"] == requested["hash"])
            let requestHeight = Self.u64(pendingDraw["requestHeight"])
            let requestBlock = try await net.result(1, "chain_getBlock", ["height": .integer(requestHeight)])
            let previous = try Hash256(hex: try #require(requestBlock["header"]?["previousBlockHash"]?.stringValue))
            let roll = BlindBox.roll(preimage: chain[2], seasonID: 0, requestIndex: 0, height: requestHeight, previousBlockHash: previous)
            let rarity = BlindBox.rarity(roll: roll, oddsPPM: terms.oddsPPM)
            _ = try await commit(net, 2, try s.hex(box, .drawResult(seasonID: 0, requestIndex: 0, preimage: chain[2], rarity: rarity)))
            let answered = try await net.result(2, "draw_get", ["id": "0/0"])
            #expect(answered["status"] == "answered" && answered["requester"] == .string(owner.address.text))
            #expect(answered["outcome"]?["rarity"] == .string(rarity.description))
            #expect(answered["outcome"]?["roll"] == .integer(UInt64(roll)))
            #expect(Self.grains(answered["outcome"]?["stoneGrains"]) == terms.prizes[Int(rarity.rawValue)].stoneGrains)
            try await net.error(3, "draw_get", ["id": "0/1"], code: -32001, dataCode: "draw.not_found")
            try await net.error(3, "draw_get", ["id": "0-0"], code: -32602)

            // The catalog, paged, and a redemption.
            _ = try await commit(net, 0, try s.hex(merchant, .upsertItem(itemID: "lidar", title: "Lidar upgrade", priceGrains: 1_000,
                                                                         stock: 2, rule: EligibilityRule(model: "LS6"))))
            _ = try await commit(net, 0, try s.hex(merchant, .upsertItem(itemID: "mug", title: "Mug", priceGrains: 5, stock: 9,
                                                                         rule: EligibilityRule())))
            let firstPage = try await net.result(0, "catalog_list", ["limit": 1])
            #expect(firstPage["items"]?.arrayValue?.map { $0["id"] } == ["lidar"])
            let cursor = try #require(firstPage["nextCursor"]?.stringValue)
            let secondPage = try await net.result(0, "catalog_list", ["limit": 1, "cursor": .string(cursor)])
            #expect(secondPage["items"]?.arrayValue?.map { $0["id"] } == ["mug"] && secondPage["nextCursor"] == .null)
            let all = try await net.result(0, "catalog_list", ["merchant": .string(merchant.address.text)])
            #expect(all["items"]?.arrayValue?.count == 2)
            #expect(all["items"]?.arrayValue?.first?["eligibility"]?["model"] == "LS6")
            try await net.error(1, "catalog_list", ["cursor": "00"], code: -32602)
            _ = try await commit(net, 3, try s.hex(owner, .redeem(merchant: merchant.address, itemID: "lidar", vehicleID: vehicleID)))
            let redemption = try await net.result(3, "redemption_get", ["id": "0", "proof": true])
            #expect(redemption["status"] == "pending" && redemption["priceGrains"] == "1000" && redemption["itemId"] == "lidar")
            try await checkProof(net, node: 3, redemption["proof"], key: StateKey.redemption(0)) {
                (try? Redemption(canonicalBytes: $0))?.status == .pending
            }
            _ = try await commit(net, 0, try s.hex(merchant, .fulfilRedemption(redemptionID: 0)))
            #expect(try await net.result(0, "redemption_get", ["id": "0"])["status"] == "fulfilled")
            try await net.error(0, "redemption_get", ["id": "5"], code: -32001, dataCode: "redemption.not_found")
            let after = try await net.result(0, "supply_get")
            #expect(after["treasuryGrains"] == "1000" && after["escrowGrains"] == "0")

            // (Reads right after a commit go to the node that answered "committed": another
            // node may still be a block behind.)

            // Blocks and validators.
            let status = try await net.result(0, "node_status")
            let tip = Self.u64(status["height"])
            let block = try await net.result(0, "chain_getBlock", ["height": .integer(tip)])
            #expect(block["hash"] == status["latestBlockHash"])
            #expect(try Self.header(block["header"]).hash.hex == block["hash"]?.stringValue)
            #expect(block["commit"]?["blockId"] == block["hash"])
            try await net.error(0, "chain_getBlock", ["height": 0], code: -32001, dataCode: "block.not_found")
            try await net.error(0, "chain_getBlock", ["height": .integer(tip + 1_000)], code: -32001)
            try await net.error(0, "chain_getBlock", ["height": "1"], code: -32602)
            let validators = try await net.result(0, "chain_getValidators")
            #expect(validators["validators"]?.arrayValue?.count == 4 && validators["totalVotingPower"] == 40)
            #expect(validators["validatorsHash"] == block["header"]?["validatorsHash"])
            let first = try await net.result(0, "chain_getValidators", ["height": 1])
            #expect(first["validatorsHash"] == validators["validatorsHash"])
            try await net.error(0, "chain_getValidators", ["height": .integer(tip + 1_000)], code: -32001)

            // "none" returns at once; the transaction still gets committed.
            let quick = try await net.result(2, "tx_submit", ["tx": try s.hex(issuer, .grantCrystals(to: nobody, amount: 3)), "wait": "none"])
            try await net.eventually("wait none committed") {
                try await net.result(2, "tx_get", ["hash": quick["hash"] ?? .null])["status"] == "committed"
            }

            // The subscriber saw blocks, the vehicle's transactions, the batch drop and the draw.
            var sawBlock = false, sawClaim = false, sawRefusal = false, sawDrop = false, sawDraw = false
            try await subscriber.collect { topic, payload in
                switch topic {
                case "newBlocks": sawBlock = true
                case "transactions":
                    #expect(payload["vehicles"]?.arrayValue?.contains(.string(vehicleID.hex)) == true)
                    if payload["kind"] == "mileageClaim" && payload["status"] == "committed" { sawClaim = true }
                    if payload["error"]?["code"] == "claim.odometer_overlap" { sawRefusal = true }
                case "batchDrops": if payload["kind"] == "settled" && payload["batch"] == .integer(claimBatch) { sawDrop = true }
                case "drawResults":
                    #expect(payload["requester"] == .string(owner.address.text))
                    sawDraw = payload["id"] == "0/0" && payload["rarity"] == .string(rarity.description)
                default: Issue.record("unexpected topic \(topic)")
                }
                return sawBlock && sawClaim && sawRefusal && sawDrop && sawDraw
            }
        }
    }

    /// A read-only node that starts late catches up by block sync: every synced block is
    /// published to its subscribers in height order, its views follow, and a transaction
    /// submitted through it is committed by the validators and reported back to it.
    @Test(.timeLimit(.minutes(2))) func blocksAppliedBySyncArePublishedAndServed() async throws {
        let keys = (0..<5).map { _ in SM2PrivateKey() }
        let genesis = makeGenesis(keys: Array(keys.prefix(4)), batchSeconds: 600)
        let net = try await RPCNetwork(genesis: genesis, keys: keys, readOnly: [4], late: [4])
        let s = TestSigner(chainID: genesis.chainID)
        try await net.run { net in
            let subscriber = try await TestSubscriber(port: net.ports[4])
            defer { subscriber.close() }
            _ = try await subscriber.subscribe("newBlocks")
            #expect(try await net.result(4, "node_status")["height"] == 0)
            try await net.eventually("validators at height 5") {
                Self.u64(try await net.result(0, "node_status")["height"]) >= 5
            }
            net.startLate(4)
            var heights: [UInt64] = []
            try await subscriber.collect { topic, payload in
                if topic == "newBlocks" { heights.append(Self.u64(payload["height"])) }
                return heights.count >= 5
            }
            #expect(heights == Array(1...UInt64(heights.count)), "synced blocks out of order: \(heights)")
            let status = try await net.result(4, "node_status")
            #expect(status["validator"] == false)
            #expect(Self.u64(status["height"]) >= 5)
            let block = try await net.result(4, "chain_getBlock", ["height": 3])
            #expect(block["hash"] == (try await net.result(0, "chain_getBlock", ["height": 3]))["hash"])
            let granted = try await commit(net, 4, try s.hex(issuer, .grantCrystals(to: owner.address, amount: 7)))
            let height = Self.u64(granted["height"])
            #expect(Self.u64(try await net.result(4, "account_get", ["address": .string(owner.address.text)])["height"]) >= height)
            #expect(try await net.result(4, "account_get", ["address": .string(owner.address.text)])["crystals"] == 7)
        }
    }

    /// Rebuilds a header from its JSON (docs/spec/blocks.md), so its hash can be recomputed.
    static func header(_ v: JSONValue?) throws -> BlockHeader {
        let v = try #require(v)
        func h(_ k: String) throws -> Hash256 { try Hash256(hex: try #require(v[k]?.stringValue)) }
        return BlockHeader(version: UInt16(u64(v["version"])), chainID: v["chainId"]?.stringValue ?? "", height: u64(v["height"]),
                           timeMilliseconds: u64(v["timeMilliseconds"]), previousBlockHash: try h("previousBlockHash"),
                           lastCommitHash: try h("lastCommitHash"), transactionsRoot: try h("transactionsRoot"),
                           resultsRoot: try h("resultsRoot"), stateRoot: try h("stateRoot"), validatorsHash: try h("validatorsHash"),
                           proposer: UInt16(u64(v["proposer"])))
    }

    /// Checks a proof as a client would: the header at the proof's height (its hash
    /// recomputed from its fields) carries the state root, and the proof verifies the value
    /// (or absence) under `key` against it. A changed value must not verify.
    func checkProof(_ net: RPCNetwork, node: Int, _ proof: JSONValue?, key: [UInt8],
                    sourceLocation: SourceLocation = #_sourceLocation, value matches: ([UInt8]) -> Bool) async throws {
        let proof = try #require(proof, sourceLocation: sourceLocation)
        let height = Self.u64(proof["height"])
        let root = try Hash256(hex: try #require(proof["stateRoot"]?.stringValue))
        let block = try await net.result(node, "chain_getBlock", ["height": .integer(height)])
        let header = try Self.header(block["header"])
        #expect(header.hash.hex == block["hash"]?.stringValue, sourceLocation: sourceLocation)
        #expect(header.stateRoot == root, "the proof's root is not the header's", sourceLocation: sourceLocation)
        #expect(proof["key"] == .hex(key), sourceLocation: sourceLocation)
        let decoded = try StateProof(canonicalBytes: try Hex.decode(try #require(proof["encoded"]?.stringValue)))
        #expect(proof["siblings"]?.arrayValue?.count == decoded.siblings.count, sourceLocation: sourceLocation)
        if let text = proof["value"]?.stringValue {
            let value = try Hex.decode(text)
            #expect(matches(value), "the proven value is not the result's", sourceLocation: sourceLocation)
            #expect(decoded.verify(root: root, key: key, value: value), "the proof does not verify", sourceLocation: sourceLocation)
            #expect(!decoded.verify(root: root, key: key, value: value + [0]), sourceLocation: sourceLocation)
            #expect(!decoded.verify(root: root, key: key, value: nil), sourceLocation: sourceLocation)
        } else {
            #expect(decoded.verify(root: root, key: key, value: nil), "the absence proof does not verify", sourceLocation: sourceLocation)
            #expect(!decoded.verify(root: root, key: key, value: [1]), sourceLocation: sourceLocation)
        }
    }
}
