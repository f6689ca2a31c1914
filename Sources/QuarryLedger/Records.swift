import QuarryCore

/// The one-byte prefixes of state keys (`docs/spec/state.md`).
public enum StateKey {
    public static let genesis: [UInt8] = [0x00]
    public static let global: [UInt8] = [0x01]
    public static func account(_ a: Address) -> [UInt8] { [0x02] + a.bytes }
    public static func vehicle(_ id: Hash256) -> [UInt8] { [0x03] + id.bytes }
    public static func vehicleByAddress(_ a: Address) -> [UInt8] { [0x04] + a.bytes }
    public static func batch(_ n: UInt64) -> [UInt8] { [0x05] + be64(n) }
    public static func participant(batch n: UInt64, vehicle id: Hash256) -> [UInt8] { [0x06] + be64(n) + id.bytes }
    public static func participants(batch n: UInt64) -> [UInt8] { [0x06] + be64(n) }
    public static func season(_ id: UInt64) -> [UInt8] { [0x07] + be64(id) }
    public static func draw(season: UInt64, index: UInt64) -> [UInt8] { [0x08] + be64(season) + be64(index) }
    public static func drawDeadline(_ deadline: UInt64, season: UInt64, index: UInt64) -> [UInt8] {
        [0x09] + be64(deadline) + be64(season) + be64(index)
    }
    public static func item(merchant: Address, itemID: String) -> [UInt8] { [0x0A] + merchant.bytes + Array(itemID.utf8) }
    public static func redemption(_ id: UInt64) -> [UInt8] { [0x0B] + be64(id) }

    static func be64(_ v: UInt64) -> [UInt8] {
        var e = CanonicalEncoder(capacity: 8)
        e.u64(v)
        return e.bytes
    }

    static func readBE64(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var v: UInt64 = 0
        for b in bytes.prefix(8) { v = v << 8 | UInt64(b) }
        return v
    }
}

/// An account: stone balance, next nonce, crystals, consent and the number of active
/// vehicles it owns. An absent account reads as all zero.
public struct Account: Sendable, Equatable, CanonicalCodable {
    public var balanceGrains: UInt64 = 0
    public var nonce: UInt64 = 0
    public var crystals: UInt64 = 0
    /// The version digest of the data-rights agreement the account signed, if not revoked.
    public var agreement: Hash256? = nil
    public var activeVehicles: UInt32 = 0

    public init() {}

    var isEmpty: Bool { self == Account() }

    public func encode(to e: inout CanonicalEncoder) {
        e.u64(balanceGrains); e.u64(nonce); e.u64(crystals); e.optional(agreement) { e, h in e.value(h) }; e.u32(activeVehicles)
    }

    public init(from d: inout CanonicalDecoder) throws {
        balanceGrains = try d.u64(); nonce = try d.u64(); crystals = try d.u64()
        agreement = try d.optional { d in try d.value(Hash256.self) }; activeVehicles = try d.u32()
    }
}

/// A registered vehicle.
public struct Vehicle: Sendable, Equatable, CanonicalCodable {
    public static let weeks = 53
    public static let weekSeconds: UInt64 = 7 * 86_400

    public var key: PublicKeyBytes
    public var model: String
    public var cohortTags: [String]
    public var owner: Address
    public var active: Bool
    /// Odometer reading at the end of the last accepted claim (or at registration).
    public var odometerMetres: UInt64
    /// End time of the last accepted claim (or the registration block time).
    public var lastSpanEnd: UInt64
    public var totalClaimedMetres: UInt64
    /// Chain week (block time minus genesis time, in weeks) of the last accepted claim.
    public var lastClaimWeek: UInt64
    /// Metres claimed per chain week, ring-indexed by `week % 53`, valid for the 53 weeks
    /// up to `lastClaimWeek`.
    public var weeklyMetres: [UInt64]

