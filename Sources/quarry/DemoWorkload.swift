import Foundation
import QuarryClient
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryRPC

/// Counters of the demo, shared by its loops.
final class DemoStats: @unchecked Sendable {
    private let lock = Lock()
    private var s = DemoSummary()

    func update(_ body: (inout DemoSummary) -> Void) { lock.withLock { body(&s) } }
    var snapshot: DemoSummary { lock.withLock { s } }
}

struct DemoSummary {
    var vehiclesRegistered = 0
    var ownersConsenting = 0
    var claimsAccepted = 0
    var claimsRefused: [String: Int] = [:]
    var metresClaimed: UInt64 = 0
    var claimBatches = Set<UInt64>()
    var batchesSettled = Set<UInt64>()
    var crystalsGranted: UInt64 = 0
    var seasonID: UInt64?
    var drawsRequested = 0
    var drawsByRarity: [Rarity: Int] = [:]
    var redemptionsMade = 0
    var redemptionsFulfilled = 0
    var redemptionsRejected = 0
    var supplyChecks = 0
    var supplyViolations = 0
    var lastSupply: SupplyState?
    var mileagePoolAtGenesis: UInt64 = 0
    var cultivationPoolAtGenesis: UInt64 = 0
    var heights: [String] = []
    var errors: [String] = []
    var keysDirectory: String = ""
    var sampleVehicle: String?
    var sampleOwner: String?
    var rpc: String = ""

    var drawsText: String {
        let answered = drawsByRarity.values.reduce(0, +)
        return "\(drawsRequested) (SSR \(drawsByRarity[.ssr] ?? 0), S \(drawsByRarity[.s] ?? 0), A \(drawsByRarity[.a] ?? 0), B \(drawsByRarity[.b] ?? 0); \(answered) answered)"
    }

    var mileagePaid: UInt64 { lastSupply?.mintedMileageGrains ?? 0 }
    var prizesPaid: UInt64 {
        guard let s = lastSupply, cultivationPoolAtGenesis >= s.cultivationPoolGrains else { return 0 }
        return cultivationPoolAtGenesis - s.cultivationPoolGrains
    }

    func print(nodes: DevnetNodes, workload: Bool) {
        say("==> summary")
        let heights = nodes.loggedHeights()
        say("  nodes:        " + zip(nodes.names, heights).map { "\($0)=\($1)" }.joined(separator: " "))
        guard workload else {
            say("  data and logs are kept under \(nodes.root.path)")
            return
        }
        say("  vehicles:     \(vehiclesRegistered) registered, \(ownersConsenting) owners signed the agreement")
        let refused = claimsRefused.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        say("  claims:       \(claimsAccepted) accepted (\(metresClaimed / 1_000) km), \(claimsRefused.values.reduce(0, +)) refused\(refused.isEmpty ? "" : " (\(refused))")")
        say("  batches:      \(batchesSettled.count) settled of \(claimBatches.count) with claims; mileage paid \(stonesText(mileagePaid))")
        say("  blind boxes:  season \(seasonID.map(String.init) ?? "-"), draws \(drawsText); prizes paid \(stonesText(prizesPaid)); crystals granted \(crystalsGranted)")
        say("  redemptions:  \(redemptionsMade) made, \(redemptionsFulfilled) fulfilled, \(redemptionsRejected) rejected")
        if let s = lastSupply {
            say("  supply:       \(s.isConserved ? "conserved" : "NOT CONSERVED") at every one of \(supplyChecks) checks\(supplyViolations > 0 ? " except \(supplyViolations)" : ""): total \(stonesText(s.totalGrains)), balances \(stonesText(s.balancesGrains)), escrow \(stonesText(s.escrowGrains)), treasury \(stonesText(s.treasuryGrains))")
        }
        for e in errors.suffix(5) { say("  error seen:   \(e)") }
        say("  data and logs are kept under \(nodes.root.path). To look around, start the nodes again without the workload")
        say("  ('quarry devnet --network \(nodes.root.path) --no-workload') and query them from another terminal, for example:")
        say("    quarry query supply --rpc \(rpc)")
        if let v = sampleVehicle { say("    quarry query vehicle \(v) --rpc \(rpc)") }
        if let o = sampleOwner { say("    quarry query account \(o) --rpc \(rpc)") }
        if !keysDirectory.isEmpty { say("  the demo's keys (plain text, development only): \(keysDirectory)") }
    }
}

