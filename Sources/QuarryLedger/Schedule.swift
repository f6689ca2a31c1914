/// Token amounts and the mileage drop schedule. All amounts are integer grains.
public enum Grains {
    /// Grains in one stone.
    public static let perStone: UInt64 = 100_000_000
    /// The whole supply: 300,000,000 stones.
    public static let totalSupply: UInt64 = 300_000_000 * perStone
    /// The mileage pool at genesis: 210,000,000 stones.
    public static let mileagePool: UInt64 = 210_000_000 * perStone
    /// The cultivation pool at genesis: 90,000,000 stones.
    public static let cultivationPool: UInt64 = 90_000_000 * perStone
}

/// The drop schedule of mileage batches: batch `n` drops `initialDrop >> (n / halvingInterval)`
/// grains (a logical right shift, zero once the shift reaches 64).
public struct Schedule: Sendable, Equatable {
    public let initialDropGrains: UInt64
    public let halvingIntervalBatches: UInt64

    /// The program's schedule: 500 stones per batch, halved every 210,000 batches.
    public static let mainnet = Schedule(initialDropGrains: 500 * Grains.perStone, halvingIntervalBatches: 210_000)

    public init(initialDropGrains: UInt64, halvingIntervalBatches: UInt64) {
        precondition(halvingIntervalBatches > 0, "halving interval must be positive")
        self.initialDropGrains = initialDropGrains
        self.halvingIntervalBatches = halvingIntervalBatches
    }

    /// The era of batch `n`: how many halvings have happened.
    public func era(batch n: UInt64) -> UInt64 { n / halvingIntervalBatches }

    /// The drop of batch `n` in grains.
    public func drop(batch n: UInt64) -> UInt64 {
        let e = era(batch: n)
        return e >= 64 ? 0 : initialDropGrains >> e
    }

    /// Sum of the drops of batches `0 ..< n`. O(64).
    public func cumulative(before n: UInt64) -> UInt64 {
        let fullEras = n / halvingIntervalBatches
        var total: UInt64 = 0
        var e: UInt64 = 0
        while e < fullEras && e < 64 {
            total += halvingIntervalBatches * (initialDropGrains >> e)
            e += 1
        }
        if fullEras < 64 {
            total += (n - fullEras * halvingIntervalBatches) * (initialDropGrains >> fullEras)
        }
        return total
    }

    /// Sum of the drops of batches `0 ... n`.
    public func cumulative(through n: UInt64) -> UInt64 {
        n == UInt64.max ? total : cumulative(before: n + 1)
    }

    /// Sum of the drops of every batch there will ever be.
    public var total: UInt64 { cumulative(before: 64 * halvingIntervalBatches) }

    /// The first batch whose drop is zero (every later drop is zero too).
    public var firstZeroBatch: UInt64 {
        var e: UInt64 = 0
        while e < 64 && (initialDropGrains >> e) != 0 { e += 1 }
        return e * halvingIntervalBatches
    }

    /// What `quarry schedule --batch N` prints.
    public struct BatchInfo: Sendable, Equatable {
        public let batch: UInt64
        public let era: UInt64
        public let dropGrains: UInt64
        /// Sum of the drops of batches 0 through `batch` inclusive.
        public let cumulativeGrains: UInt64

        /// `{"batch":N,"era":E,"dropGrains":"D","cumulativeGrains":"C"}`; amounts are decimal
        /// strings so that clients with 53-bit numbers read them exactly.
        public var json: String {
            "{\"batch\":\(batch),\"era\":\(era),\"dropGrains\":\"\(dropGrains)\",\"cumulativeGrains\":\"\(cumulativeGrains)\"}"
        }
    }

    public func info(batch n: UInt64) -> BatchInfo {
        BatchInfo(batch: n, era: era(batch: n), dropGrains: drop(batch: n), cumulativeGrains: cumulative(through: n))
    }

    /// `Schedule.mainnet.info(batch:)`.
    public static func info(batch n: UInt64) -> BatchInfo { mainnet.info(batch: n) }
}
