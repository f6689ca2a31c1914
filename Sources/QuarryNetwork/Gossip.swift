import QuarryCore
import QuarryCrypto

/// A bounded set of recently seen message ids. When full, the id inserted longest ago is
/// forgotten first (FIFO): a message is re-gossiped within a short window, so insertion
/// order is a good enough proxy for recency and costs O(1) per operation.
public struct SeenSet: Sendable {
    public let capacity: Int
    private var members: Set<Hash256> = []
    private var ring: [Hash256] = []
    private var next = 0

    public init(capacity: Int) {
        precondition(capacity > 0, "a seen-set needs room for at least one id")
        self.capacity = capacity
        members.reserveCapacity(capacity)
        ring.reserveCapacity(capacity)
    }

    public var count: Int { members.count }

    public func contains(_ id: Hash256) -> Bool { members.contains(id) }

    /// Records `id`; returns true if it was not already present.
    @discardableResult
    public mutating func insert(_ id: Hash256) -> Bool {
        guard !members.contains(id) else { return false }
        if ring.count < capacity {
            ring.append(id)
        } else {
            members.remove(ring[next])
            ring[next] = id
            next = (next + 1) % capacity
        }
        members.insert(id)
        return true
    }
}

/// Flooding gossip over a `P2PService` with duplicate suppression: every node relays a
/// message it sees for the first time to all its peers except the one it came from, and
/// drops copies it has already seen. A node that missed a message from its origin still
/// gets it from any peer that has it. Message id = SM3(payload), per channel.
///
/// The caller feeds inbound messages of the gossiped channels to `receive`; messages of
/// other channels (block sync requests, say) are not gossip.
public final class Gossip: @unchecked Sendable {
    public let service: P2PService
    public let channels: Set<P2PChannel>
    private let lock = Lock()
    private var seen: [P2PChannel: SeenSet]

    public init(service: P2PService, channels: Set<P2PChannel> = [.consensus, .transactions],
                seenCapacity: Int = 100_000) {
        precondition(!channels.contains(.control), "the control channel is not gossiped")
        self.service = service
        self.channels = channels
        var seen: [P2PChannel: SeenSet] = [:]
        for c in channels { seen[c] = SeenSet(capacity: seenCapacity) }
        self.seen = seen
    }

    public static func messageID(_ payload: [UInt8]) -> Hash256 { SM3.hash(payload) }

    /// Publishes a message this node originates. Returns false (and sends nothing) if the
    /// same payload was already seen on that channel.
    @discardableResult
    public func publish(channel: P2PChannel, payload: [UInt8]) -> Bool {
        precondition(channels.contains(channel), "channel \(channel) is not gossiped")
        guard markSeen(channel: channel, payload: payload) else { return false }
        service.broadcast(channel: channel, bytes: payload)
        return true
    }

    /// Handles a message received on a gossiped channel. Returns true if it is new, in which
    /// case it has been relayed to every other peer and the application should process it;
    /// false for a duplicate (or a channel that is not gossiped), which is dropped.
    @discardableResult
    public func receive(_ message: InboundMessage) -> Bool {
        guard channels.contains(message.channel),
              markSeen(channel: message.channel, payload: message.payload) else { return false }
        service.broadcast(channel: message.channel, bytes: message.payload, except: [message.peer])
        return true
    }

    /// Whether a payload was already seen on a channel.
    public func hasSeen(channel: P2PChannel, payload: [UInt8]) -> Bool {
        let id = Self.messageID(payload)
        return lock.withLock { seen[channel]?.contains(id) ?? false }
    }

    private func markSeen(channel: P2PChannel, payload: [UInt8]) -> Bool {
        let id = Self.messageID(payload)
        return lock.withLock { seen[channel]!.insert(id) }
    }
}
