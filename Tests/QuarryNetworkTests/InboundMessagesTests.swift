import QuarryCore
import QuarryCrypto
import Testing
@testable import QuarryNetwork

@Suite struct InboundMessagesTests {
    let peer = NodeID(publicKey: TestKeys.members[0].publicKey)

    func message(_ n: Int, size: Int = 1) -> InboundMessage {
        InboundMessage(peer: peer, channel: .consensus, payload: [UInt8](repeating: UInt8(n), count: size))
    }

    @Test func boundsByCountAndBytesAndKeepsOrder() async {
        let q = InboundMessages(messagesMax: 3, bytesMax: 100)
        #expect(q.push(message(1)) && q.push(message(2)) && q.push(message(3)))
        #expect(!q.push(message(4)))  // count bound
        var it = q.makeAsyncIterator()
        #expect(await it.next() == message(1))
        #expect(q.push(message(5, size: 98)))  // 1 + 1 + 98 = 100 bytes
        #expect(!q.push(message(6)))           // byte bound
        #expect(await it.next() == message(2))
        #expect(await it.next() == message(3))
        #expect(await it.next() == message(5, size: 98))
        #expect(q.count == 0)
        #expect(q.push(message(7, size: 500)))  // one message always fits an empty queue
        q.finish()
        #expect(!q.push(message(8)))
        #expect(await it.next() == message(7, size: 500))  // drained before the end
        #expect(await it.next() == nil)
    }

    @Test func aWaitingConsumerIsWokenByPushAndByFinish() async {
        let q = InboundMessages(messagesMax: 10, bytesMax: 1_000)
        await withTaskGroup(of: [InboundMessage].self) { group in
            group.addTask {
                var got: [InboundMessage] = []
                for await m in q { got.append(m) }
                return got
            }
            for i in 0..<5 {
                try? await Task.sleep(for: .milliseconds(5))
                _ = q.push(message(i))
            }
            try? await Task.sleep(for: .milliseconds(5))
            q.finish()
            let got = await group.next()
            #expect(got == (0..<5).map { message($0) })
        }
    }

    @Test func manyMessagesThroughTheQueueCompact() async {
        let q = InboundMessages(messagesMax: 5_000, bytesMax: 1 << 20)
        var it = q.makeAsyncIterator()
        var mismatches = 0
        for _ in 0..<3 {
            for i in 0..<4_000 where !q.push(message(i % 256)) { mismatches += 1 }
            for i in 0..<4_000 where await it.next() != message(i % 256) { mismatches += 1 }
        }
        #expect(mismatches == 0)
        #expect(q.count == 0)
    }
}
