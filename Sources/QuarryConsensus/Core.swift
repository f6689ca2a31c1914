import QuarryCore

/// Votes of one type in one round, indexed by validator, with power tallies.
///
/// As in Algorithm 1, where a process counts the messages it has received, a validator
/// that equivocates counts toward the tally of each value it voted for: safety never rests
/// on byzantine votes, but liveness needs every honest node to be able to see a polka that
/// one honest node saw, byzantine votes included. The first vote of each validator is
/// kept; a conflicting one is kept (and counted) only if it is for nil or for a value
/// proposed at this height (junk ids cannot matter to any rule), at most
/// `conflictingVotesMax` of them; every conflict is evidence.
struct VoteTally: Sendable {
    static let conflictingVotesMax = 8
    var votes: [Vote?]
    var conflicting: [[Vote]]
    var anyPower: UInt64 = 0
    /// (block id or nil, power); at most one entry per distinct id.
    var powers: [(id: Hash256?, power: UInt64)] = []

    init(count: Int) {
        votes = [Vote?](repeating: nil, count: count)
        conflicting = [[Vote]](repeating: [], count: count)
    }

    /// Adds a verified vote; returns the earlier vote when this one equivocates.
    mutating func insert(_ v: Vote, power: UInt64, keepConflicting: Bool) -> Vote? {
        let i = Int(v.validator)
        guard let first = votes[i] else {
            votes[i] = v
            anyPower += power
            addPower(power, for: v.blockID)
            return nil
        }
        if first.blockID == v.blockID || conflicting[i].contains(where: { $0.blockID == v.blockID }) { return nil }
        if keepConflicting && conflicting[i].count < VoteTally.conflictingVotesMax {
            conflicting[i].append(v)
            addPower(power, for: v.blockID)
        }
        return first
    }

    func power(for id: Hash256?) -> UInt64 {
        for p in powers where p.id == id { return p.power }
        return 0
    }

    /// Every kept vote for `id`.
    func votes(for id: Hash256?) -> [Vote] {
        var out = [Vote]()
        for v in votes { if let v, v.blockID == id { out.append(v) } }
        for list in conflicting { for v in list where v.blockID == id { out.append(v) } }
        return out
    }


    private mutating func addPower(_ power: UInt64, for id: Hash256?) {
        for i in powers.indices where powers[i].id == id {
            powers[i].power += power
            return
        }
        powers.append((id, power))
    }
}

struct RoundState: Sendable {
    var proposal: Proposal?
    var prevotes: VoteTally
    var precommits: VoteTally
    var prevoteTimeoutScheduled = false
    var precommitTimeoutScheduled = false
    var polkaHandled = false  // line 36 fires once per round

    init(count: Int) {
        prevotes = VoteTally(count: count)
        precommits = VoteTally(count: count)
    }
}

struct ScheduledTimeout: Hashable, Sendable {
    let step: Step
    let height: Height
    let round: Round
    let deadline: UInt64
}

/// Tendermint consensus for one validator (Algorithm 1 of arXiv:1807.04938), sans I/O.
///
/// The driver owns the value, hands it inputs one at a time with `handle(_:)` (after
/// logging each in the WAL), and carries out the returned `Ready`. Nothing here reads a
/// clock, touches a disk or socket, or draws randomness.
public struct ConsensusCore: Sendable {
    public let config: ConsensusConfig
    private let signer: (any ConsensusSigner)?
    private let verifier: any SignatureVerifier

    public private(set) var height: Height = 0
    public private(set) var round: Round = 0
    public private(set) var step: Step = .propose
    public private(set) var started = false
    public private(set) var decided = false
    public private(set) var validators: ValidatorSet? = nil
    public private(set) var myIndex: Int? = nil
    public private(set) var previousBlockTime: UInt64 = 0
    public private(set) var now: UInt64 = 0

    public private(set) var lockedValue: ProposalValue? = nil
    public private(set) var lockedRound: Round? = nil
    public private(set) var validValue: ProposalValue? = nil
    public private(set) var validRound: Round? = nil

    /// What this node last signed (restored from durable storage at start-up).
    public private(set) var signedState: SignedState
    /// Signatures the guard refused (a restarted node asked to sign something conflicting).
    public private(set) var refusedSignatures = 0
    /// Evidence of equivocation seen at the current height.
    public private(set) var evidence: [Evidence] = []
    /// This node's own messages at the current height, for periodic re-gossip.
    public private(set) var ownMessages: [ConsensusMessage] = []

