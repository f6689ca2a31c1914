import Testing
import QuarryCore
@testable import QuarryConsensus
import QuarrySimulation

/// Scenario transcripts for each rule of Algorithm 1 (arXiv:1807.04938): given these
/// inputs, expect these outputs. Four validators of power 1 (quorum 3, f+1 = 2); the core
/// under test is validator 1; round r's proposer is validator r mod 4.
@Suite("Algorithm 1 transcripts")
struct AlgorithmTranscriptTests {
    let h = Harness()
    var A: ProposalValue { h.value(0xA) }
    var B: ProposalValue { h.value(0xB) }

    /// Validator 1 locked on A in round 0 (lines 22, 36), now in round 2 by round skip.
    func lockedOnAInRound2() -> ConsensusCore {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        _ = c.answer(c.feed(h.proposal(round: 0, value: A)))
        _ = c.feed(h.vote(.prevote, round: 0, A.id, from: 0))
        let r = c.feed(h.vote(.prevote, round: 0, A.id, from: 2))
        #expect(votes(r).map { $0.0 } == [.precommit])
        #expect(c.lockedRound == 0 && c.lockedValue == A)
        _ = c.feed(h.vote(.prevote, round: 2, nil, from: 2))
        _ = c.feed(h.vote(.prevote, round: 2, nil, from: 3))
        #expect(c.round == 2 && c.step == .propose)
        return c
    }

    @Test("StartRound (lines 11-21): the proposer asks for a value and proposes it; others wait with timeoutPropose")
    func startRound() throws {
        var p = h.makeCore(me: 0)
        let r0 = p.feed(h.start)
        #expect(r0.valueRequest?.height == 1 && r0.valueRequest?.round == 0)
        let r1 = p.feed(.proposalValue(height: 1, round: 0, value: A))
        let prop = try #require(proposals(r1).first)
        #expect(prop.value == A && prop.validRound == nil && prop.round == 0)
        #expect(r1.signed != nil)
        // Its own proposal is valid to it: it prevotes at once (line 22).
        #expect(votes(r1).map { $0.2 } == [A.id])

        var q = h.makeCore(me: 1)
        let q0 = q.feed(h.start)
        #expect(q0.valueRequest == nil && q0.broadcast.isEmpty)
        #expect(q.nextDeadline == 100)
    }

    @Test("line 22: a valid proposal with vr = -1 gets a prevote for it, after the application says so")
    func line22Valid() {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        let r = c.feed(h.proposal(round: 0, value: A))
        #expect(r.validationRequests == [A])
        #expect(votes(r).isEmpty)  // waits for valid(v)
        let r2 = c.feed(.validation(height: 1, blockID: A.id, valid: true))
        #expect(votes(r2).count == 1 && votes(r2)[0].0 == .prevote && votes(r2)[0].2 == A.id)
        #expect(c.step == .prevote)
    }

    @Test("line 22: an invalid proposal gets a prevote for nil")
    func line22Invalid() {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        let r = c.answer(c.feed(h.proposal(round: 0, value: A)), valid: { _ in false })
        #expect(votes(r).count == 1 && votes(r)[0].2 == nil)
    }

    @Test("line 22: locked on A, a fresh proposal of B gets nil; the skip-lock planted bug prevotes B")
    func line22Locked() {
        var c = lockedOnAInRound2()
        let r = c.answer(c.feed(h.proposal(round: 2, value: B)))
        // Prevote nil (and, with the two nil prevotes already there, precommit nil by line 44).
        #expect(votes(r).first?.0 == .prevote && votes(r).first?.2 == nil)

        var bug = h.makeCore(me: 1, bugs: .skipLockCheck)
        _ = bug.feed(h.start)
        _ = bug.answer(bug.feed(h.proposal(round: 0, value: A)))
        _ = bug.feed(h.vote(.prevote, round: 0, A.id, from: 0))
        _ = bug.feed(h.vote(.prevote, round: 0, A.id, from: 2))
        _ = bug.feed(h.vote(.prevote, round: 2, nil, from: 2))
        _ = bug.feed(h.vote(.prevote, round: 2, nil, from: 3))
        let rb = bug.answer(bug.feed(h.proposal(round: 2, value: B)))
        #expect(votes(rb).map { $0.2 } == [B.id])
    }

