import Testing
import Foundation
import QuarryCore
import QuarryCrypto
import QuarryStore
@testable import QuarryLedger

/// One recorded block, replayable on another ledger.
struct RecordedBlock {
    let context: BlockContext
    let system: [SystemTransaction]
    let transactions: [[UInt8]]
    let root: Hash256
}

/// Random sequences of valid and invalid transactions from many accounts.
@Suite struct PropertyTests {
    static let vehicles = 14

    /// Produces a random transaction; about half are meant to fail.
    func randomTransaction(_ chain: TestChain, _ rng: inout SplitMix64, fixture: SeasonFixture, refunded: UInt64) throws -> [UInt8] {
        let n = Int(rng.next() % UInt64(Self.vehicles))
        switch rng.next() % 16 {
        case 0:
            return chain.tx(registrar, .registerVehicle(vehicleID: vehicleID(n), vehicleKey: vehicleKey(n).publicKeyBytes,
                                                        model: n % 2 == 0 ? "LS7" : "LS6", cohortTags: n < 5 ? ["angel-wheel"] : [],
                                                        owner: ownerKey(n % 9).address, odometerMetres: 100))
        case 1:
            return chain.tx(ownerKey(n % 9), rng.next() % 5 == 0 ? .revokeAgreement : .signAgreement(version: SM3.hash([UInt8(rng.next() % 2)])))
        case 2, 3, 4, 5, 6:
            // A claim continuing the vehicle's record; sometimes broken on purpose.
            let v = try chain.ledger.vehicle(vehicleID(n))
            let start = v?.lastSpanEnd ?? chain.now - 50
            let end = min(chain.now, start + 1 + rng.next() % 40)
            var metres = 1 + rng.next() % max(1, (end > start ? end - start : 1) * 60)
            var from = v?.odometerMetres ?? 0
            switch rng.next() % 8 {
            case 0: metres *= 10          // too fast
            case 1: from = from > 10 ? from - 10 : 0 // overlap
            default: break
            }
            let signer = rng.next() % 10 == 0 ? vehicleKey((n + 1) % Self.vehicles) : vehicleKey(n)
            return chain.tx(signer, claim(n, from: from, metres: metres, start: start, end: max(end, start + 1)))
        case 7:
            return chain.tx(rng.next() % 6 == 0 ? ownerKey(1) : issuer, .grantCrystals(to: ownerKey(n % 9).address, amount: rng.next() % 40))
        case 8:
            let budget = (rng.next() % 3) * 20 * Grains.perStone
            let terms = fixture.terms(now: chain.now, odds: [100_000, 200_000, 300_000, 400_000],
                                      prizes: [Prize(stoneGrains: 10 * Grains.perStone, substituteCrystals: 50),
                                               Prize(stoneGrains: 2 * Grains.perStone, substituteCrystals: 20),
                                               Prize(stoneGrains: 12_345, substituteCrystals: 5), Prize(stoneGrains: 0, substituteCrystals: 1)],
                                      budget: budget, window: 3 + rng.next() % 20)
            return chain.tx(boxOperator, .openSeason(terms))
        case 9:
            return chain.tx(ownerKey(n % 9), .drawRequest(seasonID: rng.next() % 2))
        case 10:
            // Answer the oldest pending draw of season 0, truthfully or not.
            guard let season = try chain.ledger.season(0),
                  let draw = try chain.ledger.draw(season: 0, index: season.settled) else {
                return chain.tx(boxOperator, .drawResult(seasonID: 0, requestIndex: 0, preimage: .zero, rarity: .b))
            }
            let k = Int(season.settled) - Int(refunded)
            let preimage = k >= 0 && k < fixture.length ? fixture.preimage(k) : .zero
            var rarity = BlindBox.rarity(roll: BlindBox.roll(preimage: preimage, seasonID: 0, requestIndex: season.settled,
                                                             height: draw.height, previousBlockHash: draw.previousBlockHash),
                                         oddsPPM: season.terms.oddsPPM)
            if rng.next() % 4 == 0 { rarity = Rarity(rawValue: UInt8(rng.next() % 4))! }
            return chain.tx(boxOperator, .drawResult(seasonID: 0, requestIndex: season.settled, preimage: preimage, rarity: rarity))
        case 11:
            let rule: EligibilityRule = rng.next() % 2 == 0 ? .init() : .init(model: "LS7", minimumMetresLastYear: rng.next() % 3_000)
            return chain.tx(rng.next() % 5 == 0 ? ownerKey(2) : merchant,
                            .upsertItem(itemID: "item-\(rng.next() % 3)", title: "Item", priceGrains: 1 + rng.next() % (80 * Grains.perStone),
                                        stock: rng.next() % 4, rule: rule))
        case 12:
            return chain.tx(ownerKey(n % 9), .redeem(merchant: merchant.address, itemID: "item-\(rng.next() % 3)",
                                                     vehicleID: rng.next() % 3 == 0 ? nil : vehicleID(n)))
        case 13:
            let id = rng.next() % max(1, chain.ledger.global.nextRedemptionID + 1)
            return chain.tx(merchant, rng.next() % 2 == 0 ? .fulfilRedemption(redemptionID: id) : .rejectRedemption(redemptionID: id))
        case 14:
            return chain.tx(ownerKey(n % 9), .transfer(to: ownerKey((n + 1) % 9).address, amount: rng.next() % (50 * Grains.perStone)))
        default:
            if rng.next() % 2 == 0 { return rng.bytes(Int(rng.next() % 200)) }
            return chain.tx(ownerKey(n % 9), .signAgreement(version: .zero), nonce: rng.next() % 5)
        }
    }

