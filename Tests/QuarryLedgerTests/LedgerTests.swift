import Testing
import QuarryCore
import QuarryCrypto
@testable import QuarryLedger

/// Registers vehicle `n` to owner `n` and has the owner sign the agreement.
func setUpVehicle(_ chain: TestChain, _ n: Int, model: String = "LS7", tags: [String] = ["angel-wheel"], consent: Bool = true) throws {
    let r = try chain.run(registrar, .registerVehicle(vehicleID: vehicleID(n), vehicleKey: vehicleKey(n).publicKeyBytes, model: model,
                                                      cohortTags: tags, owner: ownerKey(n).address, odometerMetres: 1_000))
    #expect(r.succeeded, "\(String(describing: r.error))")
    if consent {
        let c = try chain.run(ownerKey(n), .signAgreement(version: SM3.hash(Array("agreement v1".utf8))))
        #expect(c.succeeded)
    }
}

func claim(_ n: Int, from odometer: UInt64, metres: UInt64, start: UInt64, end: UInt64) -> Payload {
    .mileageClaim(MileageClaim(vehicleID: vehicleID(n), odometerStartMetres: odometer, odometerEndMetres: odometer + metres,
                               spanStart: start, spanEnd: end, tripDigest: SM3.hash(Array("trip \(n) \(odometer)".utf8))))
}

@Suite struct EnvelopeTests {
    @Test func envelopeRejections() throws {
        let chain = try TestChain()
        let owner = ownerKey(1)
        let payload = Payload.signAgreement(version: .zero)
        #expect(try chain.expectRejected([1, 2, 3], "tx.decode"))
        #expect(try chain.expectRejected([UInt8](repeating: 0, count: Limits.transactionBytesMax + 1), "tx.too_large"))
        #expect(try chain.expectRejected(chain.tx(owner, payload, nonce: 0, chainID: "other-chain"), "tx.wrong_chain"))
        var signed = try SignedTransaction(canonicalBytes: chain.tx(owner, payload, nonce: 0))
        signed.signature[5] ^= 1
        #expect(try chain.expectRejected(signed.canonicalBytes, "tx.bad_signature"))
        // Signed by another key than the one named as signer.
        let body = TransactionBody(chainID: chain.genesis.chainID, nonce: 0, signer: owner.publicKeyBytes, payload: payload)
        let forged = SignedTransaction(body: body, signature: try ownerKey(2).sign(body.signingBytes))
        #expect(try chain.expectRejected(forged.canonicalBytes, "tx.bad_signature"))
        #expect(try chain.expectRejected(chain.tx(owner, payload, nonce: 1), "tx.nonce_gap"))
        let first = chain.tx(owner, payload, nonce: 0)
        #expect(try chain.block([first]).transactions[0].succeeded)
        #expect(try chain.expectRejected(first, "tx.nonce_replayed"))
        #expect(try chain.ledger.account(owner.address).nonce == 1)
    }

    @Test func secp256k1AccountsAreAccepted() throws {
        let chain = try TestChain()
        let key = ownerKey(9, scheme: .secp256k1)
        #expect(try chain.run(key, .signAgreement(version: .zero)).succeeded)
        #expect(try chain.ledger.account(key.address).agreement == .zero)
    }

    @Test func transactionRoundTripsAndHashIsOverSignedBytes() throws {
        let chain = try TestChain()
        let raw = chain.tx(registrar, .registerVehicle(vehicleID: vehicleID(1), vehicleKey: vehicleKey(1).publicKeyBytes, model: "LS7",
                                                       cohortTags: ["a", "b"], owner: ownerKey(1).address, odometerMetres: 5))
        let decoded = try SignedTransaction(canonicalBytes: raw)
        #expect(decoded.canonicalBytes == raw)
        #expect(decoded.hash == SM3.hash(raw))
        #expect(decoded.body.signingBytes.starts(with: Array("QUARRY/TX/V1".utf8)))
        #expect(throws: (any Error).self) { try SignedTransaction(canonicalBytes: raw + [0]) }
        let result = try chain.block([raw]).transactions[0]
        #expect(result.hash == SM3.hash(raw))
    }

