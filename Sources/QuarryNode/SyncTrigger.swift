import QuarryNetwork

/// Decides when a node asks a peer for blocks, from the committed heights its peers
/// announced (docs/spec/sync.md, "When a node asks"). Time comes in as data, so the rule is
/// tested without sockets or clocks.
///
/// A peer at least two blocks ahead is asked at once. A peer exactly one block ahead has
/// usually just decided the block this node is deciding too, so it is asked only when this
/// node is still at the same height `behindByOneGraceMilliseconds` later. Without that
/// second rule a node that missed the last precommits of a height waits for the network to
/// commit one more block, which it cannot do when this node's vote is needed (three of four
/// validators up, one of them stuck a block behind).
public struct SyncTrigger: Sendable {
    public let behindByOneGraceMilliseconds: UInt64
    /// Since when this node has been exactly one block behind, and at which height.
    private var behindByOneSince: (height: UInt64, at: UInt64)?

    public init(behindByOneGraceMilliseconds: UInt64 = 1_500) {
        self.behindByOneGraceMilliseconds = behindByOneGraceMilliseconds
    }

    /// The peer to ask for the blocks after `height` now, or nil. Among the peers, the one
    /// with the highest announced height (ties: the greater node id, so every call picks the
    /// same one).
    public mutating func peerToAsk(height: UInt64, announced: [NodeID: UInt64], now: UInt64) -> NodeID? {
        guard let (peer, best) = announced.max(by: { ($0.value, $0.key) < ($1.value, $1.key) }), best > height else {
            behindByOneSince = nil
            return nil
        }
        if best == height + 1 {
            if behindByOneSince?.height != height { behindByOneSince = (height, now) }
            guard now >= behindByOneSince!.at + behindByOneGraceMilliseconds else { return nil }
        }
        behindByOneSince = nil
        return peer
    }
}
