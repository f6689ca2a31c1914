import QuarryCore
import QuarryCrypto

/// Applies one payload for one sender against the working state. Throws a
/// `TransactionError` to reject; the caller then discards every write.
struct Executor {
    let ledger: Ledger
    let ws: WorkingState
    let context: BlockContext
    let sender: Address
    let signer: PublicKeyBytes
    var events: [Event] = []

    init(ledger: Ledger, ws: WorkingState, context: BlockContext, sender: Address, signer: PublicKeyBytes) {
        self.ledger = ledger; self.ws = ws; self.context = context; self.sender = sender; self.signer = signer
    }

    var genesis: Genesis { ledger.genesis }
    var roles: Roles { ledger.genesis.roles }
    var now: UInt64 { context.time }

    func require(_ role: Address, _ name: String) throws(TransactionError) {
        guard sender == role else { throw .unauthorized(name) }
    }

    mutating func apply(_ payload: Payload) throws {
        switch payload {
        case .registerVehicle(let id, let key, let model, let tags, let owner, let odometer):
            try registerVehicle(id, key, model, tags, owner, odometer)
        case .changeOwner(let id, let newOwner): try changeOwner(id, newOwner)
        case .deactivateVehicle(let id): try deactivate(id)
        case .signAgreement(let version):
            var acc = try ws.account(sender)
            guard acc.agreement != version else {
                throw TransactionError("consent.already_signed", "the account already signed agreement \(version)")
            }
            acc.agreement = version
            ws.setAccount(sender, acc)
            events.append(Event("consent.signed", [("owner", sender.text), ("version", version.hex)]))
        case .revokeAgreement:
            var acc = try ws.account(sender)
            guard acc.agreement != nil else { throw TransactionError("consent.not_signed", "the account has no agreement to revoke") }
            acc.agreement = nil
            ws.setAccount(sender, acc)
            events.append(Event("consent.revoked", [("owner", sender.text)]))
        case .mileageClaim(let claim): try mileageClaim(claim)
        case .grantCrystals(let to, let amount):
            try require(roles.crystalIssuer, "crystal issuer")
            guard amount > 0 else { throw TransactionError.zeroAmount }
            var acc = try ws.account(to)
            let (sum, overflow) = acc.crystals.addingReportingOverflow(amount)
            guard !overflow else { throw TransactionError("crystals.overflow", "the recipient's crystal count would overflow") }
            acc.crystals = sum
            ws.setAccount(to, acc)
            events.append(Event("crystals.granted", [("to", to.text), ("amount", String(amount))]))
        case .openSeason(let terms): try openSeason(terms)
        case .drawRequest(let seasonID): try drawRequest(seasonID)
        case .drawResult(let seasonID, let index, let preimage, let rarity): try drawResult(seasonID, index, preimage, rarity)
        case .closeSeason(let seasonID): try closeSeason(seasonID)
        case .upsertItem(let id, let title, let price, let stock, let rule): try upsertItem(id, title, price, stock, rule)
        case .redeem(let merchant, let itemID, let vehicleID): try redeem(merchant, itemID, vehicleID)
        case .fulfilRedemption(let id): try settleRedemption(id, fulfil: true)
        case .rejectRedemption(let id): try settleRedemption(id, fulfil: false)
        case .transfer(let to, let amount): try transfer(to, amount)
        }
    }

    // MARK: Registry

    mutating func registerVehicle(_ id: Hash256, _ key: PublicKeyBytes, _ model: String, _ tags: [String],
                                  _ owner: Address, _ odometer: UInt64) throws {
        try require(roles.registrar, "registrar")
        guard try ws.vehicle(id) == nil else { throw TransactionError("vehicle.exists", "vehicle \(id) is already registered") }
        guard key.scheme == .sm2, (try? SM2PublicKey(rawRepresentation: key.bytes)) != nil else {
            throw TransactionError("vehicle.invalid_key", "a vehicle key must be an SM2 public key on the curve")
        }
        let keyAddress = Address(publicKey: key)
        guard try ws.get(StateKey.vehicleByAddress(keyAddress)) == nil else {
            throw TransactionError("vehicle.key_in_use", "the vehicle key is already registered to another vehicle")
        }
        guard !model.isEmpty else { throw TransactionError.invalidField("model", "must not be empty") }
        guard !tags.contains(where: \.isEmpty) else { throw TransactionError.invalidField("cohortTags", "tags must not be empty") }
        let vehicle = Vehicle(key: key, model: model, cohortTags: tags, owner: owner, active: true,
                              odometerMetres: odometer, lastSpanEnd: now)
        ws.write(StateKey.vehicle(id), vehicle)
        ws.put(StateKey.vehicleByAddress(keyAddress), id.bytes)
        var acc = try ws.account(owner)
        acc.activeVehicles += 1
        ws.setAccount(owner, acc)
        events.append(Event("vehicle.registered", [("vehicle", id.hex), ("owner", owner.text), ("model", model)]))
    }

