import QuarryCore
import QuarryCrypto
import QuarryLedger

/// Builds the payload of every transaction kind (docs/spec/transactions.md section 3) and
/// checks what can be checked without the chain's state: sizes and counts within the
/// decoder's limits, non-empty names, positive amounts, odds summing to 1,000,000, time
/// ranges in order. A value the ledger would refuse in every state is refused here, with
/// the field named, before anything is signed or sent. Rules that depend on state (roles,
/// balances, overlaps) are left to the ledger, whose reason the node returns.
public enum PayloadBuilder {
    static func fail(_ field: String, _ why: String) -> ClientError { .invalidArgument(field, why) }

    static func checkText(_ s: String, field: String, bytesMax: Int) throws(ClientError) {
        guard !s.isEmpty else { throw fail(field, "must not be empty") }
        guard s.utf8.count <= bytesMax else { throw fail(field, "is \(s.utf8.count) bytes, at most \(bytesMax) are allowed") }
    }

    static func positive(_ v: UInt64, field: String) throws(ClientError) {
        guard v > 0 else { throw fail(field, "must be positive") }
    }

    // MARK: registry

    public static func registerVehicle(vehicleID: Hash256, vehicleKey: PublicKeyBytes, model: String, cohortTags: [String],
                                       owner: Address, odometerMetres: UInt64) throws(ClientError) -> Payload {
        guard vehicleKey.scheme == .sm2 else { throw fail("vehicle key", "must be an SM2 key (vehicles sign with SM2)") }
        guard (try? SM2PublicKey(rawRepresentation: vehicleKey.bytes)) != nil else {
            throw fail("vehicle key", "is not a point on the SM2 curve")
        }
        try checkText(model, field: "model", bytesMax: Limits.modelBytesMax)
        guard cohortTags.count <= Limits.cohortTagsMax else { throw fail("cohort tags", "at most \(Limits.cohortTagsMax) are allowed") }
        for tag in cohortTags { try checkText(tag, field: "cohort tag", bytesMax: Limits.cohortTagBytesMax) }
        return .registerVehicle(vehicleID: vehicleID, vehicleKey: vehicleKey, model: model, cohortTags: cohortTags,
                                owner: owner, odometerMetres: odometerMetres)
    }

    public static func changeOwner(vehicleID: Hash256, newOwner: Address) -> Payload {
        .changeOwner(vehicleID: vehicleID, newOwner: newOwner)
    }

    public static func deactivateVehicle(vehicleID: Hash256) -> Payload { .deactivateVehicle(vehicleID: vehicleID) }

    /// The CLI's convention for a vehicle id: `SM3(salt || VIN)`, with the VIN in upper case
    /// (17 characters from `0-9 A-H J-N P R-Z`) and a registrar-held salt of 16 to 64 bytes.
    /// The VIN never leaves the registrar (docs/cli.md).
    public static func vehicleID(vin: String, salt: [UInt8]) throws(ClientError) -> Hash256 {
        let normalised = vin.uppercased()
        let allowed = Set("0123456789ABCDEFGHJKLMNPRSTUVWXYZ".utf8)
        guard normalised.utf8.count == 17, normalised.utf8.allSatisfy(allowed.contains) else {
            throw fail("VIN", "must be 17 characters from 0-9 and A-Z without I, O and Q")
        }
        guard (16...64).contains(salt.count) else { throw fail("VIN salt", "must be 16 to 64 bytes, got \(salt.count)") }
        return SM3.hash(salt + Array(normalised.utf8))
    }

    // MARK: consent

    public static func signAgreement(version: Hash256) -> Payload { .signAgreement(version: version) }

    /// The version digest of an agreement text: SM3 of its bytes.
    public static func agreementVersion(text: [UInt8]) -> Hash256 { SM3.hash(text) }

    public static func revokeAgreement() -> Payload { .revokeAgreement }

    // MARK: mileage

    public static func mileageClaim(vehicleID: Hash256, odometerStartMetres: UInt64, odometerEndMetres: UInt64,
                                    spanStart: UInt64, spanEnd: UInt64, tripDigest: Hash256) throws(ClientError) -> Payload {
        guard odometerEndMetres > odometerStartMetres else { throw fail("odometer", "the end must be above the start") }
        guard spanEnd > spanStart else { throw fail("span", "the end time must be after the start time") }
        return .mileageClaim(MileageClaim(vehicleID: vehicleID, odometerStartMetres: odometerStartMetres,
                                          odometerEndMetres: odometerEndMetres, spanStart: spanStart, spanEnd: spanEnd,
                                          tripDigest: tripDigest))
    }

    // MARK: crystals and blind boxes

    public static func grantCrystals(to: Address, amount: UInt64) throws(ClientError) -> Payload {
        try positive(amount, field: "amount")
        return .grantCrystals(to: to, amount: amount)
    }

    public static let responseWindowSecondsMax: UInt64 = 7 * 86_400

