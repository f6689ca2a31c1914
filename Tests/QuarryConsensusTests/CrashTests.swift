import Testing
import QuarryCore
@testable import QuarryConsensus
import QuarrySimulation

/// A driver for one core with a simulated disk: each input is appended to the WAL
/// unsynced; a Ready with a signed state syncs the WAL and saves the state before its
/// messages count as sent.
struct CrashDriver {
    let h: Harness
    var core: ConsensusCore
    var walSynced = WALFormat.magic
    var walUnsynced: [UInt8] = []
    var saved: SignedState? = nil
    var sent: [ConsensusMessage] = []
    let answerValue: ProposalValue

    init(h: Harness, core: ConsensusCore, answerValue: ProposalValue) {
        self.h = h
        self.core = core
        self.answerValue = answerValue
    }

    mutating func input(_ i: ConsensusInput, log: Bool = true) {
        if log { walUnsynced += WALFormat.encodeRecord(i) }
        guard let r = try? core.handle(i) else { return }
        if let s = r.signed {
            walSynced += walUnsynced
            walUnsynced = []
            saved = s
        }
        sent += r.broadcast
        for v in r.validationRequests { input(.validation(height: core.height, blockID: v.id, valid: true)) }
        if let req = r.valueRequest { input(.proposalValue(height: req.height, round: req.round, value: answerValue)) }
    }
}

struct SignKey: Hashable { let height: Height; let round: Round; let step: Step }

func signedContent(_ m: ConsensusMessage) -> (SignKey, Hash256?, Round?) {
    switch m {
    case .proposal(let p): return (SignKey(height: p.height, round: p.round, step: .propose), p.value.id, p.validRound)
    case .vote(let v): return (SignKey(height: v.height, round: v.round, step: v.type.step), v.blockID, nil)
    }
}

/// Returns the first conflict between two lists of messages signed by one validator.
func firstConflict(_ a: [ConsensusMessage], _ b: [ConsensusMessage]) -> String? {
    var seen = [SignKey: (Hash256?, Round?)]()
    for m in a + b {
        let (k, id, vr) = signedContent(m)
        if let (id0, vr0) = seen[k] {
            if id0 != id || vr0 != vr { return "conflicting \(k.step) at h=\(k.height) r=\(k.round)" }
        } else {
            seen[k] = (id, vr)
        }
    }
    return nil
}

@Suite("Double-sign protection across crashes")
struct CrashTests {
    let h = Harness()
    var A: ProposalValue { h.value(0xA) }
    var B: ProposalValue { h.value(0xB) }
    var C: ProposalValue { h.value(0xC) }

    /// Validator 1 through round 0 (prevote A, lock, precommit A) into round 1, where it
    /// proposes A again (vr = 0), prevotes it and precommits nil.
    var script: [ConsensusInput] {
        [h.start, h.proposal(round: 0, value: A),
         h.vote(.prevote, round: 0, A.id, from: 0), h.vote(.prevote, round: 0, A.id, from: 2),
         h.vote(.precommit, round: 0, nil, from: 0), h.vote(.precommit, round: 0, nil, from: 2), .tick(60),
         h.vote(.prevote, round: 1, nil, from: 0), h.vote(.prevote, round: 1, nil, from: 2), h.vote(.prevote, round: 1, nil, from: 3),
         .tick(200)]
    }

    /// After the restart: everything that would make a forgetful node sign differently.
    var temptations: [ConsensusInput] {
        [h.proposal(round: 0, value: B), h.vote(.prevote, round: 0, B.id, from: 0), h.vote(.prevote, round: 0, B.id, from: 2),
         h.vote(.prevote, round: 0, B.id, from: 3), .tick(1_000), h.vote(.precommit, round: 0, nil, from: 3), .tick(2_000),
         h.vote(.prevote, round: 1, C.id, from: 0), h.vote(.prevote, round: 1, C.id, from: 2), .tick(3_000),
         h.vote(.prevote, round: 1, C.id, from: 3), .tick(4_000), .tick(5_000)]
    }

    enum Disk: CaseIterable { case syncedOnly, tornHalf, everythingWritten, walLost }