    @Test func blockLevelChecks() throws {
        let chain = try TestChain()
        let ctx = chain.context
        #expect(throws: BlockError.wrongHeight(expected: 1, got: 2)) {
            try chain.ledger.executeBlock(BlockContext(height: 2, timeMilliseconds: ctx.timeMilliseconds, previousBlockHash: .zero),
                                          systemTransactions: [], transactions: [])
        }
        #expect(throws: BlockError.self) {
            try chain.ledger.executeBlock(BlockContext(height: 1, timeMilliseconds: 1_000, previousBlockHash: .zero),
                                          systemTransactions: [], transactions: [])
        }
        // A block whose system transactions differ from the recomputed ones is invalid.
        #expect(throws: BlockError.self) {
            try chain.ledger.executeBlock(ctx, systemTransactions: [.refundDraw(seasonID: 0, requestIndex: 0, crystals: 1)], transactions: [])
        }
    }
}

@Suite struct RegistryAndConsentTests {
    @Test func registerChangeOwnerDeactivate() throws {
        let chain = try TestChain()
        try setUpVehicle(chain, 1, consent: false)
        let v = try #require(try chain.ledger.vehicle(vehicleID(1)))
        #expect(v.owner == ownerKey(1).address && v.active && v.odometerMetres == 1_000 && v.cohortTags == ["angel-wheel"])
        #expect(try chain.ledger.account(ownerKey(1).address).activeVehicles == 1)

        let register = { (n: Int, key: PublicKeyBytes, model: String) in
            Payload.registerVehicle(vehicleID: vehicleID(n), vehicleKey: key, model: model, cohortTags: [], owner: ownerKey(n).address,
                                    odometerMetres: 0)
        }
        #expect(try chain.rejects(ownerKey(1), register(2, vehicleKey(2).publicKeyBytes, "LS7"), "tx.unauthorized"))
        #expect(try chain.rejects(registrar, register(1, vehicleKey(2).publicKeyBytes, "LS7"), "vehicle.exists"))
        #expect(try chain.rejects(registrar, register(2, vehicleKey(1).publicKeyBytes, "LS7"), "vehicle.key_in_use"))
        #expect(try chain.rejects(registrar, register(2, testKey("k", scheme: .secp256k1).publicKeyBytes, "LS7"), "vehicle.invalid_key"))
        let offCurve = try PublicKeyBytes(scheme: .sm2, bytes: [4] + [UInt8](repeating: 7, count: 64))
        #expect(try chain.rejects(registrar, register(2, offCurve, "LS7"), "vehicle.invalid_key"))
        #expect(try chain.rejects(registrar, register(2, vehicleKey(2).publicKeyBytes, ""), "tx.invalid_field"))

        #expect(try chain.rejects(ownerKey(1), .changeOwner(vehicleID: vehicleID(1), newOwner: ownerKey(2).address), "tx.unauthorized"))
        #expect(try chain.rejects(registrar, .changeOwner(vehicleID: vehicleID(7), newOwner: ownerKey(2).address), "vehicle.unknown"))
        #expect(try chain.rejects(registrar, .changeOwner(vehicleID: vehicleID(1), newOwner: ownerKey(1).address), "vehicle.same_owner"))
        #expect(try chain.run(registrar, .changeOwner(vehicleID: vehicleID(1), newOwner: ownerKey(2).address)).succeeded)
        #expect(try chain.ledger.account(ownerKey(1).address).activeVehicles == 0)
        #expect(try chain.ledger.account(ownerKey(2).address).activeVehicles == 1)
        #expect(try chain.ledger.vehicle(vehicleID(1))?.owner == ownerKey(2).address)

        #expect(try chain.rejects(ownerKey(2), .deactivateVehicle(vehicleID: vehicleID(1)), "tx.unauthorized"))
        #expect(try chain.rejects(registrar, .deactivateVehicle(vehicleID: vehicleID(3)), "vehicle.unknown"))
        #expect(try chain.run(registrar, .deactivateVehicle(vehicleID: vehicleID(1))).succeeded)
        #expect(try chain.ledger.account(ownerKey(2).address).activeVehicles == 0)
        #expect(try chain.rejects(registrar, .deactivateVehicle(vehicleID: vehicleID(1)), "vehicle.inactive"))
        #expect(try chain.rejects(registrar, .changeOwner(vehicleID: vehicleID(1), newOwner: ownerKey(3).address), "vehicle.inactive"))
    }

    @Test func consentSignAndRevoke() throws {
        let chain = try TestChain()
        let owner = ownerKey(1)
        let v1 = SM3.hash([1]), v2 = SM3.hash([2])
        #expect(try chain.rejects(owner, .revokeAgreement, "consent.not_signed"))
        #expect(try chain.run(owner, .signAgreement(version: v1)).succeeded)
        #expect(try chain.rejects(owner, .signAgreement(version: v1), "consent.already_signed"))
        #expect(try chain.run(owner, .signAgreement(version: v2)).succeeded)
        #expect(try chain.ledger.account(owner.address).agreement == v2)
        #expect(try chain.run(owner, .revokeAgreement).succeeded)
        #expect(try chain.ledger.account(owner.address).agreement == nil)
    }
}