    @Test("line 22: locked on A, a new proposal of A itself gets a prevote for A")
    func line22LockedSameValue() {
        var c = lockedOnAInRound2()
        let r = c.feed(h.proposal(round: 2, value: A))  // validity of A already known
        #expect(votes(r).map { $0.2 } == [A.id])
    }

    @Test("line 28: proposal of B with vr = 1 and 2f+1 prevotes for B in round 1 unlocks a lock from round 0")
    func line28Unlock() {
        var c = lockedOnAInRound2()
        for v in [0, 2, 3] { _ = c.feed(h.vote(.prevote, round: 1, B.id, from: v)) }
        let r = c.answer(c.feed(h.proposal(round: 2, value: B, validRound: 1)))
        #expect(votes(r).map { $0.2 } == [B.id])
    }

    @Test("line 28: without the 2f+1 prevotes of round vr nothing happens until timeoutPropose, then nil")
    func line28NoPolka() {
        var c = lockedOnAInRound2()
        for v in [0, 2] { _ = c.feed(h.vote(.prevote, round: 1, B.id, from: v)) }
        let r = c.answer(c.feed(h.proposal(round: 2, value: B, validRound: 1)))
        #expect(votes(r).isEmpty)
        let t = c.feed(.tick(c.nextDeadline!))
        #expect(votes(t).first?.0 == .prevote && votes(t).first?.2 == nil)
    }

    @Test("line 28: locked in a round after vr on another value: prevote nil")
    func line28LockedLater() {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        // Lock on A in round 2 (skip there first; proposer of round 2 is validator 2).
        _ = c.feed(h.vote(.prevote, round: 2, nil, from: 2))
        _ = c.feed(h.vote(.prevote, round: 2, nil, from: 3))
        _ = c.answer(c.feed(h.proposal(round: 2, value: A)))
        _ = c.feed(h.vote(.prevote, round: 2, A.id, from: 0))
        _ = c.feed(h.vote(.prevote, round: 2, A.id, from: 2))
        #expect(c.lockedRound == 2)
        // Round 3 (proposer 3) re-proposes B with vr = 1 < lockedRound.
        for v in [0, 2, 3] { _ = c.feed(h.vote(.prevote, round: 1, B.id, from: v)) }
        _ = c.feed(h.vote(.prevote, round: 3, nil, from: 0))
        _ = c.feed(h.vote(.prevote, round: 3, nil, from: 3))
        #expect(c.round == 3)
        let r = c.answer(c.feed(h.proposal(round: 3, value: B, validRound: 1)))
        #expect(votes(r).first?.0 == .prevote && votes(r).first?.2 == nil)
    }

    @Test("lines 34 and 61: 2f+1 prevotes for anything start timeoutPrevote; on expiry precommit nil")
    func line34And61() {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        _ = c.answer(c.feed(h.proposal(round: 0, value: A)))  // own prevote A
        _ = c.feed(h.vote(.prevote, round: 0, B.id, from: 0))
        let r = c.feed(h.vote(.prevote, round: 0, nil, from: 2))
        #expect(votes(r).isEmpty)
        #expect(c.nextDeadline == 50)  // timeoutPrevote(0) from now = 0
        let t = c.feed(.tick(50))
        #expect(votes(t).map { $0.0 } == [.precommit] && votes(t)[0].2 == nil)
        #expect(c.lockedRound == nil)
    }

    @Test("line 36: a polka for the proposal locks it, precommits it and sets validValue")
    func line36() {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        _ = c.answer(c.feed(h.proposal(round: 0, value: A)))
        _ = c.feed(h.vote(.prevote, round: 0, A.id, from: 3))
        let r = c.feed(h.vote(.prevote, round: 0, A.id, from: 2))
        #expect(votes(r).map { $0.2 } == [A.id] && votes(r)[0].0 == .precommit)
        #expect(c.lockedValue == A && c.lockedRound == 0 && c.validValue == A && c.validRound == 0)
    }

