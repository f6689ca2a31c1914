import QuarryCore
import QuarryCrypto

/// Sizes and counts the ledger accepts. Every list and byte field is bounded.
public enum Limits {
    public static let transactionBytesMax = 16 * 1024
    public static let chainIDBytesMax = 64
    public static let modelBytesMax = 64
    public static let cohortTagBytesMax = 64
    public static let cohortTagsMax = 16
    public static let itemIDBytesMax = 64
    public static let itemTitleBytesMax = 128
}

/// The rarities of a blind box, in the order their odds and prizes are listed.
public enum Rarity: UInt8, Sendable, CaseIterable, CanonicalCodable, CustomStringConvertible {
    case ssr = 0, s = 1, a = 2, b = 3

    public var description: String {
        switch self {
        case .ssr: return "SSR"
        case .s: return "S"
        case .a: return "A"
        case .b: return "B"
        }
    }

    public func encode(to e: inout CanonicalEncoder) { e.u8(rawValue) }
    public init(from d: inout CanonicalDecoder) throws {
        let t = try d.u8()
        guard let r = Rarity(rawValue: t) else { throw CanonicalError.unknownTag(type: "Rarity", tag: t) }
        self = r
    }
}

/// The prize of one rarity: `stoneGrains` (paid from the season budget to vehicle owners
/// only; 0 for none) and the `substituteCrystals` given instead to non-owners, or to
/// anyone once the budget cannot cover the stone prize.
public struct Prize: Sendable, Equatable, CanonicalCodable {
    public var stoneGrains: UInt64
    public var substituteCrystals: UInt64

    public init(stoneGrains: UInt64, substituteCrystals: UInt64) {
        self.stoneGrains = stoneGrains
        self.substituteCrystals = substituteCrystals
    }

    public func encode(to e: inout CanonicalEncoder) { e.u64(stoneGrains); e.u64(substituteCrystals) }
    public init(from d: inout CanonicalDecoder) throws { stoneGrains = try d.u64(); substituteCrystals = try d.u64() }
}

/// Who may redeem a catalog item: every condition that is set must hold for the vehicle
/// named in the redemption, which the redeemer must own and which must be active.
public struct EligibilityRule: Sendable, Equatable, CanonicalCodable {
    public var model: String?
    public var cohortTag: String?
    /// Minimum distance the vehicle claimed in the trailing year (see `Vehicle.metresInTrailingYear`).
    public var minimumMetresLastYear: UInt64

    public init(model: String? = nil, cohortTag: String? = nil, minimumMetresLastYear: UInt64 = 0) {
        self.model = model
        self.cohortTag = cohortTag
        self.minimumMetresLastYear = minimumMetresLastYear
    }

    public var isOpen: Bool { model == nil && cohortTag == nil && minimumMetresLastYear == 0 }

    public func encode(to e: inout CanonicalEncoder) {
        e.optional(model) { e, v in e.string(v) }
        e.optional(cohortTag) { e, v in e.string(v) }
        e.u64(minimumMetresLastYear)
    }

    public init(from d: inout CanonicalDecoder) throws {
        model = try d.optional { d in try d.string(limit: Limits.modelBytesMax, field: "rule.model") }
        cohortTag = try d.optional { d in try d.string(limit: Limits.cohortTagBytesMax, field: "rule.cohortTag") }
        minimumMetresLastYear = try d.u64()
    }
}

/// The parameters of a blind-box season as published by the box operator.
public struct SeasonTerms: Sendable, Equatable, CanonicalCodable {
    public var priceCrystals: UInt64
    /// Odds of SSR, S, A, B in parts per million; they sum to 1,000,000.
    public var oddsPPM: [UInt32]
    /// Prizes of SSR, S, A, B.
    public var prizes: [Prize]
    public var budgetGrains: UInt64
    public var startTime: UInt64
    public var endTime: UInt64
    /// Head of the operator's SM3 hash chain: `SM3^k(seed)` for the chain length k.
    public var commitment: Hash256
    /// A draw not answered within this many seconds of its block is refunded.
    public var responseWindowSeconds: UInt64

