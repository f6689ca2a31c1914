import Testing
import QuarryCore
import QuarryCrypto
@testable import QuarryLedger

/// The outcome rule re-implemented here from the spec, independently of `BlindBox`.
func independentRarity(preimage: Hash256, season: UInt64, index: UInt64, height: UInt64, previous: Hash256, odds: [UInt32]) -> Rarity {
    func be(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64($0))) } }
    let digest = SM3.hash(Array("QUARRY/DRAW/V1".utf8) + preimage.bytes + be(season) + be(index) + be(height) + previous.bytes).bytes
    let x = digest[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    // floor(x * 10^6 / 2^64) with exact integer arithmetic via 128-bit halves.
    let roll = x.multipliedFullWidth(by: 1_000_000).high
    var acc: UInt64 = 0
    for (i, o) in odds.enumerated() {
        acc += UInt64(o)
        if roll < acc { return Rarity(rawValue: UInt8(i))! }
    }
    fatalError("odds")
}

func refunds(_ r: BlockResult) -> [SystemTransaction] {
    r.systemTransactions.filter { if case .refundDraw = $0 { return true } else { return false } }
}

struct SeasonFixture {
    let seed = SM3.hash(Array("operator seed".utf8))
    let length = 64
    var chain: [Hash256] { BlindBox.hashChain(seed: seed, length: length) }
    /// The pre-image revealed for the k-th answered draw.
    func preimage(_ k: Int) -> Hash256 { chain[length - 1 - k] }

    func terms(now: UInt64, odds: [UInt32], prizes: [Prize], budget: UInt64, window: UInt64 = 60) -> SeasonTerms {
        SeasonTerms(priceCrystals: 10, oddsPPM: odds, prizes: prizes, budgetGrains: budget, startTime: now - 1, endTime: now + 10_000,
                    commitment: chain[length], responseWindowSeconds: window)
    }
}

@Suite struct BlindBoxTests {
    let fixture = SeasonFixture()
    let prizes = [Prize(stoneGrains: 30 * Grains.perStone, substituteCrystals: 500), Prize(stoneGrains: 5 * Grains.perStone, substituteCrystals: 100),
                  Prize(stoneGrains: 1_000_000, substituteCrystals: 20), Prize(stoneGrains: 0, substituteCrystals: 5)]

    func answer(_ chain: TestChain, season: UInt64, index: UInt64, k: Int, lie: Bool = false) throws -> TransactionResult {
        let draw = try #require(try chain.ledger.draw(season: season, index: index))
        let s = try #require(try chain.ledger.season(season))
        let preimage = fixture.preimage(k)
        var rarity = independentRarity(preimage: preimage, season: season, index: index, height: draw.height,
                                       previous: draw.previousBlockHash, odds: s.terms.oddsPPM)
        if lie { rarity = Rarity(rawValue: (rarity.rawValue + 1) % 4)! }
        let raw = chain.tx(boxOperator, .drawResult(seasonID: season, requestIndex: index, preimage: preimage, rarity: rarity),
                           nonce: chain.nonces[boxOperator.address, default: 0])
        if lie {
            #expect(try chain.expectRejected(raw, "draw.outcome_mismatch"))
            return try chain.ledger.draw(season: season, index: index) != nil
                ? TransactionResult(hash: nil, error: TransactionError("draw.outcome_mismatch", ""), events: []) : TransactionResult(hash: nil, error: nil, events: [])
        }
        chain.nonces[boxOperator.address, default: 0] += 1
        return try chain.block([raw]).transactions[0]
    }