/// A simulated vehicle: its SM2 key signs its claims; its owner signs the agreement.
final class SimVehicle: @unchecked Sendable {
    let index: Int
    let key: SigningKey
    let id: Hash256
    let owner: SigningKey
    let sender: Sender
    let ownerSender: Sender
    let model: String
    let cohorts: [String]
    var odometerMetres: UInt64
    var lastSpanEnd: UInt64 = 0
    var lastClaim: MileageClaim?

    init(index: Int, client: QuarryClient, chainID: String, rng: inout SplitMix64) {
        self.index = index
        key = SigningKey(scheme: .sm2)
        // Half the owners use secp256k1 accounts, half SM2: the ledger takes both.
        owner = SigningKey(scheme: index % 2 == 0 ? .sm2 : .secp256k1)
        id = SM3.hash(parts: [Array("QUARRY/DEMO-VEHICLE".utf8), key.publicKeyBytes.bytes])
        sender = Sender(client: client, key: key, chainID: chainID)
        ownerSender = Sender(client: client, key: owner, chainID: chainID)
        model = ["LS6", "L6", "LS7"][index % 3]
        cohorts = index < 3 ? ["angel-wheel"] : []
        odometerMetres = 1_000 * UInt64.random(in: 0..<20_000, using: &rng)
    }
}

/// The demo workload: fleet set-up, then concurrent loops for claims, draws, the shop and
/// progress until the stop signal.
final class DemoWorkload: @unchecked Sendable {
    let root: URL
    let client: QuarryClient
    let chainID: String
    let genesis: Genesis
    let registrar: Sender, issuer: Sender, boxOperator: Sender, merchant: Sender
    let operatorKey: SigningKey
    let merchantAddress: Address
    let fan: SigningKey
    let fanSender: Sender
    let fleet: [SimVehicle]
    let stats = DemoStats()
    let keysDirectory: URL
    private var rng: SplitMix64
    private let lock = Lock()
    var chain: BoxChain?
    private var stopSignal: StopSignal?

    static let voucherPrice = 20 * Grains.perStone
    static let agreement = PayloadBuilder.agreementVersion(text: Array("Quarry demo data-rights agreement, version 1".utf8))