    func activeVehicle(_ id: Hash256) throws -> Vehicle {
        guard let v = try ws.vehicle(id) else { throw TransactionError("vehicle.unknown", "vehicle \(id) is not registered") }
        guard v.active else { throw TransactionError("vehicle.inactive", "vehicle \(id) is deactivated") }
        return v
    }

    mutating func changeOwner(_ id: Hash256, _ newOwner: Address) throws {
        try require(roles.registrar, "registrar")
        var v = try activeVehicle(id)
        guard v.owner != newOwner else { throw TransactionError("vehicle.same_owner", "the vehicle already belongs to \(newOwner)") }
        var old = try ws.account(v.owner)
        old.activeVehicles -= 1
        ws.setAccount(v.owner, old)
        var new = try ws.account(newOwner)
        new.activeVehicles += 1
        ws.setAccount(newOwner, new)
        events.append(Event("vehicle.owner_changed", [("vehicle", id.hex), ("from", v.owner.text), ("to", newOwner.text)]))
        v.owner = newOwner
        ws.write(StateKey.vehicle(id), v)
    }

    mutating func deactivate(_ id: Hash256) throws {
        try require(roles.registrar, "registrar")
        var v = try activeVehicle(id)
        v.active = false
        ws.write(StateKey.vehicle(id), v)
        var owner = try ws.account(v.owner)
        owner.activeVehicles -= 1
        ws.setAccount(v.owner, owner)
        events.append(Event("vehicle.deactivated", [("vehicle", id.hex)]))
    }

    // MARK: Mileage

    mutating func mileageClaim(_ c: MileageClaim) throws {
        guard var v = try ws.vehicle(c.vehicleID) else {
            throw TransactionError("claim.vehicle_unknown", "vehicle \(c.vehicleID) is not registered")
        }
        guard v.active else { throw TransactionError("claim.vehicle_inactive", "vehicle \(c.vehicleID) is deactivated") }
        guard v.key == signer else {
            throw TransactionError("claim.wrong_signer", "the claim is not signed by the vehicle's registered key")
        }
        guard try ws.account(v.owner).agreement != nil else {
            throw TransactionError("claim.no_consent", "the vehicle's owner has not signed (or has revoked) the data-rights agreement")
        }
        guard c.odometerEndMetres > c.odometerStartMetres, c.spanEnd > c.spanStart else {
            throw TransactionError("claim.span_invalid", "the claim's odometer and time spans must both be increasing")
        }
        guard c.odometerStartMetres >= v.odometerMetres else {
            throw TransactionError("claim.odometer_overlap",
                                   "the odometer span starts at \(c.odometerStartMetres) m, before the \(v.odometerMetres) m already claimed")
        }
        guard c.spanStart >= v.lastSpanEnd else {
            throw TransactionError("claim.time_overlap", "the span starts at \(c.spanStart), before the end \(v.lastSpanEnd) of what is already claimed")
        }
        let duration = c.spanEnd - c.spanStart
        let e = genesis.economics
        guard duration <= e.claimSpanMaxSeconds else {
            throw TransactionError("claim.span_too_long", "the span lasts \(duration) s, more than \(e.claimSpanMaxSeconds) s")
        }
        let metres = c.odometerEndMetres - c.odometerStartMetres
        // metres / duration <= maxSpeedKmh * 1000 / 3600, in integers: metres * 3600 <= maxSpeedKmh * 1000 * duration.
        let lhs = metres.multipliedFullWidth(by: 3_600)
        let rhs = (e.maxSpeedKmh * 1_000).multipliedFullWidth(by: duration)
        guard lhs.high < rhs.high || (lhs.high == rhs.high && lhs.low <= rhs.low) else {
            throw TransactionError("claim.too_fast", "\(metres) m in \(duration) s exceeds the maximum speed of \(e.maxSpeedKmh) km/h")
        }
        guard c.spanEnd <= now + e.clockToleranceSeconds else {
            throw TransactionError("claim.future", "the span ends at \(c.spanEnd), after the block time \(now) plus the tolerance")
        }
        guard now <= c.spanEnd || now - c.spanEnd <= e.claimStalenessSeconds else {
            throw TransactionError("claim.stale", "the span ended more than \(e.claimStalenessSeconds) s before the block time")
        }
        let batch = ledger.batch(at: now)
        let week = (now - genesis.genesisTime) / Vehicle.weekSeconds
        v.odometerMetres = c.odometerEndMetres
        v.lastSpanEnd = c.spanEnd
        v.record(metres: metres, week: week)
        ws.write(StateKey.vehicle(c.vehicleID), v)

        let participantKey = StateKey.participant(batch: batch, vehicle: c.vehicleID)
        var record: BatchRecord = try ws.read(StateKey.batch(batch)) ?? BatchRecord()
        var participant: Participant
        if let p: Participant = try ws.read(participantKey) {
            participant = p
        } else {
            participant = Participant(owner: v.owner, metres: 0)
            record.participants += 1
        }
        participant.owner = v.owner
        participant.metres += metres
        record.totalMetres += metres
        ws.write(participantKey, participant)
        ws.write(StateKey.batch(batch), record)
        events.append(Event("claim.accepted", [("vehicle", c.vehicleID.hex), ("batch", String(batch)), ("metres", String(metres)),
                                               ("trip", c.tripDigest.hex)]))
    }