    /// Crashes after every prefix of the script, with every way the disk can come back,
    /// restarts from WAL + saved state, and returns the conflicts found.
    func crashEverywhere(bugs: PlantedBugs) -> [String] {
        var conflicts = [String]()
        for k in 0...script.count {
            for disk in Disk.allCases {
                var d = CrashDriver(h: h, core: h.makeCore(me: 1), answerValue: C)
                for i in script.prefix(k) { d.input(i) }
                var wal = d.walSynced
                switch disk {
                case .syncedOnly: break
                case .tornHalf: wal += d.walUnsynced.prefix(d.walUnsynced.count / 2)
                case .everythingWritten: wal += d.walUnsynced
                case .walLost: wal = []
                }
                var r = CrashDriver(h: h, core: h.makeCore(me: 1, signed: d.saved, bugs: bugs), answerValue: C)
                let replay = WALFormat.replayInputs((try? WALFormat.scan(wal))?.inputs ?? [], height: 1)
                if replay.isEmpty {
                    r.input(h.start)
                } else {
                    for i in replay { r.input(i, log: false) }
                }
                for i in temptations { r.input(i) }
                if let c = firstConflict(d.sent, r.sent) { conflicts.append("crash after \(k) inputs, \(disk): \(c)") }
            }
        }
        return conflicts
    }

    @Test("the scripted round signs a prevote, a precommit, a proposal, a prevote and a precommit")
    func scriptSigns() {
        var d = CrashDriver(h: h, core: h.makeCore(me: 1), answerValue: C)
        for i in script { d.input(i) }
        let signed = d.sent.map { signedContent($0) }
        #expect(signed.map { $0.0.step } == [.prevote, .precommit, .propose, .prevote, .precommit])
        #expect(signed.map { $0.1 } == [A.id, A.id, A.id, A.id, nil])
        #expect(signed[2].2 == 0)
    }

    @Test("a crash at every point of a round, with any WAL state, never leads to a conflicting signature")
    func noDoubleSign() {
        let conflicts = crashEverywhere(bugs: [])
        #expect(conflicts.isEmpty, "\(conflicts)")
    }

    @Test("the check has teeth: forgetting the saved state on restart double-signs")
    func forgetfulNodeDoubleSigns() {
        #expect(!crashEverywhere(bugs: .forgetLastSignedOnRestart).isEmpty)
    }

    @Test("the guard: sign above the record, re-issue the identical message, refuse the rest")
    func guardRules() throws {
        var s = SignedState()
        #expect(s.check(height: 1, round: 0, step: .prevote, blockID: nil, validRound: nil) == .sign)
        let rec = SignedRecord(height: 5, round: 2, step: .prevote, blockID: A.id, validRound: nil, timestamp: 9, signature: [1])
        s.record(rec)
        #expect(s.check(height: 5, round: 2, step: .prevote, blockID: A.id, validRound: nil) == .reuse(rec))
        #expect(s.check(height: 5, round: 2, step: .prevote, blockID: B.id, validRound: nil) == .refuse)
        #expect(s.check(height: 5, round: 2, step: .prevote, blockID: nil, validRound: nil) == .refuse)
        #expect(s.check(height: 5, round: 1, step: .precommit, blockID: nil, validRound: nil) == .refuse)
        #expect(s.check(height: 4, round: 9, step: .precommit, blockID: nil, validRound: nil) == .refuse)
        #expect(s.check(height: 5, round: 2, step: .precommit, blockID: A.id, validRound: nil) == .sign)
        #expect(s.check(height: 5, round: 3, step: .propose, blockID: B.id, validRound: 2) == .sign)
        let pc = SignedRecord(height: 5, round: 2, step: .precommit, blockID: nil, validRound: nil, timestamp: 10, signature: [2])
        s.record(pc)
        // The prevote of the same round can still be re-issued identically (restart replay).
        #expect(s.check(height: 5, round: 2, step: .prevote, blockID: A.id, validRound: nil) == .reuse(rec))
        #expect(try SignedState(canonicalBytes: s.canonicalBytes) == s)
    }
}
