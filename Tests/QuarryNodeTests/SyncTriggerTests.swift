import Testing
import QuarryCrypto
import QuarryNetwork
@testable import QuarryNode

@Suite struct SyncTriggerTests {
    let a = NodeID(publicKey: SM2PrivateKey().publicKey)
    let b = NodeID(publicKey: SM2PrivateKey().publicKey)

    @Test func nothingToAskWhenNoPeerIsAhead() {
        var t = SyncTrigger(behindByOneGraceMilliseconds: 1_000)
        #expect(t.peerToAsk(height: 5, announced: [:], now: 0) == nil)
        #expect(t.peerToAsk(height: 5, announced: [a: 5, b: 4], now: 0) == nil)
        #expect(t.peerToAsk(height: 5, announced: [a: 5], now: 10_000) == nil)
    }

    @Test func twoOrMoreAheadIsAskedAtOnceTheHighestFirst() {
        var t = SyncTrigger(behindByOneGraceMilliseconds: 1_000)
        #expect(t.peerToAsk(height: 5, announced: [a: 7, b: 6], now: 0) == a)
        #expect(t.peerToAsk(height: 5, announced: [a: 7, b: 9], now: 0) == b)
        // Ties go to the greater id, whatever the dictionary's order.
        #expect(t.peerToAsk(height: 5, announced: [a: 9, b: 9], now: 0) == max(a, b))
    }

    @Test func oneAheadIsAskedOnlyAfterTheGraceAtTheSameHeight() {
        var t = SyncTrigger(behindByOneGraceMilliseconds: 1_000)
        #expect(t.peerToAsk(height: 5, announced: [a: 6], now: 100) == nil)
        #expect(t.peerToAsk(height: 5, announced: [a: 6], now: 1_099) == nil)
        #expect(t.peerToAsk(height: 5, announced: [a: 6], now: 1_100) == a)
        // Asked once: the grace starts again.
        #expect(t.peerToAsk(height: 5, announced: [a: 6], now: 1_200) == nil)
        // Consensus decided height 6 meanwhile; the peer is one ahead again: a new grace.
        #expect(t.peerToAsk(height: 6, announced: [a: 7], now: 2_150) == nil)
        #expect(t.peerToAsk(height: 6, announced: [a: 7], now: 3_149) == nil)
        #expect(t.peerToAsk(height: 6, announced: [a: 7], now: 3_150) == a)
    }

    @Test func catchingUpClearsTheGrace() {
        var t = SyncTrigger(behindByOneGraceMilliseconds: 1_000)
        #expect(t.peerToAsk(height: 5, announced: [a: 6], now: 0) == nil)
        #expect(t.peerToAsk(height: 6, announced: [a: 6], now: 500) == nil)
        // Behind by one again later: measured from now, not from the first time.
        #expect(t.peerToAsk(height: 6, announced: [a: 7], now: 5_000) == nil)
        #expect(t.peerToAsk(height: 6, announced: [a: 7], now: 5_999) == nil)
        #expect(t.peerToAsk(height: 6, announced: [a: 7], now: 6_000) == a)
    }
}