    private var schedule: ProposerSchedule? = nil
    private var rounds: [Round: RoundState] = [:]
    private var highestRound: [Round?] = []
    private var validity: [Hash256: Bool] = [:]
    private var proposalIDs: Set<Hash256> = []
    private var validationRequested: Set<Hash256> = []
    private var awaitingValue: Round? = nil
    private var timeouts: [ScheduledTimeout] = []
    private var nextHeightBuffer: [ConsensusMessage] = []
    private var ready = Ready()

    /// `signed` is the state the driver saved; pass nil only for a validator that has never
    /// signed. `signer` nil runs a non-validating observer.
    public init(config: ConsensusConfig, signer: (any ConsensusSigner)?, verifier: any SignatureVerifier,
                signed: SignedState?) {
        self.config = config
        self.signer = signer
        self.verifier = verifier
        self.signedState = config.plantedBugs.contains(.forgetLastSignedOnRestart) ? SignedState() : (signed ?? SignedState())
    }

    /// The prevotes behind `validValue` (2f+1 for it in `validRound`). A proposer that
    /// re-proposes validValue relies on the others seeing them (line 28), so drivers
    /// re-gossip them with the node's own messages.
    public var polkaVotes: [ConsensusMessage] {
        guard let vr = validRound, let v = validValue, let rs = rounds[vr] else { return [] }
        return rs.prevotes.votes(for: v.id).map { .vote($0) }
    }

    /// Earliest pending timeout, so the driver knows when to tick next.
    public var nextDeadline: UInt64? { timeouts.map(\.deadline).min() }

    /// Proposer of a round at the current height.
    public mutating func proposer(round r: Round) -> Int? {
        guard schedule != nil else { return nil }
        return schedule!.proposer(round: r)
    }

    /// Hands the core one input. Bad input throws and leaves the state unchanged.
    public mutating func handle(_ input: ConsensusInput) throws(ConsensusError) -> Ready {
        ready = Ready()
        switch input {
        case .start(let s): try start(s)
        case .tick(let t): tick(t)
        case .message(let m): try receive(m)
        case .proposalValue(let h, let r, let v): proposalValue(height: h, round: r, value: v)
        case .validation(let h, let id, let ok): validation(height: h, blockID: id, valid: ok)
        case .commit(let c, let v): try commit(c, value: v)
        }
        let out = ready
        ready = Ready()
        return out
    }

    // MARK: - Inputs

    private mutating func start(_ s: HeightStart) throws(ConsensusError) {
        guard !started || s.height > height else { throw .wrongHeight(expected: height + 1, got: s.height) }
        guard s.height > 0 else { throw .invalidInput("height 0 cannot be started") }
        started = true
        decided = false
        height = s.height
        validators = s.validators
        previousBlockTime = s.previousBlockTime
        myIndex = signer.flatMap { s.validators.index(of: $0.publicKey) }
        schedule = ProposerSchedule(s.validators)
        rounds = [:]
        highestRound = [Round?](repeating: nil, count: s.validators.count)
        validity = [:]
        proposalIDs = []
        validationRequested = []
        awaitingValue = nil
        timeouts = []
        lockedValue = nil
        lockedRound = nil
        validValue = nil
        validRound = nil
        evidence = []
        ownMessages = []
        let buffered = nextHeightBuffer
        nextHeightBuffer = []
        // Votes this node signed at this height before a restart count and are re-gossiped.
        if let me = myIndex {
            for r in signedState.records where r.height == height && r.step != .propose {
                let type: VoteType = r.step == .prevote ? .prevote : .precommit
                let v = Vote(type: type, height: height, round: r.round, blockID: r.blockID, timestamp: r.timestamp,
                             validator: UInt16(me), signature: r.signature)
                if UInt64(r.round) <= UInt64(round) + UInt64(config.futureRoundWindow) {
                    storeVote(v)
                    ownMessages.append(.vote(v))
                }
            }
        }
        startRound(0)
        for m in buffered where m.height == height {
            try? receive(m)
        }
    }

    private mutating func tick(_ t: UInt64) {
        if t > now { now = t }
        guard started else { return }
        while !decided {
            guard let i = timeouts.indices.filter({ timeouts[$0].deadline <= now })
                .min(by: { (timeouts[$0].deadline, timeouts[$0].step.rawValue) < (timeouts[$1].deadline, timeouts[$1].step.rawValue) })
            else { return }
            let t = timeouts.remove(at: i)
            fire(t)
        }
    }

