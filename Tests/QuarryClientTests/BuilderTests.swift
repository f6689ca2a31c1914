import QuarryCore
import QuarryCrypto
import QuarryLedger
import Testing
@testable import QuarryClient

/// Every payload kind, built, signed with both schemes, encoded and decoded again: the bytes
/// must decode to the intended payload, carry the nonce and chain id, and verify.
@Suite struct BuilderTests {
    static let vehicleKey = SM2PrivateKey()
    static let owner = SigningKey(scheme: .secp256k1).address
    static let vehicleID = SM3.hash(Array("vehicle".utf8))
    static let validatorKey = SM2PrivateKey()

    static func payloads() throws -> [(String, Payload)] {
        let vk = try PublicKeyBytes(scheme: .sm2, bytes: vehicleKey.publicKey.rawRepresentation)
        let terms = SeasonTerms(priceCrystals: 10, oddsPPM: [10_000, 90_000, 300_000, 600_000],
                                prizes: [Prize(stoneGrains: 100 * Grains.perStone, substituteCrystals: 50), Prize(stoneGrains: 10, substituteCrystals: 5),
                                         Prize(stoneGrains: 1, substituteCrystals: 2), Prize(stoneGrains: 0, substituteCrystals: 1)],
                                budgetGrains: 1_000 * Grains.perStone, startTime: 1_000, endTime: 2_000,
                                commitment: SM3.hash([1]), responseWindowSeconds: 600)
        let validator = GenesisValidator(name: "v5", publicKey: try PublicKeyBytes(scheme: .sm2, bytes: validatorKey.publicKey.rawRepresentation), power: 10)
        return [
            ("registerVehicle", try PayloadBuilder.registerVehicle(vehicleID: vehicleID, vehicleKey: vk, model: "LS6",
                                                                  cohortTags: ["angel-wheel", "2024"], owner: owner, odometerMetres: 1_234)),
            ("changeOwner", PayloadBuilder.changeOwner(vehicleID: vehicleID, newOwner: owner)),
            ("deactivateVehicle", PayloadBuilder.deactivateVehicle(vehicleID: vehicleID)),
            ("signAgreement", PayloadBuilder.signAgreement(version: PayloadBuilder.agreementVersion(text: Array("terms v1".utf8)))),
            ("revokeAgreement", PayloadBuilder.revokeAgreement()),
            ("mileageClaim", try PayloadBuilder.mileageClaim(vehicleID: vehicleID, odometerStartMetres: 1_234, odometerEndMetres: 9_999,
                                                            spanStart: 100, spanEnd: 700, tripDigest: SM3.hash([9]))),
            ("grantCrystals", try PayloadBuilder.grantCrystals(to: owner, amount: 500)),
            ("openSeason", try PayloadBuilder.openSeason(terms)),
            ("drawRequest", PayloadBuilder.drawRequest(seasonID: 3)),
            ("drawResult", PayloadBuilder.drawResult(seasonID: 3, requestIndex: 7, preimage: SM3.hash([2]), rarity: .a)),
            ("closeSeason", PayloadBuilder.closeSeason(seasonID: 3)),
            ("upsertItem", try PayloadBuilder.upsertItem(itemID: "lidar", title: "Lidar driving-system upgrade", priceGrains: 6_800 * Grains.perStone,
                                                        stock: 5, rule: EligibilityRule(model: "LS6", cohortTag: "angel-wheel", minimumMetresLastYear: 5_000_000))),
            ("redeem", try PayloadBuilder.redeem(merchant: owner, itemID: "lidar", vehicleID: vehicleID)),
            ("redeem without vehicle", try PayloadBuilder.redeem(merchant: owner, itemID: "voucher", vehicleID: nil)),
            ("fulfilRedemption", PayloadBuilder.fulfilRedemption(4)),
            ("rejectRedemption", PayloadBuilder.rejectRedemption(5)),
            ("transfer", try PayloadBuilder.transfer(to: owner, amount: 1)),
            ("propose addValidator", try PayloadBuilder.propose(.addValidator(validator), votingPeriodBlocks: 100)),
            ("propose removeValidator", try PayloadBuilder.propose(.removeValidator(validator.publicKey), votingPeriodBlocks: 1)),
            ("propose setRole", try PayloadBuilder.propose(.setRole(.boxOperator, owner), votingPeriodBlocks: 100_000)),
            ("propose addMerchant", try PayloadBuilder.propose(.addMerchant(owner), votingPeriodBlocks: 10)),
            ("propose removeMerchant", try PayloadBuilder.propose(.removeMerchant(owner), votingPeriodBlocks: 10)),
            ("propose setParameter", try PayloadBuilder.propose(.setParameter(.transfersEnabled, 1), votingPeriodBlocks: 10)),
            ("vote", PayloadBuilder.vote(proposalID: 2)),
        ]
    }