    public init(key: PublicKeyBytes, model: String, cohortTags: [String], owner: Address, active: Bool,
                odometerMetres: UInt64, lastSpanEnd: UInt64) {
        self.key = key
        self.model = model
        self.cohortTags = cohortTags
        self.owner = owner
        self.active = active
        self.odometerMetres = odometerMetres
        self.lastSpanEnd = lastSpanEnd
        self.totalClaimedMetres = 0
        self.lastClaimWeek = 0
        self.weeklyMetres = [UInt64](repeating: 0, count: Vehicle.weeks)
    }

    /// Adds `metres` claimed in chain week `week` (never earlier than `lastClaimWeek`).
    mutating func record(metres: UInt64, week: UInt64) {
        if week > lastClaimWeek {
            let gap = min(week - lastClaimWeek, UInt64(Vehicle.weeks))
            for i in 1...gap { weeklyMetres[Int((lastClaimWeek + i) % UInt64(Vehicle.weeks))] = 0 }
            lastClaimWeek = week
        }
        weeklyMetres[Int(lastClaimWeek % UInt64(Vehicle.weeks))] += metres
        totalClaimedMetres += metres
    }

    /// Metres claimed in the 53 chain weeks ending with `week` (the current week and the 52
    /// before it: at least 365 days).
    public func metresInTrailingYear(week: UInt64) -> UInt64 {
        guard week >= lastClaimWeek, week - lastClaimWeek < UInt64(Vehicle.weeks) else { return 0 }
        var sum: UInt64 = 0
        let oldest = week >= 52 ? week - 52 : 0
        var w = oldest
        while w <= lastClaimWeek {
            sum += weeklyMetres[Int(w % UInt64(Vehicle.weeks))]
            w += 1
        }
        return sum
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.value(key); e.string(model); e.sequence(cohortTags) { e, t in e.string(t) }; e.value(owner); e.bool(active)
        e.u64(odometerMetres); e.u64(lastSpanEnd); e.u64(totalClaimedMetres); e.u64(lastClaimWeek)
        for m in weeklyMetres { e.u64(m) }
    }

    public init(from d: inout CanonicalDecoder) throws {
        key = try d.value()
        model = try d.string(limit: Limits.modelBytesMax, field: "model")
        cohortTags = try d.sequence(limit: Limits.cohortTagsMax, field: "cohortTags") { d in try d.string(limit: Limits.cohortTagBytesMax, field: "cohortTag") }
        owner = try d.value(); active = try d.bool()
        odometerMetres = try d.u64(); lastSpanEnd = try d.u64(); totalClaimedMetres = try d.u64(); lastClaimWeek = try d.u64()
        weeklyMetres = try (0..<Vehicle.weeks).map { _ in try d.u64() }
    }
}

/// A batch with at least one accepted claim.
public struct BatchRecord: Sendable, Equatable, CanonicalCodable {
    public var totalMetres: UInt64 = 0
    public var participants: UInt64 = 0
    /// Set when settlement starts: the drop plus everything carried in.
    public var poolGrains: UInt64 = 0
    public var paidGrains: UInt64 = 0
    public var paidParticipants: UInt64 = 0
    public var settled: Bool = false

    public init() {}

    public func encode(to e: inout CanonicalEncoder) {
        e.u64(totalMetres); e.u64(participants); e.u64(poolGrains); e.u64(paidGrains); e.u64(paidParticipants); e.bool(settled)
    }

    public init(from d: inout CanonicalDecoder) throws {
        totalMetres = try d.u64(); participants = try d.u64(); poolGrains = try d.u64()
        paidGrains = try d.u64(); paidParticipants = try d.u64(); settled = try d.bool()
    }
}

/// One vehicle's distance in one batch, and the account its share goes to (the vehicle's
/// owner at its latest claim in the batch). Deleted once paid.
public struct Participant: Sendable, Equatable, CanonicalCodable {
    public var owner: Address
    public var metres: UInt64

    public func encode(to e: inout CanonicalEncoder) { e.value(owner); e.u64(metres) }
    public init(owner: Address, metres: UInt64) { self.owner = owner; self.metres = metres }
    public init(from d: inout CanonicalDecoder) throws { owner = try d.value(); metres = try d.u64() }
}

