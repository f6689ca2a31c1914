import QuarryCore

/// One validator: its consensus public key and voting power.
public struct Validator: Hashable, Sendable, CanonicalCodable {
    public let publicKey: [UInt8]
    public let power: UInt64

    public init(publicKey: [UInt8], power: UInt64) {
        self.publicKey = publicKey
        self.power = power
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.bytes(publicKey)
        e.u64(power)
    }

    public init(from d: inout CanonicalDecoder) throws {
        publicKey = try d.bytes(limit: ConsensusLimits.keyBytesMax, field: "validator.public_key")
        power = try d.u64()
    }
}

/// The validators of one height, in a fixed order (a validator's index is its position),
/// with their proposer priorities. Proposer selection follows CometBFT's weighted
/// round-robin, integers only (see docs/spec/consensus.md, "Proposer selection").
public struct ValidatorSet: Hashable, Sendable, CanonicalCodable {
    public let validators: [Validator]
    /// Proposer priorities at the start of the height (before round 0's increment).
    public let priorities: [Int64]
    public let totalPower: UInt64

    /// A genesis set: all priorities zero. Keys must be distinct, powers positive.
    public init(validators: [Validator]) throws(ConsensusError) {
        try self.init(validators: validators, priorities: [Int64](repeating: 0, count: validators.count))
    }

    public init(validators: [Validator], priorities: [Int64]) throws(ConsensusError) {
        guard !validators.isEmpty else { throw .invalidValidatorSet("empty") }
        guard validators.count <= ConsensusLimits.validatorsMax else {
            throw .invalidValidatorSet("\(validators.count) validators, limit \(ConsensusLimits.validatorsMax)")
        }
        guard priorities.count == validators.count else { throw .invalidValidatorSet("priority count mismatch") }
        var total: UInt64 = 0
        var keys = Set<[UInt8]>()
        for v in validators {
            guard v.power > 0 else { throw .invalidValidatorSet("zero voting power") }
            guard v.power <= ConsensusLimits.totalPowerMax, total <= ConsensusLimits.totalPowerMax - v.power else {
                throw .invalidValidatorSet("total voting power over \(ConsensusLimits.totalPowerMax)")
            }
            total += v.power
            guard keys.insert(v.publicKey).inserted else { throw .invalidValidatorSet("duplicate public key") }
        }
        let bound = Int64(total) * 4
        for p in priorities where p > bound || p < -bound {
            throw .invalidValidatorSet("priority \(p) outside [-4*total, 4*total]")
        }
        self.validators = validators
        self.priorities = priorities
        self.totalPower = total
    }

    public var count: Int { validators.count }

    public func index(of publicKey: [UInt8]) -> Int? {
        validators.firstIndex { $0.publicKey == publicKey }
    }

    /// More than two thirds of the voting power ("2f+1").
    @inline(__always)
    public func isQuorum(_ power: UInt64) -> Bool { power * 3 > totalPower * 2 }
    /// More than one third of the voting power ("f+1"): at least one honest validator.
    @inline(__always)
    public func isOneThird(_ power: UInt64) -> Bool { power * 3 > totalPower }

    /// The set for the next height when validators do not change: priorities advanced once.
    public func nextHeight() -> ValidatorSet {
        var s = ProposerSchedule(self)
        _ = s.proposer(round: 0)
        return try! ValidatorSet(validators: validators, priorities: s.prioritiesAfterFirstRound)
    }

    /// Applies validator updates (power 0 removes a key; a new key joins with priority
    /// -(1.125 * new total)) and returns the set that takes effect. The caller applies the
    /// updates decided at height H to the set of height H+2 (docs/spec/consensus.md).
    public func applying(_ updates: [Validator]) throws(ConsensusError) -> ValidatorSet {
        var vals = validators
        var prios = priorities
        var seen = Set<[UInt8]>()
        for u in updates {
            guard seen.insert(u.publicKey).inserted else { throw .invalidValidatorSet("duplicate update") }
        }
        var joined = [Validator]()
        for u in updates {
            if let i = vals.firstIndex(where: { $0.publicKey == u.publicKey }) {
                if u.power == 0 {
                    vals.remove(at: i)
                    prios.remove(at: i)
                } else {
                    vals[i] = u
                }
            } else if u.power > 0 {
                joined.append(u)
            } else {
                throw .invalidValidatorSet("removing a key that is not a validator")
            }
        }
        var total: UInt64 = 0
        for v in vals + joined {
            guard v.power <= ConsensusLimits.totalPowerMax, total <= ConsensusLimits.totalPowerMax - v.power else {
                throw .invalidValidatorSet("total voting power over \(ConsensusLimits.totalPowerMax)")
            }
            total += v.power
        }
        let newcomerPriority = -(Int64(total) + Int64(total) / 8)
        for j in joined {
            vals.append(j)
            prios.append(newcomerPriority)
        }
        // Keep priorities centred and within the window after the change.
        var rescaled = prios
        ProposerSchedule.rescaleAndCenter(&rescaled, total: Int64(total))
        return try ValidatorSet(validators: vals, priorities: rescaled)
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.sequence(validators) { $0.value($1) }
        e.sequence(priorities) { $0.i64($1) }
    }

    public init(from d: inout CanonicalDecoder) throws {
        let vals = try d.sequence(limit: ConsensusLimits.validatorsMax, field: "validators") { try $0.value(Validator.self) }
        let prios = try d.sequence(limit: ConsensusLimits.validatorsMax, field: "priorities") { try $0.i64() }
        try self.init(validators: vals, priorities: prios)
    }
}

/// Proposer of each round of one height, computed lazily and cached.
///
/// Each round: rescale priorities so max - min <= 2 * total, centre them on their (floor)
/// average, then every priority += power; the largest priority proposes (ties: lowest
/// index) and loses `total`. Round r's proposer is the (r+1)-th such increment from the
/// height's starting priorities; the next height starts from the state after one increment.
public struct ProposerSchedule: Sendable {
    private let powers: [Int64]
    private let total: Int64
    private var state: [Int64]
    private(set) var proposers: [Int] = []
    private(set) var prioritiesAfterFirstRound: [Int64] = []

    public init(_ set: ValidatorSet) {
        powers = set.validators.map { Int64($0.power) }
        total = Int64(set.totalPower)
        state = set.priorities
    }

    /// Floor division, so the result does not depend on the sign convention of `/`.
    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    static func rescaleAndCenter(_ p: inout [Int64], total: Int64) {
        guard !p.isEmpty else { return }
        let window = 2 * total
        let diff = p.max()! - p.min()!
        if diff > window {
            let ratio = (diff + window - 1) / window
            for i in p.indices { p[i] = floorDiv(p[i], ratio) }
        }
        var sum: Int64 = 0
        for x in p { sum += x }
        let avg = floorDiv(sum, Int64(p.count))
        for i in p.indices { p[i] -= avg }
    }

    public mutating func proposer(round: Round) -> Int {
        while proposers.count <= Int(round) {
            ProposerSchedule.rescaleAndCenter(&state, total: total)
            var best = 0
            for i in state.indices {
                state[i] += powers[i]
                if state[i] > state[best] { best = i }
            }
            state[best] -= total
            proposers.append(best)
            if proposers.count == 1 { prioritiesAfterFirstRound = state }
        }
        return proposers[Int(round)]
    }
}
