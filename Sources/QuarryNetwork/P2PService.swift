import NIOCore
import NIOPosix
import QuarryCore
import QuarryCrypto

/// An address to dial, with the node id expected there when it is known.
public struct PeerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var nodeID: NodeID?
    public init(host: String, port: Int, nodeID: NodeID? = nil) {
        self.host = host
        self.port = port
        self.nodeID = nodeID
    }
    public var description: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return (nodeID.map { "\($0.hex)@" } ?? "") + "\(hostPart):\(port)"
    }

    /// Parses `host:port`, `[ipv6]:port`, or either prefixed with `NODEID@` (40 hex digits),
    /// the form used in configuration files. The inverse of `description`.
    public init(parsing text: String) throws(P2PError) {
        var rest = Substring(text)
        var id: NodeID?
        if let at = rest.firstIndex(of: "@") {
            id = try NodeID(hex: String(rest[..<at]))
            rest = rest[rest.index(after: at)...]
        }
        let host: Substring
        let portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]"), rest[rest.index(after: close)...].hasPrefix(":") else {
                throw P2PError("p2p.bad_address", "expected [ipv6]:port in \"\(text)\"")
            }
            host = rest[rest.index(after: rest.startIndex)..<close]
            portText = rest[rest.index(close, offsetBy: 2)...]
        } else {
            guard let colon = rest.lastIndex(of: ":"), !rest[..<colon].contains(":") else {
                throw P2PError("p2p.bad_address", "expected host:port in \"\(text)\"")
            }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (1...65_535).contains(port) else {
            throw P2PError("p2p.bad_address", "bad host or port in \"\(text)\"")
        }
        self.init(host: String(host), port: port, nodeID: id)
    }
}

/// Bytes that may wait in one peer's send queue per channel (handed to NIO but not yet
/// written to the socket), and what happens past the bound.
public struct SendQueueLimits: Sendable, Equatable {
    /// Past this the connection is closed: a peer that cannot take consensus traffic is
    /// lagging and will catch up by block sync after reconnecting.
    public var consensusBytesMax: Int = 16 << 20
    /// Past this new transactions for that peer are dropped: others gossip them too.
    public var transactionsBytesMax: Int = 8 << 20
    /// Past this the send is refused with `.dropped`; the block-sync caller retries later.
    public var blockSyncBytesMax: Int = 32 << 20
    public init() {}

    func limit(_ channel: P2PChannel) -> Int {
        switch channel {
        case .consensus: consensusBytesMax
        case .transactions: transactionsBytesMax
        case .blockSync: blockSyncBytesMax
        case .control: 1 << 20
        }
    }
}

/// Everything the transport needs. Durations in milliseconds.
public struct P2PConfiguration: Sendable {
    public var identity: NodeIdentity
    public var membership: Membership
    /// Must match the peer's exactly; at most 64 bytes of UTF-8.
    public var chainID: String
    public var listenHost: String
    /// 0 for an ephemeral port (see `P2PService.start()`'s result).
    public var listenPort: Int
    /// Peers to dial and keep connected.
    public var peers: [PeerAddress]
    public var framePayloadBytesMax: Int = 4 << 20
    /// Open connections at most (inbound and outbound, handshaking included).
    public var connectionsMax: Int = 128
    public var handshakeTimeoutMilliseconds: Int64 = 5_000
    public var connectTimeoutMilliseconds: Int64 = 3_000
    public var pingIntervalMilliseconds: Int64 = 2_000
    public var idleTimeoutMilliseconds: Int64 = 10_000
    public var reconnectDelayMinMilliseconds: Int64 = 100
    public var reconnectDelayMaxMilliseconds: Int64 = 10_000
    public var sendQueueLimits = SendQueueLimits()
    /// Inbound messages waiting for the application at most; more are dropped and logged.
    public var inboundQueueMessagesMax: Int = 65_536
    /// Inbound payload bytes waiting for the application at most (one message always fits).
    public var inboundQueueBytesMax: Int = 64 << 20
    public var log: P2PLogHandler = { _, _, _ in }

