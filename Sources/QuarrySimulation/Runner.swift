import QuarryCore
import QuarryConsensus

/// A deterministic run of 4 to 7 validators (plus a twin, if drawn) from one seed.
///
/// Phases: a chaotic phase (`chaosMilliseconds`) with the drawn faults, then the heal:
/// links restored, loss and duplication off, delays at most `healedDelayMax`, crashed
/// nodes restarted. Byzantine validators stay byzantine. The run ends when every honest
/// node has decided `heightsAfterHeal` heights beyond the highest height decided at the
/// heal, or with a liveness violation at heal + `livenessBoundMilliseconds`.
public final class Simulation {
    public let options: SimulationOptions
    let chainID = "quarry-sim"
    let genesisTime: UInt64 = 1_700_000_000_000
    var rng: SimRandom
    let registry = TestKeyRegistry()
    let verifier: TestVerifier
    let app: SimApplication
    var config: ConsensusConfig
    var validatorSets: [ValidatorSet] = []   // index h-1
    var nodes: [SimNode] = []
    var queue = EventQueue()
    var seq: UInt64 = 0
    var now: UInt64 = 0
    var blocked: [[Bool]] = []
    var lossPerMille: UInt64 = 0
    var duplicationPerMille: UInt64 = 0
    var delayMax: UInt64 = 10
    var healed = false
    var healTime: UInt64 = 0
    var heightAtHeal: Height = 0
    var trace: [TraceEntry] = []
    var traceNext = 0
    var violation: Violation? = nil
    // Checker state.
    var decidedIDs: [Hash256] = []          // index h-1: first honest decision
    var decidedTimes: [UInt64] = []
    var proposed: Set<Hash256> = []          // every value id a proposer signed
    var honestSigned: [SignKey: SignedContent] = [:]
    // Counters.
    var deliveries = 0
    var inputs = 0
    var crashes = 0
    var rejected = 0
    var evidenceCount = 0

    struct SignKey: Hashable { let validator: Int; let height: Height; let round: Round; let step: Step }
    struct SignedContent: Hashable { let id: Hash256?; let validRound: Round? }

    public init(options: SimulationOptions) {
        self.options = options
        rng = SimRandom(seed: options.seed)
        verifier = TestVerifier(registry: registry)
        app = SimApplication(chainID: chainID, genesisTime: genesisTime, verifier: verifier)
        config = ConsensusConfig(chainID: chainID, timeouts: options.timeouts)
        config.plantedBugs = options.plantedBugs
    }

    // MARK: - Set-up

