import QuarryCore
import QuarryConsensus

/// Byzantine behaviours a simulated validator can have (several may combine).
public struct Behaviour: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Sends conflicting proposals to two halves of the network.
    public static let equivocatingProposer = Behaviour(rawValue: 1)
    /// Sends conflicting votes to two halves of the network.
    public static let doubleVoter = Behaviour(rawValue: 2)
    /// Proposes values the application rejects.
    public static let invalidProposer = Behaviour(rawValue: 4)
    /// Sends correctly signed messages with absurd rounds and heights.
    public static let absurdRounds = Behaviour(rawValue: 8)
    /// Sends malformed bytes, bad signatures and unknown validator indexes.
    public static let malformed = Behaviour(rawValue: 16)
    /// Runs as two nodes sharing one key (set on both twins).
    public static let twin = Behaviour(rawValue: 32)

    public var description: String {
        var parts = [String]()
        if contains(.equivocatingProposer) { parts.append("equivocating-proposer") }
        if contains(.doubleVoter) { parts.append("double-voter") }
        if contains(.invalidProposer) { parts.append("invalid-proposer") }
        if contains(.absurdRounds) { parts.append("absurd-rounds") }
        if contains(.malformed) { parts.append("malformed") }
        if contains(.twin) { parts.append("twin") }
        return parts.isEmpty ? "honest" : parts.joined(separator: "+")
    }
}

/// Which fault families a run may draw from its seed.
public struct FaultSet: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let loss = FaultSet(rawValue: 1)
    public static let duplication = FaultSet(rawValue: 2)
    public static let reordering = FaultSet(rawValue: 4)
    public static let partitions = FaultSet(rawValue: 8)
    public static let crashes = FaultSet(rawValue: 16)
    public static let byzantine = FaultSet(rawValue: 32)
    public static let twins = FaultSet(rawValue: 64)
    public static let clockSkew = FaultSet(rawValue: 128)
    public static let all: FaultSet = [.loss, .duplication, .reordering, .partitions, .crashes, .byzantine, .twins, .clockSkew]
    public static let none: FaultSet = []
}

public struct SimulationOptions: Sendable {
    public var seed: UInt64
    /// nil: drawn from the seed in 4...7.
    public var validatorCount: Int?
    /// nil: drawn from the seed (equal powers most of the time, 1...3 otherwise).
    public var powers: [UInt64]?
    public var faults: FaultSet
    /// Length of the faulty phase; then the network heals and crashed nodes restart.
    public var chaosMilliseconds: UInt64
    /// Liveness bound: after the heal every honest node decides a new height within this.
    public var livenessBoundMilliseconds: UInt64
    /// Heights to decide after the heal before the run ends (at least 1).
    public var heightsAfterHeal: UInt64
    public var timeouts: TimeoutConfig
    public var gossipIntervalMilliseconds: UInt64
    /// Largest per-node clock skew, milliseconds.
    public var clockSkewMax: UInt64
    /// Largest message delay after the heal, milliseconds.
    public var healedDelayMax: UInt64
    package var plantedBugs: PlantedBugs = []
    /// Forces this byzantine behaviour on the chosen byzantine validators (for targeted runs).
    public var forcedBehaviour: Behaviour?
    /// Probability (per mille) that a crash also loses the whole WAL (not the signed record).
    public var walLossPerMille: UInt64
    /// Message loss in the chaotic phase is drawn in [0, lossPerMilleMax).
    public var lossPerMilleMax: UInt64
    public var traceLength: Int

    public init(seed: UInt64, faults: FaultSet = .all) {
        self.seed = seed
        self.validatorCount = nil
        self.powers = nil
        self.faults = faults
        self.chaosMilliseconds = 1500
        self.livenessBoundMilliseconds = 15_000
        self.heightsAfterHeal = 2
        self.timeouts = TimeoutConfig(proposeBase: 120, proposeDelta: 40, prevoteBase: 60, prevoteDelta: 40,
                                      precommitBase: 60, precommitDelta: 40)
        self.gossipIntervalMilliseconds = 150
        self.clockSkewMax = 300
        self.healedDelayMax = 20
        self.walLossPerMille = 150
        self.lossPerMilleMax = 200
        self.traceLength = 40
    }
}

extension SimulationOptions {
    /// A profile aimed at locking: four validators, one of them an equivocating proposer
    /// that also double-votes, lossy reordering links, no crashes. Honest nodes end up
    /// locked on different values often, which is where a missing lock check forks.
    public static func lockStress(seed: UInt64) -> SimulationOptions {
        var o = SimulationOptions(seed: seed, faults: [.loss, .reordering, .partitions, .byzantine])
        o.lossPerMilleMax = 500
        o.gossipIntervalMilliseconds = 400
        o.validatorCount = 4
        o.powers = [1, 1, 1, 1]
        o.forcedBehaviour = [.equivocatingProposer, .doubleVoter]
        o.chaosMilliseconds = 8000
        return o
    }
}

public struct Violation: Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case agreement, validity, doubleSign = "double-sign", liveness, blockTime = "block-time"
    }
    public let kind: Kind
    public let message: String
    public let seed: UInt64
    public let time: UInt64
    public let trace: [String]

    public var description: String {
        "\(kind.rawValue) violation at t=\(time) ms, seed \(seed) (replay: quarry-sim --seeds 1 --from \(seed)): \(message)\n"
            + trace.map { "  " + $0 }.joined(separator: "\n")
    }
}

public struct SimulationReport: Sendable, CustomStringConvertible {
    public let seed: UInt64
    public let validators: Int
    public let endpoints: Int
    public let byzantine: [String]
    public let decidedHeight: Height
    public let deliveries: Int
    public let inputs: Int
    public let crashes: Int
    public let evidence: Int
    public let rejectedInputs: Int
    public let simulatedMilliseconds: UInt64
    /// Fingerprint of every decision and counter: equal for equal seeds.
    public let fingerprint: UInt64
    public let violation: Violation?

    public var description: String {
        "seed \(seed): \(validators) validators (\(endpoints) nodes; byzantine: \(byzantine.isEmpty ? "none" : byzantine.joined(separator: ", "))), "
            + "height \(decidedHeight), \(deliveries) deliveries, \(inputs) inputs, \(crashes) crashes, "
            + "\(evidence) evidence, \(rejectedInputs) rejected, \(simulatedMilliseconds) ms simulated"
            + (violation.map { "\n" + $0.description } ?? "")
    }
}