    @Test func seasonLifecycleAndRejections() throws {
        let chain = try TestChain()
        try setUpVehicle(chain, 1)          // owner 1 owns a vehicle
        let nonOwner = ownerKey(2)
        #expect(try chain.run(issuer, .grantCrystals(to: ownerKey(1).address, amount: 1_000)).succeeded)
        #expect(try chain.run(issuer, .grantCrystals(to: nonOwner.address, amount: 15)).succeeded)
        #expect(try chain.rejects(ownerKey(1), .grantCrystals(to: ownerKey(1).address, amount: 5), "tx.unauthorized"))
        #expect(try chain.rejects(issuer, .grantCrystals(to: ownerKey(1).address, amount: 0), "tx.zero_amount"))
        #expect(try chain.ledger.account(ownerKey(1).address).crystals == 1_000)

        let allSSR: [UInt32] = [1_000_000, 0, 0, 0]
        let terms = fixture.terms(now: chain.now, odds: allSSR, prizes: prizes, budget: 50 * Grains.perStone)
        var bad = terms; bad.oddsPPM = [500_000, 0, 0, 0]
        #expect(try chain.rejects(ownerKey(1), .openSeason(terms), "tx.unauthorized"))
        #expect(try chain.rejects(boxOperator, .openSeason(bad), "season.invalid_odds"))
        bad = terms; bad.endTime = chain.now - 1
        #expect(try chain.rejects(boxOperator, .openSeason(bad), "season.invalid_time"))
        bad = terms; bad.budgetGrains = Grains.cultivationPool + 1
        #expect(try chain.rejects(boxOperator, .openSeason(bad), "season.budget_exceeds_pool"))
        #expect(try chain.run(boxOperator, .openSeason(terms)).succeeded)
        #expect(chain.ledger.global.cultivationReservedGrains == 50 * Grains.perStone)

        #expect(try chain.rejects(ownerKey(1), .drawRequest(seasonID: 9), "season.unknown"))
        #expect(try chain.run(ownerKey(1), .drawRequest(seasonID: 0)).succeeded)
        #expect(try chain.run(nonOwner, .drawRequest(seasonID: 0)).succeeded)
        #expect(try chain.rejects(nonOwner, .drawRequest(seasonID: 0), "crystals.insufficient"))
        #expect(try chain.ledger.account(nonOwner.address).crystals == 5)

        // Results: in order, correct pre-image, correct outcome, operator only.
        #expect(try chain.rejects(ownerKey(1), .drawResult(seasonID: 0, requestIndex: 0, preimage: fixture.preimage(0), rarity: .ssr), "tx.unauthorized"))
        #expect(try chain.rejects(boxOperator, .drawResult(seasonID: 0, requestIndex: 1, preimage: fixture.preimage(0), rarity: .ssr), "draw.out_of_order"))
        #expect(try chain.rejects(boxOperator, .drawResult(seasonID: 0, requestIndex: 5, preimage: fixture.preimage(0), rarity: .ssr), "draw.unknown"))
        #expect(try chain.rejects(boxOperator, .drawResult(seasonID: 0, requestIndex: 0, preimage: fixture.preimage(1), rarity: .ssr), "draw.bad_preimage"))
        _ = try answer(chain, season: 0, index: 0, k: 0, lie: true)
        // Owner gets the 30-stone SSR prize from the season budget.
        #expect(try answer(chain, season: 0, index: 0, k: 0).succeeded)
        #expect(try chain.ledger.account(ownerKey(1).address).balanceGrains == 30 * Grains.perStone)
        #expect(chain.ledger.global.cultivationPoolGrains == Grains.cultivationPool - 30 * Grains.perStone)
        // A non-owner never receives stones: the substitute instead.
        #expect(try answer(chain, season: 0, index: 1, k: 1).succeeded)
        #expect(try chain.ledger.account(nonOwner.address).balanceGrains == 0)
        #expect(try chain.ledger.account(nonOwner.address).crystals == 5 + 500)
        // 20 stones of budget are left: the next SSR (30 stones) turns into the substitute.
        #expect(try chain.run(ownerKey(1), .drawRequest(seasonID: 0)).succeeded)
        #expect(try answer(chain, season: 0, index: 2, k: 2).succeeded)
        #expect(try chain.ledger.account(ownerKey(1).address).balanceGrains == 30 * Grains.perStone)
        #expect(try chain.ledger.account(ownerKey(1).address).crystals == 1_000 - 20 + 500)
        #expect(try chain.ledger.season(0)?.budgetLeftGrains == 20 * Grains.perStone)

        // An unanswered request is refunded by a system transaction after its deadline.
        #expect(try chain.run(ownerKey(1), .drawRequest(seasonID: 0)).succeeded)
        let crystalsBefore = try chain.ledger.account(ownerKey(1).address).crystals
        chain.clock += 61
        let expiredResult = chain.tx(boxOperator, .drawResult(seasonID: 0, requestIndex: 3, preimage: fixture.preimage(3), rarity: .ssr),
                                     nonce: chain.nonces[boxOperator.address, default: 0])
        let refundBlock = try chain.block([expiredResult])
        #expect(refunds(refundBlock) == [.refundDraw(seasonID: 0, requestIndex: 3, crystals: 10)])
        #expect(refundBlock.transactions[0].error?.code == "draw.unknown")
        #expect(try chain.ledger.account(ownerKey(1).address).crystals == crystalsBefore + 10)
        // The next request uses the pre-image the expired one did not consume.
        #expect(try chain.run(ownerKey(1), .drawRequest(seasonID: 0)).succeeded)
        #expect(try answer(chain, season: 0, index: 4, k: 3).succeeded)

        // Closing releases the unspent budget.
        #expect(try chain.rejects(boxOperator, .closeSeason(seasonID: 0), "season.not_ended"))
        chain.clock += 20_000
        #expect(try chain.rejects(ownerKey(1), .drawRequest(seasonID: 0), "season.not_active"))
        #expect(try chain.run(boxOperator, .closeSeason(seasonID: 0)).succeeded)
        #expect(chain.ledger.global.cultivationReservedGrains == 0)
        #expect(try chain.rejects(boxOperator, .closeSeason(seasonID: 0), "season.closed"))
        #expect(chain.ledger.global.supply == Grains.totalSupply)
    }