    @Test(arguments: SignatureScheme.allCases)
    func everyKindRoundTripsAndVerifies(scheme: SignatureScheme) throws {
        let key = SigningKey(scheme: scheme)
        let signer = try TransactionSigner(chainID: "quarry-test", key: key)
        let all = try Self.payloads()
        // Every one of the 18 tags is covered.
        #expect(Set(all.map(\.1.tag)) == Set(1...18))
        for (i, (name, payload)) in all.enumerated() {
            let nonce = UInt64(i) * 1_000_003
            let tx = try signer.sign(payload, nonce: nonce)
            let decoded = try SignedTransaction.decode(tx.canonicalBytes)
            #expect(decoded == tx, "\(name)")
            #expect(decoded.body.payload == payload, "\(name)")
            #expect(decoded.body.nonce == nonce, "\(name)")
            #expect(decoded.body.chainID == "quarry-test", "\(name)")
            #expect(decoded.body.signer == key.publicKeyBytes, "\(name)")
            #expect(decoded.sender == key.address, "\(name)")
            #expect(SignatureVerification.isValid(signature: decoded.signature, message: decoded.body.signingBytes,
                                                  publicKey: decoded.body.signer), "\(name)")
            // Any change to the signed bytes breaks the signature.
            var other = decoded.body
            other.nonce = nonce + 1
            #expect(!SignatureVerification.isValid(signature: decoded.signature, message: other.signingBytes,
                                                   publicKey: decoded.body.signer), "\(name)")
        }
    }

    @Test func signedBytesFollowTheSpecLayout() throws {
        // docs/spec/transactions.md section 6: string chainID, u64 nonce, signer, payload, r||s.
        let key = SigningKey(scheme: .sm2)
        let version = Hash256(unchecked: [UInt8](repeating: 0xab, count: 32))
        let tx = try TransactionSigner(chainID: "quarry-devnet", key: key).sign(.signAgreement(version: version), nonce: 0)
        let bytes = tx.canonicalBytes
        let expectedBody = [13] + Array("quarry-devnet".utf8) + [UInt8](repeating: 0, count: 8) + [1] + key.publicKeyBytes.bytes + [4] + version.bytes
        #expect(Array(bytes.prefix(expectedBody.count)) == expectedBody)
        #expect(bytes.count == expectedBody.count + 64)
        #expect(tx.hash == SM3.hash(bytes))
    }

    @Test func localChecksNameTheField() throws {
        let vk = try PublicKeyBytes(scheme: .sm2, bytes: Self.vehicleKey.publicKey.rawRepresentation)
        func field(_ body: () throws -> Payload) -> String? {
            do { _ = try body(); return nil } catch let e as ClientError {
                if case .invalidArgument(let f, _) = e { return f }
                return "other: \(e)"
            } catch { return "other: \(error)" }
        }
        #expect(field { try PayloadBuilder.registerVehicle(vehicleID: Self.vehicleID, vehicleKey: vk, model: "", cohortTags: [], owner: Self.owner, odometerMetres: 0) } == "model")
        #expect(field { try PayloadBuilder.registerVehicle(vehicleID: Self.vehicleID, vehicleKey: vk, model: String(repeating: "m", count: 65), cohortTags: [], owner: Self.owner, odometerMetres: 0) } == "model")
        #expect(field { try PayloadBuilder.registerVehicle(vehicleID: Self.vehicleID, vehicleKey: vk, model: "m", cohortTags: Array(repeating: "t", count: 17), owner: Self.owner, odometerMetres: 0) } == "cohort tags")
        let secp = SigningKey(scheme: .secp256k1).publicKeyBytes
        #expect(field { try PayloadBuilder.registerVehicle(vehicleID: Self.vehicleID, vehicleKey: secp, model: "m", cohortTags: [], owner: Self.owner, odometerMetres: 0) } == "vehicle key")
        var offCurve = vk.bytes
        offCurve[64] ^= 1
        #expect(field { try PayloadBuilder.registerVehicle(vehicleID: Self.vehicleID, vehicleKey: try PublicKeyBytes(scheme: .sm2, bytes: offCurve), model: "m", cohortTags: [], owner: Self.owner, odometerMetres: 0) } == "vehicle key")
        #expect(field { try PayloadBuilder.mileageClaim(vehicleID: Self.vehicleID, odometerStartMetres: 5, odometerEndMetres: 5, spanStart: 1, spanEnd: 2, tripDigest: .zero) } == "odometer")
        #expect(field { try PayloadBuilder.mileageClaim(vehicleID: Self.vehicleID, odometerStartMetres: 5, odometerEndMetres: 6, spanStart: 2, spanEnd: 2, tripDigest: .zero) } == "span")
        #expect(field { try PayloadBuilder.grantCrystals(to: Self.owner, amount: 0) } == "amount")
        #expect(field { try PayloadBuilder.transfer(to: Self.owner, amount: 0) } == "amount")
        let good = SeasonTerms(priceCrystals: 1, oddsPPM: [1, 2, 3, 999_994], prizes: Array(repeating: Prize(stoneGrains: 0, substituteCrystals: 0), count: 4),
                               budgetGrains: 0, startTime: 1, endTime: 2, commitment: .zero, responseWindowSeconds: 1)
        #expect(field { try PayloadBuilder.openSeason(good) } == nil)
        var t = good; t.oddsPPM = [1, 2, 3, 4]
        #expect(field { try PayloadBuilder.openSeason(t) } == "odds")
        t = good; t.priceCrystals = 0
        #expect(field { try PayloadBuilder.openSeason(t) } == "price")
        t = good; t.endTime = 1
        #expect(field { try PayloadBuilder.openSeason(t) } == "end time")
        t = good; t.responseWindowSeconds = 7 * 86_400 + 1
        #expect(field { try PayloadBuilder.openSeason(t) } == "response window")
        #expect(field { try PayloadBuilder.upsertItem(itemID: "", title: "t", priceGrains: 1, stock: 0, rule: .init()) } == "item id")
        #expect(field { try PayloadBuilder.upsertItem(itemID: "i", title: String(repeating: "t", count: 129), priceGrains: 1, stock: 0, rule: .init()) } == "title")
        #expect(field { try PayloadBuilder.upsertItem(itemID: "i", title: "t", priceGrains: 0, stock: 0, rule: .init()) } == "price")
        #expect(field { try PayloadBuilder.propose(.addMerchant(Self.owner), votingPeriodBlocks: 0) } == "voting period")
        #expect(field { try PayloadBuilder.propose(.addMerchant(Self.owner), votingPeriodBlocks: 100_001) } == "voting period")
        let weak = GenesisValidator(name: "v", publicKey: try PublicKeyBytes(scheme: .sm2, bytes: Self.validatorKey.publicKey.rawRepresentation), power: 0)
        #expect(field { try PayloadBuilder.propose(.addValidator(weak), votingPeriodBlocks: 1) } == "validator power")
        #expect(throws: ClientError.self) { try TransactionSigner(chainID: "", key: SigningKey(scheme: .sm2)) }
        #expect(throws: ClientError.self) { try TransactionSigner(chainID: String(repeating: "c", count: 65), key: SigningKey(scheme: .sm2)) }
    }

    @Test func oversizedTransactionsAreRefusedBeforeSending() throws {
        // 16 tags of 64 bytes fit easily; the size check is exercised with a payload near the
        // limit built directly (the builder's own limits keep every valid payload smaller).
        let big = Payload.upsertItem(itemID: "i", title: String(repeating: "t", count: 17_000), priceGrains: 1, stock: 1, rule: .init())
        #expect(throws: ClientError.self) { try TransactionSigner(chainID: "c", key: SigningKey(scheme: .sm2)).sign(big, nonce: 0) }
    }

    @Test func vehicleIDFromVINAndSalt() throws {
        let salt = [UInt8](repeating: 7, count: 16)
        let id = try PayloadBuilder.vehicleID(vin: "lsjw74c99nz123456", salt: salt)
        #expect(id == SM3.hash(salt + Array("LSJW74C99NZ123456".utf8)))
        #expect(try PayloadBuilder.vehicleID(vin: "LSJW74C99NZ123456", salt: salt) == id)
        #expect(try PayloadBuilder.vehicleID(vin: "LSJW74C99NZ123456", salt: salt + [1]) != id)
        #expect(throws: ClientError.self) { try PayloadBuilder.vehicleID(vin: "LSJW74C99NZ12345", salt: salt) }
        #expect(throws: ClientError.self) { try PayloadBuilder.vehicleID(vin: "LSJW74C99NZ12345O", salt: salt) }
        #expect(throws: ClientError.self) { try PayloadBuilder.vehicleID(vin: "LSJW74C99NZ123456", salt: [1, 2]) }
    }
}