    // MARK: Blind boxes

    mutating func openSeason(_ t: SeasonTerms) throws {
        try require(roles.boxOperator, "box operator")
        guard t.oddsPPM.count == 4, t.prizes.count == 4,
              t.oddsPPM.reduce(UInt64(0), { $0 + UInt64($1) }) == BlindBox.partsPerMillion else {
            throw TransactionError("season.invalid_odds", "the odds of SSR, S, A and B must sum to 1,000,000 parts per million")
        }
        guard t.priceCrystals > 0 else { throw TransactionError.invalidField("priceCrystals", "must be positive") }
        guard t.endTime > t.startTime, t.endTime > now else {
            throw TransactionError("season.invalid_time", "the season must end after it starts and after the block time")
        }
        guard t.responseWindowSeconds >= 1, t.responseWindowSeconds <= 7 * 86_400 else {
            throw TransactionError.invalidField("responseWindowSeconds", "must be 1 to 604800")
        }
        let free = ws.global.cultivationPoolGrains - ws.global.cultivationReservedGrains
        guard t.budgetGrains <= free else {
            throw TransactionError("season.budget_exceeds_pool", "the budget of \(t.budgetGrains) grains exceeds the \(free) grains left in the cultivation pool")
        }
        let id = ws.global.nextSeasonID
        ws.global.nextSeasonID += 1
        ws.global.cultivationReservedGrains += t.budgetGrains
        ws.write(StateKey.season(id), Season(terms: t))
        events.append(Event("season.opened", [("season", String(id)), ("budget", String(t.budgetGrains)), ("commitment", t.commitment.hex)]))
    }

    func season(_ id: UInt64) throws -> Season {
        guard let s: Season = try ws.read(StateKey.season(id)) else { throw TransactionError("season.unknown", "no season \(id)") }
        return s
    }

    mutating func drawRequest(_ seasonID: UInt64) throws {
        var s = try season(seasonID)
        guard !s.closed, now >= s.terms.startTime, now < s.terms.endTime else {
            throw TransactionError("season.not_active", "season \(seasonID) is not open at time \(now)")
        }
        var acc = try ws.account(sender)
        guard acc.crystals >= s.terms.priceCrystals else {
            throw TransactionError("crystals.insufficient", "a draw costs \(s.terms.priceCrystals) crystals, the account has \(acc.crystals)")
        }
        acc.crystals -= s.terms.priceCrystals
        ws.setAccount(sender, acc)
        let index = s.requests
        s.requests += 1
        let deadline = now + s.terms.responseWindowSeconds
        ws.write(StateKey.season(seasonID), s)
        ws.write(StateKey.draw(season: seasonID, index: index),
                 DrawRequest(requester: sender, crystals: s.terms.priceCrystals, deadline: deadline,
                             height: context.height, previousBlockHash: context.previousBlockHash))
        ws.put(StateKey.drawDeadline(deadline, season: seasonID, index: index), [])
        events.append(Event("draw.requested", [("season", String(seasonID)), ("index", String(index)), ("requester", sender.text),
                                               ("deadline", String(deadline))]))
    }

