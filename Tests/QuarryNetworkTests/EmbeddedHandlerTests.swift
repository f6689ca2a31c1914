import NIOCore
import NIOEmbedded
import QuarryCore
import Testing
@testable import QuarryNetwork

/// Collects what a connection handler reports.
final class Recorder: @unchecked Sendable {
    private let lock = Lock()
    private var _established: [NodeID] = []
    private var _received: [(NodeID, P2PChannel, [UInt8])] = []
    private var _closed: [(NodeID?, String?)] = []
    private var _logs: [String] = []

    var established: [NodeID] { lock.withLock { _established } }
    var received: [(NodeID, P2PChannel, [UInt8])] { lock.withLock { _received } }
    var closed: [(NodeID?, String?)] { lock.withLock { _closed } }
    var logs: [String] { lock.withLock { _logs } }

    func callbacks(refuse: P2PError? = nil) -> ConnectionCallbacks {
        ConnectionCallbacks(
            established: { peer, _ in self.lock.withLock { self._established.append(peer.id) }; return refuse },
            received: { peer, channel, payload in self.lock.withLock { self._received.append((peer.id, channel, payload)) } },
            closed: { peer, reason in self.lock.withLock { self._closed.append((peer?.id, reason?.code)) } },
            log: { _, message, metadata in
                self.lock.withLock { self._logs.append("\(metadata["error.code"] ?? "") \(message)") }
            })
    }
}

@Suite struct EmbeddedHandlerTests {
    let a = NodeIdentity(privateKey: TestKeys.members[0])
    let b = NodeIdentity(privateKey: TestKeys.members[1])
    let timeouts = ConnectionTimeouts(handshake: .seconds(5), pingInterval: .seconds(1), idle: .seconds(3))

    func makeChannel(_ role: ConnectionStateMachine.Role, _ identity: NodeIdentity, _ recorder: Recorder,
                     refuse: P2PError? = nil) throws -> EmbeddedChannel {
        let handler = P2PConnectionHandler(machine: TestKeys.machine(role, identity),
                                           callbacks: recorder.callbacks(refuse: refuse), timeouts: timeouts)
        let channel = EmbeddedChannel(handler: handler)
        return channel
    }

    /// Moves written bytes from each channel to the other until both are quiet.
    func pump(_ x: EmbeddedChannel, _ y: EmbeddedChannel) throws {
        var moved = true
        var rounds = 0
        while moved && rounds < 20 {
            moved = false
            rounds += 1
            while let out = try x.readOutbound(as: ByteBuffer.self) {
                if y.isActive { try y.writeInbound(out) }
                moved = true
            }
            while let out = try y.readOutbound(as: ByteBuffer.self) {
                if x.isActive { try x.writeInbound(out) }
                moved = true
            }
        }
    }

    func connect(_ channel: EmbeddedChannel) throws {
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
    }

    @Test func handshakeAndFramesOverEmbeddedChannels() throws {
        let ra = Recorder(), rb = Recorder()
        let initiator = try makeChannel(.initiator, a, ra)
        let responder = try makeChannel(.responder, b, rb)
        try connect(responder)
        try connect(initiator)
        try pump(initiator, responder)
        #expect(ra.established == [b.id])
        #expect(rb.established == [a.id])

        for channel in [P2PChannel.consensus, .transactions, .blockSync] {
            try initiator.writeOutbound(OutboundFrame(channel: channel, payload: [channel.rawValue, 1, 2]))
            try responder.writeOutbound(OutboundFrame(channel: channel, payload: [channel.rawValue, 3]))
        }
        try pump(initiator, responder)
        #expect(rb.received.map(\.1) == [.consensus, .transactions, .blockSync])
        #expect(rb.received.map(\.2) == [[1, 1, 2], [2, 1, 2], [3, 1, 2]])
        #expect(rb.received.allSatisfy { $0.0 == a.id })
        #expect(ra.received.map(\.2) == [[1, 3], [2, 3], [3, 3]])

        // Keep-alive: pings every second are answered, so the idle timeout never fires.
        for _ in 0..<6 {
            initiator.embeddedEventLoop.advanceTime(by: .seconds(1))
            responder.embeddedEventLoop.advanceTime(by: .seconds(1))
            try pump(initiator, responder)
        }
        #expect(initiator.isActive && responder.isActive)
        #expect(ra.closed.isEmpty && rb.closed.isEmpty)

        // A silent peer is dropped after the idle timeout.
        initiator.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(!initiator.isActive)
        #expect(ra.closed.first?.1 == "p2p.idle_timeout")
        #expect(ra.closed.first?.0 == b.id)
        // Its close notice reaches the other side, which closes too.
        try pump(initiator, responder)
        #expect(!responder.isActive)
        #expect(rb.closed.first?.1 == "p2p.peer_closed")
    }

    @Test func handshakeTimeoutClosesASilentConnection() throws {
        let rb = Recorder()
        let responder = try makeChannel(.responder, b, rb)
        try connect(responder)
        responder.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(responder.isActive)
        responder.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!responder.isActive)
        #expect(rb.closed.count == 1)
        #expect(rb.closed.first?.0 == nil)
        #expect(rb.closed.first?.1 == "p2p.handshake_timeout")
    }

    @Test func garbageAndRefusalCloseTheChannelWithAReason() throws {
        let rb = Recorder()
        let responder = try makeChannel(.responder, b, rb)
        try connect(responder)
        try responder.writeInbound(ByteBuffer(bytes: [0xff, 0xff, 0xff, 0xff, 1, 2, 3]))
        #expect(!responder.isActive)
        #expect(rb.closed.first?.1 == "p2p.frame_too_large")
        #expect(rb.logs.contains { $0.hasPrefix("p2p.frame_too_large") })

        // The owner refusing an authenticated peer (a duplicate) closes it and tells the peer.
        let ra = Recorder(), rc = Recorder()
        let initiator = try makeChannel(.initiator, a, ra)
        let refusing = try makeChannel(.responder, b, rc,
                                       refuse: P2PError("p2p.duplicate_connection", "already connected"))
        try connect(refusing)
        try connect(initiator)
        try pump(initiator, refusing)
        #expect(!refusing.isActive)
        #expect(rc.closed.first?.1 == "p2p.duplicate_connection")
        #expect(!initiator.isActive)
        #expect(ra.closed.first?.1 == "p2p.duplicate_connection")

        // Writing before the handshake fails the write instead of sending plaintext.
        let early = try makeChannel(.initiator, a, Recorder())
        try connect(early)
        _ = try early.readOutbound(as: ByteBuffer.self)  // its hello
        #expect(throws: P2PError.self) { try early.writeOutbound(OutboundFrame(channel: .consensus, payload: [1])) }
        #expect(try early.readOutbound(as: ByteBuffer.self) == nil)
    }
}
