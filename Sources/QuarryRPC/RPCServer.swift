import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import QuarryCore

/// Where the server listens and the limits it enforces. Every limit, when hit, is answered
/// with a clear error (see docs/spec/json-rpc.md) and the server keeps serving.
public struct RPCServerConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// 0 picks a free port (see `RPCServer.port` after `start()`).
    public var port: Int = 26657
    /// Largest HTTP request body and largest WebSocket message, in bytes.
    public var bodyBytesMax: Int = 1 << 20
    /// Most requests in one batch.
    public var batchLengthMax: Int = 100
    /// Deepest nesting of arrays/objects in a request.
    public var depthMax: Int = 64
    /// Most open connections (HTTP and WebSocket together).
    public var connectionsMax: Int = 256
    /// Most subscriptions one WebSocket connection may hold.
    public var subscriptionsPerConnectionMax: Int = 32
    /// Most subscriptions on the whole server.
    public var subscriptionsMax: Int = 4096
    /// Most notifications written to a WebSocket but not yet taken by the socket; past
    /// this the client is too slow and is disconnected (close code 1008).
    public var notificationQueueMax: Int = 1024
    /// Most requests of one WebSocket connection being processed at once.
    public var webSocketInFlightMax: Int = 32
    /// Time allowed to receive a whole request (head and body), counted from the end of the
    /// previous response or the opening of the connection; also the keep-alive idle time.
    public var requestTimeoutMilliseconds: Int64 = 10_000
    /// A WebSocket with no inbound frame for this long is pinged; without any frame for
    /// another period it is closed.
    public var webSocketIdleMilliseconds: Int64 = 60_000
    /// How long `shutdown()` waits for in-flight requests before closing connections.
    public var shutdownGraceMilliseconds: Int64 = 5_000
    /// Title and version written into the OpenRPC document served by `rpc.discover`.
    public var title: String = "Quarry JSON-RPC"
    public var version: String = "0.1.0"

    public init() {}
}

public enum RPCServerError: QuarryError {
    case alreadyStarted
    case notStarted

    public var code: String { "rpc.server_state" }
    public var description: String {
        switch self {
        case .alreadyStarted: return "the RPC server was already started"
        case .notStarted: return "the RPC server is not running"
        }
    }
}

/// The JSON-RPC 2.0 server: HTTP POST / for requests, GET /health, and a WebSocket at
/// /websocket for requests and subscriptions.
///
/// Register methods and topics, `start()`, publish events, `shutdown()`.
public final class RPCServer: Sendable {
    public let configuration: RPCServerConfiguration
    public let registry = RPCRegistry()
    public let subscriptions: RPCSubscriptionHub
    let dispatcher: RPCDispatcher
    let connections: ConnectionTracker

    private let ownsGroup: Bool
    private let group: any EventLoopGroup
    private let lock = Lock()
    nonisolated(unsafe) private var serverChannel: (any Channel)?
    nonisolated(unsafe) private var stopped = false

    /// Uses `group` when given (the node's), else its own event loops (one per core).
    /// `onInternalError` sees every error a handler threw that the client only sees as
    /// -32603 (method name and the error), for the node's log.
    public init(configuration: RPCServerConfiguration, group: (any EventLoopGroup)? = nil,
                onInternalError: (@Sendable (_ method: String, _ error: any Error) -> Void)? = nil) {
        self.configuration = configuration
        self.subscriptions = RPCSubscriptionHub(perConnectionMax: configuration.subscriptionsPerConnectionMax,
                                                totalMax: configuration.subscriptionsMax)
        self.connections = ConnectionTracker()
        if let group {
            self.group = group
            self.ownsGroup = false
        } else {
            self.group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
            self.ownsGroup = true
        }
        let registry = self.registry, hub = self.subscriptions
        let title = configuration.title, version = configuration.version
        self.dispatcher = RPCDispatcher(registry: registry, hub: hub, limits: configuration,
                                        onInternalError: onInternalError) {
            OpenRPC.document(title: title, version: version, methods: registry.all, topics: hub.allTopics)
        }
    }

    /// Registers a method. `params` declares the accepted params (validated before the
    /// handler runs: by position in order, or by name); `result` is the JSON Schema of the
    /// result for the OpenRPC document.
    public func register(method name: String, summary: String, params: [RPCParamSpec] = [],
                         result: JSONValue = [:], handler: @escaping RPCMethod.Handler) {
        registry.register(RPCMethod(name: name, summary: summary, params: params, resultSchema: result,
                                    handler: handler))
    }

    /// Registers a subscription topic.
    public func register(topic: RPCTopic) { subscriptions.register(topic) }

    /// Sends `payload` to every subscriber of `topic` whose filter `matching` accepts.
    @discardableResult
    public func publish(topic: String, matching: (RPCParams) -> Bool = { _ in true }, payload: JSONValue) -> Int {
        subscriptions.publish(topic: topic, matching: matching, payload: payload)
    }

    /// The OpenRPC document the server serves at `rpc.discover`.
    public var openRPCDocument: JSONValue {
        OpenRPC.document(title: configuration.title, version: configuration.version,
                         methods: registry.all, topics: subscriptions.allTopics)
    }