    func checkInvariants(_ chain: TestChain) throws {
        let g = chain.ledger.global
        #expect(g.supply == Grains.totalSupply)
        #expect(try chain.scannedBalances() == g.balancesGrains)
        let closed = chain.ledger.batch(at: g.time)
        #expect(g.mileagePaidGrains <= chain.genesis.economics.schedule.cumulative(before: closed))
        #expect(g.cultivationPoolGrains + g.cultivationPaidGrains == Grains.cultivationPool)
    }

    @Test func randomTransactionsKeepInvariantsAndReplay() throws {
        let genesis = testGenesis(batchSeconds: 20, transfers: true, blockTransactionsMax: 12, settlementChunkMax: 12)
        let chain = try TestChain(genesis: genesis)
        var rng = SplitMix64(seed: 0x5EED)
        let fixture = SeasonFixture()
        var recorded: [RecordedBlock] = []
        var outcomes = [0, 0]
        var codes: [String: Int] = [:]
        var refundedSeason0: UInt64 = 0
        while recorded.count < 400 {
            var txs: [[UInt8]] = []
            for _ in 0..<Int(rng.next() % 13) {
                let raw = try randomTransaction(chain, &rng, fixture: fixture, refunded: refundedSeason0)
                txs.append(raw)
            }
            let ctx = chain.context
            let result = try chain.block(txs, advance: 1 + rng.next() % 6)
            for r in result.transactions {
                outcomes[r.succeeded ? 0 : 1] += 1
                codes[r.error?.code ?? (r.events.first?.kind ?? "ok"), default: 0] += 1
            }
            for case .refundDraw(let s, _, _) in result.systemTransactions where s == 0 { refundedSeason0 += 1 }
            // Failed transactions' nonces were not consumed: resync the local counters.
            for key in [registrar, issuer, boxOperator, merchant] + (0..<9).map({ ownerKey($0) }) + (0..<Self.vehicles).map({ vehicleKey($0) }) {
                chain.nonces[key.address] = try chain.ledger.account(key.address).nonce
            }
            recorded.append(RecordedBlock(context: ctx, system: result.systemTransactions, transactions: txs, root: result.stateRoot))
            try checkInvariants(chain)
        }
        #expect(outcomes[0] > 500 && outcomes[1] > 500, "succeeded/failed: \(outcomes)")
        print("property test outcomes:", codes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        #expect(codes["claim.accepted", default: 0] > 100 && codes["draw.result", default: 0] > 5 && codes["redemption.created", default: 0] > 5)
        #expect(chain.ledger.global.mileagePaidGrains > 0)
        // Proofs of a few accounts against the final root.
        for n in 0..<9 {
            let key = StateKey.account(ownerKey(n).address)
            let (value, proof) = try chain.ledger.prove(key: key)
            #expect(proof.verify(root: chain.ledger.stateRoot, key: key, value: value))
        }

        // Replay on a fresh in-memory store: the same root at every height.
        let replay = try Ledger(store: InMemoryStore(), genesis: genesis)
        for block in recorded {
            let r = try replay.executeBlock(block.context, systemTransactions: block.system, transactions: block.transactions)
            #expect(r.stateRoot == block.root, "height \(block.context.height)")
            try replay.commit(r, sync: false)
        }

        // Replay on RocksDB, closing and reopening the database halfway.
        let path = temporaryDirectory("property")
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let store = try RocksDBStore(path: path, columns: Ledger.columns)
            let ledger = try Ledger(store: store, genesis: genesis)
            for block in recorded.prefix(200) {
                let r = try ledger.executeBlock(block.context, systemTransactions: block.system, transactions: block.transactions)
                try ledger.commit(r, sync: false)
            }
            store.close()
        }
        let store = try RocksDBStore(path: path, columns: Ledger.columns)
        let ledger = try Ledger(store: store, genesis: genesis)
        #expect(ledger.height == 200)
        #expect(ledger.stateRoot == recorded[199].root)
        for block in recorded.dropFirst(200) {
            let r = try ledger.executeBlock(block.context, systemTransactions: block.system, transactions: block.transactions)
            #expect(r.stateRoot == block.root)
            try ledger.commit(r, sync: false)
        }
        #expect(ledger.stateRoot == chain.ledger.stateRoot)
        store.close()
    }
}