@Suite struct BoxChainTests {
    @Test func chainRevealsPreimagesTheLedgerAccepts() throws {
        let key = SigningKey(scheme: .sm2)
        let chain = try BoxChain(key: key, chainID: "quarry-test", openNonce: 4, length: 50)
        // The commitment is SM3^50(seed) with the documented seed.
        let seed = BoxChain.seed(key: key, chainID: "quarry-test", openNonce: 4)
        var h = seed
        for _ in 0..<50 { h = SM3.hash(h.bytes) }
        #expect(chain.commitment == h)
        // Walking the chain from the commitment: each pre-image hashes to the tip, as the
        // ledger checks (draw.bad_preimage otherwise), and matches the count-based form.
        var tip = chain.commitment
        for revealed in 0..<50 {
            let p = try chain.preimage(below: tip, key: key)
            #expect(SM3.hash(p.bytes) == tip)
            #expect(try chain.preimage(afterRevealing: UInt64(revealed), key: key) == p)
            tip = p
        }
        #expect(tip == seed)
        #expect(throws: ClientError.self) { try chain.preimage(below: tip, key: key) }
        #expect(throws: ClientError.self) { try chain.preimage(afterRevealing: 50, key: key) }
        #expect(throws: ClientError.self) { try chain.preimage(below: SM3.hash([0]), key: key) }
        // Another key, chain or nonce gives another chain.
        #expect(throws: ClientError.self) { try chain.preimage(below: chain.commitment, key: SigningKey(scheme: .sm2)) }
        #expect(try BoxChain(key: key, chainID: "quarry-test", openNonce: 5, length: 50).commitment != chain.commitment)
        #expect(try BoxChain(key: key, chainID: "quarry-other", openNonce: 4, length: 50).commitment != chain.commitment)
        #expect(throws: ClientError.self) { try BoxChain(key: key, chainID: "c", openNonce: 0, length: 0) }
    }

