import QuarryNetwork

/// How far behind its peers a node is (docs/spec/sync.md, "Reporting"). Read it from
/// `NodeRuntime.syncStatus`; the health endpoint, the metrics and the JSON-RPC
/// `node_status` all show this value.
public struct SyncStatus: Sendable, Equatable {
    /// This node's newest committed block.
    public var height: UInt64
    /// The highest height a connected peer announced (0 when none has yet).
    public var bestPeerHeight: UInt64
    /// The peer that announced `bestPeerHeight` (the smallest id among equals).
    public var bestPeer: NodeID?
    /// Connected peers whose announced height is known.
    public var peersReporting: Int
    /// Blocks applied by block sync since the node started.
    public var blocksSynced: UInt64

    public init(height: UInt64, bestPeerHeight: UInt64 = 0, bestPeer: NodeID? = nil, peersReporting: Int = 0,
                blocksSynced: UInt64 = 0) {
        self.height = height
        self.bestPeerHeight = bestPeerHeight
        self.bestPeer = bestPeer
        self.peersReporting = peersReporting
        self.blocksSynced = blocksSynced
    }

    /// Blocks the best peer has that this node has not (0 when none is ahead).
    public var blocksBehind: UInt64 { bestPeerHeight > height ? bestPeerHeight - height : 0 }

    /// A peer is two or more blocks ahead, so block sync is fetching. One block behind is
    /// the normal state of a live validator for a moment after each commit elsewhere: the
    /// next block is decided by consensus, not fetched.
    public var catchingUp: Bool { blocksBehind >= 2 }
}

/// The heights peers announce on the block-sync channel, for reporting. Entries go when a
/// peer disconnects, and when a peer fails to serve what it announced.
public struct PeerHeights: Sendable, Equatable {
    private var heights: [NodeID: UInt64] = [:]

    public init() {}

    public mutating func record(_ peer: NodeID, height: UInt64) { heights[peer] = height }
    public mutating func forget(_ peer: NodeID) { heights[peer] = nil }
    public var count: Int { heights.count }
    public func height(of peer: NodeID) -> UInt64? { heights[peer] }

    /// The highest announcement, ties to the smallest node id (the same answer whatever the
    /// dictionary's order).
    public var best: (peer: NodeID, height: UInt64)? {
        var out: (peer: NodeID, height: UInt64)?
        for (peer, h) in heights {
            if let o = out, o.height > h || (o.height == h && o.peer < peer) { continue }
            out = (peer, h)
        }
        return out
    }

    public func status(height: UInt64, blocksSynced: UInt64) -> SyncStatus {
        let b = best
        return SyncStatus(height: height, bestPeerHeight: b?.height ?? 0, bestPeer: b?.peer,
                          peersReporting: heights.count, blocksSynced: blocksSynced)
    }
}