    func setUp() -> [String] {
        let faults = options.faults
        let count = options.validatorCount ?? rng.int(4...7)
        var powers = options.powers ?? [UInt64](repeating: 1, count: count)
        if options.powers == nil && rng.chance(250) {
            for i in powers.indices { powers[i] = UInt64(rng.int(1...3)) }
        }
        let total = powers.reduce(0, +)
        var signers = [TestSigner]()
        for _ in 0..<count { signers.append(TestSigner(secret: rng.next(), registry: registry)) }
        let genesis = try! ValidatorSet(validators: zip(signers, powers).map { Validator(publicKey: $0.publicKey, power: $1) })
        validatorSets = [genesis]

        // Byzantine validators: a random subset with less than 1/3 of the power.
        var behaviours = [Behaviour](repeating: [], count: count)
        var byzantinePower: UInt64 = 0
        var twinOf: Int? = nil
        if faults.contains(.byzantine) || faults.contains(.twins) || options.forcedBehaviour != nil {
            let wanted = options.forcedBehaviour != nil ? 1 : rng.int(0...2)
            var order = Array(0..<count)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.below(UInt64(i + 1)))) }
            for i in order.prefix(wanted) where (byzantinePower + powers[i]) * 3 < total {
                var b: Behaviour
                if let forced = options.forcedBehaviour {
                    b = forced
                } else {
                    b = Behaviour(rawValue: UInt8(rng.below(32)))
                    if !faults.contains(.byzantine) { b = [] }
                    if faults.contains(.twins) && twinOf == nil && rng.chance(400) { b.insert(.twin) }
                    if b.isEmpty { b = faults.contains(.byzantine) ? .doubleVoter : .twin }
                }
                if b.contains(.twin) {
                    if twinOf != nil { b.remove(.twin); if b.isEmpty { b = .doubleVoter } } else { twinOf = i }
                }
                behaviours[i] = b
                byzantinePower += powers[i]
            }
        }
        var endpoints = Array(0..<count)
        if let t = twinOf { endpoints.append(t) }
        for (e, v) in endpoints.enumerated() {
            nodes.append(SimNode(endpoint: e, validator: v, signer: signers[v], behaviour: behaviours[v],
                                 core: ConsensusCore(config: config, signer: signers[v], verifier: verifier, signed: nil),
                                 lastCatchUp: [UInt64](repeating: 0, count: endpoints.count)))
        }
        for i in nodes.indices where faults.contains(.clockSkew) {
            nodes[i].skew = rng.below(options.clockSkewMax + 1)
        }
        blocked = [[Bool]](repeating: [Bool](repeating: false, count: nodes.count), count: nodes.count)

        // Network faults of the chaotic phase.
        if faults.contains(.loss) { lossPerMille = rng.below(max(options.lossPerMilleMax, 1)) }
        if faults.contains(.duplication) { duplicationPerMille = rng.below(100) }
        delayMax = faults.contains(.reordering) ? 5 + rng.below(80) : 5
        let chaos = options.chaosMilliseconds
        if faults.contains(.partitions) && chaos > 0 {
            var t = rng.below(300)
            while t < chaos {
                push(t, .partition)
                t += 100 + rng.below(500)
            }
        }
        if faults.contains(.crashes) && chaos > 0 {
            let crashCount = rng.int(0...3)
            for _ in 0..<crashCount {
                let n = Int(rng.below(UInt64(nodes.count)))
                let at = rng.below(chaos)
                push(at, .crash(node: n))
                let back = at + 50 + rng.below(800)
                if back < chaos { push(back, .restart(node: n)) }
            }
        }
        push(chaos, .heal)
        for i in nodes.indices { push(rng.below(options.gossipIntervalMilliseconds), .gossip(node: i)) }
        var byz = [String]()
        for i in 0..<count where !behaviours[i].isEmpty { byz.append("v\(i):\(behaviours[i])") }
        return byz
    }

    func push(_ at: UInt64, _ kind: EventKind) {
        seq += 1
        queue.push(Event(time: at, seq: seq, kind: kind))
    }

    func validators(at h: Height) -> ValidatorSet {
        while validatorSets.count < Int(h) { validatorSets.append(validatorSets.last!.nextHeight()) }
        return validatorSets[Int(h) - 1]
    }

    func note(_ node: Int, _ e: TraceEvent) {
        guard options.traceLength > 0 else { return }
        let entry = TraceEntry(time: now, node: node, event: e)
        if trace.count < options.traceLength { trace.append(entry) } else {
            trace[traceNext] = entry
            traceNext = (traceNext + 1) % options.traceLength
        }
    }

    func fail(_ kind: Violation.Kind, _ message: String) {
        guard violation == nil else { return }
        let ordered = Array(trace[traceNext...]) + Array(trace[..<traceNext])
        violation = Violation(kind: kind, message: message, seed: options.seed, time: now, trace: ordered.map(\.rendered))
    }

    // MARK: - Run

    public func run() -> SimulationReport {
        let byzantine = setUp()
        for i in nodes.indices { startHeight(i, 1) }
        let hardStop = options.chaosMilliseconds + options.livenessBoundMilliseconds
        while violation == nil, let e = queue.pop() {
            if e.time > hardStop { now = hardStop; break }
            now = e.time
            dispatch(e.kind)
            if healed && allHonestReached(heightAtHeal + options.heightsAfterHeal) { break }
        }
        if violation == nil && !allHonestReached(heightAtHeal + 1) {
            let lagging = nodes.filter { $0.honest && $0.decidedHeight < heightAtHeal + 1 }.map { "n\($0.endpoint)@\($0.decidedHeight)" }
            fail(.liveness, "no new height within \(options.livenessBoundMilliseconds) ms after the heal at t=\(healTime) "
                 + "(height at heal \(heightAtHeal); lagging: \(lagging.joined(separator: " ")))")
        }
        var fp: UInt64 = options.seed
        for id in decidedIDs { fp = TestMAC.mix(fp ^ TestMAC.tag(key: fp, id.bytes).0) }
        fp = TestMAC.mix(fp ^ UInt64(deliveries) ^ UInt64(inputs) << 20 ^ now << 40)
        return SimulationReport(seed: options.seed, validators: validatorSets[0].count, endpoints: nodes.count,
                                byzantine: byzantine, decidedHeight: Height(decidedIDs.count), deliveries: deliveries,
                                inputs: inputs, crashes: crashes, evidence: evidenceCount, rejectedInputs: rejected,
                                simulatedMilliseconds: now, fingerprint: fp, violation: violation)
    }

    /// One line per node: its core's position, for diagnosing a failing seed.
    public var nodeStates: [String] {
        nodes.map { n in
            let c = n.core
            return "n\(n.endpoint) v\(n.validator) \(n.behaviour) alive=\(n.alive) h=\(c.height) r=\(c.round) \(c.step) "
                + "decided=\(c.decided) locked=\(c.lockedRound.map(String.init) ?? "-") valid=\(c.validRound.map(String.init) ?? "-") "
                + "deadline=\(c.nextDeadline.map { String(Int64($0) - Int64(genesisTime + now + n.skew)) } ?? "none") "
                + "refused=\(c.refusedSignatures) own=\(c.ownMessages.count) last=\(n.disk.signed?.latest.map { "\($0.height)/\($0.round)/\($0.step)" } ?? "-")"
        }
    }

    func allHonestReached(_ h: Height) -> Bool {
        for n in nodes where n.honest && n.decidedHeight < h { return false }
        return true
    }

    func dispatch(_ kind: EventKind) {
        switch kind {
        case .deliver(let from, let to, let payload):
            guard nodes[to].alive else { return }
            deliveries += 1
            tickIfNeeded(to)
            deliver(from: from, to: to, payload)
        case .timer(let node, let generation):
            guard nodes[node].alive, nodes[node].timerGeneration == generation else { return }
            nodes[node].timerAt = nil
            tickIfNeeded(node)
            scheduleTimer(node)
        case .gossip(let node):
            push(now + options.gossipIntervalMilliseconds, .gossip(node: node))
            guard nodes[node].alive else { return }
            tickIfNeeded(node)
            gossip(node)
        case .crash(let node):
            crash(node)
        case .restart(let node):
            restart(node)
        case .partition:
            if !healed { changePartition() }
        case .heal:
            heal()
        }
    }

    // MARK: - Network

    func send(from: Int, to: Int, _ payload: Payload) {
        guard from != to else { return }
        if !healed {
            if blocked[from][to] { return }
            if lossPerMille > 0 && rng.chance(lossPerMille) { return }
        }
        let maxDelay = healed ? options.healedDelayMax : delayMax
        push(now + 1 + rng.below(maxDelay), .deliver(from: from, to: to, payload))
        if !healed && duplicationPerMille > 0 && rng.chance(duplicationPerMille) {
            push(now + 1 + rng.below(maxDelay * 2), .deliver(from: from, to: to, payload))
        }
    }

    func broadcast(from: Int, _ payload: Payload) {
        for to in nodes.indices where to != from { send(from: from, to: to, payload) }
    }

    func changePartition() {
        let n = nodes.count
        for i in 0..<n { for j in 0..<n { blocked[i][j] = false } }
        switch rng.below(4) {
        case 0:
            var side = [Bool](repeating: false, count: n)
            for i in 0..<n { side[i] = rng.chance(500) }
            for i in 0..<n { for j in 0..<n where side[i] != side[j] { blocked[i][j] = true } }
            note(-1, .partition("symmetric split \(side.map { $0 ? "A" : "B" }.joined())"))
        case 1:
            let a = Int(rng.below(UInt64(n)))
            for j in 0..<n where j != a { blocked[a][j] = true }
            note(-1, .partition("one-way: n\(a) cannot send"))
        case 2:
            let cuts = rng.int(1...n)
            for _ in 0..<cuts {
                let a = Int(rng.below(UInt64(n))), b = Int(rng.below(UInt64(n)))
                blocked[a][b] = true
                blocked[b][a] = true
            }
            note(-1, .partition("\(cuts) links cut"))
        default:
            note(-1, .partition("all links up"))
        }
    }

    func heal() {
        healed = true
        healTime = now
        for i in 0..<nodes.count { for j in 0..<nodes.count { blocked[i][j] = false } }
        heightAtHeal = nodes.filter(\.honest).map(\.decidedHeight).max() ?? 0
        note(-1, .heal)
        for i in nodes.indices where !nodes[i].alive { restart(i) }
    }

    // MARK: - Driver

    func localTime(_ i: Int) -> UInt64 { genesisTime + now + nodes[i].skew }

    func tickIfNeeded(_ i: Int) {
        let t = localTime(i)
        guard t > nodes[i].lastTick else { return }
        nodes[i].lastTick = t
        process(i, .tick(t))
    }

    func scheduleTimer(_ i: Int) {
        guard let deadline = nodes[i].core.nextDeadline else { return }
        let local = localTime(i)
        let at = deadline > local ? now + (deadline - local) : now + 1
        if let existing = nodes[i].timerAt, existing <= at { return }
        nodes[i].timerGeneration += 1
        nodes[i].timerAt = at
        push(at, .timer(node: i, generation: nodes[i].timerGeneration))
    }

    /// Logs the input in the WAL, hands it to the core, then carries out the Ready.
    func process(_ i: Int, _ input: ConsensusInput, log: Bool = true) {
        guard nodes[i].alive, violation == nil else { return }
        inputs += 1
        if log { nodes[i].disk.walUnsynced.append(contentsOf: WALFormat.encodeRecord(input)) }
        let ready: Ready
        do {
            ready = try nodes[i].core.handle(input)
        } catch {
            rejected += 1
            note(i, .rejected(error.code))
            return
        }
        apply(i, ready)
    }

    func apply(_ i: Int, _ ready: Ready) {
        if let signed = ready.signed {
            // Sync the WAL, then save the signed record, before anything is sent.
            nodes[i].disk.syncWAL()
            nodes[i].disk.signed = signed
        }
        for m in ready.broadcast { sendOwn(i, m) }
        evidenceCount += ready.evidence.count
        if let d = ready.decision {
            decided(i, d)
            return
        }
        if let req = ready.valueRequest { proposeValue(i, height: req.height, round: req.round) }
        let h = nodes[i].core.height
        for v in ready.validationRequests {
            let prev = previous(i, h)
            process(i, .validation(height: h, blockID: v.id, valid: app.isValid(v, height: h, previous: prev)))
        }
        scheduleTimer(i)
    }

    func previous(_ i: Int, _ h: Height) -> (decision: Decision, validators: ValidatorSet)? {
        guard h > 1, nodes[i].disk.blocks.count >= Int(h - 1) else { return nil }
        return (nodes[i].disk.blocks[Int(h) - 2], validators(at: h - 1))
    }

    func proposeValue(_ i: Int, height h: Height, round r: Round) {
        let node = nodes[i]
        let invalid = node.behaviour.contains(.invalidProposer) && rng.chance(600)
        let v = app.makeValue(height: h, round: r, proposer: UInt16(node.validator), previous: previous(i, h),
                              nonce: rng.next(), invalid: invalid)
        process(i, .proposalValue(height: h, round: r, value: v))
    }

    func decided(_ i: Int, _ d: Decision) {
        note(i, .decided(height: d.height, round: d.round, id: d.value.id))
        nodes[i].disk.blocks.append(d)
        precondition(nodes[i].disk.blocks.count == Int(d.height), "simulator: decisions out of order")
        if nodes[i].honest { checkDecision(i, d) }
        startHeight(i, d.height + 1)
    }

    func startHeight(_ i: Int, _ h: Height) {
        // A new height starts a new WAL (the previous heights live in the block store).
        nodes[i].disk.walSynced = WALFormat.magic
        nodes[i].disk.walUnsynced = []
        let time = h == 1 ? genesisTime : nodes[i].disk.blocks[Int(h) - 2].value.time
        process(i, .start(HeightStart(height: h, validators: validators(at: h), previousBlockTime: time)))
        nodes[i].disk.syncWAL()
    }

    func sendOwn(_ i: Int, _ m: ConsensusMessage) {
        let node = nodes[i]
        recordSigned(i, m)
        let b = node.behaviour
        if b.contains(.equivocatingProposer) || b.contains(.doubleVoter), let other = conflicting(i, m) {
            recordSigned(i, other)
            let a = m.canonicalBytes, b = other.canonicalBytes
            for to in nodes.indices where to != i {
                send(from: i, to: to, .consensus(rng.chance(500) ? a : b))
            }
            return
        }
        broadcast(from: i, .consensus(m.canonicalBytes))
    }

    /// A second, conflicting message a byzantine node signs with its own key.
    func conflicting(_ i: Int, _ m: ConsensusMessage) -> ConsensusMessage? {
        let node = nodes[i]
        switch m {
        case .proposal(let p):
            guard node.behaviour.contains(.equivocatingProposer) else { return nil }
            let v = app.makeValue(height: p.height, round: p.round, proposer: p.proposer, previous: previous(i, p.height),
                                  nonce: rng.next())
            let sig = try! node.signer.sign(proposalSignBytes(chainID: chainID, height: p.height, round: p.round,
                                                              validRound: nil, blockID: v.id))
            return .proposal(Proposal(height: p.height, round: p.round, validRound: nil, value: v, proposer: p.proposer, signature: sig))
        case .vote(let v):
            guard node.behaviour.contains(.doubleVoter) else { return nil }
            // Vote for another value proposed in this round if there is one (the most
            // damaging choice), else for nil or a made-up id.
            let other = node.seenProposals.last { $0.0 == v.height && $0.1 == v.round && $0.2 != v.blockID }?.2
            let id: Hash256? = other ?? (v.blockID == nil ? TestMAC.digest([UInt8(truncatingIfNeeded: rng.next())]) : nil)
            let sig = try! node.signer.sign(voteSignBytes(chainID: chainID, type: v.type, height: v.height, round: v.round,
                                                          blockID: id, timestamp: v.timestamp))
            return .vote(Vote(type: v.type, height: v.height, round: v.round, blockID: id, timestamp: v.timestamp,
                              validator: v.validator, signature: sig))
        }
    }

    func recordSigned(_ i: Int, _ m: ConsensusMessage) {
        let node = nodes[i]
        let key: SignKey
        let content: SignedContent
        switch m {
        case .proposal(let p):
            proposed.insert(p.value.id)
            key = SignKey(validator: node.validator, height: p.height, round: p.round, step: .propose)
            content = SignedContent(id: p.value.id, validRound: p.validRound)
            note(i, .sent(height: p.height, round: p.round, step: .propose, id: p.value.id))
        case .vote(let v):
            key = SignKey(validator: node.validator, height: v.height, round: v.round, step: v.type.step)
            content = SignedContent(id: v.blockID, validRound: nil)
            note(i, .sent(height: v.height, round: v.round, step: v.type.step, id: v.blockID))
        }
        guard node.honest else { return }
        if let earlier = honestSigned[key] {
            if earlier != content {
                fail(.doubleSign, "honest validator \(node.validator) signed two different \(key.step) messages at h=\(key.height) r=\(key.round)")
            }
        } else {
            honestSigned[key] = content
        }
    }

    func deliver(from: Int, to: Int, _ payload: Payload) {
        switch payload {
        case .consensus(let bytes):
            guard let m = try? ConsensusMessage(canonicalBytes: bytes) else {
                rejected += 1
                return
            }
            catchUp(node: to, peer: from, peerHeight: m.height)
            if case .proposal(let p) = m, !nodes[to].honest {
                nodes[to].seenProposals.append((p.height, p.round, p.value.id))
                if nodes[to].seenProposals.count > 8 { nodes[to].seenProposals.removeFirst() }
            }
            process(to, .message(m))
        case .status(let h):
            catchUp(node: to, peer: from, peerHeight: h)
        case .commit(let cert, let value):
            guard cert.height == nodes[to].core.height, !nodes[to].core.decided else { return }
            process(to, .commit(cert, value))
        }
    }

    /// Block sync, simplified: a node that has decided the height a peer is at sends it the
    /// decided value and certificate (at most once per half gossip interval per peer).
    func catchUp(node: Int, peer: Int, peerHeight h: Height) {
        guard h >= 1, h <= UInt64(nodes[node].disk.blocks.count),
              now >= nodes[node].lastCatchUp[peer] + options.gossipIntervalMilliseconds / 2 else { return }
        nodes[node].lastCatchUp[peer] = now
        let d = nodes[node].disk.blocks[Int(h) - 1]
        send(from: node, to: peer, .commit(d.certificate, d.value))
    }

    /// Periodic re-gossip of this node's own messages at its height: everything of the
    /// last two rounds; proposals and prevotes for a value of older rounds every other
    /// time (the polkas that lines 28 and 36 need); and its height.
    func gossip(_ i: Int) {
        nodes[i].gossipCount += 1
        let core = nodes[i].core
        let r = core.round
        let old = nodes[i].gossipCount % 2 == 0
        for m in core.ownMessages where m.height == core.height {
            var send = m.round + 1 >= r
            if !send && old {
                switch m {
                case .proposal: send = true
                case .vote(let v): send = v.type == .prevote && v.blockID != nil
                }
            }
            if send { broadcast(from: i, .consensus(m.canonicalBytes)) }
        }
        if old { for m in core.polkaVotes { broadcast(from: i, .consensus(m.canonicalBytes)) } }
        broadcast(from: i, .status(core.height))
        let b = nodes[i].behaviour
        if b.contains(.absurdRounds) { sendAbsurd(i) }
        if b.contains(.malformed) { sendMalformed(i) }
    }

    func sendAbsurd(_ i: Int) {
        let node = nodes[i]
        let h = node.core.height
        let choices: [(Height, Round)] = [(h, UInt32.max - UInt32(rng.below(3))), (h, node.core.round + 1_000_000),
                                          (h &+ 1_000_000, 0), (0, 0), (UInt64.max, UInt32.max)]
        let (height, round) = choices[Int(rng.below(UInt64(choices.count)))]
        let type: VoteType = rng.chance(500) ? .prevote : .precommit
        let ts = localTime(i)
        let sig = try! node.signer.sign(voteSignBytes(chainID: chainID, type: type, height: height, round: round, blockID: nil, timestamp: ts))
        broadcast(from: i, .consensus(ConsensusMessage.vote(Vote(type: type, height: height, round: round, blockID: nil,
                                                                   timestamp: ts, validator: UInt16(node.validator), signature: sig)).canonicalBytes))
    }

    func sendMalformed(_ i: Int) {
        let node = nodes[i]
        let h = node.core.height
        let sig = try! node.signer.sign(voteSignBytes(chainID: chainID, type: .prevote, height: h, round: node.core.round,
                                                      blockID: nil, timestamp: localTime(i)))
        let good = ConsensusMessage.vote(Vote(type: .prevote, height: h, round: node.core.round, blockID: nil, timestamp: localTime(i),
                                              validator: UInt16(node.validator), signature: sig)).canonicalBytes
        var bytes: [UInt8]
        switch rng.below(6) {
        case 0: bytes = (0..<rng.int(0...40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        case 1: bytes = Array(good.prefix(rng.int(0...(good.count - 1))))
        case 2: bytes = good; bytes[bytes.count - 1] ^= 0x01                      // bad signature
        case 3: bytes = good; bytes[good.count - 16 - 1 - 2] = 0xFF               // unknown validator index
        case 4: bytes = good + [0]                                                 // trailing byte
        default:
            // Someone else's vote forged with this node's key: must fail verification.
            let victim = (node.validator + 1) % validatorSets[0].count
            bytes = ConsensusMessage.vote(Vote(type: .precommit, height: h, round: node.core.round, blockID: TestMAC.digest([1]),
                                               timestamp: localTime(i), validator: UInt16(victim), signature: sig)).canonicalBytes
        }
        broadcast(from: i, .consensus(bytes))
    }

    // MARK: - Crashes

    func crash(_ i: Int) {
        guard nodes[i].alive, !healed else { return }
        crashes += 1
        nodes[i].alive = false
        nodes[i].timerGeneration += 1
        nodes[i].timerAt = nil
        // Unsynced writes: a random prefix survives (a torn tail), sometimes with garbage.
        let unsynced = nodes[i].disk.walUnsynced
        var kept = Array(unsynced.prefix(Int(rng.below(UInt64(unsynced.count + 1)))))
        if rng.chance(200) { kept.append(contentsOf: (0..<rng.int(1...12)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }) }
        nodes[i].disk.walSynced.append(contentsOf: kept)
        nodes[i].disk.walUnsynced = []
        let lost = rng.chance(options.walLossPerMille)
        if lost { nodes[i].disk.walSynced = [] }
        note(i, .crashed(walKept: kept.count, walLost: lost))
    }

    func restart(_ i: Int) {
        guard !nodes[i].alive else { return }
        let node = nodes[i]
        nodes[i].alive = true
        nodes[i].lastTick = 0
        nodes[i].core = ConsensusCore(config: config, signer: node.signer, verifier: verifier, signed: node.disk.signed)
        let height = node.decidedHeight + 1
        var replay = [ConsensusInput]()
        if let scan = try? WALFormat.scan(node.disk.walSynced) {
            nodes[i].disk.walSynced = Array(node.disk.walSynced.prefix(max(scan.validLength, WALFormat.magic.count)))
            if scan.validLength < WALFormat.magic.count { nodes[i].disk.walSynced = WALFormat.magic }
            replay = WALFormat.replayInputs(scan.inputs, height: height)
        } else {
            nodes[i].disk.walSynced = WALFormat.magic
        }
        note(i, .restarted(height: height, replayed: replay.count))
        if replay.isEmpty {
            startHeight(i, height)
            return
        }
        // Replay without re-logging; outputs are carried out as usual (the guard makes
        // re-sent votes identical to the originals).
        for input in replay {
            guard nodes[i].alive, nodes[i].decidedHeight + 1 == height else { break }
            process(i, input, log: false)
        }
        tickIfNeeded(i)
        scheduleTimer(i)
    }

    // MARK: - Checks

    func checkDecision(_ i: Int, _ d: Decision) {
        let h = Int(d.height)
        if decidedIDs.count >= h {
            if decidedIDs[h - 1] != d.value.id {
                fail(.agreement, "n\(i) decided \(d.value.id.hex.prefix(8)) at h=\(h), another honest node decided \(decidedIDs[h - 1].hex.prefix(8))")
            }
            return
        }
        precondition(decidedIDs.count == h - 1, "simulator: honest decisions skipped a height")
        guard proposed.contains(d.value.id) else { return fail(.validity, "h=\(h): decided value was never proposed") }
        do {
            try d.certificate.verify(chainID: chainID, validators: validators(at: d.height), verifier: verifier)
        } catch {
            return fail(.validity, "h=\(h): decided without a valid commit certificate: \(error)")
        }
        guard d.certificate.blockID == d.value.id, d.certificate.height == d.height else {
            return fail(.validity, "h=\(h): certificate is for another block")
        }
        guard app.isValid(d.value, height: d.height, previous: previous(i, d.height)) else {
            return fail(.validity, "h=\(h): decided a value the application rejects")
        }
        if let last = decidedTimes.last, d.value.time <= last {
            return fail(.blockTime, "h=\(h): block time \(d.value.time) does not exceed the previous \(last)")
        }
        if d.value.time > genesisTime + now + options.clockSkewMax {
            return fail(.blockTime, "h=\(h): block time \(d.value.time) is ahead of every honest clock")
        }
        decidedIDs.append(d.value.id)
        decidedTimes.append(d.value.time)
    }
}
