import QuarryCore
import QuarryCrypto

/// A validator as named in genesis: its SM2 consensus key and voting power.
public struct GenesisValidator: Sendable, Equatable, CanonicalCodable {
    public var name: String
    public var publicKey: PublicKeyBytes
    public var power: UInt64

    public init(name: String, publicKey: PublicKeyBytes, power: UInt64) {
        self.name = name; self.publicKey = publicKey; self.power = power
    }

    public func encode(to e: inout CanonicalEncoder) { e.string(name); e.value(publicKey); e.u64(power) }
    public init(from d: inout CanonicalDecoder) throws {
        name = try d.string(limit: Genesis.nameBytesMax, field: "validator.name"); publicKey = try d.value(); power = try d.u64()
    }
}

/// Holders of the program's roles.
public struct Roles: Sendable, Equatable, CanonicalCodable {
    public var registrar: Address
    public var crystalIssuer: Address
    public var boxOperator: Address
    /// Sorted ascending, no duplicates.
    public var merchants: [Address]

    public init(registrar: Address, crystalIssuer: Address, boxOperator: Address, merchants: [Address]) {
        self.registrar = registrar; self.crystalIssuer = crystalIssuer; self.boxOperator = boxOperator
        self.merchants = merchants.sorted()
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.value(registrar); e.value(crystalIssuer); e.value(boxOperator); e.sequence(merchants) { e, a in e.value(a) }
    }
    public init(from d: inout CanonicalDecoder) throws {
        registrar = try d.value(); crystalIssuer = try d.value(); boxOperator = try d.value()
        merchants = try d.sequence(limit: Genesis.merchantsMax, field: "merchants") { d in try d.value(Address.self) }
    }

    public func isMerchant(_ a: Address) -> Bool { merchants.contains(a) }
}

/// Economic parameters (all integers; amounts in grains, times in seconds).
public struct EconomicParameters: Sendable, Equatable, CanonicalCodable {
    public var batchSeconds: UInt64 = 600
    public var initialDropGrains: UInt64 = 500 * Grains.perStone
    public var halvingIntervalBatches: UInt64 = 210_000
    public var mileagePoolGrains: UInt64 = Grains.mileagePool
    public var cultivationPoolGrains: UInt64 = Grains.cultivationPool
    public var maxSpeedKmh: UInt64 = 250
    public var claimStalenessSeconds: UInt64 = 7 * 86_400
    public var clockToleranceSeconds: UInt64 = 30
    public var claimSpanMaxSeconds: UInt64 = 86_400
    public var transfersEnabled: Bool = false
    /// Participants paid per block at most (the settlement work bound).
    public var settlementChunkMax: UInt64 = 5_000
    /// Expired draw requests refunded per block at most.
    public var refundChunkMax: UInt64 = 1_000

    public init() {}

    public var schedule: Schedule { Schedule(initialDropGrains: initialDropGrains, halvingIntervalBatches: halvingIntervalBatches) }

    public func encode(to e: inout CanonicalEncoder) {
        e.u64(batchSeconds); e.u64(initialDropGrains); e.u64(halvingIntervalBatches); e.u64(mileagePoolGrains)
        e.u64(cultivationPoolGrains); e.u64(maxSpeedKmh); e.u64(claimStalenessSeconds); e.u64(clockToleranceSeconds)
        e.u64(claimSpanMaxSeconds); e.bool(transfersEnabled); e.u64(settlementChunkMax); e.u64(refundChunkMax)
    }
    public init(from d: inout CanonicalDecoder) throws {
        batchSeconds = try d.u64(); initialDropGrains = try d.u64(); halvingIntervalBatches = try d.u64()
        mileagePoolGrains = try d.u64(); cultivationPoolGrains = try d.u64(); maxSpeedKmh = try d.u64()
        claimStalenessSeconds = try d.u64(); clockToleranceSeconds = try d.u64(); claimSpanMaxSeconds = try d.u64()
        transfersEnabled = try d.bool(); settlementChunkMax = try d.u64(); refundChunkMax = try d.u64()
    }
}

/// Consensus parameters carried in genesis for the consensus engine and the node.
public struct ConsensusParameters: Sendable, Equatable, CanonicalCodable {
    public var blockBytesMax: UInt64 = 4 * 1024 * 1024
    public var blockTransactionsMax: UInt64 = 5_000
    public var timeoutProposeMilliseconds: UInt64 = 3_000
    public var timeoutPrevoteMilliseconds: UInt64 = 1_000
    public var timeoutPrecommitMilliseconds: UInt64 = 1_000
    public var timeoutCommitMilliseconds: UInt64 = 1_000