    mutating func drawResult(_ seasonID: UInt64, _ index: UInt64, _ preimage: Hash256, _ rarity: Rarity) throws {
        try require(roles.boxOperator, "box operator")
        var s = try season(seasonID)
        guard let draw: DrawRequest = try ws.read(StateKey.draw(season: seasonID, index: index)) else {
            throw TransactionError("draw.unknown", "no pending draw \(index) in season \(seasonID)")
        }
        guard index == s.settled else {
            throw TransactionError("draw.out_of_order", "draws are answered in order: the next is \(s.settled)")
        }
        guard now < draw.deadline else { throw TransactionError("draw.expired", "draw \(index) expired at \(draw.deadline); it will be refunded") }
        guard SM3.hash(preimage.bytes) == s.chainTip else {
            throw TransactionError("draw.bad_preimage", "the revealed value does not hash to the season's chain tip")
        }
        let roll = BlindBox.roll(preimage: preimage, seasonID: seasonID, requestIndex: index,
                                 height: draw.height, previousBlockHash: draw.previousBlockHash)
        let derived = BlindBox.rarity(roll: roll, oddsPPM: s.terms.oddsPPM)
        guard derived == rarity else {
            throw TransactionError("draw.outcome_mismatch", "the outcome is \(derived) (roll \(roll)), not \(rarity)")
        }
        let prize = s.terms.prizes[Int(rarity.rawValue)]
        var acc = try ws.account(draw.requester)
        var stones: UInt64 = 0, crystals: UInt64 = 0
        if prize.stoneGrains > 0 && acc.activeVehicles > 0 && prize.stoneGrains <= s.budgetLeftGrains {
            stones = prize.stoneGrains
            s.budgetLeftGrains -= stones
            ws.global.cultivationPoolGrains -= stones
            ws.global.cultivationReservedGrains -= stones
            ws.global.cultivationPaidGrains += stones
            ws.global.balancesGrains += stones
            acc.balanceGrains += stones
        } else {
            crystals = prize.substituteCrystals
            acc.crystals = acc.crystals.addingReportingOverflow(crystals).overflow ? UInt64.max : acc.crystals + crystals
        }
        ws.setAccount(draw.requester, acc)
        s.settled += 1
        s.chainTip = preimage
        ws.write(StateKey.season(seasonID), s)
        ws.delete(StateKey.draw(season: seasonID, index: index))
        ws.delete(StateKey.drawDeadline(draw.deadline, season: seasonID, index: index))
        events.append(Event("draw.result", [("season", String(seasonID)), ("index", String(index)), ("requester", draw.requester.text),
                                            ("roll", String(roll)), ("rarity", rarity.description), ("stoneGrains", String(stones)),
                                            ("crystals", String(crystals))]))
    }

    mutating func closeSeason(_ seasonID: UInt64) throws {
        try require(roles.boxOperator, "box operator")
        var s = try season(seasonID)
        guard !s.closed else { throw TransactionError("season.closed", "season \(seasonID) is already closed") }
        guard now >= s.terms.endTime else { throw TransactionError("season.not_ended", "season \(seasonID) ends at \(s.terms.endTime)") }
        guard s.settled == s.requests else {
            throw TransactionError("season.pending_draws", "season \(seasonID) still has \(s.requests - s.settled) unanswered draws")
        }
        ws.global.cultivationReservedGrains -= s.budgetLeftGrains
        events.append(Event("season.closed", [("season", String(seasonID)), ("released", String(s.budgetLeftGrains))]))
        s.budgetLeftGrains = 0
        s.closed = true
        ws.write(StateKey.season(seasonID), s)
    }

    // MARK: Redemption

    mutating func upsertItem(_ id: String, _ title: String, _ price: UInt64, _ stock: UInt64, _ rule: EligibilityRule) throws {
        guard roles.isMerchant(sender) else { throw TransactionError.unauthorized("merchant") }
        guard !id.isEmpty, !title.isEmpty else { throw TransactionError.invalidField("item", "id and title must not be empty") }
        guard price > 0 else { throw TransactionError.invalidField("priceGrains", "must be positive") }
        ws.write(StateKey.item(merchant: sender, itemID: id), CatalogItem(title: title, priceGrains: price, stock: stock, rule: rule))
        events.append(Event("item.listed", [("merchant", sender.text), ("item", id), ("price", String(price)), ("stock", String(stock))]))
    }

