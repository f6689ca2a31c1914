import NIOCore
import NIOHTTP1
import QuarryCore

/// Serves one HTTP/1.1 connection: POST / (JSON-RPC), GET /health, and HTTP errors for the
/// rest. Requests on a connection are handled one at a time (pipelined requests wait in
/// NIO's `HTTPServerPipelineHandler`).
final class HTTPRPCHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Route {
        case rpc
        case health
        /// Already decided: answer with this status and body once the request ends (or at
        /// once, closing, when `closeNow`).
        case fail(HTTPResponseStatus, [UInt8], closeNow: Bool)
    }

    private let dispatcher: RPCDispatcher
    private let configuration: RPCServerConfiguration
    private let connections: ConnectionTracker
    private var head: HTTPRequestHead?
    private var route: Route = .rpc
    private var body: ByteBuffer?
    private var busy = false
    private var closing = false
    private var deadline: Scheduled<Void>?

    init(dispatcher: RPCDispatcher, configuration: RPCServerConfiguration, connections: ConnectionTracker) {
        self.dispatcher = dispatcher
        self.configuration = configuration
        self.connections = connections
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armDeadline(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armDeadline(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    /// The whole next request must arrive within the request timeout.
    private func armDeadline(context: ChannelHandlerContext) {
        deadline?.cancel()
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: .milliseconds(configuration.requestTimeoutMilliseconds)) {
            loopBoundSelf.value.deadlinePassed(context: loopBoundContext.value)
        }
    }

    private func deadlinePassed(context: ChannelHandlerContext) {
        deadline = nil
        guard !busy, !closing else { return }
        if head != nil {
            // A request was started but its body did not arrive in time.
            respond(context: context, status: .requestTimeout,
                    body: httpError("rpc.request_timeout", "the request was not received in time"), close: true)
        } else {
            // An idle keep-alive connection (or one whose headers never completed).
            closing = true
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = nil
            route = decideRoute(h)
            if case .fail(let status, let bytes, true) = route {
                respond(context: context, status: status, body: bytes, close: true)
            } else if case .rpc = route, h.headers.first(name: "expect")?.lowercased() == "100-continue" {
                // The client waits for this before sending the body (curl does for large ones).
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: .continue))),
                                      promise: nil)
            }
        case .body(var chunk):
            guard case .rpc = route else { return }
            let total = (body?.readableBytes ?? 0) + chunk.readableBytes
            if total > configuration.bodyBytesMax {
                route = .fail(.payloadTooLarge, bodyTooLarge(), closeNow: true)
                respond(context: context, status: .payloadTooLarge, body: bodyTooLarge(), close: true)
                return
            }
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            guard let h = head else { return }
            deadline?.cancel()
            deadline = nil
            switch route {
            case .fail(let status, let bytes, _):
                respond(context: context, status: status, body: bytes, close: !h.isKeepAlive)
            case .health:
                let shuttingDown = connections.shuttingDown
                let json: JSONValue = ["status": .string(shuttingDown ? "shutting_down" : "ok")]
                respond(context: context, status: shuttingDown ? .serviceUnavailable : .ok,
                        body: json.encoded, close: !h.isKeepAlive)
            case .rpc:
                let bytes = body.map { Array($0.readableBytesView) } ?? []
                body = nil
                busy = true
                let dispatcher = self.dispatcher
                let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
                let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.eventLoop.makeFutureWithTask {
                    await dispatcher.handle(body: bytes, transport: .http)
                }.whenSuccess { reply in
                    let handler = loopBoundSelf.value
                    handler.busy = false
                    if let reply {
                        handler.respond(context: loopBoundContext.value, status: .ok, body: reply, close: !h.isKeepAlive)
                    } else {
                        handler.respond(context: loopBoundContext.value, status: .noContent, body: nil, close: !h.isKeepAlive)
                    }
                }
            }
        }
    }

    private func decideRoute(_ h: HTTPRequestHead) -> Route {
        let path = h.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        switch (path, h.method) {
        case ("/", .POST):
            let contentType = h.headers.first(name: "content-type")?.lowercased() ?? ""
            let mediaType = contentType.split(separator: ";").first.map { $0.trimmingSpaces() } ?? ""
            guard mediaType == "application/json" else {
                return .fail(.unsupportedMediaType,
                             httpError("rpc.unsupported_media_type", "POST / needs content-type application/json"),
                             closeNow: false)
            }
            if let length = h.headers.first(name: "content-length").flatMap({ Int($0) }), length > configuration.bodyBytesMax {
                return .fail(.payloadTooLarge, bodyTooLarge(), closeNow: true)
            }
            return .rpc
        case ("/", _):
            return .fail(.methodNotAllowed, httpError("rpc.method_not_allowed", "use POST for JSON-RPC requests"),
                         closeNow: false)
        case ("/health", .GET), ("/health", .HEAD):
            return .health
        case ("/websocket", _):
            return .fail(.upgradeRequired,
                         httpError("rpc.upgrade_required", "/websocket needs a WebSocket upgrade request"),
                         closeNow: false)
        default:
            return .fail(.notFound, httpError("rpc.not_found", "no such path: use POST / or GET /health"),
                         closeNow: false)
        }
    }

    private func bodyTooLarge() -> [UInt8] {
        RPCDispatcher.response(id: .null, outcome: .failure(.limitExceeded(
            code: "rpc.body_too_large", "the request body exceeds \(configuration.bodyBytesMax) bytes",
            limit: configuration.bodyBytesMax)))
    }

    /// An HTTP-level error as a JSON-RPC error response body (id null), so clients that
    /// always parse the body still see a reason.
    private func httpError(_ code: String, _ reason: String) -> [UInt8] {
        RPCDispatcher.response(id: .null, outcome: .failure(RPCError.withData(
            RPCError.invalidRequestCode, "Invalid Request", code, reason)))
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, body: [UInt8]?, close: Bool) {
        guard !closing else { return }
        let shouldClose = close || connections.shuttingDown
        if shouldClose { closing = true }
        var headers = HTTPHeaders()
        if let body {
            headers.add(name: "content-type", value: "application/json")
            headers.add(name: "content-length", value: String(body.count))
        } else if status != .noContent {
            headers.add(name: "content-length", value: "0")
        }
        if shouldClose { headers.add(name: "connection", value: "close") }
        let version = head?.version ?? .http1_1
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))),
                      promise: nil)
        if let body, head?.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        head = nil
        route = .rpc
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if shouldClose {
                loopBoundContext.value.close(promise: nil)
            } else {
                loopBoundSelf.value.armDeadline(context: loopBoundContext.value)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Protocol errors are answered by NIO's HTTPServerProtocolErrorHandler; anything
        // else ends the connection.
        context.fireErrorCaught(error)
        if !(error is HTTPParserError) {
            closing = true
            context.close(promise: nil)
        }
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var s = self[...]
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return String(s)
    }
}