    @Test("line 36 in precommit step: a late polka sets validValue but neither locks nor precommits")
    func line36Late() {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        _ = c.feed(.tick(100))  // timeoutPropose: prevote nil
        for v in [0, 2] { _ = c.feed(h.vote(.prevote, round: 0, nil, from: v)) }  // nil polka: precommit nil
        #expect(c.step == .precommit)
        _ = c.answer(c.feed(h.proposal(round: 0, value: A)))
        for v in [0, 2, 3] { _ = c.feed(h.vote(.prevote, round: 0, A.id, from: v)) }
        #expect(c.validValue == A && c.validRound == 0)
        #expect(c.lockedValue == nil)
    }

    @Test("line 44: 2f+1 prevotes for nil: precommit nil")
    func line44() {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        _ = c.feed(.tick(100))
        _ = c.feed(h.vote(.prevote, round: 0, nil, from: 0))
        let r = c.feed(h.vote(.prevote, round: 0, nil, from: 3))
        #expect(votes(r).map { $0.0 } == [.precommit] && votes(r)[0].2 == nil)
    }

    @Test("lines 47 and 65: 2f+1 precommits for anything start timeoutPrecommit; on expiry the next round starts")
    func line47And65() {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        _ = c.feed(.tick(100))
        for v in [0, 2] { _ = c.feed(h.vote(.prevote, round: 0, nil, from: v)) }
        _ = c.feed(h.vote(.precommit, round: 0, nil, from: 0))
        _ = c.feed(h.vote(.precommit, round: 0, A.id, from: 2))
        #expect(c.nextDeadline == 150)
        // Validator 1 proposes in round 1 and has no validValue: it asks for a value.
        let r = c.feed(.tick(150))
        #expect(c.round == 1 && c.step == .propose)
        #expect(r.valueRequest?.round == 1)
    }

    @Test("line 49: proposal plus 2f+1 precommits decide, in any round, with a verifiable certificate")
    func line49() throws {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        _ = c.feed(h.vote(.prevote, round: 1, nil, from: 2))
        _ = c.feed(h.vote(.prevote, round: 1, nil, from: 3))
        #expect(c.round == 1)
        _ = c.answer(c.feed(h.proposal(round: 0, value: A)))
        _ = c.feed(h.vote(.precommit, round: 0, A.id, from: 0, timestamp: 900))
        _ = c.feed(h.vote(.precommit, round: 0, A.id, from: 2, timestamp: 800))
        #expect(!c.decided)
        let r = c.feed(h.vote(.precommit, round: 0, A.id, from: 3, timestamp: 1000))
        let d = try #require(r.decision)
        #expect(d.value == A && d.round == 0 && d.height == 1)
        try d.certificate.verify(chainID: Harness.chainID, validators: h.validators, verifier: h.verifier)
        #expect(d.certificate.signatures.map(\.validator) == [0, 2, 3])
        #expect(d.certificate.medianTime(validators: h.validators) == 900)
        // Nothing more happens at this height.
        let after = c.feed(h.vote(.prevote, round: 1, nil, from: 0))
        #expect(after.isEmpty)
    }

    @Test("line 49 needs valid(v): precommits for a value the application rejects do not decide")
    func line49Invalid() {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        _ = c.answer(c.feed(h.proposal(round: 0, value: A)), valid: { _ in false })
        for v in [0, 2, 3] { _ = c.feed(h.vote(.precommit, round: 0, A.id, from: v)) }
        #expect(!c.decided)
    }

    @Test("line 55: messages from more than 1/3 of the power in higher rounds skip ahead; 1/3 or less does not")
    func line55() {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        _ = c.feed(h.vote(.prevote, round: 5, nil, from: 2))
        #expect(c.round == 0)
        _ = c.feed(h.vote(.precommit, round: 7, nil, from: 3))
        #expect(c.round == 5 && c.step == .propose)
        // A byzantine validator's absurd round alone moves nothing.
        _ = c.feed(h.vote(.prevote, round: UInt32.max, nil, from: 0))
        #expect(c.round == 7)
    }

    @Test("line 57: timeoutPropose in propose step: prevote nil; growing with the round")
    func line57() {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        let early = c.feed(.tick(99))
        #expect(early.broadcast.isEmpty)
        let r = c.feed(.tick(100))
        #expect(votes(r).map { $0.2 } == [nil] && votes(r)[0].0 == .prevote)
        #expect(h.timeouts.duration(.propose, round: 3) == 130)
    }