    @Test func indexFileFindsTheChainAndHoldsNoSecret() throws {
        let key = SigningKey(scheme: .secp256k1)
        let dir = FileManagerSupport.temporaryDirectory()
        defer { FileManagerSupport.remove(dir) }
        let chain = try BoxChain(key: key, chainID: "quarry-test", openNonce: 9, length: 20)
        try chain.saveIndex(directory: dir, operatorAddress: key.address)
        try chain.saveIndex(directory: dir, operatorAddress: key.address)  // identical: fine
        let text = try String(contentsOf: BoxChain.indexURL(directory: dir, commitment: chain.commitment), encoding: .utf8)
        #expect(!text.contains(Hex.encode(key.rawRepresentation)))
        #expect(!text.contains(BoxChain.seed(key: key, chainID: "quarry-test", openNonce: 9).hex))
        #expect(try BoxChain.load(directory: dir, commitment: chain.commitment, key: key) == chain)
        #expect(throws: ClientError.self) { try BoxChain.load(directory: dir, commitment: chain.commitment, key: SigningKey(scheme: .secp256k1)) }
        #expect(throws: ClientError.self) { try BoxChain.load(directory: dir, commitment: SM3.hash([1]), key: key) }
    }

    @Test func outcomeMatchesTheLedgerDerivation() {
        let odds: [UInt32] = [10_000, 90_000, 300_000, 600_000]
        var seen = Set<Rarity>()
        for i in 0..<400 {
            let p = SM3.hash([UInt8(i & 0xff), UInt8(i >> 8)])
            let r = BoxOperator.outcome(preimage: p, seasonID: 1, index: UInt64(i), height: 10, previousBlockHash: .zero, oddsPPM: odds)
            let roll = BlindBox.roll(preimage: p, seasonID: 1, requestIndex: UInt64(i), height: 10, previousBlockHash: .zero)
            #expect(r == BlindBox.rarity(roll: roll, oddsPPM: odds))
            seen.insert(r)
        }
        #expect(seen.isSuperset(of: [.s, .a, .b]))
    }
}