    public init() {}

    public func encode(to e: inout CanonicalEncoder) {
        e.u64(blockBytesMax); e.u64(blockTransactionsMax); e.u64(timeoutProposeMilliseconds)
        e.u64(timeoutPrevoteMilliseconds); e.u64(timeoutPrecommitMilliseconds); e.u64(timeoutCommitMilliseconds)
    }
    public init(from d: inout CanonicalDecoder) throws {
        blockBytesMax = try d.u64(); blockTransactionsMax = try d.u64(); timeoutProposeMilliseconds = try d.u64()
        timeoutPrevoteMilliseconds = try d.u64(); timeoutPrecommitMilliseconds = try d.u64(); timeoutCommitMilliseconds = try d.u64()
    }
}

public struct GenesisError: QuarryError, Equatable {
    public let code: String
    public let message: String
    init(_ code: String, _ message: String) { self.code = code; self.message = message }
    public var description: String { "\(code): \(message)" }

    static func invalid(_ field: String, _ reason: String) -> GenesisError { .init("genesis.invalid", "\(field): \(reason)") }
}

/// The genesis of a chain (`docs/spec/genesis.md`). Its hash identifies the chain.
public struct Genesis: Sendable, Equatable, CanonicalCodable {
    public static let nameBytesMax = 64
    public static let validatorsMax = 100
    public static let merchantsMax = 64
    public static let powerMax: UInt64 = 1 << 40

    public var chainID: String
    /// Unix seconds; batch 0 starts here.
    public var genesisTime: UInt64
    public var validators: [GenesisValidator]
    public var roles: Roles
    public var economics: EconomicParameters
    public var consensus: ConsensusParameters

    public init(chainID: String, genesisTime: UInt64, validators: [GenesisValidator], roles: Roles,
                economics: EconomicParameters = .init(), consensus: ConsensusParameters = .init()) {
        self.chainID = chainID; self.genesisTime = genesisTime; self.validators = validators
        self.roles = roles; self.economics = economics; self.consensus = consensus
    }

    public static let hashDomain: [UInt8] = Array("QUARRY/GENESIS/V1".utf8)

    /// `SM3("QUARRY/GENESIS/V1" || canonical bytes)`: the chain's identity.
    public var hash: Hash256 { SM3.hash(Genesis.hashDomain + canonicalBytes) }

    public func encode(to e: inout CanonicalEncoder) {
        e.string(chainID); e.u64(genesisTime); e.sequence(validators) { e, v in e.value(v) }
        e.value(roles); e.value(economics); e.value(consensus)
    }

    public init(from d: inout CanonicalDecoder) throws {
        chainID = try d.string(limit: Limits.chainIDBytesMax, field: "chainID"); genesisTime = try d.u64()
        validators = try d.sequence(limit: Genesis.validatorsMax, field: "validators") { d in try d.value(GenesisValidator.self) }
        roles = try d.value(); economics = try d.value(); consensus = try d.value()
    }