    private mutating func proposalValue(height h: Height, round r: Round, value: ProposalValue) {
        guard started, !decided, h == height, r == round, step == .propose, awaitingValue == r,
              let me = myIndex, schedule!.proposer(round: r) == me else { return }
        awaitingValue = nil
        validity[value.id] = true
        broadcastProposal(value: value, validRound: nil)
        evaluate()
    }

    private mutating func validation(height h: Height, blockID: Hash256, valid: Bool) {
        guard started, !decided, h == height, validationRequested.contains(blockID), validity[blockID] == nil else { return }
        validity[blockID] = valid
        evaluate()
        for r in rounds.keys.sorted() where rounds[r]?.proposal?.value.id == blockID {
            checkDecision(round: r)
        }
    }

    private mutating func commit(_ c: CommitCertificate, value: ProposalValue) throws(ConsensusError) {
        guard started, !decided, c.height == height else { return }
        guard c.blockID == value.id else { throw .invalidCertificate("value id does not match the certificate") }
        try c.verify(chainID: config.chainID, validators: validators!, verifier: verifier,
                     quorumInclusive: config.plantedBugs.contains(.quorumInclusive))
        decide(value: value, certificate: c)
    }

    private mutating func receive(_ m: ConsensusMessage) throws(ConsensusError) {
        guard started else { return }
        if m.height == height &+ 1 {
            if nextHeightBuffer.count < config.nextHeightBufferMax { nextHeightBuffer.append(m) }
            return
        }
        guard m.height == height, !decided else { return }
        let vals = validators!
        let sender = Int(m.sender)
        guard sender < vals.count else { throw .unknownValidator(index: sender) }
        let beyondWindow = UInt64(m.round) > UInt64(round) + UInt64(config.futureRoundWindow)
        switch m {
        case .proposal(let p):
            if beyondWindow { return }
            let expected = schedule!.proposer(round: p.round)
            guard sender == expected else { throw .wrongProposer(round: p.round, expected: expected, got: sender) }
            if let vr = p.validRound, vr >= p.round { throw .invalidValidRound(round: p.round, validRound: vr) }
            guard verifier.isValid(signature: p.signature, message: p.signBytes(chainID: config.chainID),
                                   publicKey: vals.validators[sender].publicKey) else {
                throw .invalidSignature("proposal h=\(p.height) r=\(p.round) from \(sender)")
            }
            storeProposal(p)
        case .vote(let v):
            guard verifier.isValid(signature: v.signature, message: v.signBytes(chainID: config.chainID),
                                   publicKey: vals.validators[sender].publicKey) else {
                throw .invalidSignature("\(v.type) h=\(v.height) r=\(v.round) from \(sender)")
            }
            if !beyondWindow { storeVote(v) }
        }
        noteRound(sender: sender, round: m.round)
        if m.round > round {
            skipRoundIfNeeded()
        } else if m.round == round {
            evaluate()
        }
        checkDecision(round: m.round)
    }

    // MARK: - Storage

    private mutating func roundState(_ r: Round) -> RoundState {
        rounds[r] ?? RoundState(count: validators!.count)
    }

    private mutating func storeProposal(_ p: Proposal) {
        var rs = roundState(p.round)
        if let existing = rs.proposal {
            if existing != p { addEvidence(.proposal(existing), .proposal(p)) }
            return
        }
        rs.proposal = p
        rounds[p.round] = rs
        let id = p.value.id
        proposalIDs.insert(id)
        if validity[id] == nil && !validationRequested.contains(id) {
            if config.plantedBugs.contains(.skipValueValidation) {
                validity[id] = true
            } else {
                validationRequested.insert(id)
                ready.validationRequests.append(p.value)
            }
        }
    }

    private mutating func storeVote(_ v: Vote) {
        var rs = roundState(v.round)
        let power = validators!.validators[Int(v.validator)].power
        let earlier: Vote?
        let keep = v.blockID.map { proposalIDs.contains($0) } ?? true
        switch v.type {
        case .prevote: earlier = rs.prevotes.insert(v, power: power, keepConflicting: keep)
        case .precommit: earlier = rs.precommits.insert(v, power: power, keepConflicting: keep)
        }
        rounds[v.round] = rs
        if let earlier { addEvidence(.vote(earlier), .vote(v)) }
    }

    private mutating func addEvidence(_ a: ConsensusMessage, _ b: ConsensusMessage) {
        let e = Evidence(first: a, second: b)
        guard evidence.count < config.evidenceMax, !evidence.contains(e) else { return }
        evidence.append(e)
        ready.evidence.append(e)
    }

