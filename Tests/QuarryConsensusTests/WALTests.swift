import Testing
import QuarryCore
@testable import QuarryConsensus
import QuarrySimulation

@Suite("WAL format")
struct WALTests {
    let h = Harness()

    var sampleInputs: [ConsensusInput] {
        [h.start, .tick(5), h.proposal(round: 0, value: h.value(1)),
         .validation(height: 1, blockID: h.value(1).id, valid: true),
         h.vote(.prevote, round: 0, h.value(1).id, from: 2), h.vote(.precommit, round: 0, nil, from: 3),
         .proposalValue(height: 1, round: 1, value: h.value(2)), .tick(1_000_000)]
    }

    func file(_ inputs: [ConsensusInput]) -> (bytes: [UInt8], boundaries: [Int]) {
        var bytes = WALFormat.magic
        var boundaries = [bytes.count]
        for i in inputs {
            bytes += WALFormat.encodeRecord(i)
            boundaries.append(bytes.count)
        }
        return (bytes, boundaries)
    }

    @Test("CRC-32C known answers")
    func crc() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }

    @Test("records round-trip, in order")
    func roundTrip() throws {
        let (bytes, _) = file(sampleInputs)
        let scan = try WALFormat.scan(bytes)
        #expect(scan.inputs == sampleInputs)
        #expect(scan.validLength == bytes.count && scan.tailProblem == nil)
        #expect(try WALFormat.scan([]).inputs.isEmpty)
        #expect(try WALFormat.scan(WALFormat.magic).inputs.isEmpty)
    }

    @Test("a torn tail at every byte is detected and cut at the last whole record")
    func tornTail() throws {
        let (bytes, boundaries) = file(sampleInputs)
        for cut in WALFormat.magic.count..<bytes.count {
            let scan = try WALFormat.scan(Array(bytes.prefix(cut)))
            let whole = boundaries.filter { $0 <= cut }
            #expect(scan.validLength == whole.last!)
            #expect(scan.inputs == Array(sampleInputs.prefix(whole.count - 1)))
            #expect((scan.tailProblem == nil) == (cut == whole.last!))
        }
    }

    @Test("a flipped bit anywhere in a record is never trusted")
    func corruption() throws {
        let (bytes, boundaries) = file(sampleInputs)
        let lastStart = boundaries[boundaries.count - 2]
        for i in lastStart..<bytes.count {
            for bit in [0, 3, 7] {
                var bad = bytes
                bad[i] ^= UInt8(1 << bit)
                let scan = try WALFormat.scan(bad)
                #expect(scan.inputs == Array(sampleInputs.dropLast()))
                #expect(scan.validLength == lastStart && scan.tailProblem != nil)
            }
        }
        // Corruption in the middle drops everything after it as well.
        var mid = bytes
        mid[boundaries[2] + 9] ^= 0x40
        #expect(try WALFormat.scan(mid).inputs.count == 2)
        // Garbage appended after whole records.
        #expect(try WALFormat.scan(bytes + [0, 0, 0]).validLength == bytes.count)
        #expect(try WALFormat.scan(bytes + [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]).tailProblem == .lengthOverLimit)
    }

    @Test("a file without the magic is rejected")
    func badMagic() {
        #expect(throws: WALFormat.FileError.badMagic) { try WALFormat.scan(Array("NOTAWAL!".utf8) + [1, 2]) }
        #expect(throws: WALFormat.FileError.badMagic) { try WALFormat.scan([0x51, 0x00]) }
    }

    @Test("replay starts at the last start of the height being decided")
    func replayFrom() {
        let start2 = ConsensusInput.start(HeightStart(height: 2, validators: h.validators, previousBlockTime: 1))
        let log: [ConsensusInput] = [h.start, .tick(1), start2, .tick(2), .tick(3)]
        #expect(WALFormat.replayInputs(log, height: 2) == [start2, .tick(2), .tick(3)])
        #expect(WALFormat.replayInputs(log, height: 3).isEmpty)
    }

    @Test("replaying the WAL rebuilds the same state and re-issues identical signatures")
    func replayRebuildsState() throws {
        var c = h.makeCore(me: 1)
        var log = [ConsensusInput]()
        var sent = [ConsensusMessage]()
        func run(_ i: ConsensusInput) {
            log.append(i)
            let r = c.feed(i)
            sent += r.broadcast
            for v in r.validationRequests {
                let a = ConsensusInput.validation(height: c.height, blockID: v.id, valid: true)
                log.append(a)
                sent += c.feed(a).broadcast
            }
        }
        run(h.start)
        run(h.proposal(round: 0, value: h.value(1)))
        run(h.vote(.prevote, round: 0, h.value(1).id, from: 0))
        run(h.vote(.prevote, round: 0, h.value(1).id, from: 2))
        #expect(c.lockedRound == 0)
        let (bytes, _) = file(log)
        var restarted = h.makeCore(me: 1, signed: c.signedState)
        var resent = [ConsensusMessage]()
        for i in try WALFormat.scan(bytes).inputs { resent += restarted.feed(i).broadcast }
        #expect(restarted.lockedRound == 0 && restarted.lockedValue == h.value(1) && restarted.step == .precommit)
        #expect(resent == sent)
        #expect(restarted.refusedSignatures == 0)
    }
}

