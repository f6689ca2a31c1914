import NIOCore
import QuarryCore

/// How bad a log line is. Libraries log at info or below; a refused peer is a warning.
public enum P2PLogLevel: Int, Sendable, Comparable {
    case trace, debug, info, warning
    public static func < (a: P2PLogLevel, b: P2PLogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// Where the transport sends its log lines: level, message, dotted metadata
/// (`peer.id`, `peer.address`, `error.code`). The node bridges it to its logger.
public typealias P2PLogHandler = @Sendable (P2PLogLevel, String, [String: String]) -> Void

/// An application frame to send on an established connection.
public struct OutboundFrame: Sendable {
    public var channel: P2PChannel
    public var payload: [UInt8]
    public init(channel: P2PChannel, payload: [UInt8]) {
        self.channel = channel
        self.payload = payload
    }
}

/// What a connection reports to its owner. All are called on the connection's event loop.
struct ConnectionCallbacks: Sendable {
    /// The handshake succeeded. Return a non-nil error to refuse the connection (for
    /// example as a duplicate); it is then closed with that reason.
    var established: @Sendable (PeerIdentity, Channel) -> P2PError?
    var received: @Sendable (PeerIdentity, P2PChannel, [UInt8]) -> Void
    /// The connection closed; the peer if it had been established, and the reason if known.
    var closed: @Sendable (PeerIdentity?, P2PError?) -> Void
    var log: P2PLogHandler
}

/// Timing of one connection. Durations are NIO `TimeAmount`s.
struct ConnectionTimeouts: Sendable {
    var handshake: TimeAmount
    var pingInterval: TimeAmount
    /// Close if nothing at all was received for this long.
    var idle: TimeAmount
}

/// The NIO side of a connection: feeds bytes to a `ConnectionStateMachine`, carries out its
/// actions, seals outbound frames, and runs the handshake timeout and the keep-alive pings.
final class P2PConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = OutboundFrame
    typealias OutboundOut = ByteBuffer

    private var machine: ConnectionStateMachine
    private let callbacks: ConnectionCallbacks
    private let timeouts: ConnectionTimeouts
    private var closeReason: P2PError?
    private var handshakeTimer: Scheduled<Void>?
    private var pingTimer: RepeatedTask?
    /// Ping intervals elapsed since anything was received (event-loop time, not wall time).
    private var quietIntervals: Int64 = 0
    private var pingToken: UInt64 = 0
    private var remoteAddress = "?"
    private var reportedClosed = false

    init(machine: ConnectionStateMachine, callbacks: ConnectionCallbacks, timeouts: ConnectionTimeouts) {
        self.machine = machine
        self.callbacks = callbacks
        self.timeouts = timeouts
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { begin(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        begin(context: context)
        context.fireChannelActive()
    }

    private func begin(context: ChannelHandlerContext) {
        guard handshakeTimer == nil, !machine.isEstablished, !machine.isClosed else { return }
        remoteAddress = context.remoteAddress.map { "\($0)" } ?? "?"
        quietIntervals = 0
        let bound = context.loopBound
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        handshakeTimer = context.eventLoop.scheduleTask(in: timeouts.handshake) {
            handler.value.closeWith(P2PError("p2p.handshake_timeout", "handshake not finished in time"),
                                    context: bound.value)
        }
        perform(machine.start(), context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        quietIntervals = 0
        perform(machine.receive(&buffer), context: context)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        do {
            var buffer = context.channel.allocator.buffer(capacity: frame.payload.count + 21)
            try machine.seal(channel: frame.channel, payload: frame.payload, into: &buffer)
            context.write(wrapOutboundOut(buffer), promise: promise)
        } catch {
            promise?.fail(error)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopTimers()
        machine.markClosed()
        reportClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        closeWith(P2PError("p2p.io_error", "\(error)"), context: context)
    }

    private func reportClosed() {
        guard !reportedClosed else { return }
        reportedClosed = true
        callbacks.closed(machine.peer ?? establishedPeer, closeReason)
    }

    private var establishedPeer: PeerIdentity?

    private func perform(_ actions: [ConnectionStateMachine.Action], context: ChannelHandlerContext) {
        var wrote = false
        for action in actions {
            switch action {
            case .write(let bytes):
                context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
                wrote = true
            case .established(let peer):
                handshakeTimer?.cancel()
                handshakeTimer = nil
                if wrote { context.flush(); wrote = false }
                establishedPeer = peer
                if let refusal = callbacks.established(peer, context.channel) {
                    closeWith(refusal, context: context)
                    return
                }
                startPinging(context: context)
            case .deliver(let channel, let payload):
                if let peer = establishedPeer { callbacks.received(peer, channel, payload) }
            case .reply(let bytes):
                if context.channel.isWritable {
                    context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
                    wrote = true
                }
            case .pong:
                break
            case .close(let error):
                if wrote { context.flush() }
                closeWith(error, context: context, remote: machine.isClosed)
                return
            }
        }
        if wrote { context.flush() }
    }

    private func startPinging(context: ChannelHandlerContext) {
        let bound = context.loopBound
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        pingTimer = context.eventLoop.scheduleRepeatedTask(initialDelay: timeouts.pingInterval,
                                                           delay: timeouts.pingInterval) { _ in
            handler.value.pingOrExpire(context: bound.value)
        }
    }

    private func pingOrExpire(context: ChannelHandlerContext) {
        guard machine.isEstablished else { return }
        quietIntervals += 1
        if quietIntervals * timeouts.pingInterval.nanoseconds >= timeouts.idle.nanoseconds {
            closeWith(P2PError("p2p.idle_timeout", "nothing received for \(timeouts.idle)"), context: context)
            return
        }
        pingToken &+= 1
        if let bytes = try? machine.seal(channel: .control, payload: ControlMessage.ping(pingToken).encoded()) {
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
        }
    }

    private func stopTimers() {
        handshakeTimer?.cancel()
        handshakeTimer = nil
        pingTimer?.cancel()
        pingTimer = nil
    }

    /// Closes the connection, telling an established peer why when the reason is ours.
    func closeWith(_ error: P2PError, context: ChannelHandlerContext, remote: Bool = false) {
        guard closeReason == nil else { return }
        closeReason = error
        stopTimers()
        var metadata = ["error.code": error.code, "peer.address": remoteAddress]
        if let peer = establishedPeer { metadata["peer.id"] = peer.id.hex }
        let level: P2PLogLevel = ["p2p.peer_closed", "p2p.shutdown", "p2p.duplicate_connection"]
            .contains(error.code) ? .debug : .warning
        callbacks.log(level, "closing P2P connection: \(error.message)", metadata)
        if !remote, let notice = machine.closeNotice(error) {
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: notice)), promise: nil)
        }
        machine.markClosed()
        context.close(promise: nil)
    }
}

/// Asks a connection's handler to close it with a reason (used for shutdown and duplicates).
struct CloseWithReason: Sendable {
    var reason: P2PError
}

extension P2PConnectionHandler {
    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        if let request = event as? CloseWithReason {
            closeWith(request.reason, context: context)
            promise?.succeed(())
        } else {
            context.triggerUserOutboundEvent(event, promise: promise)
        }
    }
}