    /// Checks every rule of `docs/spec/genesis.md`.
    public func validate() throws(GenesisError) {
        guard !chainID.isEmpty, chainID.utf8.count <= Limits.chainIDBytesMax,
              chainID.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d || $0 == 0x2e }) else {
            throw .invalid("chainId", "must be 1-64 characters of a-z, 0-9, '-' and '.'")
        }
        guard genesisTime > 0 else { throw .invalid("genesisTime", "must be a positive Unix time in seconds") }
        guard !validators.isEmpty, validators.count <= Genesis.validatorsMax else {
            throw .invalid("validators", "need 1 to \(Genesis.validatorsMax) validators, got \(validators.count)")
        }
        var seenKeys: [[UInt8]] = []
        for (i, v) in validators.enumerated() {
            guard !v.name.isEmpty, v.name.utf8.count <= Genesis.nameBytesMax else {
                throw .invalid("validators[\(i)].name", "must be 1-\(Genesis.nameBytesMax) bytes")
            }
            guard v.publicKey.scheme == .sm2 else { throw .invalid("validators[\(i)].publicKey", "validators use SM2 keys") }
            do { _ = try SM2PublicKey(rawRepresentation: v.publicKey.bytes) } catch {
                throw .invalid("validators[\(i)].publicKey", "not a point on the SM2 curve")
            }
            guard v.power >= 1, v.power <= Genesis.powerMax else {
                throw .invalid("validators[\(i)].power", "must be between 1 and \(Genesis.powerMax)")
            }
            guard !seenKeys.contains(v.publicKey.bytes) else { throw .invalid("validators[\(i)].publicKey", "duplicate validator key") }
            seenKeys.append(v.publicKey.bytes)
        }
        guard roles.merchants.count <= Genesis.merchantsMax else {
            throw .invalid("roles.merchants", "at most \(Genesis.merchantsMax) merchants")
        }
        for i in roles.merchants.indices.dropFirst() where roles.merchants[i - 1] == roles.merchants[i] {
            throw .invalid("roles.merchants", "duplicate merchant \(roles.merchants[i])")
        }
        let e = economics
        let (pools, overflow) = e.mileagePoolGrains.addingReportingOverflow(e.cultivationPoolGrains)
        guard !overflow, pools == Grains.totalSupply else {
            throw .invalid("economics", "mileagePoolGrains + cultivationPoolGrains must be exactly \(Grains.totalSupply) (300,000,000 stones)")
        }
        guard e.batchSeconds >= 1, e.batchSeconds <= 86_400 else { throw .invalid("economics.batchSeconds", "must be 1 to 86400") }
        guard e.halvingIntervalBatches >= 1, e.halvingIntervalBatches <= 1 << 32 else {
            throw .invalid("economics.halvingIntervalBatches", "must be 1 to 2^32")
        }
        guard e.initialDropGrains >= 1, e.initialDropGrains <= e.mileagePoolGrains else {
            throw .invalid("economics.initialDropGrains", "must be positive and at most the mileage pool")
        }
        // The whole schedule must fit in the pool; check without overflow (at most 64 eras).
        var total: UInt64 = 0
        for era in 0..<64 {
            let perEra = (e.initialDropGrains >> UInt64(era)).multipliedReportingOverflow(by: e.halvingIntervalBatches)
            let sum = total.addingReportingOverflow(perEra.partialValue)
            guard !perEra.overflow, !sum.overflow else { throw .invalid("economics", "the drop schedule overflows") }
            total = sum.partialValue
        }
        guard total <= e.mileagePoolGrains else {
            throw .invalid("economics", "the drop schedule pays \(total) grains, more than the mileage pool")
        }
        guard e.maxSpeedKmh >= 1, e.maxSpeedKmh <= 1_000 else { throw .invalid("economics.maxSpeedKmh", "must be 1 to 1000") }
        guard e.claimStalenessSeconds >= 60, e.claimStalenessSeconds <= 366 * 86_400 else {
            throw .invalid("economics.claimStalenessSeconds", "must be 60 to 31622400")
        }
        guard e.clockToleranceSeconds <= 3_600 else { throw .invalid("economics.clockToleranceSeconds", "must be at most 3600") }
        guard e.claimSpanMaxSeconds >= 1, e.claimSpanMaxSeconds <= 31 * 86_400 else {
            throw .invalid("economics.claimSpanMaxSeconds", "must be 1 to 2678400")
        }
        let c = consensus
        guard c.blockTransactionsMax >= 1, c.blockTransactionsMax <= 100_000 else {
            throw .invalid("consensus.blockTransactionsMax", "must be 1 to 100000")
        }
        guard c.blockBytesMax >= 1_024, c.blockBytesMax <= 64 * 1024 * 1024 else {
            throw .invalid("consensus.blockBytesMax", "must be 1024 to 67108864")
        }
        for (name, t) in [("timeoutProposeMs", c.timeoutProposeMilliseconds), ("timeoutPrevoteMs", c.timeoutPrevoteMilliseconds),
                          ("timeoutPrecommitMs", c.timeoutPrecommitMilliseconds), ("timeoutCommitMs", c.timeoutCommitMilliseconds)] {
            guard t >= 1, t <= 600_000 else { throw .invalid("consensus.\(name)", "must be 1 to 600000") }
        }
        // Settlement must keep up with claims: a block adds at most blockTransactionsMax
        // participants and pays at least that many.
        guard e.settlementChunkMax >= c.blockTransactionsMax, e.settlementChunkMax <= 100_000 else {
            throw .invalid("economics.settlementChunkMax", "must be at least consensus.blockTransactionsMax and at most 100000")
        }
        guard e.refundChunkMax >= 1, e.refundChunkMax <= 100_000 else {
            throw .invalid("economics.refundChunkMax", "must be 1 to 100000")
        }
    }
}
