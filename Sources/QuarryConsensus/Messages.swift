import QuarryCore

/// ⟨PROPOSAL, h, r, v, vr⟩ signed by the round's proposer.
public struct Proposal: Hashable, Sendable, CanonicalCodable {
    public let height: Height
    public let round: Round
    /// The round in which the proposer saw 2f+1 prevotes for `value` (Algorithm 1's vr),
    /// or nil (vr = -1).
    public let validRound: Round?
    public let value: ProposalValue
    public let proposer: UInt16
    public let signature: [UInt8]

    public init(height: Height, round: Round, validRound: Round?, value: ProposalValue,
                proposer: UInt16, signature: [UInt8]) {
        self.height = height
        self.round = round
        self.validRound = validRound
        self.value = value
        self.proposer = proposer
        self.signature = signature
    }

    public func signBytes(chainID: String) -> [UInt8] {
        proposalSignBytes(chainID: chainID, height: height, round: round, validRound: validRound, blockID: value.id)
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.u64(height)
        e.u32(round)
        e.optional(validRound) { $0.u32($1) }
        e.value(value)
        e.u16(proposer)
        e.bytes(signature)
    }

    public init(from d: inout CanonicalDecoder) throws {
        height = try d.u64()
        round = try d.u32()
        validRound = try d.optional { try $0.u32() }
        value = try d.value(ProposalValue.self)
        proposer = try d.u16()
        signature = try d.bytes(limit: ConsensusLimits.signatureBytesMax, field: "proposal.signature")
    }
}

/// ⟨PREVOTE|PRECOMMIT, h, r, id(v) or nil⟩ with the voter's local time (used for block time).
public struct Vote: Hashable, Sendable, CanonicalCodable {
    public let type: VoteType
    public let height: Height
    public let round: Round
    /// nil is a vote for no value.
    public let blockID: Hash256?
    /// Milliseconds since the Unix epoch on the voter's clock, at least the previous block
    /// time + 1.
    public let timestamp: UInt64
    public let validator: UInt16
    public let signature: [UInt8]

    public init(type: VoteType, height: Height, round: Round, blockID: Hash256?, timestamp: UInt64,
                validator: UInt16, signature: [UInt8]) {
        self.type = type
        self.height = height
        self.round = round
        self.blockID = blockID
        self.timestamp = timestamp
        self.validator = validator
        self.signature = signature
    }

    public func signBytes(chainID: String) -> [UInt8] {
        voteSignBytes(chainID: chainID, type: type, height: height, round: round, blockID: blockID, timestamp: timestamp)
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.value(type)
        e.u64(height)
        e.u32(round)
        e.optional(blockID) { $0.value($1) }
        e.u64(timestamp)
        e.u16(validator)
        e.bytes(signature)
    }

    public init(from d: inout CanonicalDecoder) throws {
        type = try d.value(VoteType.self)
        height = try d.u64()
        round = try d.u32()
        blockID = try d.optional { try $0.value(Hash256.self) }
        timestamp = try d.u64()
        validator = try d.u16()
        signature = try d.bytes(limit: ConsensusLimits.signatureBytesMax, field: "vote.signature")
    }
}

/// What validators gossip: tag 1 = proposal, tag 2 = vote.
public enum ConsensusMessage: Hashable, Sendable, CanonicalCodable {
    case proposal(Proposal)
    case vote(Vote)

    public var height: Height {
        switch self {
        case .proposal(let p): return p.height
        case .vote(let v): return v.height
        }
    }
    public var round: Round {
        switch self {
        case .proposal(let p): return p.round
        case .vote(let v): return v.round
        }
    }
    public var sender: UInt16 {
        switch self {
        case .proposal(let p): return p.proposer
        case .vote(let v): return v.validator
        }
    }

    public func encode(to e: inout CanonicalEncoder) {
        switch self {
        case .proposal(let p): e.u8(1); e.value(p)
        case .vote(let v): e.u8(2); e.value(v)
        }
    }

    public init(from d: inout CanonicalDecoder) throws {
        let tag = try d.u8()
        switch tag {
        case 1: self = .proposal(try d.value(Proposal.self))
        case 2: self = .vote(try d.value(Vote.self))
        default: throw CanonicalError.unknownTag(type: "ConsensusMessage", tag: tag)
        }
    }
}