    init(root: URL, client: QuarryClient, vehicleCount: Int, chainID: String) throws {
        self.root = root
        self.client = client
        self.chainID = chainID
        guard let data = FileManager.default.contents(atPath: root.appendingPathComponent("genesis.json").path) else {
            throw CLIError("cannot read \(root.path)/genesis.json")
        }
        genesis = try Genesis.load(json: Array(data))
        let roles = Keystore(directory: root.appendingPathComponent("role-keys"))
        func role(_ name: String) throws -> SigningKey {
            do { return try roles.load(name: name, passphrase: nil) } catch {
                throw CLIError("role key '\(name)' in \(roles.directory.path): \(error)")
            }
        }
        registrar = Sender(client: client, key: try role("registrar"), chainID: chainID)
        issuer = Sender(client: client, key: try role("crystal-issuer"), chainID: chainID)
        operatorKey = try role("box-operator")
        boxOperator = Sender(client: client, key: operatorKey, chainID: chainID)
        let merchantKey = try role("merchant")
        merchantAddress = merchantKey.address
        merchant = Sender(client: client, key: merchantKey, chainID: chainID)
        rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1_000))
        var r = rng
        fleet = (0..<vehicleCount).map { SimVehicle(index: $0, client: client, chainID: chainID, rng: &r) }
        rng = r
        fan = SigningKey(scheme: .secp256k1)
        fanSender = Sender(client: client, key: fan, chainID: chainID)
        keysDirectory = root.appendingPathComponent("demo-keys")
        stats.update {
            $0.mileagePoolAtGenesis = genesis.economics.mileagePoolGrains
            $0.cultivationPoolAtGenesis = genesis.economics.cultivationPoolGrains
            $0.keysDirectory = keysDirectory.path
            $0.rpc = client.rpc.endpoint.description
        }
    }

    func random(_ range: Range<UInt64>) -> UInt64 { lock.withLock { UInt64.random(in: range, using: &rng) } }

    static func now() -> UInt64 { UInt64(Date().timeIntervalSince1970) }

    func note(_ message: String) { say("\(clock()) \(message)") }

    func recordError(_ what: String, _ error: Any) {
        // After Ctrl-C the terminal's SIGINT reaches the nodes too, so calls in flight fail
        // as the nodes go down: that is the stop, not a problem worth reporting.
        if stopSignal?.isSet == true { return }
        let text = "\(what): \(error)"
        stats.update { s in if s.errors.last != text { s.errors.append(text) } }
        note("! \(text)")
    }

    /// Keeps the demo's keys so the user can go on with the CLI afterwards.
    func saveKeys() {
        let store = Keystore(directory: keysDirectory)
        let run = "run\(Self.now())"
        for v in fleet {
            _ = try? store.save(v.key, name: "\(run)-vehicle-\(v.index)", passphrase: nil)
            _ = try? store.save(v.owner, name: "\(run)-owner-\(v.index)", passphrase: nil)
        }
        _ = try? store.save(fan, name: "\(run)-fan", passphrase: nil)
    }

    func run(nodes: DevnetNodes, clients: [QuarryClient], stop: StopSignal, progressSeconds: UInt64) async -> DemoSummary {
        stopSignal = stop
        saveKeys()
        stats.update {
            $0.sampleVehicle = fleet.first?.id.hex
            $0.sampleOwner = fleet.first?.owner.address.text
        }
        do {
            try await setUp(stop: stop)
        } catch {
            recordError("set-up", error)
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.claimLoop(stop: stop) }
            group.addTask { await self.drawLoop(stop: stop) }
            group.addTask { await self.shopLoop(stop: stop) }
            group.addTask { await self.progressLoop(clients: clients, nodes: nodes, stop: stop, seconds: progressSeconds) }
        }
        return stats.snapshot
    }

    // MARK: set-up

    /// Submits with `wait: checked` from one sender, then waits until every one is committed.
    func submitAll(_ sender: Sender, _ payloads: [Payload]) async throws -> [TransactionStatus] {
        var hashes: [Hash256] = []
        for p in payloads { hashes.append(try await sender.submit(p, wait: .checked).hash) }
        return try await awaitCommitted(hashes)
    }

    func awaitCommitted(_ hashes: [Hash256], seconds: Int = 60) async throws -> [TransactionStatus] {
        var done: [Hash256: TransactionStatus] = [:]
        let deadline = ContinuousClock.now + .seconds(seconds)
        while done.count < hashes.count {
            for h in hashes where done[h] == nil {
                let s = try await client.transaction(hash: h)
                if s.status == .committed || s.status == .rejected { done[h] = s }
            }
            if done.count == hashes.count { break }
            guard ContinuousClock.now < deadline else { throw CLIError("transactions not committed within \(seconds) s") }
            try await Task.sleep(nanoseconds: 300_000_000)
        }
        return hashes.map { done[$0]! }
    }

    func setUp(stop: StopSignal) async throws {
        note("registering \(fleet.count) vehicles (registrar \(registrar.address.text))")
        let registrations = try fleet.map { v in
            try PayloadBuilder.registerVehicle(vehicleID: v.id, vehicleKey: v.key.publicKeyBytes, model: v.model, cohortTags: v.cohorts,
                                               owner: v.owner.address, odometerMetres: v.odometerMetres)
        }
        let registered = try await submitAll(registrar, registrations)
        let start = Self.now() + 1
        for (v, s) in zip(fleet, registered) {
            v.lastSpanEnd = start
            if s.succeeded { stats.update { $0.vehiclesRegistered += 1 } } else { recordError("register vehicle \(v.index)", s.failure.map { "\($0)" } ?? s.status.rawValue) }
        }
        guard !stop.isSet else { return }

        note("owners sign the data-rights agreement \(Self.agreement.hex.prefix(16))...")
        await withTaskGroup(of: Bool.self) { group in
            for v in fleet {
                group.addTask {
                    do { return try await v.ownerSender.submit(PayloadBuilder.signAgreement(version: Self.agreement), wait: .committed).status.succeeded } catch {
                        self.recordError("sign agreement (owner \(v.index))", error)
                        return false
                    }
                }
            }
            for await ok in group where ok { stats.update { $0.ownersConsenting += 1 } }
        }
        guard !stop.isSet else { return }

        note("crystal issuer grants crystals to the owners and to a fan without a car")
        var grants: [Payload] = []
        var amounts: [UInt64] = []
        for v in fleet {
            grants.append(try PayloadBuilder.grantCrystals(to: v.owner.address, amount: 100))
            amounts.append(100)
        }
        grants.append(try PayloadBuilder.grantCrystals(to: fan.address, amount: 200))
        amounts.append(200)
        let granted = try await submitAll(issuer, grants)
        var total: UInt64 = 0
        for (s, amount) in zip(granted, amounts) where s.succeeded { total += amount }
        stats.update { $0.crystalsGranted += total }
        guard !stop.isSet else { return }

        note("box operator opens a blind-box season (hash-chain commitment from its key)")
        let now = Self.now()
        let prizes = [Prize(stoneGrains: 100 * Grains.perStone, substituteCrystals: 50), Prize(stoneGrains: 10 * Grains.perStone, substituteCrystals: 20),
                      Prize(stoneGrains: Grains.perStone, substituteCrystals: 10), Prize(stoneGrains: Grains.perStone / 10, substituteCrystals: 5)]
        let length = 2_000, key = operatorKey, chainID = self.chainID
        let directory = keysDirectory.appendingPathComponent("box-chains")
        let opened = try await boxOperator.submit(wait: .committed) { nonce throws(ClientError) in
            let chain = try BoxChain(key: key, chainID: chainID, openNonce: nonce, length: length)
            try chain.saveIndex(directory: directory, operatorAddress: key.address)
            return try PayloadBuilder.openSeason(SeasonTerms(priceCrystals: 10, oddsPPM: [20_000, 80_000, 300_000, 600_000], prizes: prizes,
                                                             budgetGrains: 5_000 * Grains.perStone, startTime: now - 60, endTime: now + 30 * 86_400,
                                                             commitment: chain.commitment, responseWindowSeconds: 600))
        }
        guard opened.status.succeeded else {
            throw CLIError("open season: \(opened.status.failure.map { "\($0)" } ?? opened.status.status.rawValue)")
        }
        chain = try BoxChain(key: key, chainID: chainID, openNonce: opened.transaction.body.nonce, length: length)
        guard let seasonID = opened.status.attribute("season", of: "season.opened").flatMap({ UInt64($0) }) else {
            throw CLIError("open season: no season.opened event in the result")
        }
        stats.update { $0.seasonID = seasonID }

        note("merchant lists a charging voucher (20 stones) and the lidar upgrade (6,800 stones, LS6 angel-wheel owners)")
        let items = [
            try PayloadBuilder.upsertItem(itemID: "charging-voucher", title: "Supercharging voucher, 500 kWh", priceGrains: Self.voucherPrice,
                                          stock: 100, rule: EligibilityRule()),
            try PayloadBuilder.upsertItem(itemID: "lidar-upgrade", title: "Lidar driving-system upgrade (cash part off chain)",
                                          priceGrains: 6_800 * Grains.perStone, stock: 10,
                                          rule: EligibilityRule(model: "LS6", cohortTag: "angel-wheel", minimumMetresLastYear: 5_000_000)),
        ]
        let listed = try await submitAll(merchant, items)
        for s in listed where !s.succeeded { recordError("upsert item", s.failure.map { "\($0)" } ?? s.status.rawValue) }
        note("set-up done: vehicles drive and claim every few seconds; Ctrl-C stops")
    }

    // MARK: loops

    func claimLoop(stop: StopSignal) async {
        var rounds = 0
        while !stop.isSet {
            await stop.sleep(seconds: 3)
            guard !stop.isSet else { return }
            rounds += 1
            let overlapRound = rounds == 3
            await withTaskGroup(of: Void.self) { group in
                for v in fleet { group.addTask { await self.drive(v) } }
                if overlapRound, let v = fleet.first { group.addTask { await self.replayOverlap(v) } }
            }
        }
    }

    /// One span of driving since the vehicle's last claim, claimed at 30 to 120 km/h.
    func drive(_ v: SimVehicle) async {
        let end = Self.now()
        guard end > v.lastSpanEnd + 1 else { return }
        let seconds = end - v.lastSpanEnd
        let kmh = random(30..<121)
        let metres = max(1, kmh * 1_000 * seconds / 3_600)
        let trip = SM3.hash(parts: [v.id.bytes, Array("trip \(end)".utf8)])
        do {
            let payload = try PayloadBuilder.mileageClaim(vehicleID: v.id, odometerStartMetres: v.odometerMetres,
                                                          odometerEndMetres: v.odometerMetres + metres, spanStart: v.lastSpanEnd, spanEnd: end,
                                                          tripDigest: trip)
            let s = try await v.sender.submit(payload, wait: .committed)
            if s.status.succeeded {
                if case .mileageClaim(let c) = payload { v.lastClaim = c }
                v.odometerMetres += metres
                v.lastSpanEnd = end
                let batch = batchIndex(of: s.status)
                stats.update {
                    $0.claimsAccepted += 1
                    $0.metresClaimed += metres
                    if let batch { $0.claimBatches.insert(batch) }
                }
            } else if let f = s.status.failure {
                stats.update { $0.claimsRefused[f.code, default: 0] += 1 }
                note("claim of vehicle \(v.index) refused: \(f)")
            }
        } catch {
            recordError("claim (vehicle \(v.index))", error)
        }
    }

    /// Sends a vehicle's last claim again with a new trip digest: the ledger must refuse it
    /// (odometer span overlap), and the demo shows the reason the node returns.
    func replayOverlap(_ v: SimVehicle) async {
        guard let c = v.lastClaim else { return }
        do {
            let payload = try PayloadBuilder.mileageClaim(vehicleID: c.vehicleID, odometerStartMetres: c.odometerStartMetres,
                                                          odometerEndMetres: c.odometerEndMetres, spanStart: c.spanStart, spanEnd: c.spanEnd,
                                                          tripDigest: SM3.hash(c.tripDigest.bytes))
            let s = try await v.sender.submit(payload, wait: .committed)
            if let f = s.status.failure {
                stats.update { $0.claimsRefused[f.code, default: 0] += 1 }
                note("a replayed claim of vehicle \(v.index) was refused, as it must be: \(f)")
            }
        } catch {
            recordError("replayed claim", error)
        }
    }

    /// The batch a committed claim counted toward, from its `claim.accepted` event.
    func batchIndex(of status: TransactionStatus) -> UInt64? {
        status.attribute("batch", of: "claim.accepted").flatMap { UInt64($0) }
    }

    func drawLoop(stop: StopSignal) async {
        while !stop.isSet {
            await stop.sleep(seconds: 4)
            guard !stop.isSet, let seasonID = stats.snapshot.seasonID else { continue }
            // Two draws a round: an owner's and, every other round, the fan's.
            var drawers: [Sender] = [fleet[Int(random(0..<UInt64(fleet.count)))].ownerSender]
            if random(0..<2) == 0 { drawers.append(fanSender) }
            for d in drawers {
                do {
                    let s = try await d.submit(PayloadBuilder.drawRequest(seasonID: seasonID), wait: .committed)
                    if s.status.succeeded { stats.update { $0.drawsRequested += 1 } }
                } catch {
                    recordError("draw request", error)
                }
            }
            await answerDraws(seasonID: seasonID, stop: stop)
        }
    }

    func answerDraws(seasonID: UInt64, stop: StopSignal) async {
        while !stop.isSet {
            do {
                let season = try SeasonView(await client.season(seasonID))
                guard season.settled < season.requests else { return }
                let (payload, rarity, _) = try await BoxOperator.answer(season: seasonID, client: client, key: operatorKey, chain: chain,
                                                                         chainsDirectory: keysDirectory.appendingPathComponent("box-chains"))
                let s = try await boxOperator.submit(payload, wait: .committed)
                if s.status.succeeded {
                    stats.update { $0.drawsByRarity[rarity, default: 0] += 1 }
                    if rarity == .ssr || rarity == .s { note("draw result: \(rarity)!") }
                } else {
                    recordError("draw result", s.status.failure.map { "\($0)" } ?? s.status.status.rawValue)
                    return
                }
            } catch {
                recordError("draw result", error)
                return
            }
        }
    }

    /// Redeems the voucher for the first owner who can afford it; the merchant fulfils the
    /// first redemption and rejects the second (the stones go back).
    func shopLoop(stop: StopSignal) async {
        var pending: [(UInt64, Bool)] = []
        var made = 0
        while !stop.isSet && made < 2 {
            await stop.sleep(seconds: 5)
            guard !stop.isSet else { return }
            for v in fleet where made < 2 {
                guard let account = try? await client.account(v.owner.address), account.balanceGrains >= Self.voucherPrice else { continue }
                do {
                    let s = try await v.ownerSender.submit(try PayloadBuilder.redeem(merchant: merchantAddress, itemID: "charging-voucher", vehicleID: v.id),
                                                           wait: .committed)
                    guard s.status.succeeded else {
                        recordError("redeem", s.status.failure.map { "\($0)" } ?? s.status.status.rawValue)
                        continue
                    }
                    guard let id = s.status.attribute("redemption", of: "redemption.created").flatMap({ UInt64($0) }) else {
                        recordError("redeem", "no redemption.created event in the result")
                        continue
                    }
                    made += 1
                    pending.append((id, made == 1))
                    stats.update { $0.redemptionsMade += 1 }
                    note("owner \(v.index) redeemed the charging voucher (redemption \(id)); 20 stones held in escrow")
                } catch {
                    recordError("redeem", error)
                }
            }
            while let (id, fulfil) = pending.first, !stop.isSet {
                do {
                    let s = try await merchant.submit(fulfil ? PayloadBuilder.fulfilRedemption(id) : PayloadBuilder.rejectRedemption(id), wait: .committed)
                    if s.status.succeeded {
                        stats.update { if fulfil { $0.redemptionsFulfilled += 1 } else { $0.redemptionsRejected += 1 } }
                        note("merchant \(fulfil ? "fulfilled" : "rejected") redemption \(id)\(fulfil ? "" : "; the stones went back")")
                    } else {
                        recordError("merchant", s.status.failure.map { "\($0)" } ?? s.status.status.rawValue)
                    }
                } catch {
                    recordError("merchant", error)
                }
                pending.removeFirst()
            }
        }
    }

    func progressLoop(clients: [QuarryClient], nodes: DevnetNodes, stop: StopSignal, seconds: UInt64) async {
        while !stop.isSet {
            await stop.sleep(seconds: seconds)
            guard !stop.isSet else { return }
            var heights: [String] = []
            for c in clients { heights.append((try? await c.status()).map { String($0.height) } ?? "-") }
            let supply = try? await client.supply()
            await updateSettled()
            stats.update { s in
                s.heights = heights
                if let supply {
                    s.lastSupply = supply
                    s.supplyChecks += 1
                    if !supply.isConserved { s.supplyViolations += 1 }
                }
            }
            let s = stats.snapshot
            let refused = s.claimsRefused.values.reduce(0, +)
            let supplyText = supply.map { $0.isConserved ? "supply ok" : "SUPPLY NOT CONSERVED" } ?? "supply ?"
            var line = "\(clock()) height \(heights.first ?? "-") [\(heights.joined(separator: " "))]"
            line += " | claims \(s.claimsAccepted) ok \(refused) refused"
            line += " | batches settled \(s.batchesSettled.count) | mileage paid \(stonesText(s.mileagePaid))"
            line += " | draws \(s.drawsText) | redeemed \(s.redemptionsMade) | \(supplyText)"
            say(line)
            if nodes.running == 0 {
                say("==> every node has stopped (see the logs)")
                stop.trigger()
            }
        }
    }

    /// Marks the claimed batches the ledger has settled.
    func updateSettled() async {
        let open = stats.snapshot.claimBatches.subtracting(stats.snapshot.batchesSettled)
        for b in open.sorted() {
            guard let batch = try? await client.batch(b, limit: 1) else { continue }
            if batch["status"]?.stringValue == "settled" { stats.update { _ = $0.batchesSettled.insert(b) } }
        }
    }
}
