import NIOCore
import NIOWebSocket
import QuarryCore

/// The subscriber side of one WebSocket connection; the hub calls `deliver` from any thread.
final class WebSocketSubscriber: RPCSubscriber {
    private let handler: NIOLoopBound<WebSocketRPCHandler>
    private let eventLoop: any EventLoop

    init(handler: NIOLoopBound<WebSocketRPCHandler>, eventLoop: any EventLoop) {
        self.handler = handler
        self.eventLoop = eventLoop
    }

    func deliver(_ frame: [UInt8]) {
        let handler = self.handler
        eventLoop.execute { handler.value.sendNotification(frame) }
    }
}

/// Serves one upgraded WebSocket connection. Each text message is a JSON-RPC request or
/// batch, answered by a text message (replies may come out of order: match them by id).
/// Subscriptions push `subscription` notifications. Binary messages are refused (1003).
final class WebSocketRPCHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let dispatcher: RPCDispatcher
    private let configuration: RPCServerConfiguration
    private var context: ChannelHandlerContext?
    private var subscriber: WebSocketSubscriber?
    private var inFlight = 0
    private var queuedNotifications = 0
    private var awaitingPong = false
    private var closing = false

    init(dispatcher: RPCDispatcher, configuration: RPCServerConfiguration) {
        self.dispatcher = dispatcher
        self.configuration = configuration
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        subscriber = WebSocketSubscriber(handler: NIOLoopBound(self, eventLoop: context.eventLoop),
                                         eventLoop: context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if let subscriber { dispatcher.hub.removeAll(of: subscriber) }
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let subscriber { dispatcher.hub.removeAll(of: subscriber) }
        closing = true
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        awaitingPong = false
        guard !closing else { return }
        switch frame.opcode {
        case .text:
            handleMessage(context: context, bytes: Array(frame.unmaskedData.readableBytesView))
        case .binary:
            close(context: context, code: .unacceptableData, reason: "binary messages are not accepted: send JSON text")
        case .ping:
            var data = frame.unmaskedData
            let payload = data.readSlice(length: data.readableBytes) ?? ByteBuffer()
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: payload)), promise: nil)
        case .pong:
            break
        case .connectionClose:
            // Echo the close and end the connection.
            closing = true
            var data = frame.unmaskedData
            let code = data.readSlice(length: 2) ?? ByteBuffer()
            let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: code)))
                .whenComplete { _ in loopBoundContext.value.close(promise: nil) }
        default:
            break
        }
    }

    private func handleMessage(context: ChannelHandlerContext, bytes: [UInt8]) {
        guard inFlight < configuration.webSocketInFlightMax, let subscriber else {
            let reply = RPCDispatcher.response(id: .null, outcome: .failure(.limitExceeded(
                code: "rpc.too_many_in_flight",
                "this connection already has \(inFlight) requests in progress",
                limit: configuration.webSocketInFlightMax)))
            sendText(context: context, reply)
            return
        }
        inFlight += 1
        let dispatcher = self.dispatcher
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.makeFutureWithTask {
            await dispatcher.handle(body: bytes, transport: .webSocket(subscriber))
        }.whenSuccess { reply in
            let handler = loopBoundSelf.value
            handler.inFlight -= 1
            guard let reply, let context = handler.context, !handler.closing else { return }
            handler.sendText(context: context, reply)
        }
    }

    private func sendText(context: ChannelHandlerContext, _ bytes: [UInt8]) {
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: buffer)), promise: nil)
    }

    /// Queues a notification; a connection with `notificationQueueMax` notifications not
    /// yet taken by the socket is a slow consumer and is closed with 1008.
    func sendNotification(_ frame: [UInt8]) {
        guard let context, !closing else { return }
        guard queuedNotifications < configuration.notificationQueueMax else {
            close(context: context, code: .policyViolation,
                  reason: "slow consumer: \(queuedNotifications) notifications queued")
            return
        }
        queuedNotifications += 1
        var buffer = context.channel.allocator.buffer(capacity: frame.count)
        buffer.writeBytes(frame)
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: buffer)))
            .whenComplete { _ in loopBoundSelf.value.queuedNotifications -= 1 }
    }

    private func close(context: ChannelHandlerContext, code: WebSocketErrorCode, reason: String) {
        guard !closing else { return }
        closing = true
        if let subscriber { dispatcher.hub.removeAll(of: subscriber) }
        var buffer = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        buffer.write(webSocketErrorCode: code)
        buffer.writeString(String(reason.utf8.prefix(120)) ?? "")
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: buffer)))
            .whenComplete { _ in loopBoundContext.value.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is ChannelShouldQuiesceEvent:
            close(context: context, code: .goingAway, reason: "server shutting down")
        case let idle as IdleStateHandler.IdleStateEvent where idle == .read:
            if awaitingPong {
                close(context: context, code: .policyViolation, reason: "idle timeout")
            } else {
                awaitingPong = true
                context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer())),
                                      promise: nil)
            }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let aggregation = error as? NIOWebSocketFrameAggregator.Error {
            switch aggregation {
            case .accumulatedFrameSizeIsTooLarge, .tooManyFragments:
                close(context: context, code: .messageTooLarge, reason: "message too large")
            default:
                close(context: context, code: .protocolError, reason: "invalid fragmentation")
            }
            return
        }
        closing = true
        context.close(promise: nil)
    }
}
