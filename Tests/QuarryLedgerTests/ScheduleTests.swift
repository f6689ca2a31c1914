import Testing
@testable import QuarryLedger

@Suite struct ScheduleTests {
    let s = Schedule.mainnet

    @Test func dropsAtEraBoundaries() {
        #expect(s.drop(batch: 0) == 50_000_000_000)
        #expect(s.drop(batch: 209_999) == 50_000_000_000)
        #expect(s.drop(batch: 210_000) == 25_000_000_000)
        #expect(s.drop(batch: 419_999) == 25_000_000_000)
        #expect(s.drop(batch: 420_000) == 12_500_000_000)
        #expect(s.era(batch: 420_000) == 2)
    }

    @Test func firstZeroBatch() {
        // 5e10 >> 35 = 1, >> 36 = 0: era 36 is the first without a drop.
        #expect(s.firstZeroBatch == 36 * 210_000)
        #expect(s.drop(batch: 36 * 210_000 - 1) == 1)
        #expect(s.drop(batch: 36 * 210_000) == 0)
        #expect(s.drop(batch: UInt64.max) == 0)
    }

    @Test func cumulativeTotalIsExact() {
        #expect(s.total == 20_999_999_996_850_000)
        #expect(s.cumulative(through: s.firstZeroBatch - 1) == 20_999_999_996_850_000)
        #expect(s.cumulative(before: UInt64.max) == 20_999_999_996_850_000)
        #expect(Grains.mileagePool - s.total == 3_150_000)
        // Summing batch by batch over the first eras agrees with the closed form.
        var sum: UInt64 = 0
        for n in UInt64(0)..<UInt64(210_000 * 3 + 17) { sum += s.drop(batch: n) }
        #expect(sum == s.cumulative(before: 210_000 * 3 + 17))
        // Era by era over every era.
        var total: UInt64 = 0
        for era in UInt64(0)..<64 { total += 210_000 * s.drop(batch: era * 210_000) }
        #expect(total == 20_999_999_996_850_000)
    }

    @Test func info() {
        let i = Schedule.info(batch: 210_000)
        #expect(i.era == 1)
        #expect(i.dropGrains == 25_000_000_000)
        #expect(i.cumulativeGrains == 210_000 * 50_000_000_000 + 25_000_000_000)
        #expect(i.json == #"{"batch":210000,"era":1,"dropGrains":"25000000000","cumulativeGrains":"10500025000000000"}"#)
        #expect(Schedule.info(batch: 0).cumulativeGrains == 50_000_000_000)
    }
}
