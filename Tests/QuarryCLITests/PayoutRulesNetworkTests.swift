import Foundation
import QuarryClient
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryRPC
import Testing

/// MISSION.md's mileage rules, checked to the grain against a real network (4 validators and
/// a read-only node, each a `quarry node start` process) and only through JSON-RPC: three
/// vehicles claim uneven distances in one batch; then, for every batch from 0 to the last
/// settled one, the drop is `500 stones >> (n / 210,000)`, a settled batch's pool is its drop
/// plus everything carried (remainders of earlier batches and drops of empty ones), each
/// payout is `floor(pool * metres / total)`, what rounding leaves rolls on, every owner's
/// balance is the sum of its payouts, and the supply adds up to 300,000,000 stones. The
/// expected values are computed here, independently of the ledger's code.
@Suite(.serialized) struct PayoutRulesNetworkTests {
    static func drop(_ n: UInt64) -> UInt64 {
        let shift = n / 210_000
        return shift >= 64 ? 0 : (500 * 100_000_000) >> shift
    }

    static func grains(_ v: JSONValue?) -> UInt64? { v?.stringValue.flatMap { UInt64($0) } }

    @Test(.timeLimit(.minutes(5))) func mileagePayoutsFollowTheRulesToTheGrain() async throws {
        let network = try ClientNetworkTests.LiveNetwork(portRange: 18_000..<24_000)
        defer { network.stop() }
        try network.start()
        let serving = try await network.waitServing()
        #expect(serving, "the network did not serve JSON-RPC: \(network.logTail(0))")
        guard serving else { return }
        let validator = QuarryClient(endpoint: try RPCEndpoint(parsing: network.rpc(0)), timeoutMilliseconds: 45_000)
        let auditor = QuarryClient(endpoint: try RPCEndpoint(parsing: network.rpc(4)), timeoutMilliseconds: 10_000)
        let roles = Keystore(directory: URL(fileURLWithPath: network.dir + "/role-keys"))
        let registrar = Sender(client: validator, key: try roles.load(name: "registrar", passphrase: nil))

        // Three vehicles of three owners, registered and consented.
        let distances: [UInt64] = [7, 211, 293]
        var vehicles: [(id: Hash256, key: SigningKey, owner: SigningKey)] = []
        for i in 0..<distances.count {
            let car = SigningKey(scheme: .sm2), owner = SigningKey(scheme: i == 1 ? .secp256k1 : .sm2)
            let id = SM3.hash(Array("payout-rules vehicle \(i)".utf8))
            let registered = try await registrar.submit(
                PayloadBuilder.registerVehicle(vehicleID: id, vehicleKey: car.publicKeyBytes, model: "LS6", cohortTags: [],
                                               owner: owner.address, odometerMetres: 0), wait: .committed)
            #expect(registered.status.succeeded, "\(registered.status)")
            let consent = try await Sender(client: validator, key: owner)
                .submit(PayloadBuilder.signAgreement(version: SM3.hash(Array("agreement v1".utf8))), wait: .committed)
            #expect(consent.status.succeeded, "\(consent.status)")
            vehicles.append((id, car, owner))
        }
        // Each span starts where the vehicle's record says and ends a few seconds later, so
        // the distances stay under 250 km/h (293 m in 5 s is 211 km/h).
        var spanStarts: [UInt64] = []
        for v in vehicles {
            let record = try await validator.vehicle(v.id)
            spanStarts.append(try #require(record["lastSpanEnd"]?.numberValue?.uint64Value))
        }
        try await Task.sleep(for: .seconds(6))
        let end = UInt64(Date().timeIntervalSince1970)
        // Submitted together, so they usually share a block (and so a batch).
        let fleet = vehicles, starts = spanStarts
        let claims = try await withThrowingTaskGroup(of: Submission.self) { group in
            for (i, v) in fleet.enumerated() {
                group.addTask {
                    try await Sender(client: validator, key: v.key).submit(
                        PayloadBuilder.mileageClaim(vehicleID: v.id, odometerStartMetres: 0, odometerEndMetres: distances[i],
                                                    spanStart: starts[i], spanEnd: end, tripDigest: SM3.hash([UInt8(i)])),
                        wait: .committed)
                }
            }
            var all: [Submission] = []
            for try await s in group { all.append(s) }
            return all
        }
        #expect(claims.allSatisfy { $0.status.succeeded }, "\(claims.map(\.status))")
        let lastClaimHeight = claims.compactMap(\.status.height).max() ?? 0

        // Wait (bounded) until the batches of those claims have settled on the auditor node.
        var settledUpTo: UInt64 = 0
        var pending = true
        let deadline = ContinuousClock.now + .seconds(60)
        while pending && ContinuousClock.now < deadline {
            try await Task.sleep(for: .seconds(1))
            let supply = try await auditor.supply()
            guard (supply.raw["height"]?.numberValue?.uint64Value ?? 0) > lastClaimHeight else { continue }
            var n: UInt64 = 0
            pending = false
            var sawClaims = 0
            while true {
                let b = try await auditor.batch(n)
                let status = b["status"]?.stringValue ?? ""
                if status == "settled" { sawClaims += Int(b["participants"]?.numberValue?.uint64Value ?? 0) }
                if status == "open" || status == "closed" || status == "settling" { break }
                settledUpTo = n
                n += 1
            }
            pending = sawClaims < distances.count
        }
        #expect(!pending, "the claims' batches did not settle within 60 s")

        // Walk every batch up to the last settled one and check the rules.
        var carried: UInt64 = 0
        var paidTo: [String: UInt64] = [:]
        var paidTotal: UInt64 = 0
        var participants = 0, remainders: [UInt64] = []
        for n in 0...settledUpTo {
            let b = try await auditor.batch(n, limit: 1_000)
            let drop = try #require(Self.grains(b["dropGrains"]))
            #expect(drop == Self.drop(n), "batch \(n) drop")
            switch b["status"]?.stringValue {
            case "carried":
                carried += drop
            case "settled":
                let pool = try #require(Self.grains(b["poolGrains"]))
                #expect(pool == carried + drop, "batch \(n): pool \(pool), expected carried \(carried) + drop \(drop)")
                let entries = b["distances"]?.arrayValue ?? []
                let total = entries.compactMap { $0["metres"]?.numberValue?.uint64Value }.reduce(0, +)
                #expect(total == b["totalMetres"]?.numberValue?.uint64Value, "batch \(n) total metres")
                var sum: UInt64 = 0
                for payout in b["payouts"]?.arrayValue ?? [] {
                    let vehicle = payout["vehicleId"]?.stringValue
                    let metres = try #require(entries.first { $0["vehicleId"]?.stringValue == vehicle }?["metres"]?.numberValue?.uint64Value)
                    let expected = pool.multipliedFullWidth(by: metres)
                    let (share, _) = total.dividingFullWidth(expected)
                    let grains = try #require(Self.grains(payout["grains"]))
                    #expect(grains == share, "batch \(n), vehicle \(vehicle ?? "?"): paid \(grains), pro rata \(share)")
                    sum += grains
                    paidTo[payout["owner"]?.stringValue ?? "", default: 0] += grains
                }
                #expect((b["payouts"]?.arrayValue ?? []).count == entries.count, "batch \(n): one payout per participant")
                #expect(sum == Self.grains(b["paidGrains"]), "batch \(n) paid")
                carried = pool - sum  // rounding leaves this much; it rolls into the next batch
                participants += entries.count
                remainders.append(carried)
                paidTotal += sum
            default:
                Issue.record("batch \(n) has status \(b["status"]?.stringValue ?? "none")")
            }
        }
        #expect(participants == distances.count, "\(participants) participants in the settled batches")
        print("payout rules: batches 0...\(settledUpTo) checked, \(participants) payouts, remainders rolled on: \(remainders)")
        for v in vehicles {
            let account = try await auditor.account(v.owner.address)
            #expect(account.balanceGrains == paidTo[v.owner.address.text, default: 0], "owner \(v.owner.address.text)")
            #expect(account.balanceGrains > 0)
        }
        let supply = try await auditor.supply()
        #expect(supply.mintedMileageGrains == paidTotal, "minted mileage \(supply.mintedMileageGrains) vs payouts \(paidTotal)")
        #expect(supply.mileagePoolGrains + supply.cultivationPoolGrains + supply.balancesGrains + supply.treasuryGrains
                + supply.escrowGrains == 300_000_000 * 100_000_000)
    }
}