    private mutating func noteRound(sender: Int, round r: Round) {
        if let h = highestRound[sender], h >= r { return }
        highestRound[sender] = r
    }

    private func quorum(_ power: UInt64) -> Bool {
        if config.plantedBugs.contains(.quorumInclusive) { return power * 3 >= validators!.totalPower * 2 }
        return validators!.isQuorum(power)
    }

    private func isValid(_ id: Hash256) -> Bool? {
        if config.plantedBugs.contains(.skipValueValidation) { return true }
        return validity[id]
    }

    // MARK: - Algorithm 1

    /// StartRound(r), lines 11-21.
    private mutating func startRound(_ r: Round) {
        round = r
        step = .propose
        timeouts.removeAll { $0.round < r }
        awaitingValue = nil
        if let me = myIndex, schedule!.proposer(round: r) == me {
            if let v = validValue {
                broadcastProposal(value: v, validRound: validRound)
            } else {
                awaitingValue = r
                ready.valueRequest = (height, r)
            }
        }
        // Algorithm 1 schedules timeoutPropose only at non-proposers; scheduling it for the
        // proposer too is harmless (it only prevotes nil if still in propose) and keeps a
        // proposer whose signature was refused from stalling.
        scheduleTimeout(.propose, round: r)
        evaluate()
    }

    private mutating func scheduleTimeout(_ s: Step, round r: Round) {
        let d = now &+ config.timeouts.duration(s, round: r)
        timeouts.append(ScheduledTimeout(step: s, height: height, round: r, deadline: d < now ? UInt64.max : d))
    }

    /// Lines 57-67.
    private mutating func fire(_ t: ScheduledTimeout) {
        guard t.height == height, t.round == round else { return }
        switch t.step {
        case .propose:
            if step == .propose { castVote(.prevote, nil) }
        case .prevote:
            if step == .prevote { castVote(.precommit, nil) }
        case .precommit:
            startRound(round + 1)
            return
        }
        evaluate()
    }

    /// Rules of the current round (lines 22-48), repeated until none fires.
    private mutating func evaluate() {
        var progressed = true
        while progressed && !decided {
            progressed = false
            let r = round
            guard var rs = rounds[r] else { return }
            let skipLock = config.plantedBugs.contains(.skipLockCheck)
            // Lines 22 and 28: the proposal of this round while in propose.
            if step == .propose, let p = rs.proposal {
                let id = p.value.id
                if let vr = p.validRound {
                    let polka = rounds[vr].map { quorum($0.prevotes.power(for: id)) } ?? false
                    if vr < r, polka, let valid = isValid(id) {
                        let ok = valid && (skipLock || lockedRound.map { $0 <= vr } ?? true || lockedValue?.id == id)
                        castVote(.prevote, ok ? id : nil)
                        progressed = true
                    }
                } else if let valid = isValid(id) {
                    let ok = valid && (skipLock || lockedRound == nil || lockedValue?.id == id)
                    castVote(.prevote, ok ? id : nil)
                    progressed = true
                }
                if progressed { continue }
            }
            // Line 34: 2f+1 prevotes for anything -> timeoutPrevote.
            if step == .prevote && quorum(rs.prevotes.anyPower) && !rs.prevoteTimeoutScheduled {
                rs.prevoteTimeoutScheduled = true
                rounds[r] = rs
                scheduleTimeout(.prevote, round: r)
            }
            // Line 36: proposal + 2f+1 prevotes for its value, value valid, step >= prevote.
            if step >= .prevote, !rs.polkaHandled, let p = rs.proposal,
               quorum(rs.prevotes.power(for: p.value.id)), isValid(p.value.id) == true {
                rs.polkaHandled = true
                rounds[r] = rs
                if step == .prevote {
                    lockedValue = p.value
                    lockedRound = r
                    castVote(.precommit, p.value.id, valueTime: p.value.time)
                }
                validValue = p.value
                validRound = r
                progressed = true
                continue
            }
            // Line 44: 2f+1 prevotes for nil.
            if step == .prevote && quorum(rs.prevotes.power(for: nil)) {
                castVote(.precommit, nil)
                progressed = true
                continue
            }
            // Line 47: 2f+1 precommits for anything -> timeoutPrecommit.
            if quorum(rs.precommits.anyPower) && !rs.precommitTimeoutScheduled {
                rs.precommitTimeoutScheduled = true
                rounds[r] = rs
                scheduleTimeout(.precommit, round: r)
            }
        }
    }