    @Test("bad input is rejected without a state change")
    func rejections() {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        // Forged: validator 2's vote signed with validator 3's key.
        let forged = Vote(type: .prevote, height: 1, round: 0, blockID: A.id, timestamp: 1, validator: 2,
                          signature: try! h.signers[3].sign(voteSignBytes(chainID: Harness.chainID, type: .prevote, height: 1,
                                                                           round: 0, blockID: A.id, timestamp: 1)))
        #expect(throws: ConsensusError.self) { try c.handle(.message(.vote(forged))) }
        // Wrong proposer for round 0.
        #expect(throws: ConsensusError.self) { try c.handle(h.proposal(round: 0, value: A, from: 2)) }
        // Valid round not below the round.
        #expect(throws: ConsensusError.self) { try c.handle(h.proposal(round: 0, value: A, validRound: 0)) }
        // Unknown validator index.
        let ghost = Vote(type: .prevote, height: 1, round: 0, blockID: nil, timestamp: 1, validator: 9, signature: [])
        #expect(throws: ConsensusError.self) { try c.handle(.message(.vote(ghost))) }
        // Another chain's signature does not verify here.
        let other = Vote(type: .prevote, height: 1, round: 3, blockID: nil, timestamp: 1, validator: 2,
                         signature: try! h.signers[2].sign(voteSignBytes(chainID: "other", type: .prevote, height: 1,
                                                                          round: 3, blockID: nil, timestamp: 1)))
        #expect(throws: ConsensusError.self) { try c.handle(.message(.vote(other))) }
        #expect(c.round == 0 && c.step == .propose && c.evidence.isEmpty)
    }

    @Test("equivocation is detected and kept as evidence")
    func evidence() {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        _ = c.feed(h.vote(.prevote, round: 0, A.id, from: 2))
        let r = c.feed(h.vote(.prevote, round: 0, nil, from: 2))
        #expect(r.evidence.count == 1)
        #expect(r.evidence.first?.validator == 2)
        // A repeated identical vote is not evidence.
        let again = c.feed(h.vote(.prevote, round: 0, nil, from: 2))
        #expect(again.evidence.isEmpty && c.evidence.count == 1)
        // Conflicting proposals from the round's proposer.
        _ = c.feed(h.proposal(round: 0, value: A))
        let p = c.feed(h.proposal(round: 0, value: B))
        #expect(p.evidence.count == 1 && c.evidence.count == 2)
    }

    @Test("exactly 2/3 of the power is not a quorum; the inclusive planted bug decides on it")
    func exactTwoThirds() {
        let six = Harness(powers: [1, 1, 1, 1, 1, 1])
        for bug in [false, true] {
            var c = six.makeCore(me: 5, bugs: bug ? .quorumInclusive : [])
            _ = c.feed(six.start)
            _ = c.answer(c.feed(six.proposal(round: 0, value: six.value(1))))
            for v in [0, 1, 2, 3] { _ = c.feed(six.vote(.precommit, round: 0, six.value(1).id, from: v)) }
            #expect(c.decided == bug)
        }
    }

    @Test("messages for the next height are buffered and used when it starts")
    func nextHeightBuffer() {
        var c = h.makeCore(me: 1)
        _ = c.feed(h.start)
        _ = c.answer(c.feed(h.proposal(round: 0, value: A)))
        for v in [0, 2, 3] { _ = c.feed(h.vote(.precommit, round: 0, A.id, from: v)) }
        #expect(c.decided)
        let next = h.validators.nextHeight()
        var s = ProposerSchedule(next)
        let proposer2 = s.proposer(round: 0)
        let sig = try! h.signers[proposer2].sign(proposalSignBytes(chainID: Harness.chainID, height: 2, round: 0, validRound: nil, blockID: B.id))
        _ = c.feed(.message(.proposal(Proposal(height: 2, round: 0, validRound: nil, value: B, proposer: UInt16(proposer2), signature: sig))))
        let r = c.feed(.start(HeightStart(height: 2, validators: next, previousBlockTime: A.time)))
        if proposer2 != 1 { #expect(r.validationRequests == [B]) }
    }
}
