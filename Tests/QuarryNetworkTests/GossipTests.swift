import QuarryCore
import QuarryCrypto
import Testing
@testable import QuarryNetwork

@Suite struct SeenSetTests {
    @Test func remembersUpToCapacityAndForgetsTheOldestFirst() {
        var set = SeenSet(capacity: 3)
        let ids = (0..<5).map { SM3.hash([UInt8($0)]) }
        var inserted = set.insert(ids[0])
        #expect(inserted)
        inserted = set.insert(ids[0])
        #expect(!inserted)
        inserted = set.insert(ids[1]) && set.insert(ids[2])
        #expect(inserted)
        #expect(set.count == 3)
        inserted = set.insert(ids[3])  // evicts ids[0]
        #expect(inserted)
        #expect(set.count == 3)
        #expect(!set.contains(ids[0]) && set.contains(ids[1]) && set.contains(ids[3]))
        inserted = set.insert(ids[4])  // evicts ids[1]
        #expect(inserted)
        #expect(!set.contains(ids[1]) && set.contains(ids[2]))
        inserted = set.insert(ids[0])  // forgotten, so new again
        #expect(inserted)
        #expect(set.count == 3)
    }

    @Test func messageIDIsSM3OfThePayload() {
        #expect(Gossip.messageID(Array("abc".utf8)).hex
                == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
    }
}

@Suite(.timeLimit(.minutes(1))) struct GossipTests {
    let ids = TestKeys.members.map { NodeIdentity(privateKey: $0) }

    @Test func relaysAlongALineAndDeliversEachMessageOnce() async throws {
        var cluster = Cluster()
        await withTaskGroup(of: Void.self) { tasks in
            do {
                // a - b - c: a and c have no connection; b relays.
                let a = try await cluster.start(testConfiguration(ids[0]), gossip: true, in: &tasks)
                let b = try await cluster.start(testConfiguration(ids[1], peers: [a.address]), gossip: true, in: &tasks)
                let c = try await cluster.start(testConfiguration(ids[2], peers: [b.address]), gossip: true, in: &tasks)
                #expect(await eventually {
                    a.service.connectedPeers == [b.id] && b.service.connectedPeers.count == 2 && c.service.connectedPeers == [b.id]
                })

                #expect(a.gossip!.publish(channel: .consensus, payload: [1, 1]))
                #expect(!a.gossip!.publish(channel: .consensus, payload: [1, 1]))
                #expect(c.gossip!.publish(channel: .transactions, payload: [2, 2]))
                #expect(await eventually {
                    c.messages(from: b.id, on: .consensus) == [[1, 1]] && a.messages(from: b.id, on: .transactions) == [[2, 2]]
                })
                #expect(b.messages(from: a.id, on: .consensus) == [[1, 1]])
                #expect(b.messages(from: c.id, on: .transactions) == [[2, 2]])
                // The same payload on another channel is another message.
                #expect(a.gossip!.publish(channel: .transactions, payload: [1, 1]))
                #expect(await eventually { c.messages(from: b.id, on: .transactions) == [[1, 1]] })
                try? await Task.sleep(for: .milliseconds(200))
                // Nobody delivered anything twice or got its own message back.
                #expect(a.messages.count == 1 && b.messages.count == 3 && c.messages.count == 2)
                for node in [a, b, c] { #expect(node.duplicates == 0) }
            } catch {
                Issue.record("\(error)")
            }
            await cluster.shutdownAll()
        }
        try await cluster.close()
    }

    @Test func suppressesDuplicatesInAFullMesh() async throws {
        var cluster = Cluster()
        await withTaskGroup(of: Void.self) { tasks in
            do {
                let a = try await cluster.start(testConfiguration(ids[0]), gossip: true, in: &tasks)
                let b = try await cluster.start(testConfiguration(ids[1], peers: [a.address]), gossip: true, in: &tasks)
                let c = try await cluster.start(testConfiguration(ids[2], peers: [a.address, b.address]), gossip: true, in: &tasks)
                let nodes = [a, b, c]
                #expect(await eventually { nodes.allSatisfy { $0.service.connectedPeers.count == 2 } })
                for i in 0..<20 { a.gossip!.publish(channel: .consensus, payload: [UInt8(i)]) }
                #expect(await eventually { b.messages.count == 20 && c.messages.count == 20 })
                // a sends 40 frames; b and c each relay every message once to the one peer it did
                // not come from: 80 frames for 40 deliveries, so exactly 40 copies are dropped,
                // wherever the races put them.
                #expect(await eventually { a.duplicates + b.duplicates + c.duplicates == 40 })
                try? await Task.sleep(for: .milliseconds(200))
                #expect(a.duplicates + b.duplicates + c.duplicates == 40)
                #expect(a.messages.isEmpty && b.messages.count == 20 && c.messages.count == 20)
                #expect(b.messages.map(\.payload) == (0..<20).map { [UInt8($0)] })
            } catch {
                Issue.record("\(error)")
            }
            await cluster.shutdownAll()
        }
        try await cluster.close()
    }
}
