import QuarryCore
@testable import QuarryConsensus
import QuarrySimulation

/// A validator set of test keys and helpers to write scenario transcripts against one core.
struct Harness {
    static let chainID = "quarry-test"
    let registry = TestKeyRegistry()
    let signers: [TestSigner]
    let verifier: TestVerifier
    let validators: ValidatorSet
    var timeouts = TimeoutConfig(proposeBase: 100, proposeDelta: 10, prevoteBase: 50, prevoteDelta: 10,
                                 precommitBase: 50, precommitDelta: 10)

    init(powers: [UInt64] = [1, 1, 1, 1]) {
        var s = [TestSigner]()
        for (i, _) in powers.enumerated() { s.append(TestSigner(secret: 1000 + UInt64(i), registry: registry)) }
        signers = s
        verifier = TestVerifier(registry: registry)
        validators = try! ValidatorSet(validators: zip(s, powers).map { Validator(publicKey: $0.publicKey, power: $1) })
    }

    func config(bugs: PlantedBugs = []) -> ConsensusConfig {
        var c = ConsensusConfig(chainID: Harness.chainID, timeouts: timeouts)
        c.plantedBugs = bugs
        return c
    }

    func makeCore(me: Int, signed: SignedState? = nil, bugs: PlantedBugs = []) -> ConsensusCore {
        ConsensusCore(config: config(bugs: bugs), signer: signers[me], verifier: verifier, signed: signed)
    }

    var start: ConsensusInput { .start(HeightStart(height: 1, validators: validators, previousBlockTime: 0)) }

    func value(_ tag: UInt8) -> ProposalValue {
        ProposalValue(id: TestMAC.digest([tag]), time: 500 + UInt64(tag), bytes: [tag])
    }

    func proposer(round: Round) -> Int {
        var s = ProposerSchedule(validators)
        return s.proposer(round: round)
    }

    func proposal(round: Round, value: ProposalValue, validRound: Round? = nil, from: Int? = nil, height: Height = 1) -> ConsensusInput {
        let who = from ?? proposer(round: round)
        let sig = try! signers[who].sign(proposalSignBytes(chainID: Harness.chainID, height: height, round: round,
                                                           validRound: validRound, blockID: value.id))
        return .message(.proposal(Proposal(height: height, round: round, validRound: validRound, value: value,
                                           proposer: UInt16(who), signature: sig)))
    }

    func vote(_ type: VoteType, round: Round, _ id: Hash256?, from: Int, height: Height = 1, timestamp: UInt64 = 700) -> ConsensusInput {
        .message(.vote(signedVote(type, round: round, id, from: from, height: height, timestamp: timestamp)))
    }

    func signedVote(_ type: VoteType, round: Round, _ id: Hash256?, from: Int, height: Height = 1, timestamp: UInt64 = 700) -> Vote {
        let sig = try! signers[from].sign(voteSignBytes(chainID: Harness.chainID, type: type, height: height, round: round,
                                                        blockID: id, timestamp: timestamp))
        return Vote(type: type, height: height, round: round, blockID: id, timestamp: timestamp, validator: UInt16(from), signature: sig)
    }
}

/// The votes in a Ready, as (type, round, block id).
func votes(_ r: Ready) -> [(VoteType, Round, Hash256?)] {
    r.broadcast.compactMap {
        if case .vote(let v) = $0 { return (v.type, v.round, v.blockID) }
        return nil
    }
}

func proposals(_ r: Ready) -> [Proposal] {
    r.broadcast.compactMap {
        if case .proposal(let p) = $0 { return p }
        return nil
    }
}

extension ConsensusCore {
    /// Handles an input that must be accepted.
    mutating func feed(_ input: ConsensusInput) -> Ready {
        do { return try handle(input) } catch { fatalError("input rejected: \(error)") }
    }

    /// Feeds a validation answer for every requested value using `valid`.
    mutating func answer(_ r: Ready, valid: (ProposalValue) -> Bool = { _ in true }) -> Ready {
        var out = r
        for v in r.validationRequests {
            let next = feed(.validation(height: height, blockID: v.id, valid: valid(v)))
            out.broadcast += next.broadcast
            out.decision = out.decision ?? next.decision
            out.signed = next.signed ?? out.signed
        }
        return out
    }
}