    public init(priceCrystals: UInt64, oddsPPM: [UInt32], prizes: [Prize], budgetGrains: UInt64,
                startTime: UInt64, endTime: UInt64, commitment: Hash256, responseWindowSeconds: UInt64) {
        self.priceCrystals = priceCrystals
        self.oddsPPM = oddsPPM
        self.prizes = prizes
        self.budgetGrains = budgetGrains
        self.startTime = startTime
        self.endTime = endTime
        self.commitment = commitment
        self.responseWindowSeconds = responseWindowSeconds
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.u64(priceCrystals)
        for o in oddsPPM { e.u32(o) }
        for p in prizes { e.value(p) }
        e.u64(budgetGrains)
        e.u64(startTime)
        e.u64(endTime)
        e.value(commitment)
        e.u64(responseWindowSeconds)
    }

    public init(from d: inout CanonicalDecoder) throws {
        priceCrystals = try d.u64()
        oddsPPM = try (0..<4).map { _ in try d.u32() }
        prizes = try (0..<4).map { _ in try d.value(Prize.self) }
        budgetGrains = try d.u64()
        startTime = try d.u64()
        endTime = try d.u64()
        commitment = try d.value(Hash256.self)
        responseWindowSeconds = try d.u64()
    }
}

/// What a signed transaction asks for. Encoded as a one-byte tag then the fields.
public enum Payload: Sendable, Equatable, CanonicalCodable {
    /// Registrar: a new vehicle. `vehicleID` is the salted SM3 digest of the VIN.
    case registerVehicle(vehicleID: Hash256, vehicleKey: PublicKeyBytes, model: String, cohortTags: [String],
                         owner: Address, odometerMetres: UInt64)
    case changeOwner(vehicleID: Hash256, newOwner: Address)
    case deactivateVehicle(vehicleID: Hash256)
    /// Owner: sign the data-rights agreement of version `version` (a digest of its text).
    case signAgreement(version: Hash256)
    case revokeAgreement
    /// Vehicle key: a mileage claim. The envelope's signer must be the vehicle's key.
    case mileageClaim(MileageClaim)
    case grantCrystals(to: Address, amount: UInt64)
    case openSeason(SeasonTerms)
    case drawRequest(seasonID: UInt64)
    case drawResult(seasonID: UInt64, requestIndex: UInt64, preimage: Hash256, rarity: Rarity)
    case closeSeason(seasonID: UInt64)
    case upsertItem(itemID: String, title: String, priceGrains: UInt64, stock: UInt64, rule: EligibilityRule)
    case redeem(merchant: Address, itemID: String, vehicleID: Hash256?)
    case fulfilRedemption(redemptionID: UInt64)
    case rejectRedemption(redemptionID: UInt64)
    case transfer(to: Address, amount: UInt64)

    public var tag: UInt8 {
        switch self {
        case .registerVehicle: return 1
        case .changeOwner: return 2
        case .deactivateVehicle: return 3
        case .signAgreement: return 4
        case .revokeAgreement: return 5
        case .mileageClaim: return 6
        case .grantCrystals: return 7
        case .openSeason: return 8
        case .drawRequest: return 9
        case .drawResult: return 10
        case .closeSeason: return 11
        case .upsertItem: return 12
        case .redeem: return 13
        case .fulfilRedemption: return 14
        case .rejectRedemption: return 15
        case .transfer: return 16
        }
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.u8(tag)
        switch self {
        case .registerVehicle(let id, let key, let model, let tags, let owner, let odometer):
            e.value(id); e.value(key); e.string(model); e.sequence(tags) { e, t in e.string(t) }; e.value(owner); e.u64(odometer)
        case .changeOwner(let id, let owner): e.value(id); e.value(owner)
        case .deactivateVehicle(let id): e.value(id)
        case .signAgreement(let v): e.value(v)
        case .revokeAgreement: break
        case .mileageClaim(let c): e.value(c)
        case .grantCrystals(let to, let n): e.value(to); e.u64(n)
        case .openSeason(let t): e.value(t)
        case .drawRequest(let s): e.u64(s)
        case .drawResult(let s, let i, let p, let r): e.u64(s); e.u64(i); e.value(p); e.value(r)
        case .closeSeason(let s): e.u64(s)
        case .upsertItem(let id, let title, let price, let stock, let rule):
            e.string(id); e.string(title); e.u64(price); e.u64(stock); e.value(rule)
        case .redeem(let m, let id, let v): e.value(m); e.string(id); e.optional(v) { e, h in e.value(h) }
        case .fulfilRedemption(let id): e.u64(id)
        case .rejectRedemption(let id): e.u64(id)
        case .transfer(let to, let n): e.value(to); e.u64(n)
        }
    }

