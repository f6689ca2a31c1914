/// Exponential backoff with jitter for redialing an outbound peer: attempt `n` waits a
/// uniformly random time in `[c/2, c]` where `c = min(maximum, minimum * 2^n)`
/// ("equal jitter"), so that nodes restarted together do not redial in lockstep.
public struct ReconnectBackoff: Sendable, Equatable {
    public var delayMinMilliseconds: Int64
    public var delayMaxMilliseconds: Int64

    public init(delayMinMilliseconds: Int64, delayMaxMilliseconds: Int64) {
        precondition(delayMinMilliseconds >= 1 && delayMaxMilliseconds >= delayMinMilliseconds,
                     "backoff needs 1 <= min <= max")
        self.delayMinMilliseconds = delayMinMilliseconds
        self.delayMaxMilliseconds = delayMaxMilliseconds
    }

    /// The ceiling for attempt `attempt` (0 for the first redial).
    public func ceilingMilliseconds(attempt: Int) -> Int64 {
        var c = delayMinMilliseconds
        var n = 0
        while n < attempt && c < delayMaxMilliseconds {
            c = c > delayMaxMilliseconds / 2 ? delayMaxMilliseconds : c * 2
            n += 1
        }
        return min(c, delayMaxMilliseconds)
    }

    /// The delay before redial attempt `attempt`, jitter drawn from `rng`.
    public func delayMilliseconds<R: RandomNumberGenerator>(attempt: Int, using rng: inout R) -> Int64 {
        let c = ceilingMilliseconds(attempt: attempt)
        return Int64.random(in: (c / 2)...c, using: &rng)
    }
}