    mutating func redeem(_ merchant: Address, _ itemID: String, _ vehicleID: Hash256?) throws {
        let key = StateKey.item(merchant: merchant, itemID: itemID)
        guard var item: CatalogItem = try ws.read(key) else { throw TransactionError("item.unknown", "merchant has no item '\(itemID)'") }
        guard item.stock > 0 else { throw TransactionError("item.out_of_stock", "item '\(itemID)' is out of stock") }
        if !item.rule.isOpen {
            guard let vehicleID, let v = try ws.vehicle(vehicleID), v.active, v.owner == sender else {
                throw TransactionError("item.not_eligible", "the item requires an active vehicle owned by the redeemer")
            }
            if let model = item.rule.model, v.model != model {
                throw TransactionError("item.not_eligible", "the item requires a vehicle of model '\(model)'")
            }
            if let tag = item.rule.cohortTag, !v.cohortTags.contains(tag) {
                throw TransactionError("item.not_eligible", "the item requires a vehicle in cohort '\(tag)'")
            }
            let week = (now - genesis.genesisTime) / Vehicle.weekSeconds
            let driven = v.metresInTrailingYear(week: week)
            guard driven >= item.rule.minimumMetresLastYear else {
                throw TransactionError("item.not_eligible", "the vehicle drove \(driven) m in the last year, \(item.rule.minimumMetresLastYear) m required")
            }
        }
        var acc = try ws.account(sender)
        guard acc.balanceGrains >= item.priceGrains else { throw TransactionError.insufficientBalance(acc.balanceGrains, item.priceGrains) }
        acc.balanceGrains -= item.priceGrains
        ws.setAccount(sender, acc)
        ws.global.balancesGrains -= item.priceGrains
        ws.global.escrowGrains += item.priceGrains
        item.stock -= 1
        ws.write(key, item)
        let id = ws.global.nextRedemptionID
        ws.global.nextRedemptionID += 1
        ws.write(StateKey.redemption(id), Redemption(redeemer: sender, merchant: merchant, itemID: itemID,
                                                      priceGrains: item.priceGrains, status: .pending))
        events.append(Event("redemption.created", [("redemption", String(id)), ("redeemer", sender.text), ("merchant", merchant.text),
                                                   ("item", itemID), ("price", String(item.priceGrains))]))
    }

    mutating func settleRedemption(_ id: UInt64, fulfil: Bool) throws {
        guard var r: Redemption = try ws.read(StateKey.redemption(id)) else {
            throw TransactionError("redemption.unknown", "no redemption \(id)")
        }
        guard sender == r.merchant else { throw TransactionError.unauthorized("redemption's merchant") }
        guard r.status == .pending else { throw TransactionError("redemption.not_pending", "redemption \(id) is already settled") }
        ws.global.escrowGrains -= r.priceGrains
        if fulfil {
            ws.global.treasuryGrains += r.priceGrains
            r.status = .fulfilled
        } else {
            try ws.credit(r.redeemer, grains: r.priceGrains)
            let key = StateKey.item(merchant: r.merchant, itemID: r.itemID)
            if var item: CatalogItem = try ws.read(key) {
                item.stock += 1
                ws.write(key, item)
            }
            r.status = .rejected
        }
        ws.write(StateKey.redemption(id), r)
        events.append(Event(fulfil ? "redemption.fulfilled" : "redemption.rejected", [("redemption", String(id))]))
    }

    // MARK: Transfer

    mutating func transfer(_ to: Address, _ amount: UInt64) throws {
        guard genesis.economics.transfersEnabled else {
            throw TransactionError("transfer.disabled", "transfers between accounts are disabled on this chain")
        }
        guard amount > 0 else { throw TransactionError.zeroAmount }
        var from = try ws.account(sender)
        guard from.balanceGrains >= amount else { throw TransactionError.insufficientBalance(from.balanceGrains, amount) }
        from.balanceGrains -= amount
        ws.setAccount(sender, from)
        ws.global.balancesGrains -= amount
        try ws.credit(to, grains: amount)
        events.append(Event("transfer", [("from", sender.text), ("to", to.text), ("amount", String(amount))]))
    }
}