    public init(identity: NodeIdentity, membership: Membership, chainID: String,
                listenHost: String = "127.0.0.1", listenPort: Int = 0, peers: [PeerAddress] = []) {
        precondition(chainID.utf8.count <= Wire.chainIDBytesMax, "chain id is longer than 64 bytes")
        self.identity = identity
        self.membership = membership
        self.chainID = chainID
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.peers = peers
    }
}

/// An application message received from an authenticated peer.
public struct InboundMessage: Sendable, Equatable {
    public let peer: NodeID
    public let channel: P2PChannel
    public let payload: [UInt8]
}

/// A peer came up (first established connection) or went down (its last one closed).
public enum PeerEvent: Sendable, Equatable {
    case connected(NodeID)
    case disconnected(NodeID, reason: String)
}

/// Counters for metrics (exported by the node in Prometheus format). They only grow,
/// except `connectedPeers` and `openConnections`.
public struct P2PStatistics: Sendable, Equatable {
    public var connectedPeers = 0
    public var openConnections = 0
    /// Authenticated connections accepted (a duplicate refused after its handshake is not).
    public var handshakesCompleted: UInt64 = 0
    /// Application frames queued for sending, per channel (index = channel byte).
    public var framesSent = [UInt64](repeating: 0, count: P2PChannel.allCases.count)
    /// Application frames received, per channel (index = channel byte).
    public var framesReceived = [UInt64](repeating: 0, count: P2PChannel.allCases.count)
    public var payloadBytesSent: UInt64 = 0
    public var payloadBytesReceived: UInt64 = 0
    /// Sends refused with `.dropped` (full queue, too large, reserved channel).
    public var sendsDropped: UInt64 = 0
    /// Received messages dropped because the application fell behind.
    public var inboundDropped: UInt64 = 0
    /// Closed connections by reason code (`p2p.connection_closed` when none was given).
    public var closes: [String: UInt64] = [:]
}

/// The outcome of `send`.
public enum SendResult: Sendable, Equatable {
    /// Handed to the connection; written in order after earlier frames.
    case queued
    /// No established connection to that peer.
    case notConnected
    /// Refused: too large, reserved channel, or that channel's send queue is full.
    case dropped(P2PError)
}

/// One established connection and its send-queue accounting.
final class PeerConnection: @unchecked Sendable {
    let peer: PeerIdentity
    let channel: Channel
    let initiatedByUs: Bool
    private let lock = Lock()
    private var queuedBytes = [Int](repeating: 0, count: P2PChannel.allCases.count)
    /// Only touched on the channel's event loop.
    private var flushScheduled = false

    init(peer: PeerIdentity, channel: Channel, initiatedByUs: Bool) {
        self.peer = peer
        self.channel = channel
        self.initiatedByUs = initiatedByUs
    }

    func enqueue(_ frame: OutboundFrame, limits: SendQueueLimits) -> SendResult {
        let index = Int(frame.channel.rawValue)
        let size = frame.payload.count + 1
        let limit = limits.limit(frame.channel)
        let fits = lock.withLock {
            // One frame always fits into an empty queue, whatever its size.
            guard queuedBytes[index] == 0 || queuedBytes[index] + size <= limit else { return false }
            queuedBytes[index] += size
            return true
        }
        guard fits else {
            let error = P2PError("p2p.send_queue_full",
                                 "\(frame.channel) send queue to \(peer.id.hex) is over \(limit) bytes")
            if frame.channel == .consensus {
                channel.triggerUserOutboundEvent(CloseWithReason(reason: error), promise: nil)
            }
            return .dropped(error)
        }
        let promise = channel.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { [self] _ in
            lock.withLock { queuedBytes[index] -= size }
        }
        // Write and decide about flushing on the event loop, in one task, so that a flush is
        // always ordered after every write it must cover. Flushes are coalesced: one per burst
        // of sends rather than one system call per frame.
        channel.eventLoop.execute { [self] in
            channel.write(frame, promise: promise)
            if !flushScheduled {
                flushScheduled = true
                channel.eventLoop.execute { [self] in
                    flushScheduled = false
                    channel.flush()
                }
            }
        }
        return .queued
    }
}

