import NIOCore
import NIOHTTP1
import NIOPosix
import QuarryCore

/// Where a node's JSON-RPC server listens: `http://HOST:PORT[/PATH]`. Only plain HTTP
/// (the server has no TLS; docs/spec/json-rpc.md section 1).
public struct RPCEndpoint: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int
    public let path: String

    public init(host: String, port: Int, path: String = "/") {
        self.host = host
        self.port = port
        self.path = path
    }

    /// Parses `http://host:port/path`, `host:port`, or `:port` (host 127.0.0.1). A missing
    /// port means 26657, the default RPC port.
    public init(parsing text: String) throws(ClientError) {
        var rest = Substring(text)
        if rest.hasPrefix("http://") {
            rest = rest.dropFirst(7)
        } else if rest.contains("://") {
            throw .invalidEndpoint(text, "only http:// is supported (the node's RPC server has no TLS)")
        }
        var path = "/"
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        var host = String(rest)
        var port = 26_657
        if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let p = Int(rest[rest.index(after: colon)...]), (1...65_535).contains(p) else {
                throw .invalidEndpoint(text, "the port must be a number from 1 to 65535")
            }
            port = p
        }
        if host.isEmpty { host = "127.0.0.1" }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "@") }) else {
            throw .invalidEndpoint(text, "the host has characters a host name cannot have")
        }
        self.init(host: host, port: port, path: path)
    }

    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "http://\(shownHost):\(port)\(path)"
    }
}

/// One HTTP/1.1 exchange: a POST of a JSON body on a fresh connection, with a deadline for
/// the whole exchange (connect, send, receive) and a bound on the response size.
/// Connections are not reused: a CLI call makes a handful of requests, and a fresh
/// connection per request keeps failures independent (ADR 0100).
struct HTTPTransport: Sendable {
    struct Response: Sendable {
        let status: Int
        let body: [UInt8]
    }

    let group: any EventLoopGroup
    let responseBytesMax: Int

    func post(_ body: [UInt8], to endpoint: RPCEndpoint, timeoutMilliseconds: Int64) async throws(ClientError) -> Response {
        let loop = group.next()
        let promise = loop.makePromise(of: Response.self)
        let limit = responseBytesMax
        let deadline = TimeAmount.milliseconds(timeoutMilliseconds)
        let timer = loop.scheduleTask(in: deadline) {
            promise.fail(ClientError.timedOut(endpoint: endpoint.description, milliseconds: timeoutMilliseconds))
        }
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(deadline)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise, bytesMax: limit))
                }
            }
        bootstrap.connect(host: endpoint.host, port: endpoint.port).whenComplete { result in
            switch result {
            case .failure(let error):
                promise.fail(ClientError.unreachable(endpoint: endpoint.description, reason: Self.describe(error)))
            case .success(let channel):
                // Whatever ends the exchange (answer, timeout, error) closes the connection.
                promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: endpoint.path)
                head.headers.add(name: "Host", value: "\(endpoint.host):\(endpoint.port)")
                head.headers.add(name: "Content-Type", value: "application/json")
                head.headers.add(name: "Accept", value: "application/json")
                head.headers.add(name: "Content-Length", value: String(body.count))
                head.headers.add(name: "Connection", value: "close")
                head.headers.add(name: "User-Agent", value: "quarry-client/1")
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { error in
                    promise.fail(ClientError.transport(endpoint: endpoint.description, reason: "sending the request failed: \(Self.describe(error))"))
                }
            }
        }
        do {
            let response = try await promise.futureResult.get()
            timer.cancel()
            return response
        } catch let error as ClientError {
            timer.cancel()
            throw error
        } catch {
            timer.cancel()
            throw .transport(endpoint: endpoint.description, reason: Self.describe(error))
        }
    }

    static func describe(_ error: any Error) -> String {
        if let io = error as? IOError { return io.description }
        if error is ChannelError { return "\(error)".replacingOccurrences(of: "ChannelError.", with: "") }
        return "\(error)"
    }
}

/// Collects one response (head, body up to `bytesMax`, end) and completes the promise.
/// A connection that closes before the end of the response fails it.
private final class ResponseCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<HTTPTransport.Response>
    private let bytesMax: Int
    private var status: Int?
    private var body: [UInt8] = []
    private var done = false

    init(promise: EventLoopPromise<HTTPTransport.Response>, bytesMax: Int) {
        self.promise = promise
        self.bytesMax = bytesMax
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            // 100 Continue and other informational answers precede the real one.
            if head.status.code >= 100 && head.status.code < 200 { return }
            status = Int(head.status.code)
        case .body(var buffer):
            guard body.count + buffer.readableBytes <= bytesMax else {
                finish(.failure(ClientError.malformedResponse("the response is larger than \(bytesMax) bytes")), context)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let status else { return }
            finish(.success(.init(status: status, body: body)), context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(ClientError.transport(endpoint: "\(context.remoteAddress.map { "\($0)" } ?? "the node")",
                                              reason: "the connection closed before the response was complete")), context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(ClientError.transport(endpoint: "\(context.remoteAddress.map { "\($0)" } ?? "the node")",
                                              reason: HTTPTransport.describe(error))), context)
    }

    private func finish(_ result: Result<HTTPTransport.Response, any Error>, _ context: ChannelHandlerContext) {
        guard !done else { return }
        done = true
        promise.completeWith(result)
        context.close(promise: nil)
    }
}