    @Test func expiredResultIsRejectedBeforeRefund() throws {
        // refundChunkMax 1 and two requests expiring together: the second waits a block.
        let chain = try TestChain(genesis: testGenesis(blockTransactionsMax: 1, settlementChunkMax: 1))
        #expect(try chain.run(issuer, .grantCrystals(to: ownerKey(1).address, amount: 100)).succeeded)
        #expect(try chain.run(boxOperator, .openSeason(fixture.terms(now: chain.now, odds: [0, 0, 0, 1_000_000], prizes: prizes, budget: 0, window: 5)),
                              advance: 0).succeeded)
        #expect(try chain.run(ownerKey(1), .drawRequest(seasonID: 0), advance: 0).succeeded)
        #expect(try chain.run(ownerKey(1), .drawRequest(seasonID: 0), advance: 10).succeeded)
        let first = try chain.block([])
        #expect(refunds(first) == [.refundDraw(seasonID: 0, requestIndex: 0, crystals: 10)])
        let raw = chain.tx(boxOperator, .drawResult(seasonID: 0, requestIndex: 1, preimage: fixture.preimage(0), rarity: .b),
                           nonce: chain.nonces[boxOperator.address, default: 0])
        let ctx = chain.context
        let result = try chain.ledger.executeBlock(ctx, systemTransactions: chain.ledger.systemTransactions(for: ctx), transactions: [raw])
        #expect(refunds(result) == [.refundDraw(seasonID: 0, requestIndex: 1, crystals: 10)])
        #expect(result.transactions[0].error?.code == "draw.unknown")
    }

    /// Over 200,000 rolls the rarities follow the published odds (chi-square, 3 degrees of
    /// freedom, critical value 16.27 at p = 0.001).
    @Test func rollsFollowPublishedOdds() {
        let odds: [UInt32] = [10_000, 90_000, 300_000, 600_000]
        var counts = [0, 0, 0, 0]
        let n = 200_000
        var preimage = SM3.hash([42])
        for i in 0..<n {
            if i % 1_000 == 0 { preimage = SM3.hash(preimage.bytes) }
            let roll = BlindBox.roll(preimage: preimage, seasonID: 1, requestIndex: UInt64(i), height: UInt64(i / 7), previousBlockHash: .zero)
            #expect(roll < 1_000_000)
            counts[Int(BlindBox.rarity(roll: roll, oddsPPM: odds).rawValue)] += 1
        }
        var chiSquare = 0.0
        for (i, o) in odds.enumerated() {
            let expected = Double(n) * Double(o) / 1_000_000
            chiSquare += (Double(counts[i]) - expected) * (Double(counts[i]) - expected) / expected
        }
        #expect(chiSquare < 16.27, "counts \(counts), chi-square \(chiSquare)")
    }

    /// Through the ledger: every result is re-derived here; rarities over many draws follow
    /// the odds (a coarse chi-square with p = 0.001).
    @Test func ledgerDrawsMatchIndependentDerivation() throws {
        let chain = try TestChain()
        try setUpVehicle(chain, 1)
        let odds: [UInt32] = [50_000, 150_000, 300_000, 500_000]
        let draws = 48
        #expect(try chain.run(issuer, .grantCrystals(to: ownerKey(1).address, amount: 10 * UInt64(draws))).succeeded)
        #expect(try chain.run(boxOperator, .openSeason(fixture.terms(now: chain.now, odds: odds, prizes: prizes, budget: 1_000 * Grains.perStone))).succeeded)
        var counts = [0, 0, 0, 0]
        var expectedBalance: UInt64 = 0
        for k in 0..<draws {
            // Several requests per block, answered in the next block.
            if k % 4 == 0 {
                try chain.block((0..<4).map { _ in chain.tx(ownerKey(1), .drawRequest(seasonID: 0)) })
            }
            let result = try answer(chain, season: 0, index: UInt64(k), k: k)
            #expect(result.succeeded)
            let rarity = Rarity(rawValue: UInt8(["SSR", "S", "A", "B"].firstIndex(of: result.events[0]["rarity"]!)!))!
            counts[Int(rarity.rawValue)] += 1
            expectedBalance += prizes[Int(rarity.rawValue)].stoneGrains
        }
        #expect(try chain.ledger.account(ownerKey(1).address).balanceGrains == expectedBalance)
        #expect(chain.ledger.global.cultivationPaidGrains == expectedBalance)
        var chiSquare = 0.0
        for (i, o) in odds.enumerated() {
            let expected = Double(draws) * Double(o) / 1_000_000
            chiSquare += (Double(counts[i]) - expected) * (Double(counts[i]) - expected) / expected
        }
        #expect(chiSquare < 16.27, "counts \(counts)")
    }
}