/// The P2P transport of one node: listens, dials the configured peers and redials them with
/// backoff, authenticates every connection, and moves framed messages per channel.
///
/// Inbound messages and peer events arrive on `inbound` and `events`. Call `start()` once
/// and `shutdown()` once; the event loop group belongs to the caller.
public final class P2PService: @unchecked Sendable {
    public let configuration: P2PConfiguration
    /// Received messages, for one consumer.
    public let inbound: InboundMessages
    /// Peer up/down events, for one consumer (the newest 4,096 are kept if unread).
    public let events: AsyncStream<PeerEvent>

    private let group: any EventLoopGroup
    private let eventsContinuation: AsyncStream<PeerEvent>.Continuation
    private let backoff: ReconnectBackoff
    private let lock = Lock()

    // Guarded by `lock`.
    private var jitter: any RandomNumberGenerator & Sendable
    private var currentMembership: Membership
    private var serverChannel: Channel?
    private var connections: [NodeID: PeerConnection] = [:]
    private var openChannels: [ObjectIdentifier: Channel] = [:]
    private var dialers: [Dialer] = []
    private var started = false
    private var shuttingDown = false
    private var stats = P2PStatistics()
    /// Peers whose connection was just replaced by the other end; their `disconnected`
    /// event waits `handshakeTimeoutMilliseconds` for the replacement to be established.
    private var replacedPeers: Set<NodeID> = []

    private struct Dialer {
        enum State { case idle, connecting, connected, waitingForPeer, scheduled }
        var address: PeerAddress
        var knownID: NodeID?
        var attempt = 0
        var state = State.idle
        var timer: Scheduled<Void>?
    }

    /// - Parameter jitter: the random source of the redial jitter (seeded in tests).
    public init(configuration: P2PConfiguration, group: any EventLoopGroup,
                jitter: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator()) {
        self.configuration = configuration
        self.group = group
        self.jitter = jitter
        self.currentMembership = configuration.membership
        self.backoff = ReconnectBackoff(delayMinMilliseconds: configuration.reconnectDelayMinMilliseconds,
                                        delayMaxMilliseconds: configuration.reconnectDelayMaxMilliseconds)
        inbound = InboundMessages(messagesMax: configuration.inboundQueueMessagesMax,
                                  bytesMax: configuration.inboundQueueBytesMax)
        (events, eventsContinuation) = AsyncStream.makeStream(
            of: PeerEvent.self, bufferingPolicy: .bufferingNewest(4096))
    }

    public var localNodeID: NodeID { configuration.identity.id }

