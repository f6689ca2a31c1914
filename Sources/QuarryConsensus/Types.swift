import QuarryCore

/// A block height. Height 1 is the first block after genesis.
public typealias Height = UInt64
/// A round within a height, starting at 0.
public typealias Round = UInt32

/// The step of a round (Algorithm 1 of Buchman, Kwon and Milosevic, arXiv:1807.04938).
/// The raw values order signatures: (height, round, step) increases lexicographically.
public enum Step: UInt8, Sendable, Comparable, CanonicalCodable, CustomStringConvertible {
    case propose = 1
    case prevote = 2
    case precommit = 3

    public static func < (a: Step, b: Step) -> Bool { a.rawValue < b.rawValue }
    public var description: String {
        switch self {
        case .propose: return "propose"
        case .prevote: return "prevote"
        case .precommit: return "precommit"
        }
    }
    public func encode(to e: inout CanonicalEncoder) { e.u8(rawValue) }
    public init(from d: inout CanonicalDecoder) throws {
        let tag = try d.u8()
        guard let s = Step(rawValue: tag) else { throw CanonicalError.unknownTag(type: "Step", tag: tag) }
        self = s
    }
}

/// The two kinds of vote.
public enum VoteType: UInt8, Sendable, CanonicalCodable, CustomStringConvertible {
    case prevote = 2
    case precommit = 3

    public var step: Step { self == .prevote ? .prevote : .precommit }
    public var description: String { self == .prevote ? "prevote" : "precommit" }
    public func encode(to e: inout CanonicalEncoder) { e.u8(rawValue) }
    public init(from d: inout CanonicalDecoder) throws {
        let tag = try d.u8()
        guard let t = VoteType(rawValue: tag) else { throw CanonicalError.unknownTag(type: "VoteType", tag: tag) }
        self = t
    }
}

/// Limits on everything consensus decodes or keeps. Values are part of the wire spec
/// (`docs/spec/consensus.md`).
public enum ConsensusLimits {
    /// Largest validator set.
    public static let validatorsMax = 256
    /// Largest public key or signature carried in consensus messages.
    public static let keyBytesMax = 128
    public static let signatureBytesMax = 128
    /// Largest proposed value (an encoded block).
    public static let valueBytesMax = 4 * 1024 * 1024
    /// Largest chain id.
    public static let chainIDBytesMax = 64
    /// Largest total voting power, so that priorities and sums never overflow `Int64`.
    public static let totalPowerMax: UInt64 = UInt64(Int64.max) / 8
}

/// A value proposed for a height: opaque bytes, the id the application gives them (the
/// block hash) and the block's time in milliseconds, which the application must check
/// against the block (docs/spec/consensus.md, "Block time"). Consensus never looks inside
/// `bytes`; it uses `time` only as the floor of its precommit timestamps.
public struct ProposalValue: Hashable, Sendable, CanonicalCodable {
    public let id: Hash256
    public let time: UInt64
    public let bytes: [UInt8]

    public init(id: Hash256, time: UInt64, bytes: [UInt8]) {
        self.id = id
        self.time = time
        self.bytes = bytes
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.value(id)
        e.u64(time)
        e.bytes(bytes)
    }

    public init(from d: inout CanonicalDecoder) throws {
        id = try d.value(Hash256.self)
        time = try d.u64()
        bytes = try d.bytes(limit: ConsensusLimits.valueBytesMax, field: "value.bytes")
    }
}

/// Errors for bad input from outside the core (peers, the WAL, the driver).
public enum ConsensusError: QuarryError, Equatable {
    case unknownValidator(index: Int)
    case invalidSignature(String)
    case wrongProposer(round: Round, expected: Int, got: Int)
    case invalidValidRound(round: Round, validRound: Round)
    case invalidValidatorSet(String)
    case invalidCertificate(String)
    case wrongHeight(expected: Height, got: Height)
    case invalidInput(String)

    public var code: String {
        switch self {
        case .unknownValidator: return "consensus.unknown_validator"
        case .invalidSignature: return "consensus.invalid_signature"
        case .wrongProposer: return "consensus.wrong_proposer"
        case .invalidValidRound: return "consensus.invalid_valid_round"
        case .invalidValidatorSet: return "consensus.invalid_validator_set"
        case .invalidCertificate: return "consensus.invalid_certificate"
        case .wrongHeight: return "consensus.wrong_height"
        case .invalidInput: return "consensus.invalid_input"
        }
    }

    public var description: String {
        switch self {
        case .unknownValidator(let i): return "no validator with index \(i) in the current set"
        case .invalidSignature(let what): return "signature does not verify: \(what)"
        case .wrongProposer(let r, let e, let g): return "round \(r) proposer is validator \(e), message is from \(g)"
        case .invalidValidRound(let r, let vr): return "valid round \(vr) is not below round \(r)"
        case .invalidValidatorSet(let why): return "invalid validator set: \(why)"
        case .invalidCertificate(let why): return "invalid commit certificate: \(why)"
        case .wrongHeight(let e, let g): return "expected height \(e), got \(g)"
        case .invalidInput(let why): return "invalid input: \(why)"
        }
    }
}