/// Two different signed messages from one validator for the same (height, round, step).
public struct Evidence: Hashable, Sendable, CanonicalCodable {
    public let first: ConsensusMessage
    public let second: ConsensusMessage

    public init(first: ConsensusMessage, second: ConsensusMessage) {
        self.first = first
        self.second = second
    }

    public var validator: UInt16 { first.sender }
    public var height: Height { first.height }

    public func encode(to e: inout CanonicalEncoder) {
        e.value(first)
        e.value(second)
    }

    public init(from d: inout CanonicalDecoder) throws {
        first = try d.value(ConsensusMessage.self)
        second = try d.value(ConsensusMessage.self)
    }
}

/// One message this validator signed (its signed fields and signature).
public struct SignedRecord: Hashable, Sendable, CanonicalCodable {
    public let height: Height
    public let round: Round
    public let step: Step
    public let blockID: Hash256?
    /// The proposal's valid round (propose step only).
    public let validRound: Round?
    /// The vote's timestamp (0 for proposals).
    public let timestamp: UInt64
    public let signature: [UInt8]

    public init(height: Height, round: Round, step: Step, blockID: Hash256?, validRound: Round?,
                timestamp: UInt64, signature: [UInt8]) {
        self.height = height
        self.round = round
        self.step = step
        self.blockID = blockID
        self.validRound = validRound
        self.timestamp = timestamp
        self.signature = signature
    }

    /// (height, round, step) order.
    public func precedes(height h: Height, round r: Round, step s: Step) -> Bool {
        if height != h { return height < h }
        if round != r { return round < r }
        return step < s
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.u64(height)
        e.u32(round)
        e.value(step)
        e.optional(blockID) { $0.value($1) }
        e.optional(validRound) { $0.u32($1) }
        e.u64(timestamp)
        e.bytes(signature)
    }

    public init(from d: inout CanonicalDecoder) throws {
        height = try d.u64()
        round = try d.u32()
        step = try d.value(Step.self)
        blockID = try d.optional { try $0.value(Hash256.self) }
        validRound = try d.optional { try $0.u32() }
        timestamp = try d.u64()
        signature = try d.bytes(limit: ConsensusLimits.signatureBytesMax, field: "signed_record.signature")
    }
}

/// What this validator last signed, per step: the double-sign guard's durable state.
/// The driver saves it (synced) before sending anything the same `Ready` carries.
///
/// The guard signs (h, r, s) only if (h, r, s) is above every record, or re-issues the
/// identical message when the record of step s is at (h, r) with the same block id and
/// valid round. Anything else is refused. Keeping one record per step (not just the
/// latest) lets a restarted node re-send its own prevote of a round in which it has
/// already precommitted, which liveness needs after a crash.
public struct SignedState: Hashable, Sendable, CanonicalCodable {
    /// At most one record per step, ordered by step.
    public private(set) var records: [SignedRecord]

    public init(records: [SignedRecord] = []) {
        var byStep = [SignedRecord]()
        for s in [Step.propose, .prevote, .precommit] {
            if let r = records.filter({ $0.step == s }).max(by: { $0.precedes(height: $1.height, round: $1.round, step: $1.step) }) {
                byStep.append(r)
            }
        }
        self.records = byStep
    }

    /// The highest (height, round, step) signed.
    public var latest: SignedRecord? {
        records.max { $0.precedes(height: $1.height, round: $1.round, step: $1.step) }
    }

    public enum Verdict: Equatable, Sendable {
        case sign
        case reuse(SignedRecord)
        case refuse
    }

    public func check(height: Height, round: Round, step: Step, blockID: Hash256?, validRound: Round?) -> Verdict {
        if let same = records.first(where: { $0.step == step && $0.height == height && $0.round == round }) {
            return same.blockID == blockID && same.validRound == validRound ? .reuse(same) : .refuse
        }
        if let latest, !latest.precedes(height: height, round: round, step: step) { return .refuse }
        return .sign
    }

    public mutating func record(_ r: SignedRecord) {
        records.removeAll { $0.step == r.step }
        records.append(r)
        records.sort { $0.step < $1.step }
    }

    public func encode(to e: inout CanonicalEncoder) { e.sequence(records) { $0.value($1) } }
    public init(from d: inout CanonicalDecoder) throws {
        self.init(records: try d.sequence(limit: 3, field: "signed_state.records") { try $0.value(SignedRecord.self) })
    }
}