    /// Line 49: a proposal of round r and 2f+1 precommits for its value decide it.
    private mutating func checkDecision(round r: Round) {
        guard !decided, let rs = rounds[r], let p = rs.proposal else { return }
        let id = p.value.id
        guard quorum(rs.precommits.power(for: id)), isValid(id) == true else { return }
        let sigs = rs.precommits.votes(for: id).sorted { $0.validator < $1.validator }
            .map { CommitSignature(validator: $0.validator, timestamp: $0.timestamp, signature: $0.signature) }
        decide(value: p.value, certificate: CommitCertificate(height: height, round: r, blockID: id, signatures: sigs))
    }

    private mutating func decide(value: ProposalValue, certificate: CommitCertificate) {
        decided = true
        timeouts = []
        ready.decision = Decision(height: height, round: certificate.round, value: value, certificate: certificate)
    }

    /// Line 55, generalised: skip to the highest round r such that validators with more
    /// than 1/3 of the power have sent a message for round r or above. At least one of
    /// them is honest and has reached r; Algorithm 1's rule (f+1 messages of round r) is
    /// the special case where they all sent round r itself.
    private mutating func skipRoundIfNeeded() {
        let vals = validators!
        var seen = [(Round, UInt64)]()
        for i in highestRound.indices {
            if let r = highestRound[i], r > round { seen.append((r, vals.validators[i].power)) }
        }
        guard !seen.isEmpty else { return }
        seen.sort { $0.0 > $1.0 }
        var power: UInt64 = 0
        for (r, p) in seen {
            power += p
            if vals.isOneThird(power) {
                startRound(r)
                return
            }
        }
    }

    // MARK: - Signing, guarded

    private mutating func castVote(_ type: VoteType, _ id: Hash256?, valueTime: UInt64 = 0) {
        step = type.step
        // Timestamps never precede the previous block, and a precommit's never precedes the
        // block it commits: so the weighted median of any certificate exceeds the block's time.
        let ts = max(now, previousBlockTime &+ 1, valueTime &+ 1)
        guard let signer, let me = myIndex else { return }
        let vote: Vote
        switch signedState.check(height: height, round: round, step: type.step, blockID: id, validRound: nil) {
        case .refuse:
            refusedSignatures += 1
            return
        case .reuse(let last):
            // The same vote again (a replay after restart): reuse the saved signature.
            vote = Vote(type: type, height: height, round: round, blockID: id, timestamp: last.timestamp,
                        validator: UInt16(me), signature: last.signature)
        case .sign:
            let bytes = voteSignBytes(chainID: config.chainID, type: type, height: height, round: round, blockID: id, timestamp: ts)
            guard let sig = try? signer.sign(bytes) else { return }
            signedState.record(SignedRecord(height: height, round: round, step: type.step, blockID: id, validRound: nil,
                                            timestamp: ts, signature: sig))
            ready.signed = signedState
            vote = Vote(type: type, height: height, round: round, blockID: id, timestamp: ts, validator: UInt16(me), signature: sig)
        }
        storeVote(vote)
        emit(.vote(vote))
        checkDecision(round: round)
    }

    private mutating func broadcastProposal(value: ProposalValue, validRound vr: Round?) {
        guard let signer, let me = myIndex else { return }
        let p: Proposal
        switch signedState.check(height: height, round: round, step: .propose, blockID: value.id, validRound: vr) {
        case .refuse:
            refusedSignatures += 1
            return
        case .reuse(let last):
            p = Proposal(height: height, round: round, validRound: vr, value: value, proposer: UInt16(me), signature: last.signature)
        case .sign:
            let bytes = proposalSignBytes(chainID: config.chainID, height: height, round: round, validRound: vr, blockID: value.id)
            guard let sig = try? signer.sign(bytes) else { return }
            signedState.record(SignedRecord(height: height, round: round, step: .propose, blockID: value.id, validRound: vr,
                                            timestamp: 0, signature: sig))
            ready.signed = signedState
            p = Proposal(height: height, round: round, validRound: vr, value: value, proposer: UInt16(me), signature: sig)
        }
        storeProposal(p)
        // Our own value needs no validation round trip only if we produced it; a re-proposed
        // validValue was validated when it was first received.
        emit(.proposal(p))
    }

    private mutating func emit(_ m: ConsensusMessage) {
        ready.broadcast.append(m)
        ownMessages.append(m)
        if ownMessages.count > config.ownMessagesMax { ownMessages.removeFirst(ownMessages.count - config.ownMessagesMax) }
    }
}
