import Testing
import QuarryCore
import QuarryCrypto
@testable import QuarryLedger

@Suite struct SettlementTests {
    func balance(_ chain: TestChain, _ n: Int) throws -> UInt64 { try chain.ledger.account(ownerKey(n).address).balanceGrains }

    /// Worked example: a 50,000,000,000-grain drop shared by 1,000 m, 2,000 m and 4,000 m.
    /// 5e10 * 1000 / 7000 = 7,142,857,142.86 -> 7,142,857,142
    /// 5e10 * 2000 / 7000 = 14,285,714,285.71 -> 14,285,714,285
    /// 5e10 * 4000 / 7000 = 28,571,428,571.43 -> 28,571,428,571
    /// paid 49,999,999,998; the 2 grains left roll into batch 1.
    @Test func proRataWithRollOverOfRemaindersAndEmptyBatches() throws {
        let chain = try TestChain(genesis: testGenesis(batchSeconds: 100))
        for n in 1...3 { try setUpVehicle(chain, n) }
        let g = chain.genesis.genesisTime
        chain.clock = 95
        try chain.block([
            chain.tx(vehicleKey(1), claim(1, from: 1_000, metres: 1_000, start: g + 10, end: g + 90)),
            chain.tx(vehicleKey(2), claim(2, from: 1_000, metres: 2_000, start: g + 10, end: g + 90)),
            chain.tx(vehicleKey(3), claim(3, from: 1_000, metres: 4_000, start: g + 10, end: g + 90)),
        ])
        #expect(chain.lastResult!.transactions.allSatisfy { $0.succeeded })
        #expect(try chain.ledger.batchRecord(0)?.participants == 3)
        chain.clock = 100 // batch 1: batch 0 closes
        let settled = try chain.block([])
        #expect(settled.systemTransactions == [
            .settleBatch(batch: 0, poolGrains: 50_000_000_000, totalMetres: 7_000, participantsPaid: 3,
                         paidGrains: 49_999_999_998, complete: true)])
        #expect(try balance(chain, 1) == 7_142_857_142)
        #expect(try balance(chain, 2) == 14_285_714_285)
        #expect(try balance(chain, 3) == 28_571_428_571)
        #expect(chain.ledger.global.mileage.carryGrains == 2)
        #expect(try chain.ledger.participant(batch: 0, vehicle: vehicleID(1)) == nil)
        let record = try #require(try chain.ledger.batchRecord(0))
        #expect(record.settled && record.paidGrains == 49_999_999_998 && record.poolGrains == 50_000_000_000)

        // Batch 1: a single claim takes the whole drop plus the 2 carried grains.
        chain.clock = 150
        #expect(try chain.run(vehicleKey(1), claim(1, from: 2_000, metres: 500, start: g + 100, end: g + 140)).succeeded)
        chain.clock = 200
        #expect(try chain.block([]).systemTransactions == [
            .settleBatch(batch: 1, poolGrains: 50_000_000_002, totalMetres: 500, participantsPaid: 1,
                         paidGrains: 50_000_000_002, complete: true)])
        #expect(try balance(chain, 1) == 7_142_857_142 + 50_000_000_002)

        // Batches 2 and 3 stay empty; batch 4 has one claim and gets three drops.
        chain.clock = 450
        #expect(try chain.run(vehicleKey(2), claim(2, from: 3_000, metres: 700, start: g + 200, end: g + 440)).succeeded)
        #expect(chain.lastResult!.systemTransactions == [.carryEmptyBatches(from: 2, to: 4, carriedGrains: 100_000_000_000)])
        chain.clock = 500
        #expect(try chain.block([]).systemTransactions == [
            .settleBatch(batch: 4, poolGrains: 150_000_000_000, totalMetres: 700, participantsPaid: 1,
                         paidGrains: 150_000_000_000, complete: true)])
        #expect(try balance(chain, 2) == 14_285_714_285 + 150_000_000_000)
        let global = chain.ledger.global
        #expect(global.mileagePaidGrains == Schedule.mainnet.cumulative(before: 5))
        #expect(global.supply == Grains.totalSupply)
        #expect(try chain.scannedBalances() == global.balancesGrains)
    }

    /// With a chunk of 2 participants per block, 5 participants take 3 blocks and are paid
    /// exactly what one settlement would pay.
    @Test func chunkedSettlementMatchesOneShot() throws {
        func run(chunk: UInt64) throws -> (TestChain, [[SystemTransaction]]) {
            let chain = try TestChain(genesis: testGenesis(batchSeconds: 100, blockTransactionsMax: chunk, settlementChunkMax: chunk))
            for n in 1...5 {
                try setUpVehicle(chain, n)
            }
            let g = chain.genesis.genesisTime
            chain.clock = 50
            for n in 1...5 {
                #expect(try chain.run(vehicleKey(n), claim(n, from: 1_000, metres: UInt64(300 * n + 7), start: g + 20, end: g + 45)).succeeded)
            }
            chain.clock = 100
            var system: [[SystemTransaction]] = []
            for _ in 0..<4 { system.append(try chain.block([]).systemTransactions) }
            return (chain, system)
        }
        let (chunked, chunkedSystem) = try run(chunk: 2)
        let (whole, wholeSystem) = try run(chunk: 10)
        #expect(chunkedSystem.map(\.count) == [1, 1, 1, 0])
        #expect(wholeSystem.map(\.count) == [1, 0, 0, 0])
        if case .settleBatch(_, _, _, let paid, _, let complete) = chunkedSystem[0][0] { #expect(paid == 2 && !complete) }
        if case .settleBatch(_, _, _, let paid, _, let complete) = chunkedSystem[2][0] { #expect(paid == 1 && complete) }
        for n in 1...5 {
            #expect(try chunked.ledger.account(ownerKey(n).address) == whole.ledger.account(ownerKey(n).address))
        }
        #expect(chunked.ledger.global.mileage == whole.ledger.global.mileage)
        #expect(try chunked.ledger.batchRecord(0) == whole.ledger.batchRecord(0))
    }

    /// The proposer reuses the system phase it computed in `systemTransactions(for:)`; a
    /// validator that never called it recomputes it. Both must reach the same state root in
    /// every block of a chunked settlement, and executing the proposed block twice (as after
    /// a failed round) gives the same result.
    @Test func proposerReuseMatchesValidatorRecompute() throws {
        let genesis = testGenesis(batchSeconds: 100, blockTransactionsMax: 2, settlementChunkMax: 2)
        let proposer = try TestChain(genesis: genesis)
        let validator = try Ledger(store: InMemoryStore(), genesis: genesis)
        func step(_ txs: [[UInt8]]) throws {
            let ctx = proposer.context
            let system = try proposer.ledger.systemTransactions(for: ctx)
            let first = try proposer.ledger.executeBlock(ctx, systemTransactions: system, transactions: txs)
            let again = try proposer.ledger.executeBlock(ctx, systemTransactions: system, transactions: txs)
            let checked = try validator.executeBlock(ctx, systemTransactions: system, transactions: txs)
            #expect(first.stateRoot == checked.stateRoot)
            #expect(again.stateRoot == checked.stateRoot)
            #expect(first.systemEvents == checked.systemEvents)
            try proposer.ledger.commit(first, sync: false)
            try validator.commit(checked, sync: false)
            proposer.previousHash = SM3.hash(first.stateRoot.bytes + StateKey.be64(first.height))
            proposer.clock += 1
        }
        let g = genesis.genesisTime
        let registrar = testKey("registrar")
        for n in 1...5 {
            try step([proposer.tx(registrar, .registerVehicle(vehicleID: vehicleID(n), vehicleKey: vehicleKey(n).publicKeyBytes, model: "LS7",
                                                                cohortTags: [], owner: ownerKey(n).address, odometerMetres: 1_000))])
            try step([proposer.tx(ownerKey(n), .signAgreement(version: SM3.hash(Array("agreement v1".utf8))))])
        }
        proposer.clock = 50
        for n in 1...5 {
            try step([proposer.tx(vehicleKey(n), claim(n, from: 1_000, metres: UInt64(300 * n + 7), start: g + 20, end: g + 45))])
        }
        proposer.clock = 100
        for _ in 0..<4 { try step([]) }
        #expect(validator.global.mileage == proposer.ledger.global.mileage)
        #expect(try validator.batchRecord(0)?.settled == true)
        #expect(validator.stateRoot == proposer.ledger.stateRoot)
    }

    /// A proposer that includes a different drop is rejected.
    @Test func blockWithWrongDropIsInvalid() throws {
        let chain = try TestChain(genesis: testGenesis(batchSeconds: 100))
        try setUpVehicle(chain, 1)
        let g = chain.genesis.genesisTime
        chain.clock = 50
        #expect(try chain.run(vehicleKey(1), claim(1, from: 1_000, metres: 1_000, start: g + 10, end: g + 45)).succeeded)
        chain.clock = 120
        let ctx = chain.context
        let honest = try chain.ledger.systemTransactions(for: ctx)
        #expect(honest == [.settleBatch(batch: 0, poolGrains: 50_000_000_000, totalMetres: 1_000, participantsPaid: 1,
                                        paidGrains: 50_000_000_000, complete: true)])
        let greedy: [SystemTransaction] = [.settleBatch(batch: 0, poolGrains: 60_000_000_000, totalMetres: 1_000, participantsPaid: 1,
                                                        paidGrains: 60_000_000_000, complete: true)]
        #expect(throws: BlockError.self) { try chain.ledger.executeBlock(ctx, systemTransactions: greedy, transactions: []) }
        #expect(throws: BlockError.self) { try chain.ledger.executeBlock(ctx, systemTransactions: [], transactions: []) }
        #expect(try chain.ledger.executeBlock(ctx, systemTransactions: honest, transactions: []).stateRoot != chain.ledger.stateRoot)
    }

    /// The owner of record at the vehicle's latest claim in the batch receives its share.
    @Test func shareGoesToOwnerAtLatestClaim() throws {
        let chain = try TestChain(genesis: testGenesis(batchSeconds: 100))
        try setUpVehicle(chain, 1)
        let g = chain.genesis.genesisTime
        chain.clock = 30
        #expect(try chain.run(vehicleKey(1), claim(1, from: 1_000, metres: 500, start: g + 5, end: g + 25)).succeeded)
        #expect(try chain.run(registrar, .changeOwner(vehicleID: vehicleID(1), newOwner: ownerKey(2).address)).succeeded)
        #expect(try chain.run(ownerKey(2), .signAgreement(version: .zero)).succeeded)
        #expect(try chain.run(vehicleKey(1), claim(1, from: 1_500, metres: 300, start: g + 26, end: g + 32)).succeeded)
        chain.clock = 100
        try chain.block([])
        #expect(try chain.ledger.account(ownerKey(1).address).balanceGrains == 0)
        #expect(try chain.ledger.account(ownerKey(2).address).balanceGrains == 50_000_000_000)
    }
}