    /// The bound port (useful with `port: 0`); nil before `start()`.
    public var port: Int? { lock.withLock { serverChannel?.localAddress?.port } }

    /// Binds and starts accepting connections.
    public func start() async throws {
        try lock.withLock {
            guard serverChannel == nil, !stopped else { throw RPCServerError.alreadyStarted }
        }
        let dispatcher = self.dispatcher, configuration = self.configuration, connections = self.connections
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try RPCServer.configure(channel: channel, dispatcher: dispatcher,
                                            configuration: configuration, connections: connections)
                }
            }
        let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        lock.withLock { serverChannel = channel }
    }

    /// Starts, serves until the calling task is cancelled, then shuts down gracefully (for a
    /// service group that runs each subsystem's `run()` and cancels it on SIGTERM).
    public func run() async throws {
        try await start()
        guard let channel = lock.withLock({ serverChannel }) else { throw RPCServerError.notStarted }
        await withTaskCancellationHandler {
            try? await channel.closeFuture.get()
        } onCancel: {
            channel.close(promise: nil)
        }
        await shutdown()
    }

    /// Stops accepting, lets in-flight HTTP requests finish (up to the grace period), closes
    /// WebSockets with code 1001, then closes everything left. Safe to call more than once.
    public func shutdown() async {
        let channel: (any Channel)? = lock.withLock {
            defer { serverChannel = nil; stopped = true }
            return serverChannel
        }
        connections.shuttingDown = true
        if let channel { try? await channel.close() }
        for child in connections.all {
            child.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        let deadline = NIODeadline.now() + .milliseconds(configuration.shutdownGraceMilliseconds)
        while connections.count > 0, NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        for child in connections.all {
            child.close(promise: nil)
            try? await child.closeFuture.get()
        }
        if ownsGroup {
            try? await group.shutdownGracefully()
        }
    }

    /// Sets up one accepted connection's pipeline (on its event loop).
    static func configure(channel: any Channel, dispatcher: RPCDispatcher,
                          configuration: RPCServerConfiguration, connections: ConnectionTracker) throws {
        let sync = channel.pipeline.syncOperations
        guard !connections.shuttingDown, connections.add(channel, max: configuration.connectionsMax) else {
            try sync.addHandler(RejectConnectionHandler(shuttingDown: connections.shuttingDown,
                                                        limit: configuration.connectionsMax))
            return
        }
        channel.closeFuture.whenComplete { _ in connections.remove(channel) }
        let httpHandler = HTTPRPCHandler(dispatcher: dispatcher, configuration: configuration,
                                         connections: connections)
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: configuration.bodyBytesMax,
            automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
                return channel.eventLoop.makeSucceededFuture(path == "/websocket" ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: .milliseconds(configuration.webSocketIdleMilliseconds)))
                    try sync.addHandler(NIOWebSocketFrameAggregator(
                        minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 4096,
                        maxAccumulatedFrameSize: configuration.bodyBytesMax))
                    try sync.addHandler(WebSocketRPCHandler(dispatcher: dispatcher, configuration: configuration))
                }
            })
        let loopBoundHTTP = NIOLoopBound(httpHandler, eventLoop: channel.eventLoop)
        try sync.configureHTTPServerPipeline(
            withPipeliningAssistance: true,
            withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
                // After a WebSocket upgrade the HTTP request handler has no more work.
                _ = context.pipeline.syncOperations.removeHandler(loopBoundHTTP.value)
            }),
            withErrorHandling: true)
        try sync.addHandler(httpHandler)
    }
}

/// The open connections, for the connection limit and for shutdown.
final class ConnectionTracker: Sendable {
    private let lock = Lock()
    nonisolated(unsafe) private var channels: [ObjectIdentifier: any Channel] = [:]
    nonisolated(unsafe) private var _shuttingDown = false

    var shuttingDown: Bool {
        get { lock.withLock { _shuttingDown } }
        set { lock.withLock { _shuttingDown = newValue } }
    }

    func add(_ channel: any Channel, max: Int) -> Bool {
        lock.withLock {
            guard channels.count < max else { return false }
            channels[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func remove(_ channel: any Channel) { lock.withLock { channels[ObjectIdentifier(channel)] = nil } }
    var count: Int { lock.withLock { channels.count } }
    var all: [any Channel] { lock.withLock { Array(channels.values) } }
}

/// Answers a connection over the limit (or arriving during shutdown) with a plain HTTP 503
/// carrying a JSON-RPC error, then closes it.
final class RejectConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let shuttingDown: Bool
    private let limit: Int

    init(shuttingDown: Bool, limit: Int) {
        self.shuttingDown = shuttingDown
        self.limit = limit
    }

    func channelActive(context: ChannelHandlerContext) {
        let error: RPCError = shuttingDown
            ? .unavailable(code: "rpc.shutting_down", "the server is shutting down")
            : .limitExceeded(code: "rpc.too_many_connections",
                             "the server already has the most connections it accepts", limit: limit)
        let body = RPCDispatcher.response(id: .null, outcome: .failure(error))
        var text = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        text += "content-length: \(body.count)\r\nconnection: close\r\n\r\n"
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count + body.count)
        buffer.writeString(text)
        buffer.writeBytes(body)
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in loopBoundContext.value.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}  // ignored: closing
}