@Suite struct MileageClaimTests {
    @Test func claimAcceptedAndEveryRejection() throws {
        let chain = try TestChain(genesis: testGenesis(batchSeconds: 600))
        try setUpVehicle(chain, 1)                      // registered at genesis + 1
        try setUpVehicle(chain, 2)
        try setUpVehicle(chain, 3, consent: false)
        let g = chain.genesis.genesisTime
        chain.clock = 200
        let v1 = vehicleKey(1)
        // 2,000 m in 100 s = 72 km/h.
        #expect(try chain.rejects(v1, claim(9, from: 1_000, metres: 2_000, start: g + 50, end: g + 150), "claim.vehicle_unknown"))
        #expect(try chain.rejects(vehicleKey(2), claim(1, from: 1_000, metres: 2_000, start: g + 50, end: g + 150), "claim.wrong_signer"))
        #expect(try chain.rejects(ownerKey(1), claim(1, from: 1_000, metres: 2_000, start: g + 50, end: g + 150), "claim.wrong_signer"))
        #expect(try chain.rejects(vehicleKey(3), claim(3, from: 1_000, metres: 2_000, start: g + 50, end: g + 150), "claim.no_consent"))
        #expect(try chain.rejects(v1, claim(1, from: 1_000, metres: 0, start: g + 50, end: g + 150), "claim.span_invalid"))
        #expect(try chain.rejects(v1, claim(1, from: 1_000, metres: 10, start: g + 150, end: g + 150), "claim.span_invalid"))
        #expect(try chain.rejects(v1, claim(1, from: 999, metres: 2_000, start: g + 50, end: g + 150), "claim.odometer_overlap"))
        #expect(try chain.rejects(v1, claim(1, from: 1_000, metres: 2_000, start: g, end: g + 150), "claim.time_overlap"))
        // 250 km/h over 100 s is 6,944.4 m: 6,944 passes the rule, 6,945 does not.
        #expect(try chain.rejects(v1, claim(1, from: 1_000, metres: 6_945, start: g + 50, end: g + 150), "claim.too_fast"))
        #expect(try chain.rejects(v1, claim(1, from: 1_000, metres: 100, start: g + 50, end: g + chain.clock + 31 + 1), "claim.future"))
        #expect(try chain.rejects(registrar, .deactivateVehicle(vehicleID: vehicleID(9)), "vehicle.unknown"))
        #expect(try chain.run(v1, claim(1, from: 1_000, metres: 6_944, start: g + 50, end: g + 150)).succeeded)
        let v = try #require(try chain.ledger.vehicle(vehicleID(1)))
        #expect(v.odometerMetres == 7_944 && v.lastSpanEnd == g + 150 && v.totalClaimedMetres == 6_944)
        #expect(try chain.ledger.participant(batch: 0, vehicle: vehicleID(1))?.metres == 6_944)
        #expect(try chain.ledger.batchRecord(0)?.totalMetres == 6_944)
        // The same span again overlaps.
        #expect(try chain.rejects(v1, claim(1, from: 1_000, metres: 6_944, start: g + 50, end: g + 150), "claim.odometer_overlap"))
        #expect(try chain.rejects(v1, claim(1, from: 7_944, metres: 100, start: g + 149, end: g + 190), "claim.time_overlap"))
        // Spans longer than the maximum, stale spans.
        chain.clock = 200_000
        #expect(try chain.rejects(v1, claim(1, from: 7_944, metres: 100, start: g + 150, end: g + 150 + 86_401), "claim.span_too_long"))
        chain.clock = 150 + 7 * 86_400 + 2
        #expect(try chain.rejects(v1, claim(1, from: 7_944, metres: 10, start: g + 150, end: g + 151), "claim.stale"))
        // Revoked consent and deactivation stop claims.
        #expect(try chain.run(ownerKey(1), .revokeAgreement).succeeded)
        let now = chain.now
        #expect(try chain.rejects(v1, claim(1, from: 7_944, metres: 100, start: now - 100, end: now), "claim.no_consent"))
        #expect(try chain.run(registrar, .deactivateVehicle(vehicleID: vehicleID(2))).succeeded)
        #expect(try chain.rejects(vehicleKey(2), claim(2, from: 1_000, metres: 100, start: now - 100, end: now), "claim.vehicle_inactive"))
    }
}
