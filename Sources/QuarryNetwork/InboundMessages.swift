import QuarryCore

/// The messages received from all peers, in arrival order, for one consumer. Bounded both
/// in messages and in payload bytes; a message that does not fit is dropped and counted (the
/// protocols above tolerate loss, and one slow consumer must not stall every connection or
/// grow the node's memory without bound). Iteration ends after `P2PService.shutdown()`.
public final class InboundMessages: AsyncSequence, @unchecked Sendable {
    public typealias Element = InboundMessage

    public let messagesMax: Int
    public let bytesMax: Int
    private let lock = Lock()
    private var buffer: [InboundMessage] = []
    private var head = 0
    private var bytes = 0
    private var finished = false
    private var waiter: CheckedContinuation<InboundMessage?, Never>?

    init(messagesMax: Int, bytesMax: Int) {
        precondition(messagesMax > 0 && bytesMax > 0, "inbound queue bounds must be positive")
        self.messagesMax = messagesMax
        self.bytesMax = bytesMax
    }

    /// Messages waiting for the consumer.
    public var count: Int { lock.withLock { buffer.count - head } }

    /// Appends a message; false if it was dropped (queue full or finished).
    func push(_ message: InboundMessage) -> Bool {
        let (accepted, waiting) = lock.withLock { () -> (Bool, CheckedContinuation<InboundMessage?, Never>?) in
            if finished { return (false, nil) }
            if let w = waiter {
                waiter = nil
                return (true, w)
            }
            // One message always fits into an empty queue, whatever its size.
            let size = message.payload.count
            guard buffer.count - head < messagesMax, head == buffer.count || bytes + size <= bytesMax else {
                return (false, nil)
            }
            buffer.append(message)
            bytes += size
            return (true, nil)
        }
        waiting?.resume(returning: message)
        return accepted
    }

    /// Ends iteration once the queued messages are consumed.
    func finish() {
        let waiting = lock.withLock { () -> CheckedContinuation<InboundMessage?, Never>? in
            finished = true
            defer { waiter = nil }
            return waiter
        }
        waiting?.resume(returning: nil)
    }

    /// Must hold `lock`.
    private func takeLocked() -> InboundMessage? {
        guard head < buffer.count else { return nil }
        let m = buffer[head]
        head += 1
        bytes -= m.payload.count
        if head == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.count <= 1024)
            head = 0
        } else if head >= 1024 && head * 2 >= buffer.count {
            buffer.removeFirst(head)
            head = 0
        }
        return m
    }

    func next() async -> InboundMessage? {
        await withCheckedContinuation { (c: CheckedContinuation<InboundMessage?, Never>) in
            let immediate = lock.withLock { () -> InboundMessage?? in
                if let m = takeLocked() { return .some(m) }
                if finished { return .some(nil) }
                precondition(waiter == nil, "InboundMessages has a single consumer")
                waiter = c
                return nil
            }
            if let result = immediate { c.resume(returning: result) }
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let queue: InboundMessages
        public mutating func next() async -> InboundMessage? { await queue.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(queue: self) }
}
