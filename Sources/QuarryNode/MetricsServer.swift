import NIOCore
import NIOHTTP1
import NIOPosix
import QuarryCore

/// What the metrics listener serves: `GET /metrics` (Prometheus text format) and
/// `GET /health` (JSON, docs/spec/metrics.md). Both are called on an event loop and must
/// not block: they read lock-protected snapshots.
public struct MetricsEndpoints: Sendable {
    public var metrics: @Sendable () -> [UInt8]
    public var health: @Sendable () -> NodeHealth
    public init(metrics: @escaping @Sendable () -> [UInt8], health: @escaping @Sendable () -> NodeHealth) {
        self.metrics = metrics
        self.health = health
    }
}

/// The HTTP/1.1 listener on `metrics.listen`. Only GET and HEAD of `/metrics` and `/health`
/// are served; other paths get 404, other methods 405. Request bodies are discarded as they
/// arrive (never buffered); at most `connectionsMax` connections are open at once, and a
/// connection idle for `idleTimeoutMilliseconds` is closed.
public final class MetricsServer: Sendable {
    public let host: String
    public let requestedPort: Int
    public let connectionsMax: Int
    public let idleTimeoutMilliseconds: Int64
    private let endpoints: MetricsEndpoints
    private let group: any EventLoopGroup
    private let lock = Lock()
    nonisolated(unsafe) private var channel: (any Channel)?
    private let open = OpenConnections()

    public init(host: String, port: Int, endpoints: MetricsEndpoints, group: any EventLoopGroup,
                connectionsMax: Int = 32, idleTimeoutMilliseconds: Int64 = 10_000) {
        self.host = host
        self.requestedPort = port
        self.endpoints = endpoints
        self.group = group
        self.connectionsMax = connectionsMax
        self.idleTimeoutMilliseconds = idleTimeoutMilliseconds
    }

    /// Binds and starts serving; returns the bound address (useful with port 0).
    @discardableResult
    public func start() async throws -> SocketAddress {
        let endpoints = self.endpoints, open = self.open, limit = connectionsMax, idle = idleTimeoutMilliseconds
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard open.add(channel, max: limit) else { return channel.close() }
                channel.closeFuture.whenComplete { _ in open.remove(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: .milliseconds(idle)))
                    try sync.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                    try sync.addHandler(MetricsHTTPHandler(endpoints: endpoints))
                }
            }
            .bind(host: host, port: requestedPort).get()
        lock.withLock { channel = server }
        return server.localAddress!
    }

    /// The bound port, nil before `start()` and after `stop()`.
    public var port: Int? { lock.withLock { channel?.localAddress?.port } }

    /// Stops listening and closes every open connection. Safe to call more than once.
    public func stop() async {
        let server: (any Channel)? = lock.withLock {
            defer { channel = nil }
            return channel
        }
        try? await server?.close()
        for child in open.all {
            child.close(promise: nil)
            try? await child.closeFuture.get()
        }
    }
}

private final class OpenConnections: Sendable {
    private let lock = Lock()
    nonisolated(unsafe) private var channels: [ObjectIdentifier: any Channel] = [:]

    func add(_ channel: any Channel, max: Int) -> Bool {
        lock.withLock {
            guard channels.count < max else { return false }
            channels[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func remove(_ channel: any Channel) { lock.withLock { channels[ObjectIdentifier(channel)] = nil } }
    var all: [any Channel] { lock.withLock { Array(channels.values) } }
}

/// One connection's requests, one at a time (NIO's pipelining helper queues the rest).
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let endpoints: MetricsEndpoints
    private var head: HTTPRequestHead?

    init(endpoints: MetricsEndpoints) { self.endpoints = endpoints }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break  // discarded
        case .end:
            guard let h = head else { return }
            head = nil
            respond(to: h, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let status: HTTPResponseStatus
        let contentType: String
        let body: [UInt8]
        var extra: [(String, String)] = []
        if request.method != .GET && request.method != .HEAD {
            (status, contentType, body) = (.methodNotAllowed, "text/plain; charset=utf-8", Array("only GET and HEAD are served\n".utf8))
            extra.append(("allow", "GET, HEAD"))
        } else {
            switch path {
            case "/metrics":
                (status, contentType, body) = (.ok, "text/plain; version=0.0.4; charset=utf-8", endpoints.metrics())
            case "/health":
                let health = endpoints.health()
                (status, contentType, body) = (health.isHealthy ? .ok : .serviceUnavailable, "application/json", health.json)
            default:
                (status, contentType, body) = (.notFound, "text/plain; charset=utf-8", Array("not found: GET /metrics or /health\n".utf8))
            }
        }
        var headers = HTTPHeaders([("content-type", contentType), ("content-length", String(body.count)),
                                   ("cache-control", "no-store")] + extra)
        let keepAlive = request.isKeepAlive
        headers.add(name: "connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
                      promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.futureResult.whenComplete { _ in bound.value.close(promise: nil) }
        }
    }
}