    public init(from d: inout CanonicalDecoder) throws {
        let tag = try d.u8()
        switch tag {
        case 1:
            self = .registerVehicle(
                vehicleID: try d.value(), vehicleKey: try d.value(),
                model: try d.string(limit: Limits.modelBytesMax, field: "model"),
                cohortTags: try d.sequence(limit: Limits.cohortTagsMax, field: "cohortTags") { d in
                    try d.string(limit: Limits.cohortTagBytesMax, field: "cohortTag")
                },
                owner: try d.value(), odometerMetres: try d.u64())
        case 2: self = .changeOwner(vehicleID: try d.value(), newOwner: try d.value())
        case 3: self = .deactivateVehicle(vehicleID: try d.value())
        case 4: self = .signAgreement(version: try d.value())
        case 5: self = .revokeAgreement
        case 6: self = .mileageClaim(try d.value())
        case 7: self = .grantCrystals(to: try d.value(), amount: try d.u64())
        case 8: self = .openSeason(try d.value())
        case 9: self = .drawRequest(seasonID: try d.u64())
        case 10: self = .drawResult(seasonID: try d.u64(), requestIndex: try d.u64(), preimage: try d.value(), rarity: try d.value())
        case 11: self = .closeSeason(seasonID: try d.u64())
        case 12:
            self = .upsertItem(itemID: try d.string(limit: Limits.itemIDBytesMax, field: "itemID"),
                               title: try d.string(limit: Limits.itemTitleBytesMax, field: "title"),
                               priceGrains: try d.u64(), stock: try d.u64(), rule: try d.value())
        case 13:
            self = .redeem(merchant: try d.value(), itemID: try d.string(limit: Limits.itemIDBytesMax, field: "itemID"),
                           vehicleID: try d.optional { d in try d.value(Hash256.self) })
        case 14: self = .fulfilRedemption(redemptionID: try d.u64())
        case 15: self = .rejectRedemption(redemptionID: try d.u64())
        case 16: self = .transfer(to: try d.value(), amount: try d.u64())
        default: throw CanonicalError.unknownTag(type: "Payload", tag: tag)
        }
    }
}

/// A mileage claim: the vehicle's odometer and clock at both ends of a span, and the SM3
/// digest of the desensitised trip data it summarises (kept off chain).
public struct MileageClaim: Sendable, Equatable, CanonicalCodable {
    public var vehicleID: Hash256
    public var odometerStartMetres: UInt64
    public var odometerEndMetres: UInt64
    /// Unix seconds.
    public var spanStart: UInt64
    public var spanEnd: UInt64
    public var tripDigest: Hash256

    public init(vehicleID: Hash256, odometerStartMetres: UInt64, odometerEndMetres: UInt64,
                spanStart: UInt64, spanEnd: UInt64, tripDigest: Hash256) {
        self.vehicleID = vehicleID
        self.odometerStartMetres = odometerStartMetres
        self.odometerEndMetres = odometerEndMetres
        self.spanStart = spanStart
        self.spanEnd = spanEnd
        self.tripDigest = tripDigest
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.value(vehicleID); e.u64(odometerStartMetres); e.u64(odometerEndMetres); e.u64(spanStart); e.u64(spanEnd); e.value(tripDigest)
    }

    public init(from d: inout CanonicalDecoder) throws {
        vehicleID = try d.value(); odometerStartMetres = try d.u64(); odometerEndMetres = try d.u64()
        spanStart = try d.u64(); spanEnd = try d.u64(); tripDigest = try d.value()
    }
}

/// The part of a transaction that is signed.
public struct TransactionBody: Sendable, Equatable, CanonicalCodable {
    public var chainID: String
    public var nonce: UInt64
    public var signer: PublicKeyBytes
    public var payload: Payload

    public init(chainID: String, nonce: UInt64, signer: PublicKeyBytes, payload: Payload) {
        self.chainID = chainID
        self.nonce = nonce
        self.signer = signer
        self.payload = payload
    }

    /// Domain tag prefixed to the body when signing, so a transaction signature can never be
    /// mistaken for a signature over anything else (a vote, a block).
    public static let signingDomain: [UInt8] = Array("QUARRY/TX/V1".utf8)

