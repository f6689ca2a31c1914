import NIOCore
import NIOPosix
import QuarryCore
import Testing
@testable import QuarryNetwork

/// Polls `condition` every 10 ms until it holds or `seconds` pass; returns whether it held.
func eventually(within seconds: Double = 5, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// A started service and what it has delivered.
final class TestNode: @unchecked Sendable {
    let service: P2PService
    let port: Int
    private let lock = Lock()
    private var _messages: [InboundMessage] = []
    private var _events: [PeerEvent] = []
    private var _logs: [String] = []

    /// When set, inbound messages on gossiped channels go through it; duplicates are counted, not kept.
    let gossip: Gossip?
    private var _duplicates = 0

    init(service: P2PService, port: Int, gossip: Bool = false) {
        self.service = service
        self.port = port
        self.gossip = gossip ? Gossip(service: service) : nil
    }

    var duplicates: Int { lock.withLock { _duplicates } }

    var id: NodeID { service.localNodeID }
    var messages: [InboundMessage] { lock.withLock { _messages } }
    var events: [PeerEvent] { lock.withLock { _events } }
    var logs: [String] { lock.withLock { _logs } }
    var address: PeerAddress { PeerAddress(host: "127.0.0.1", port: port, nodeID: id) }

    func messages(from peer: NodeID, on channel: P2PChannel) -> [[UInt8]] {
        messages.filter { $0.peer == peer && $0.channel == channel }.map(\.payload)
    }

    func logged(_ code: String) -> Bool { logs.contains { $0.hasPrefix(code) } }

    func appendLog(_ line: String) { lock.withLock { _logs.append(line) } }

    func collect() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await m in self.service.inbound {
                    if let gossip = self.gossip, gossip.channels.contains(m.channel), !gossip.receive(m) {
                        self.lock.withLock { self._duplicates += 1 }
                        continue
                    }
                    self.lock.withLock { self._messages.append(m) }
                }
            }
            group.addTask {
                for await e in self.service.events { self.lock.withLock { self._events.append(e) } }
            }
        }
    }
}

/// Short timeouts so the socket tests stay fast.
func testConfiguration(_ identity: NodeIdentity, port: Int = 0, peers: [PeerAddress] = [],
                       payloadMax: Int = 1 << 20) -> P2PConfiguration {
    var c = P2PConfiguration(identity: identity, membership: TestKeys.membership, chainID: TestKeys.chainID,
                             listenHost: "127.0.0.1", listenPort: port, peers: peers)
    c.framePayloadBytesMax = payloadMax
    c.handshakeTimeoutMilliseconds = 2_000
    c.connectTimeoutMilliseconds = 1_000
    c.pingIntervalMilliseconds = 300
    c.idleTimeoutMilliseconds = 3_000
    c.reconnectDelayMinMilliseconds = 20
    c.reconnectDelayMaxMilliseconds = 300
    return c
}

/// Starts services inside a task group that collects their streams; `shutdownAll` ends them.
struct Cluster {
    let group: MultiThreadedEventLoopGroup
    private(set) var nodes: [TestNode] = []

    init(threads: Int = 2) { group = MultiThreadedEventLoopGroup(numberOfThreads: threads) }

    mutating func start(_ configuration: P2PConfiguration, seed: UInt64 = 1, gossip: Bool = false,
                        in tasks: inout TaskGroup<Void>) async throws -> TestNode {
        var config = configuration
        let box = LogBox()
        config.log = { level, message, metadata in
            box.node?.appendLog("\(metadata["error.code"] ?? "-") \(level) \(message)")
        }
        let service = P2PService(configuration: config, group: group, jitter: SplitMix64(seed: seed))
        let address = try await service.start()
        let node = TestNode(service: service, port: address.port!, gossip: gossip)
        box.node = node
        nodes.append(node)
        tasks.addTask { await node.collect() }
        return node
    }

    func shutdownAll() async {
        for node in nodes { await node.service.shutdown() }
    }

    func close() async throws {
        try await group.shutdownGracefully()
    }
}

final class LogBox: @unchecked Sendable {
    private let lock = Lock()
    private var _node: TestNode?
    var node: TestNode? {
        get { lock.withLock { _node } }
        set { lock.withLock { _node = newValue } }
    }
}

/// A hand-driven client over a real socket: it runs the handshake with a
/// `ConnectionStateMachine`, or sends whatever bytes a test wants.
final class RawPeer: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private let lock = Lock()
    private var machine: ConnectionStateMachine?
    private var _received: [UInt8] = []
    private var _established = false
    private var _closed = false
    private var _closeCode: String?
    private(set) var channel: Channel?

    init(machine: ConnectionStateMachine?) { self.machine = machine }

    var received: [UInt8] { lock.withLock { _received } }
    var isEstablished: Bool { lock.withLock { _established } }
    var isClosed: Bool { lock.withLock { _closed } }
    var peerID: NodeID { lock.withLock { NodeID(publicKey: machine!.configuration.identity.publicKey) } }

    static func connect(port: Int, machine: ConnectionStateMachine?, group: EventLoopGroup) async throws -> RawPeer {
        let peer = RawPeer(machine: machine)
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(peer) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        peer.channel = channel
        return peer
    }

    func channelActive(context: ChannelHandlerContext) {
        let writes = lock.withLock { () -> [[UInt8]] in
            guard var m = machine else { return [] }
            let actions = m.start()
            machine = m
            return actions.compactMap { if case .write(let b) = $0 { b } else { nil } }
        }
        for w in writes { context.write(NIOAny(context.channel.allocator.buffer(bytes: w)), promise: nil) }
        context.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let writes = lock.withLock { () -> [[UInt8]] in
            _received += buffer.getBytes(at: buffer.readerIndex, length: buffer.readableBytes) ?? []
            guard var m = machine else { return [] }
            let actions = m.receive(&buffer)
            machine = m
            var out: [[UInt8]] = []
            for a in actions {
                switch a {
                case .write(let b): out.append(b)
                case .established: _established = true
                case .close(let e): _closeCode = e.code
                default: break
                }
            }
            return out
        }
        for w in writes { context.write(NIOAny(context.channel.allocator.buffer(bytes: w)), promise: nil) }
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        lock.withLock { _closed = true }
    }

    /// Seals a frame with the session keys (after the handshake).
    func seal(plaintext: [UInt8]) throws -> [UInt8] {
        try lock.withLock {
            var m = machine!
            defer { machine = m }
            return try m.sealForTesting(plaintext: plaintext)
        }
    }

    func send(_ bytes: [UInt8]) async throws {
        guard let channel else { return }
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).get()
    }

    /// Seals and writes a frame in one event-loop task, so that a keep-alive answer the
    /// machine seals in `channelRead` cannot take a later nonce yet reach the socket first.
    func sendSealed(plaintext: [UInt8]) async throws {
        guard let channel else { return }
        try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
            do {
                let frame = try self.seal(plaintext: plaintext)
                return channel.writeAndFlush(channel.allocator.buffer(bytes: frame))
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }.get()
    }
}