@Suite("Validator sets and certificates")
struct ValidatorSetTests {
    @Test("equal powers rotate the proposer round-robin; the next height continues the rotation")
    func roundRobin() throws {
        let h = Harness()
        var s = ProposerSchedule(h.validators)
        #expect((0..<8).map { s.proposer(round: $0) } == [0, 1, 2, 3, 0, 1, 2, 3])
        var next = ProposerSchedule(h.validators.nextHeight())
        #expect(next.proposer(round: 0) == 1)
    }

    @Test("weighted powers propose in proportion, deterministically")
    func weighted() throws {
        let h = Harness(powers: [1, 2, 3, 10])
        var s = ProposerSchedule(h.validators)
        var counts = [0, 0, 0, 0]
        for r in 0..<1600 { counts[s.proposer(round: Round(r))] += 1 }
        #expect(counts == [100, 200, 300, 1000])
        var again = ProposerSchedule(h.validators)
        #expect((0..<50).map { again.proposer(round: $0) } == (0..<50).map { s.proposer(round: $0) })
    }

    @Test("validator updates: join with low priority, change power, leave; bad updates throw")
    func updates() throws {
        let h = Harness()
        let newKey = Validator(publicKey: [9, 9, 9, 9, 9, 9, 9, 9], power: 4)
        let updated = try h.validators.applying([newKey, Validator(publicKey: h.signers[0].publicKey, power: 0),
                                                 Validator(publicKey: h.signers[1].publicKey, power: 2)])
        #expect(updated.count == 4 && updated.totalPower == 8)
        #expect(updated.index(of: h.signers[0].publicKey) == nil)
        #expect(updated.priorities.last! < updated.priorities.first!)
        #expect(throws: ConsensusError.self) { try h.validators.applying([Validator(publicKey: [1], power: 0)]) }
        #expect(throws: ConsensusError.self) { try ValidatorSet(validators: []) }
        #expect(throws: ConsensusError.self) { try ValidatorSet(validators: [Validator(publicKey: [1], power: 0)]) }
        let encoded = updated.canonicalBytes
        #expect(try ValidatorSet(canonicalBytes: encoded) == updated)
    }

    @Test("certificates: verification rejects forgeries, repeats, disorder and too little power; median is power-weighted")
    func certificates() throws {
        let h = Harness(powers: [1, 1, 1, 4])
        let id = h.value(1).id
        func sig(_ v: Int, _ t: UInt64) -> CommitSignature {
            let vote = h.signedVote(.precommit, round: 2, id, from: v, timestamp: t)
            return CommitSignature(validator: UInt16(v), timestamp: t, signature: vote.signature)
        }
        let good = CommitCertificate(height: 1, round: 2, blockID: id, signatures: [sig(0, 10), sig(1, 20), sig(3, 99)])
        #expect(try good.verify(chainID: Harness.chainID, validators: h.validators, verifier: h.verifier) == 6)
        // Weighted median: validator 3 alone holds 4 of the 6 signed.
        #expect(good.medianTime(validators: h.validators) == 99)
        let cases: [[CommitSignature]] = [
            [sig(0, 10), sig(1, 20), sig(2, 30)],                  // 3 of 7: too little
            [sig(1, 20), sig(0, 10), sig(3, 99)],                  // unsorted
            [sig(0, 10), sig(0, 10), sig(3, 99)],                  // repeated
            [sig(0, 10), CommitSignature(validator: 3, timestamp: 98, signature: sig(3, 99).signature)],  // altered time
            [sig(0, 10), sig(3, 99), CommitSignature(validator: 7, timestamp: 1, signature: [])],        // unknown
        ]
        for sigs in cases {
            let c = CommitCertificate(height: 1, round: 2, blockID: id, signatures: sigs)
            #expect(throws: ConsensusError.self) { try c.verify(chainID: Harness.chainID, validators: h.validators, verifier: h.verifier) }
        }
        let otherChain = CommitCertificate(height: 1, round: 2, blockID: id, signatures: [sig(0, 10), sig(1, 20), sig(3, 99)])
        #expect(throws: ConsensusError.self) { try otherChain.verify(chainID: "elsewhere", validators: h.validators, verifier: h.verifier) }
        #expect(try CommitCertificate(canonicalBytes: good.canonicalBytes) == good)
    }

    @Test("messages and inputs round-trip through their canonical encoding; junk is rejected")
    func encoding() throws {
        let h = Harness()
        let inputs: [ConsensusInput] = [h.start, h.proposal(round: 3, value: h.value(2), validRound: 1),
                                        h.vote(.precommit, round: 1, nil, from: 2), .tick(7)]
        for i in inputs { #expect(try ConsensusInput(canonicalBytes: i.canonicalBytes) == i) }
        #expect(throws: (any Error).self) { try ConsensusMessage(canonicalBytes: [9]) }
        #expect(throws: (any Error).self) { try ConsensusMessage(canonicalBytes: []) }
        let vote = ConsensusMessage.vote(h.signedVote(.prevote, round: 0, nil, from: 0)).canonicalBytes
        #expect(throws: (any Error).self) { try ConsensusMessage(canonicalBytes: vote + [0]) }
        #expect(throws: (any Error).self) { try ConsensusMessage(canonicalBytes: Array(vote.dropLast())) }
    }
}
