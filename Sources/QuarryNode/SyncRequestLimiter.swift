import QuarryNetwork

/// A per-peer bound on block-sync requests (docs/spec/sync.md, "Request limit"): a token
/// bucket per peer holding at most `burst` requests, refilled at `perSecond`. A request
/// that finds the bucket empty is refused: the node answers it with an empty `blocks`
/// message, reads nothing from its store, and counts it. Time comes in as milliseconds
/// from the caller; the arithmetic is integer (thousandths of a request).
public struct SyncRequestLimiter: Sendable {
    public struct Policy: Sendable, Equatable {
        /// Requests a peer may make at once after a quiet period.
        public var burst: Int
        /// Requests per second a peer may keep up.
        public var perSecond: Int
        public init(burst: Int = 32, perSecond: Int = 16) {
            precondition(burst >= 1 && perSecond >= 1, "sync request limits must be positive")
            self.burst = burst
            self.perSecond = perSecond
        }
    }

    /// What happened to one request.
    public enum Decision: Equatable, Sendable {
        case allowed
        /// Refused; `refusedInRow` counts this peer's refusals since its last allowed request.
        case refused(refusedInRow: UInt64)
    }

    private struct Bucket: Sendable {
        var milliTokens: UInt64
        var updatedAt: UInt64
        var refusedInRow: UInt64 = 0
    }

    public let policy: Policy
    private var buckets: [NodeID: Bucket] = [:]
    /// Requests refused since the node started, all peers together.
    public private(set) var refusedTotal: UInt64 = 0

    public init(policy: Policy = Policy()) { self.policy = policy }

    /// Takes one request from `peer`'s bucket at `now` (milliseconds; a clock that goes
    /// back refills nothing).
    public mutating func admit(_ peer: NodeID, now: UInt64) -> Decision {
        let capacity = UInt64(policy.burst) * 1_000
        var bucket = buckets[peer] ?? Bucket(milliTokens: capacity, updatedAt: now)
        if now > bucket.updatedAt {
            let refill = (now - bucket.updatedAt).multipliedReportingOverflow(by: UInt64(policy.perSecond))
            bucket.milliTokens = refill.overflow || refill.partialValue >= capacity ? capacity : min(capacity, bucket.milliTokens + refill.partialValue)
            bucket.updatedAt = now
        }
        let decision: Decision
        if bucket.milliTokens >= 1_000 {
            bucket.milliTokens -= 1_000
            bucket.refusedInRow = 0
            decision = .allowed
        } else {
            bucket.refusedInRow += 1
            refusedTotal += 1
            decision = .refused(refusedInRow: bucket.refusedInRow)
        }
        buckets[peer] = bucket
        return decision
    }

    /// Drops a peer's bucket (it disconnected); at most one bucket per connected peer remains.
    public mutating func forget(_ peer: NodeID) { buckets[peer] = nil }

    public var trackedPeers: Int { buckets.count }
}