    /// The exact bytes the signer signs: `"QUARRY/TX/V1" || canonical body`. The chain id
    /// is inside the body.
    public var signingBytes: [UInt8] { TransactionBody.signingDomain + canonicalBytes }

    public func encode(to e: inout CanonicalEncoder) {
        e.string(chainID); e.u64(nonce); e.value(signer); e.value(payload)
    }

    public init(from d: inout CanonicalDecoder) throws {
        chainID = try d.string(limit: Limits.chainIDBytesMax, field: "chainID")
        nonce = try d.u64()
        signer = try d.value()
        payload = try d.value()
    }
}

/// A signed transaction: the body and a 64-byte `r || s` signature by `body.signer`.
public struct SignedTransaction: Sendable, Equatable, CanonicalCodable {
    public var body: TransactionBody
    public var signature: [UInt8]

    public init(body: TransactionBody, signature: [UInt8]) {
        self.body = body
        self.signature = signature
    }

    /// Signs `body` with `key`.
    public init(body: TransactionBody, key: SigningKey) throws {
        self.body = body
        self.signature = try key.sign(body.signingBytes)
    }

    public func encode(to e: inout CanonicalEncoder) { e.value(body); e.fixed(signature) }

    public init(from d: inout CanonicalDecoder) throws {
        body = try d.value()
        signature = try d.fixed(64)
    }

    /// SM3 of the canonical signed bytes.
    public var hash: Hash256 { SM3.hash(canonicalBytes) }

    /// The sender: the address of the signer's key.
    public var sender: Address { Address(publicKey: body.signer) }

    /// Decodes a transaction from the wire, enforcing the size limit first.
    public static func decode(_ bytes: [UInt8]) throws(TransactionError) -> SignedTransaction {
        guard bytes.count <= Limits.transactionBytesMax else { throw .tooLarge(bytes.count) }
        do { return try SignedTransaction(canonicalBytes: bytes) } catch { throw .decode(error) }
    }
}

/// Work the protocol itself does at the start of a block. The proposer lists them, every
/// validator recomputes them from the state and the block time, and a block whose list
/// differs is invalid.
public enum SystemTransaction: Sendable, Equatable, CanonicalCodable {
    /// Batches `from ..< to` closed without a single valid claim: their drops
    /// (`carriedGrains` in total) roll into the next batch that has claims.
    case carryEmptyBatches(from: UInt64, to: UInt64, carriedGrains: UInt64)
    /// Pays one chunk of a closed batch's participants in ascending vehicle-id order:
    /// `pool` is the batch drop plus everything carried into it; each participant gets
    /// `floor(pool * metres / totalMetres)`. `complete` marks the last chunk; its
    /// remainder rolls into the next batch.
    case settleBatch(batch: UInt64, poolGrains: UInt64, totalMetres: UInt64, participantsPaid: UInt64,
                     paidGrains: UInt64, complete: Bool)
    /// A draw request left unanswered past its deadline: its crystals go back.
    case refundDraw(seasonID: UInt64, requestIndex: UInt64, crystals: UInt64)

    public func encode(to e: inout CanonicalEncoder) {
        switch self {
        case .carryEmptyBatches(let f, let t, let g): e.u8(1); e.u64(f); e.u64(t); e.u64(g)
        case .settleBatch(let b, let p, let m, let n, let g, let c): e.u8(2); e.u64(b); e.u64(p); e.u64(m); e.u64(n); e.u64(g); e.bool(c)
        case .refundDraw(let s, let i, let c): e.u8(3); e.u64(s); e.u64(i); e.u64(c)
        }
    }

    public init(from d: inout CanonicalDecoder) throws {
        let tag = try d.u8()
        switch tag {
        case 1: self = .carryEmptyBatches(from: try d.u64(), to: try d.u64(), carriedGrains: try d.u64())
        case 2: self = .settleBatch(batch: try d.u64(), poolGrains: try d.u64(), totalMetres: try d.u64(),
                                    participantsPaid: try d.u64(), paidGrains: try d.u64(), complete: try d.bool())
        case 3: self = .refundDraw(seasonID: try d.u64(), requestIndex: try d.u64(), crystals: try d.u64())
        default: throw CanonicalError.unknownTag(type: "SystemTransaction", tag: tag)
        }
    }
}