/// A blind-box season.
public struct Season: Sendable, Equatable, CanonicalCodable {
    public var terms: SeasonTerms
    /// Stone budget not yet paid out (reserved in the cultivation pool).
    public var budgetLeftGrains: UInt64
    /// Requests made so far; the next request gets this index.
    public var requests: UInt64
    /// Requests settled (answered or refunded) so far; results answer request `settled`.
    public var settled: UInt64
    /// The last revealed pre-image (the commitment until the first result).
    public var chainTip: Hash256
    public var closed: Bool

    public func encode(to e: inout CanonicalEncoder) {
        e.value(terms); e.u64(budgetLeftGrains); e.u64(requests); e.u64(settled); e.value(chainTip); e.bool(closed)
    }

    public init(terms: SeasonTerms) {
        self.terms = terms
        budgetLeftGrains = terms.budgetGrains
        requests = 0
        settled = 0
        chainTip = terms.commitment
        closed = false
    }

    public init(from d: inout CanonicalDecoder) throws {
        terms = try d.value(); budgetLeftGrains = try d.u64(); requests = try d.u64(); settled = try d.u64()
        chainTip = try d.value(); closed = try d.bool()
    }
}

/// A pending draw request. Deleted when answered or refunded.
public struct DrawRequest: Sendable, Equatable, CanonicalCodable {
    public var requester: Address
    public var crystals: UInt64
    public var deadline: UInt64
    /// Height and previous-block hash of the block that included the request.
    public var height: UInt64
    public var previousBlockHash: Hash256

    public func encode(to e: inout CanonicalEncoder) {
        e.value(requester); e.u64(crystals); e.u64(deadline); e.u64(height); e.value(previousBlockHash)
    }

    public init(requester: Address, crystals: UInt64, deadline: UInt64, height: UInt64, previousBlockHash: Hash256) {
        self.requester = requester; self.crystals = crystals; self.deadline = deadline
        self.height = height; self.previousBlockHash = previousBlockHash
    }

    public init(from d: inout CanonicalDecoder) throws {
        requester = try d.value(); crystals = try d.u64(); deadline = try d.u64(); height = try d.u64(); previousBlockHash = try d.value()
    }
}

/// A catalog item listed by a merchant.
public struct CatalogItem: Sendable, Equatable, CanonicalCodable {
    public var title: String
    public var priceGrains: UInt64
    public var stock: UInt64
    public var rule: EligibilityRule

    public init(title: String, priceGrains: UInt64, stock: UInt64, rule: EligibilityRule) {
        self.title = title; self.priceGrains = priceGrains; self.stock = stock; self.rule = rule
    }

    public func encode(to e: inout CanonicalEncoder) { e.string(title); e.u64(priceGrains); e.u64(stock); e.value(rule) }
    public init(from d: inout CanonicalDecoder) throws {
        title = try d.string(limit: Limits.itemTitleBytesMax, field: "title"); priceGrains = try d.u64(); stock = try d.u64(); rule = try d.value()
    }
}

public struct Redemption: Sendable, Equatable, CanonicalCodable {
    public enum Status: UInt8, Sendable { case pending = 0, fulfilled = 1, rejected = 2 }
    public var redeemer: Address
    public var merchant: Address
    public var itemID: String
    public var priceGrains: UInt64
    public var status: Status

    public init(redeemer: Address, merchant: Address, itemID: String, priceGrains: UInt64, status: Status) {
        self.redeemer = redeemer; self.merchant = merchant; self.itemID = itemID; self.priceGrains = priceGrains; self.status = status
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.value(redeemer); e.value(merchant); e.string(itemID); e.u64(priceGrains); e.u8(status.rawValue)
    }
    public init(from d: inout CanonicalDecoder) throws {
        redeemer = try d.value(); merchant = try d.value(); itemID = try d.string(limit: Limits.itemIDBytesMax, field: "itemID")
        priceGrains = try d.u64()
        let s = try d.u8()
        guard let st = Status(rawValue: s) else { throw CanonicalError.unknownTag(type: "Redemption.Status", tag: s) }
        status = st
    }
}

