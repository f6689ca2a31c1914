import Testing
import QuarryCore
import QuarryCrypto
@testable import QuarryLedger

/// A chain where owner 1 (vehicle 1, model LS7, cohort angel-wheel) has earned a whole
/// batch drop of 500 stones by driving 6,000 m, and owner 2 (vehicle 2, model LS6) 0 stones.
func chainWithEarnings(transfers: Bool = false) throws -> TestChain {
    let chain = try TestChain(genesis: testGenesis(batchSeconds: 100, transfers: transfers))
    try setUpVehicle(chain, 1)
    try setUpVehicle(chain, 2, model: "LS6", tags: [])
    let g = chain.genesis.genesisTime
    chain.clock = 99
    #expect(try chain.run(vehicleKey(1), claim(1, from: 1_000, metres: 6_000, start: g + 5, end: g + 95)).succeeded)
    try chain.block([])
    #expect(try chain.ledger.account(ownerKey(1).address).balanceGrains == 500 * Grains.perStone)
    return chain
}

@Suite struct RedemptionTests {
    @Test func catalogRedeemFulfilReject() throws {
        let chain = try chainWithEarnings()
        let owner = ownerKey(1)
        let lidar = EligibilityRule(model: "LS7", cohortTag: "angel-wheel", minimumMetresLastYear: 5_000)
        #expect(try chain.rejects(owner, .upsertItem(itemID: "lidar", title: "Lidar upgrade", priceGrains: 100, stock: 1, rule: lidar), "tx.unauthorized"))
        #expect(try chain.rejects(merchant, .upsertItem(itemID: "lidar", title: "Lidar upgrade", priceGrains: 0, stock: 1, rule: lidar), "tx.invalid_field"))
        #expect(try chain.rejects(merchant, .upsertItem(itemID: "", title: "Lidar upgrade", priceGrains: 1, stock: 1, rule: lidar), "tx.invalid_field"))
        #expect(try chain.run(merchant, .upsertItem(itemID: "lidar", title: "Lidar upgrade", priceGrains: 300 * Grains.perStone, stock: 2, rule: lidar)).succeeded)
        #expect(try chain.run(merchant, .upsertItem(itemID: "mug", title: "Mug", priceGrains: 400 * Grains.perStone, stock: 1, rule: .init())).succeeded)
        #expect(try chain.run(merchant, .upsertItem(itemID: "far", title: "Road trip", priceGrains: 1, stock: 1,
                                                    rule: .init(minimumMetresLastYear: 6_001))).succeeded)
        let m = merchant.address
        #expect(try chain.rejects(owner, .redeem(merchant: m, itemID: "nothing", vehicleID: nil), "item.unknown"))
        #expect(try chain.rejects(owner, .redeem(merchant: m, itemID: "lidar", vehicleID: nil), "item.not_eligible"))
        #expect(try chain.rejects(owner, .redeem(merchant: m, itemID: "lidar", vehicleID: vehicleID(2)), "item.not_eligible"))
        #expect(try chain.rejects(ownerKey(2), .redeem(merchant: m, itemID: "lidar", vehicleID: vehicleID(2)), "item.not_eligible"))
        #expect(try chain.rejects(owner, .redeem(merchant: m, itemID: "far", vehicleID: vehicleID(1)), "item.not_eligible"))
        #expect(try chain.rejects(ownerKey(2), .redeem(merchant: m, itemID: "mug", vehicleID: nil), "balance.insufficient"))

        #expect(try chain.run(owner, .redeem(merchant: m, itemID: "lidar", vehicleID: vehicleID(1))).succeeded)
        #expect(try chain.ledger.account(owner.address).balanceGrains == 200 * Grains.perStone)
        #expect(chain.ledger.global.escrowGrains == 300 * Grains.perStone)
        #expect(try chain.ledger.item(merchant: m, itemID: "lidar")?.stock == 1)
        #expect(try chain.rejects(owner, .redeem(merchant: m, itemID: "lidar", vehicleID: vehicleID(1)), "balance.insufficient"))

        #expect(try chain.rejects(owner, .fulfilRedemption(redemptionID: 0), "tx.unauthorized"))
        #expect(try chain.rejects(merchant, .fulfilRedemption(redemptionID: 5), "redemption.unknown"))
        #expect(try chain.run(merchant, .rejectRedemption(redemptionID: 0)).succeeded)
        #expect(try chain.ledger.account(owner.address).balanceGrains == 500 * Grains.perStone)
        #expect(chain.ledger.global.escrowGrains == 0)
        #expect(try chain.ledger.item(merchant: m, itemID: "lidar")?.stock == 2)
        #expect(try chain.rejects(merchant, .fulfilRedemption(redemptionID: 0), "redemption.not_pending"))

        #expect(try chain.run(owner, .redeem(merchant: m, itemID: "mug", vehicleID: nil)).succeeded)
        #expect(try chain.rejects(owner, .redeem(merchant: m, itemID: "mug", vehicleID: nil), "item.out_of_stock"))
        #expect(try chain.run(merchant, .fulfilRedemption(redemptionID: 1)).succeeded)
        #expect(chain.ledger.global.treasuryGrains == 400 * Grains.perStone)
        #expect(chain.ledger.global.escrowGrains == 0)
        #expect(try chain.ledger.redemption(1)?.status == .fulfilled)
        #expect(chain.ledger.global.supply == Grains.totalSupply)
    }

    @Test func trailingYearDistanceExpires() throws {
        let chain = try chainWithEarnings()
        #expect(try chain.run(merchant, .upsertItem(itemID: "x", title: "X", priceGrains: 1, stock: 5,
                                                    rule: .init(minimumMetresLastYear: 6_000))).succeeded)
        #expect(try chain.run(ownerKey(1), .redeem(merchant: merchant.address, itemID: "x", vehicleID: vehicleID(1))).succeeded)
        chain.clock += 53 * Vehicle.weekSeconds
        #expect(try chain.rejects(ownerKey(1), .redeem(merchant: merchant.address, itemID: "x", vehicleID: vehicleID(1)), "item.not_eligible"))
    }

    @Test func transfers() throws {
        let off = try chainWithEarnings()
        #expect(try off.rejects(ownerKey(1), .transfer(to: ownerKey(2).address, amount: 1), "transfer.disabled"))
        let on = try chainWithEarnings(transfers: true)
        #expect(try on.rejects(ownerKey(1), .transfer(to: ownerKey(2).address, amount: 0), "tx.zero_amount"))
        #expect(try on.rejects(ownerKey(1), .transfer(to: ownerKey(2).address, amount: 500 * Grains.perStone + 1), "balance.insufficient"))
        #expect(try on.run(ownerKey(1), .transfer(to: ownerKey(2).address, amount: 7)).succeeded)
        #expect(try on.ledger.account(ownerKey(2).address).balanceGrains == 7)
        #expect(try on.ledger.account(ownerKey(1).address).balanceGrains == 500 * Grains.perStone - 7)
        #expect(try on.scannedBalances() == on.ledger.global.balancesGrains)
    }
}
