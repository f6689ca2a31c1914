import QuarryCore

/// Timeouts in milliseconds; each grows linearly with the round: base + delta * round
/// (the round factor is capped at `roundCap` so the sum never overflows).
public struct TimeoutConfig: Hashable, Sendable {
    public var proposeBase: UInt64
    public var proposeDelta: UInt64
    public var prevoteBase: UInt64
    public var prevoteDelta: UInt64
    public var precommitBase: UInt64
    public var precommitDelta: UInt64
    public static let roundCap: UInt64 = 10_000

    public init(proposeBase: UInt64 = 3000, proposeDelta: UInt64 = 500, prevoteBase: UInt64 = 1000,
                prevoteDelta: UInt64 = 500, precommitBase: UInt64 = 1000, precommitDelta: UInt64 = 500) {
        self.proposeBase = proposeBase
        self.proposeDelta = proposeDelta
        self.prevoteBase = prevoteBase
        self.prevoteDelta = prevoteDelta
        self.precommitBase = precommitBase
        self.precommitDelta = precommitDelta
    }

    public func duration(_ step: Step, round: Round) -> UInt64 {
        let r = min(UInt64(round), TimeoutConfig.roundCap)
        switch step {
        case .propose: return proposeBase + proposeDelta * r
        case .prevote: return prevoteBase + prevoteDelta * r
        case .precommit: return precommitBase + precommitDelta * r
        }
    }
}

/// Deliberately broken variants of the core, switched on only by the simulator's tests to
/// show that the simulator finds each one. Never set in production.
package struct PlantedBugs: OptionSet, Hashable, Sendable {
    package let rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Prevote for a proposal regardless of lockedValue/lockedRound (lines 22 and 28).
    package static let skipLockCheck = PlantedBugs(rawValue: 1)
    /// Treat exactly 2/3 of the voting power as a quorum (also in certificates).
    package static let quorumInclusive = PlantedBugs(rawValue: 2)
    /// Start after a restart without the saved last-signed record.
    package static let forgetLastSignedOnRestart = PlantedBugs(rawValue: 4)
    /// Treat every proposed value as valid without asking the application.
    package static let skipValueValidation = PlantedBugs(rawValue: 8)
}

public struct ConsensusConfig: Hashable, Sendable {
    public var chainID: String
    public var timeouts: TimeoutConfig
    /// Messages for rounds above round + window are not stored (only their round is noted
    /// for round skipping). Bounds memory per validator.
    public var futureRoundWindow: Round
    /// Messages for the next height kept until it starts.
    public var nextHeightBufferMax: Int
    /// Evidence kept per height.
    public var evidenceMax: Int
    /// Own messages kept for re-gossip at the current height.
    public var ownMessagesMax: Int
    package var plantedBugs: PlantedBugs = []

    public init(chainID: String, timeouts: TimeoutConfig = TimeoutConfig(), futureRoundWindow: Round = 8,
                nextHeightBufferMax: Int = 1024, evidenceMax: Int = 64, ownMessagesMax: Int = 96) {
        self.chainID = chainID
        self.timeouts = timeouts
        self.futureRoundWindow = futureRoundWindow
        self.nextHeightBufferMax = nextHeightBufferMax
        self.evidenceMax = evidenceMax
        self.ownMessagesMax = ownMessagesMax
    }
}

/// What the driver tells the core to begin a height with.
public struct HeightStart: Hashable, Sendable, CanonicalCodable {
    public let height: Height
    public let validators: ValidatorSet
    /// Time of the previous block (genesis time for height 1), milliseconds; own vote
    /// timestamps are at least this + 1.
    public let previousBlockTime: UInt64

    public init(height: Height, validators: ValidatorSet, previousBlockTime: UInt64) {
        self.height = height
        self.validators = validators
        self.previousBlockTime = previousBlockTime
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.u64(height)
        e.value(validators)
        e.u64(previousBlockTime)
    }

    public init(from d: inout CanonicalDecoder) throws {
        height = try d.u64()
        validators = try d.value(ValidatorSet.self)
        previousBlockTime = try d.u64()
    }
}

/// Every input of the core. The driver logs each one in the WAL before handing it over
/// (docs/spec/wal.md); replaying them in order rebuilds the core's state.
public enum ConsensusInput: Hashable, Sendable, CanonicalCodable {
    /// Begin a height (tag 1).
    case start(HeightStart)
    /// The local clock reads this many milliseconds (tag 2); fires expired timeouts.
    case tick(UInt64)
    /// A message from a peer (tag 3).
    case message(ConsensusMessage)
    /// The application's value for a round this node proposes in (tag 4).
    case proposalValue(height: Height, round: Round, value: ProposalValue)
    /// The application's verdict on a proposed value (tag 5).
    case validation(height: Height, blockID: Hash256, valid: Bool)
    /// A decision learned from a peer with its certificate (block sync, tag 6).
    case commit(CommitCertificate, ProposalValue)

    public func encode(to e: inout CanonicalEncoder) {
        switch self {
        case .start(let s): e.u8(1); e.value(s)
        case .tick(let t): e.u8(2); e.u64(t)
        case .message(let m): e.u8(3); e.value(m)
        case .proposalValue(let h, let r, let v): e.u8(4); e.u64(h); e.u32(r); e.value(v)
        case .validation(let h, let id, let ok): e.u8(5); e.u64(h); e.value(id); e.bool(ok)
        case .commit(let c, let v): e.u8(6); e.value(c); e.value(v)
        }
    }

    public init(from d: inout CanonicalDecoder) throws {
        let tag = try d.u8()
        switch tag {
        case 1: self = .start(try d.value(HeightStart.self))
        case 2: self = .tick(try d.u64())
        case 3: self = .message(try d.value(ConsensusMessage.self))
        case 4: self = .proposalValue(height: try d.u64(), round: try d.u32(), value: try d.value(ProposalValue.self))
        case 5: self = .validation(height: try d.u64(), blockID: try d.value(Hash256.self), valid: try d.bool())
        case 6: self = .commit(try d.value(CommitCertificate.self), try d.value(ProposalValue.self))
        default: throw CanonicalError.unknownTag(type: "ConsensusInput", tag: tag)
        }
    }
}

/// A decided value with its commit certificate.
public struct Decision: Hashable, Sendable {
    public let height: Height
    public let round: Round
    public let value: ProposalValue
    public let certificate: CommitCertificate
}

/// What the driver must do after handing the core one input, in this order:
/// 1. if `signed` is set: sync the WAL, then save `signed` durably (fsync);
/// 2. send `broadcast` to every peer;
/// 3. apply `decision`, then start the next height;
/// 4. answer `valueRequest` and `validationRequests` with further inputs;
/// 5. keep `evidence`.
public struct Ready: Sendable {
    public var signed: SignedState? = nil
    public var broadcast: [ConsensusMessage] = []
    public var decision: Decision? = nil
    public var valueRequest: (height: Height, round: Round)? = nil
    public var validationRequests: [ProposalValue] = []
    public var evidence: [Evidence] = []

    public init() {}

    public var isEmpty: Bool {
        signed == nil && broadcast.isEmpty && decision == nil && valueRequest == nil
            && validationRequests.isEmpty && evidence.isEmpty
    }
}