/// Settlement progress of the mileage batches.
public struct MileageCursor: Sendable, Equatable, CanonicalCodable {
    /// A batch being paid out in chunks.
    public struct Active: Sendable, Equatable, CanonicalCodable {
        public var batch: UInt64
        public var poolGrains: UInt64
        public var totalMetres: UInt64
        public var participants: UInt64
        public var paidGrains: UInt64 = 0
        public var paidParticipants: UInt64 = 0
        public var lastPaidVehicle: Hash256? = nil

        public init(batch: UInt64, poolGrains: UInt64, totalMetres: UInt64, participants: UInt64) {
            self.batch = batch; self.poolGrains = poolGrains; self.totalMetres = totalMetres; self.participants = participants
        }

        public func encode(to e: inout CanonicalEncoder) {
            e.u64(batch); e.u64(poolGrains); e.u64(totalMetres); e.u64(participants); e.u64(paidGrains); e.u64(paidParticipants)
            e.optional(lastPaidVehicle) { e, v in e.value(v) }
        }
        public init(from d: inout CanonicalDecoder) throws {
            batch = try d.u64(); poolGrains = try d.u64(); totalMetres = try d.u64(); participants = try d.u64()
            paidGrains = try d.u64(); paidParticipants = try d.u64(); lastPaidVehicle = try d.optional { d in try d.value(Hash256.self) }
        }
    }

    /// Every batch before this one is settled (or carried, when empty); when `active` is
    /// set it is the batch being paid.
    public var nextBatch: UInt64 = 0
    /// Grains owed to the next batch that gets settled (empty batches, rounding remainders).
    public var carryGrains: UInt64 = 0
    public var active: Active? = nil

    public init() {}

    public func encode(to e: inout CanonicalEncoder) {
        e.u64(nextBatch); e.u64(carryGrains); e.optional(active) { e, v in e.value(v) }
    }
    public init(from d: inout CanonicalDecoder) throws {
        nextBatch = try d.u64(); carryGrains = try d.u64(); active = try d.optional { d in try d.value(Active.self) }
    }
}

/// Ledger-wide totals, kept so that conservation is checked in O(1).
public struct GlobalState: Sendable, Equatable, CanonicalCodable {
    public var height: UInt64 = 0
    public var time: UInt64 = 0
    public var balancesGrains: UInt64 = 0
    public var mileagePoolGrains: UInt64 = 0
    public var cultivationPoolGrains: UInt64 = 0
    /// Part of the cultivation pool promised to open seasons.
    public var cultivationReservedGrains: UInt64 = 0
    public var treasuryGrains: UInt64 = 0
    public var escrowGrains: UInt64 = 0
    public var mileagePaidGrains: UInt64 = 0
    public var cultivationPaidGrains: UInt64 = 0
    public var nextSeasonID: UInt64 = 0
    public var nextRedemptionID: UInt64 = 0
    public var mileage = MileageCursor()

    public init() {}

    /// Every grain in existence.
    public var supply: UInt64 {
        balancesGrains + mileagePoolGrains + cultivationPoolGrains + treasuryGrains + escrowGrains
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.u64(height); e.u64(time); e.u64(balancesGrains); e.u64(mileagePoolGrains); e.u64(cultivationPoolGrains)
        e.u64(cultivationReservedGrains); e.u64(treasuryGrains); e.u64(escrowGrains); e.u64(mileagePaidGrains)
        e.u64(cultivationPaidGrains); e.u64(nextSeasonID); e.u64(nextRedemptionID); e.value(mileage)
    }

    public init(from d: inout CanonicalDecoder) throws {
        height = try d.u64(); time = try d.u64(); balancesGrains = try d.u64(); mileagePoolGrains = try d.u64()
        cultivationPoolGrains = try d.u64(); cultivationReservedGrains = try d.u64(); treasuryGrains = try d.u64()
        escrowGrains = try d.u64(); mileagePaidGrains = try d.u64(); cultivationPaidGrains = try d.u64()
        nextSeasonID = try d.u64(); nextRedemptionID = try d.u64(); mileage = try d.value()
    }
}