    public static func openSeason(_ terms: SeasonTerms) throws(ClientError) -> Payload {
        try positive(terms.priceCrystals, field: "price")
        guard terms.oddsPPM.count == 4 else { throw fail("odds", "give four odds: SSR, S, A, B") }
        guard terms.oddsPPM.reduce(UInt64(0), { $0 + UInt64($1) }) == BlindBox.partsPerMillion else {
            throw fail("odds", "must sum to 1000000 parts per million, they sum to \(terms.oddsPPM.reduce(UInt64(0)) { $0 + UInt64($1) })")
        }
        guard terms.prizes.count == 4 else { throw fail("prizes", "give four prizes: SSR, S, A, B") }
        guard terms.endTime > terms.startTime else { throw fail("end time", "must be after the start time") }
        guard (1...responseWindowSecondsMax).contains(terms.responseWindowSeconds) else {
            throw fail("response window", "must be 1 to \(responseWindowSecondsMax) seconds")
        }
        return .openSeason(terms)
    }

    public static func drawRequest(seasonID: UInt64) -> Payload { .drawRequest(seasonID: seasonID) }

    public static func drawResult(seasonID: UInt64, requestIndex: UInt64, preimage: Hash256, rarity: Rarity) -> Payload {
        .drawResult(seasonID: seasonID, requestIndex: requestIndex, preimage: preimage, rarity: rarity)
    }

    public static func closeSeason(seasonID: UInt64) -> Payload { .closeSeason(seasonID: seasonID) }

    // MARK: redemption

    public static func upsertItem(itemID: String, title: String, priceGrains: UInt64, stock: UInt64,
                                  rule: EligibilityRule) throws(ClientError) -> Payload {
        try checkText(itemID, field: "item id", bytesMax: Limits.itemIDBytesMax)
        try checkText(title, field: "title", bytesMax: Limits.itemTitleBytesMax)
        try positive(priceGrains, field: "price")
        if let m = rule.model { try checkText(m, field: "rule model", bytesMax: Limits.modelBytesMax) }
        if let c = rule.cohortTag { try checkText(c, field: "rule cohort", bytesMax: Limits.cohortTagBytesMax) }
        return .upsertItem(itemID: itemID, title: title, priceGrains: priceGrains, stock: stock, rule: rule)
    }

    public static func redeem(merchant: Address, itemID: String, vehicleID: Hash256?) throws(ClientError) -> Payload {
        try checkText(itemID, field: "item id", bytesMax: Limits.itemIDBytesMax)
        return .redeem(merchant: merchant, itemID: itemID, vehicleID: vehicleID)
    }

    public static func fulfilRedemption(_ id: UInt64) -> Payload { .fulfilRedemption(redemptionID: id) }
    public static func rejectRedemption(_ id: UInt64) -> Payload { .rejectRedemption(redemptionID: id) }

    // MARK: transfer and governance

    public static func transfer(to: Address, amount: UInt64) throws(ClientError) -> Payload {
        try positive(amount, field: "amount")
        return .transfer(to: to, amount: amount)
    }

    public static func propose(_ action: GovernanceAction, votingPeriodBlocks: UInt64) throws(ClientError) -> Payload {
        guard (1...Governance.votingPeriodBlocksMax).contains(votingPeriodBlocks) else {
            throw fail("voting period", "must be 1 to \(Governance.votingPeriodBlocksMax) blocks")
        }
        if case .addValidator(let v) = action {
            try checkText(v.name, field: "validator name", bytesMax: Genesis.nameBytesMax)
            guard v.publicKey.scheme == .sm2, (try? SM2PublicKey(rawRepresentation: v.publicKey.bytes)) != nil else {
                throw fail("validator key", "must be an SM2 public key on the curve")
            }
            guard (1...Genesis.powerMax).contains(v.power) else { throw fail("validator power", "must be 1 to \(Genesis.powerMax)") }
        }
        return .propose(action: action, votingPeriodBlocks: votingPeriodBlocks)
    }

    public static func vote(proposalID: UInt64) -> Payload { .vote(proposalID: proposalID) }
}

/// Signs payloads for one chain with one key.
public struct TransactionSigner: Sendable {
    public let chainID: String
    public let key: SigningKey

    public init(chainID: String, key: SigningKey) throws(ClientError) {
        guard !chainID.isEmpty, chainID.utf8.count <= Limits.chainIDBytesMax else {
            throw .invalidArgument("chain id", "must be 1 to \(Limits.chainIDBytesMax) bytes")
        }
        self.chainID = chainID
        self.key = key
    }

    public var address: Address { key.address }

    /// The signed transaction for `payload` at `nonce`. Refuses one the node's size limit
    /// would refuse.
    public func sign(_ payload: Payload, nonce: UInt64) throws(ClientError) -> SignedTransaction {
        let body = TransactionBody(chainID: chainID, nonce: nonce, signer: key.publicKeyBytes, payload: payload)
        let tx: SignedTransaction
        do { tx = try SignedTransaction(body: body, key: key) } catch {
            throw .invalidArgument("signature", "signing failed: \(error)")
        }
        let size = tx.canonicalBytes.count
        guard size <= Limits.transactionBytesMax else {
            throw .invalidArgument("transaction", "is \(size) bytes, the limit is \(Limits.transactionBytesMax)")
        }
        return tx
    }
}