    /// Binds the listener and starts dialing the configured peers. Returns the bound address.
    @discardableResult
    public func start() async throws -> SocketAddress {
        let alreadyStarted = lock.withLock { () -> Bool in
            defer { started = true }
            return started
        }
        precondition(!alreadyStarted, "P2PService.start() called twice")
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                initialize(channel, role: .responder, expectedPeer: nil, dialer: nil)
            }
            .bind(host: configuration.listenHost, port: configuration.listenPort).get()
        let address = server.localAddress!
        lock.withLock { serverChannel = server }
        configuration.log(.info, "P2P listening", ["p2p.address": "\(address)", "node.id": localNodeID.hex])
        for peer in configuration.peers { addPeer(peer) }
        return address
    }

    /// Adds an address to dial and keep connected.
    public func addPeer(_ address: PeerAddress) {
        let index = lock.withLock { () -> Int? in
            guard !shuttingDown else { return nil }
            dialers.append(Dialer(address: address, knownID: address.nodeID))
            return dialers.count - 1
        }
        if let index { dial(index) }
    }

    /// The nodes currently allowed to connect (initially `configuration.membership`).
    public var membership: Membership { lock.withLock { currentMembership } }

    /// Replaces the membership (validator set change, admitted or removed read-only node).
    /// New handshakes use it at once; established connections to nodes no longer in it are
    /// closed with `p2p.membership_revoked`.
    public func updateMembership(_ membership: Membership) {
        let revoked = lock.withLock { () -> [PeerConnection] in
            currentMembership = membership
            return connections.values.filter { !membership.contains($0.peer.publicKey) }
        }
        for connection in revoked {
            connection.channel.triggerUserOutboundEvent(
                CloseWithReason(reason: P2PError("p2p.membership_revoked",
                                                 "node \(connection.peer.id.hex) is no longer a member")),
                promise: nil)
        }
    }

    /// Peers with an established connection, in ascending id order.
    public var connectedPeers: [NodeID] { lock.withLock { connections.keys.sorted() } }

    /// Open connections, handshaking ones included.
    var openConnectionCount: Int { lock.withLock { openChannels.count } }

    /// A snapshot of the counters.
    public var statistics: P2PStatistics {
        lock.withLock {
            var s = stats
            s.connectedPeers = connections.count
            s.openConnections = openChannels.count
            return s
        }
    }

    /// Queues `bytes` for `peer` on `channel` (not `.control`, which is the transport's).
    @discardableResult
    public func send(to peer: NodeID, channel: P2PChannel, bytes: [UInt8]) -> SendResult {
        guard channel != .control else {
            lock.withLock { stats.sendsDropped += 1 }
            return .dropped(P2PError("p2p.reserved_channel", "the control channel belongs to the transport"))
        }
        guard bytes.count <= configuration.framePayloadBytesMax else {
            lock.withLock { stats.sendsDropped += 1 }
            return .dropped(.oversized(bytes.count, limit: configuration.framePayloadBytesMax))
        }
        guard let connection = lock.withLock({ connections[peer] }) else { return .notConnected }
        let result = connection.enqueue(OutboundFrame(channel: channel, payload: bytes),
                                        limits: configuration.sendQueueLimits)
        lock.withLock {
            if result == .queued {
                stats.framesSent[Int(channel.rawValue)] += 1
                stats.payloadBytesSent += UInt64(bytes.count)
            } else {
                stats.sendsDropped += 1
            }
        }
        return result
    }

    /// Sends to every connected peer except those in `except`; returns each peer's result in
    /// ascending id order.
    @discardableResult
    public func broadcast(channel: P2PChannel, bytes: [UInt8], except: Set<NodeID> = []) -> [(NodeID, SendResult)] {
        connectedPeers.filter { !except.contains($0) }.map { ($0, send(to: $0, channel: channel, bytes: bytes)) }
    }

    /// Stops listening and dialing, tells every peer, closes every connection and waits for
    /// them, then finishes `inbound` and `events`.
    public func shutdown() async {
        let (server, channels) = lock.withLock { () -> (Channel?, [Channel]) in
            shuttingDown = true
            for i in dialers.indices {
                dialers[i].timer?.cancel()
                dialers[i].timer = nil
            }
            return (serverChannel, Array(openChannels.values))
        }
        try? await server?.close()
        let reason = P2PError("p2p.shutdown", "the node is shutting down")
        for channel in channels {
            channel.triggerUserOutboundEvent(CloseWithReason(reason: reason), promise: nil)
        }
        for channel in channels {
            channel.close(promise: nil)
            try? await channel.closeFuture.get()
        }
        inbound.finish()
        eventsContinuation.finish()
        configuration.log(.info, "P2P stopped", ["node.id": localNodeID.hex])
    }

    // MARK: - Connections

    private func initialize(_ channel: Channel, role: ConnectionStateMachine.Role, expectedPeer: NodeID?,
                            dialer: Int?) -> EventLoopFuture<Void> {
        let membership = lock.withLock { () -> Membership? in
            guard !shuttingDown, openChannels.count < configuration.connectionsMax else { return nil }
            openChannels[ObjectIdentifier(channel)] = channel
            return currentMembership
        }
        guard let membership else {
            configuration.log(.warning, "refusing connection: shutting down or at the connection limit",
                              ["p2p.connections_max": "\(configuration.connectionsMax)"])
            return channel.close()
        }
        channel.closeFuture.whenComplete { [self] _ in
            _ = lock.withLock { openChannels.removeValue(forKey: ObjectIdentifier(channel)) }
        }
        var nonce = [UInt8](repeating: 0, count: Wire.nonceSize)
        var system = SystemRandomNumberGenerator()
        for i in nonce.indices { nonce[i] = UInt8.random(in: .min ... .max, using: &system) }
        let machine = ConnectionStateMachine(
            role: role,
            configuration: .init(identity: configuration.identity, membership: membership,
                                 chainID: configuration.chainID,
                                 framePayloadBytesMax: configuration.framePayloadBytesMax),
            ephemeral: X25519PrivateKey(), nonce: nonce, expectedPeer: expectedPeer)
        let callbacks = ConnectionCallbacks(
            established: { [self] peer, channel in established(peer, channel: channel, dialer: dialer) },
            received: { [self] peer, channel, payload in
                lock.withLock {
                    stats.framesReceived[Int(channel.rawValue)] += 1
                    stats.payloadBytesReceived += UInt64(payload.count)
                }
                if !inbound.push(InboundMessage(peer: peer.id, channel: channel, payload: payload)) {
                    let n = lock.withLock { stats.inboundDropped += 1; return stats.inboundDropped }
                    if n.isPowerOf2 {
                        configuration.log(.warning, "inbound queue full, dropping messages",
                                          ["p2p.inbound_dropped": "\(n)"])
                    }
                }
            },
            closed: { [self] peer, reason in closed(peer, reason: reason, channel: channel, dialer: dialer) },
            log: configuration.log)
        let timeouts = ConnectionTimeouts(
            handshake: .milliseconds(configuration.handshakeTimeoutMilliseconds),
            pingInterval: .milliseconds(configuration.pingIntervalMilliseconds),
            idle: .milliseconds(configuration.idleTimeoutMilliseconds))
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(
                P2PConnectionHandler(machine: machine, callbacks: callbacks, timeouts: timeouts))
        }
    }

    /// Registers an authenticated connection, or refuses it as a duplicate. With two
    /// connections to one peer the one initiated by the node with the smaller id is kept, so
    /// both ends choose the same; a newer connection from the same initiator replaces the
    /// older (the initiator evidently lost it).
    private func established(_ peer: PeerIdentity, channel: Channel, dialer: Int?) -> P2PError? {
        enum Outcome { case refused(P2PError), new, replacing(PeerConnection), continuing }
        let initiatedByUs = dialer != nil
        let outcome = lock.withLock { () -> Outcome in
            if shuttingDown { return .refused(P2PError("p2p.shutdown", "the node is shutting down")) }
            if let dialer {
                dialers[dialer].knownID = peer.id
                dialers[dialer].attempt = 0
                dialers[dialer].state = .connected
            }
            var outcome = Outcome.new
            if let existing = connections[peer.id] {
                let weArePreferred = localNodeID < peer.id
                let keepNew = existing.initiatedByUs == initiatedByUs || initiatedByUs == weArePreferred
                guard keepNew else {
                    return .refused(P2PError("p2p.duplicate_connection",
                                             "already connected to \(peer.id.hex); keeping the other connection"))
                }
                outcome = .replacing(existing)
            } else if replacedPeers.remove(peer.id) != nil {
                outcome = .continuing
            }
            connections[peer.id] = PeerConnection(peer: peer, channel: channel, initiatedByUs: initiatedByUs)
            stats.handshakesCompleted += 1
            return outcome
        }
        switch outcome {
        case .refused(let error):
            return error
        case .replacing(let old):
            old.channel.triggerUserOutboundEvent(
                CloseWithReason(reason: P2PError("p2p.duplicate_connection", "replaced by another connection")),
                promise: nil)
        case .continuing:
            break
        case .new:
            eventsContinuation.yield(.connected(peer.id))
        }
        configuration.log(.info, "peer connected", ["peer.id": peer.id.hex,
                                                    "peer.direction": initiatedByUs ? "outbound" : "inbound"])
        return nil
    }

    private func closed(_ peer: PeerIdentity?, reason: P2PError?, channel: Channel, dialer: Int?) {
        // The other end replaced this connection by one that may not be established here yet.
        let replacedByPeer = reason?.code == "p2p.duplicate_connection"
        let wentDown = lock.withLock { () -> Bool in
            stats.closes[reason?.code ?? "p2p.connection_closed", default: 0] += 1
            var wentDown = false
            if let peer, let current = connections[peer.id], current.channel === channel {
                connections.removeValue(forKey: peer.id)
                wentDown = true
                if replacedByPeer { replacedPeers.insert(peer.id) }
            }
            if let dialer, !shuttingDown {
                if reason?.code == "p2p.self_connection" {
                    // A configured address that leads back to this node: never dial it again.
                    dialers[dialer].state = .idle
                    configuration.log(.warning, "configured peer address is this node itself; not dialing it again",
                                      ["peer.address": "\(dialers[dialer].address)"])
                } else if let id = dialers[dialer].knownID, connections[id] != nil || replacedPeers.contains(id) {
                    dialers[dialer].state = .waitingForPeer
                } else {
                    scheduleRedial(dialer)
                }
            }
            return wentDown
        }
        guard wentDown, let peer else { return }
        if replacedByPeer {
            group.next().scheduleTask(in: .milliseconds(configuration.handshakeTimeoutMilliseconds)) { [self] in
                let stillDown = lock.withLock { replacedPeers.remove(peer.id) != nil && connections[peer.id] == nil }
                if stillDown { peerWentDown(peer.id, reason: reason) }
            }
        } else {
            peerWentDown(peer.id, reason: reason)
        }
    }

    private func peerWentDown(_ id: NodeID, reason: P2PError?) {
        let code = reason?.code ?? "p2p.connection_closed"
        lock.withLock {
            guard !shuttingDown else { return }
            for i in dialers.indices where dialers[i].knownID == id && dialers[i].state == .waitingForPeer {
                scheduleRedial(i)
            }
        }
        eventsContinuation.yield(.disconnected(id, reason: code))
        configuration.log(.info, "peer disconnected", ["peer.id": id.hex, "error.code": code])
    }

    // MARK: - Dialing

    private func dial(_ index: Int) {
        let address = lock.withLock { () -> PeerAddress? in
            guard !shuttingDown else { return nil }
            dialers[index].state = .connecting
            dialers[index].timer = nil
            return dialers[index].address
        }
        guard let address else { return }
        let expected = lock.withLock { dialers[index].knownID }
        ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(configuration.connectTimeoutMilliseconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] channel in
                initialize(channel, role: .initiator, expectedPeer: expected, dialer: index)
            }
            .connect(host: address.host, port: address.port)
            .whenFailure { [self] error in
                configuration.log(.debug, "dial failed", ["peer.address": "\(address)", "error": "\(error)"])
                lock.withLock {
                    if !shuttingDown && dialers[index].state == .connecting { scheduleRedial(index) }
                }
            }
    }

    /// Must hold `lock`.
    private func scheduleRedial(_ index: Int) {
        guard dialers[index].state != .scheduled else { return }
        let delay = backoff.delayMilliseconds(attempt: dialers[index].attempt, using: &jitter)
        dialers[index].attempt += 1
        dialers[index].state = .scheduled
        dialers[index].timer = group.next().scheduleTask(in: .milliseconds(delay)) { [self] in dial(index) }
    }
}

extension UInt64 {
    fileprivate var isPowerOf2: Bool { self != 0 && (self & (self - 1)) == 0 }
}
