#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOPosix
import QuarryRPC

/// A deliberately small HTTP/1.1 and WebSocket client over a plain blocking TCP socket, so
/// tests can send exactly the bytes they want (malformed, partial, slow). Every read has a
/// timeout. Blocking calls run on NIO's thread pool (see `onPool`), never on the Swift
/// concurrency pool the server's handlers need.
public final class RawClient: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    public struct Response: Sendable {
        public let status: Int
        public let headers: [(String, String)]
        public let body: [UInt8]

        public func header(_ name: String) -> String? {
            headers.first(where: { $0.0.lowercased() == name.lowercased() })?.1
        }
        public var json: JSONValue? { try? JSONValue.parse(body, limits: JSONLimits(documentBytesMax: 64 << 20)) }
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public struct Frame: Sendable {
        public let fin: Bool
        public let opcode: UInt8
        public let payload: [UInt8]
        public var text: String { String(decoding: payload, as: UTF8.self) }
        public var json: JSONValue? { try? JSONValue.parse(payload) }
        /// For a close frame: the status code.
        public var closeCode: Int? { payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : nil }
    }

    private let fd: Int32
    private var buffer: [UInt8] = []
    private var closed = false

    public init(port: Int, timeoutMilliseconds: Int = 5_000) throws {
        #if canImport(Glibc)
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { closed = true; throw Failure(description: "socket() failed") }
        var tv = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            // A class whose init throws after every property is set still runs deinit:
            // mark the descriptor closed so it is not closed twice (a second close could
            // hit a descriptor another test has since been given).
            closed = true
            Glibc.close(fd)
            throw Failure(description: "connect() to port \(port) failed: errno \(errno)")
        }
    }

    deinit { if !closed { Glibc.close(fd) } }

    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    public func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send failed: errno \(errno)") }
            sent += n
        }
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Reads more bytes into the buffer; false on end of stream.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { return false }
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { throw Failure(description: "read timed out") }
            if errno == ECONNRESET { return false }
            throw Failure(description: "recv failed: errno \(errno)")
        }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    private func take(_ n: Int) throws -> [UInt8] {
        while buffer.count < n {
            guard try fill() else { throw Failure(description: "connection closed after \(buffer.count) of \(n) bytes") }
        }
        let out = Array(buffer[0..<n])
        buffer.removeFirst(n)
        return out
    }

    /// Reads one HTTP response (bodies framed by content-length, or up to end of stream).
    public func readResponse(noBody: Bool = false) throws -> Response {
        let separator: [UInt8] = [13, 10, 13, 10]
        var headerEnd: Int? = nil
        while headerEnd == nil {
            if buffer.count >= 4 {
                for i in 0...(buffer.count - 4) where Array(buffer[i..<(i + 4)]) == separator { headerEnd = i; break }
            }
            if headerEnd == nil {
                guard try fill() else { throw Failure(description: "connection closed before a response") }
            }
        }
        let headText = String(decoding: buffer[0..<headerEnd!], as: UTF8.self)
        buffer.removeFirst(headerEnd! + 4)
        var lines = headText.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw Failure(description: "bad status line \(headText)")
        }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingSpacesForTest()))
        }
        let response = Response(status: status, headers: headers, body: [])
        if !noBody, let length = response.header("content-length").flatMap({ Int($0) }) {
            return Response(status: status, headers: headers, body: try take(length))
        }
        if noBody || status == 204 || status == 304 || (100..<200).contains(status) { return response }
        while try fill() {}
        let body = buffer
        buffer = []
        return Response(status: status, headers: headers, body: body)
    }

    /// True when the server closes the connection (end of stream) before the timeout.
    public func waitForClose() -> Bool {
        do {
            while try fill() { buffer.removeAll() }
            return true
        } catch {
            return false
        }
    }

    // MARK: WebSocket

    public func upgradeToWebSocket(path: String = "/websocket") throws -> Response {
        try send("GET \(path) HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        return try readResponse()
    }

    public func sendFrame(opcode: UInt8, _ payload: [UInt8], fin: Bool = true) throws {
        var out: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        if payload.count < 126 {
            out.append(0x80 | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            out.append(0x80 | 126)
            out.append(UInt8(payload.count >> 8)); out.append(UInt8(payload.count & 0xFF))
        } else {
            out.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((payload.count >> shift) & 0xFF)) }
        }
        out.append(contentsOf: mask)
        for (i, b) in payload.enumerated() { out.append(b ^ mask[i % 4]) }
        try send(out)
    }

    public func sendText(_ text: String) throws { try sendFrame(opcode: 1, Array(text.utf8)) }

    public func readFrame() throws -> Frame {
        let head = try take(2)
        var length = Int(head[1] & 0x7F)
        if length == 126 {
            let ext = try take(2)
            length = Int(ext[0]) << 8 | Int(ext[1])
        } else if length == 127 {
            let ext = try take(8)
            length = ext.reduce(0) { $0 << 8 | Int($1) }
        }
        let masked = head[1] & 0x80 != 0
        let mask = masked ? try take(4) : []
        var payload = try take(length)
        if masked { for i in payload.indices { payload[i] ^= mask[i % 4] } }
        return Frame(fin: head[0] & 0x80 != 0, opcode: head[0] & 0x0F, payload: payload)
    }

    /// The next text or close frame, answering nothing and skipping pings.
    public func readMessage() throws -> Frame {
        while true {
            let f = try readFrame()
            if f.opcode == 9 || f.opcode == 10 { continue }
            return f
        }
    }
}

extension String {
    public func trimmingSpacesForTest() -> String {
        var s = self[...]
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

/// Threads for the tests' blocking socket work: enough that tests running in parallel never
/// wait for each other's reads.
public let clientThreads: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: 16)
    pool.start()
    return pool
}()

/// Runs blocking socket work on the clients' thread pool, off the Swift concurrency pool.
public func onPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await clientThreads.runIfActive(body)
}

/// A POST of `body` to / on a fresh connection.
public func post(_ port: Int, _ body: String, contentType: String = "application/json") async throws -> RawClient.Response {
    try await post(port, Array(body.utf8), contentType: contentType)
}

public func post(_ port: Int, _ body: [UInt8], contentType: String = "application/json") async throws -> RawClient.Response {
    try await onPool {
        let c = try RawClient(port: port)
        defer { c.close() }
        try c.send(Array("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        return try c.readResponse()
    }
}

/// A raw request on a fresh connection.
public func raw(_ port: Int, _ bytes: [UInt8], timeoutMilliseconds: Int = 5_000) async throws -> RawClient.Response {
    try await onPool {
        let c = try RawClient(port: port, timeoutMilliseconds: timeoutMilliseconds)
        defer { c.close() }
        try c.send(bytes)
        return try c.readResponse()
    }
}
