import NIOCore
import NIOPosix
import QuarryCore
import Testing
@testable import QuarryNetwork

/// Real TCP on 127.0.0.1 with ephemeral ports. Every test shuts down what it started.
@Suite(.timeLimit(.minutes(1))) struct SocketTests {
    let ids = TestKeys.members.map { NodeIdentity(privateKey: $0) }

    @Test func threeMembersDialEachOtherAndExchangeOnEveryChannel() async throws {
        var cluster = Cluster()
        await withTaskGroup(of: Void.self) { tasks in
            do {
                let a = try await cluster.start(testConfiguration(ids[0]), seed: 1, in: &tasks)
                let b = try await cluster.start(testConfiguration(ids[1], peers: [a.address]), seed: 2, in: &tasks)
                // c dials both; a also dials c later, so a and c dial each other.
                let c = try await cluster.start(testConfiguration(ids[2], peers: [a.address, b.address]), seed: 3, in: &tasks)
                b.service.addPeer(c.address)
                a.service.addPeer(c.address)
                let nodes = [a, b, c]
                // Simultaneous dials settle on one connection per pair.
                #expect(await eventually {
                    nodes.allSatisfy { $0.service.connectedPeers.count == 2 && $0.service.openConnectionCount == 2 }
                })

                for (i, channel) in [P2PChannel.consensus, .transactions, .blockSync].enumerated() {
                    for sender in nodes {
                        for receiver in nodes where receiver !== sender {
                            let payload = Array("\(channel) from \(sender.id.hex.prefix(6))".utf8) + [UInt8(i)]
                            #expect(sender.service.send(to: receiver.id, channel: channel, bytes: payload) == .queued)
                        }
                    }
                }
                let results = a.service.broadcast(channel: .consensus, bytes: [42])
                #expect(results.map(\.0) == [b.id, c.id].sorted())
                #expect(results.allSatisfy { $0.1 == .queued })
                #expect(await eventually { nodes.allSatisfy { $0.messages.count >= 6 } && b.messages.count == 7 && c.messages.count == 7 })
                for receiver in nodes {
                    for sender in nodes where sender !== receiver {
                        for (i, channel) in [P2PChannel.consensus, .transactions, .blockSync].enumerated() {
                            let expected = Array("\(channel) from \(sender.id.hex.prefix(6))".utf8) + [UInt8(i)]
                            #expect(receiver.messages(from: sender.id, on: channel).first == expected)
                        }
                    }
                }
                // ... without flapping.
                try? await Task.sleep(for: .milliseconds(500))
                for node in nodes {
                    #expect(node.service.connectedPeers.count == 2)
                    #expect(node.events.filter { if case .connected = $0 { true } else { false } }.count == 2)
                    #expect(!node.events.contains { if case .disconnected = $0 { true } else { false } })
                }
                let stats = b.service.statistics
                #expect(stats.connectedPeers == 2 && stats.openConnections == 2)
                #expect(stats.framesReceived == [0, 3, 2, 2])  // a's broadcast adds one consensus frame
                #expect(stats.framesSent == [0, 2, 2, 2])
                #expect(a.service.statistics.framesSent == [0, 4, 2, 2])  // two sends plus a broadcast to two
                // Refused sends.
                #expect(a.service.send(to: NodeID(publicKey: TestKeys.outsider.publicKey), channel: .consensus, bytes: [1]) == .notConnected)
                #expect(a.service.send(to: b.id, channel: .control, bytes: [1]) != .queued)
                #expect(a.service.send(to: b.id, channel: .blockSync, bytes: [UInt8](repeating: 0, count: (1 << 20) + 1)) != .queued)
            } catch {
                Issue.record("\(error)")
            }
            await cluster.shutdownAll()
        }
        try await cluster.close()
    }

    @Test func refusesBadPeersAndKeepsServingGoodOnes() async throws {
        var cluster = Cluster()
        await withTaskGroup(of: Void.self) { tasks in
            do {
                let victim = try await cluster.start(testConfiguration(ids[1], payloadMax: 4096), seed: 1, in: &tasks)
                let good = try await cluster.start(testConfiguration(ids[0], peers: [victim.address]), seed: 2, in: &tasks)
                #expect(await eventually { victim.service.connectedPeers == [good.id] })

                // 1. A node outside the membership.
                let outsider = try await cluster.start(
                    testConfiguration(NodeIdentity(privateKey: TestKeys.outsider), peers: [victim.address]), seed: 3, in: &tasks)
                #expect(await eventually { victim.logged("p2p.unknown_node") })
                // 2. A node presenting member 2's key without holding it.
                let impostor = try await cluster.start(
                    testConfiguration(NodeIdentity(impostor: TestKeys.outsider, claiming: TestKeys.members[2].publicKey),
                                      peers: [victim.address]), seed: 4, in: &tasks)
                #expect(await eventually { victim.logged("p2p.bad_signature") })
                await outsider.service.shutdown()
                await impostor.service.shutdown()

                // 3. A handshake recorded from an earlier session with the victim, replayed.
                var recorded = Pair(initiator: TestKeys.machine(.initiator, ids[2]), responder: TestKeys.machine(.responder, ids[1]))
                recorded.run()
                #expect(recorded.responder.isEstablished)
                let replayer = try await RawPeer.connect(port: victim.port, machine: nil, group: cluster.group)
                try await replayer.send(recorded.initiatorWrites[0])
                #expect(await eventually { replayer.received.count > 100 })  // the victim's hello and auth
                try await replayer.send(recorded.initiatorWrites[1])
                #expect(await eventually { replayer.isClosed })
                #expect(victim.logged("p2p.authentication_failed"))

                // 4. A member that completes the handshake, then sends an oversized frame.
                let big = try await RawPeer.connect(port: victim.port, machine: TestKeys.machine(.initiator, ids[2]),
                                                    group: cluster.group)
                #expect(await eventually { big.isEstablished })
                #expect(await eventually { victim.service.connectedPeers.count == 2 })
                try await big.send(Wire.lengthPrefix(4096 + 17 + 1) + [UInt8](repeating: 0, count: 64))
                #expect(await eventually { big.isClosed })
                #expect(victim.logged("p2p.frame_too_large"))
                // The next peers reuse the same identity: wait until the victim has dropped the
                // closed link, or a fast handshake finds it still "already connected".
                #expect(await eventually { victim.service.connectedPeers.count == 1 })

                // 5. ... or a malformed one (an authenticated frame on an unknown channel) ...
                let bad = try await RawPeer.connect(port: victim.port, machine: TestKeys.machine(.initiator, ids[2]),
                                                    group: cluster.group)
                #expect(await eventually { bad.isEstablished })
                try await bad.sendSealed(plaintext: [200, 1, 2, 3])
                #expect(await eventually { bad.isClosed })
                #expect(victim.logged("p2p.malformed_frame"), "\(victim.logs.suffix(4))")
                #expect(await eventually { victim.service.connectedPeers.count == 1 })

                // 6. ... or bytes that fail authentication.
                let forger = try await RawPeer.connect(port: victim.port, machine: TestKeys.machine(.initiator, ids[2]),
                                                       group: cluster.group)
                #expect(await eventually { forger.isEstablished })
                try await forger.send(Wire.lengthPrefix(40) + [UInt8](repeating: 7, count: 40))
                #expect(await eventually { forger.isClosed })
                #expect(victim.logged("p2p.authentication_failed"))

                // 7. Garbage instead of a hello.
                let garbage = try await RawPeer.connect(port: victim.port, machine: nil, group: cluster.group)
                try await garbage.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
                #expect(await eventually { garbage.isClosed })

                // 8. Its own address in its peer list: refused once, then never dialed again.
                victim.service.addPeer(PeerAddress(host: "127.0.0.1", port: victim.port))
                #expect(await eventually { victim.logs.contains { $0.contains("not dialing it again") } })
                #expect(victim.logged("p2p.self_connection"))
                try? await Task.sleep(for: .milliseconds(300))
                #expect(victim.logs.filter { $0.contains("not dialing it again") }.count == 1)

                // The good peer was never disturbed and still exchanges messages both ways.
                #expect(victim.service.connectedPeers == [good.id])
                #expect(victim.service.send(to: good.id, channel: .consensus, bytes: [1, 2, 3]) == .queued)
                #expect(good.service.send(to: victim.id, channel: .transactions, bytes: [4, 5]) == .queued)
                #expect(await eventually { good.messages(from: victim.id, on: .consensus) == [[1, 2, 3]] })
                #expect(await eventually { victim.messages(from: good.id, on: .transactions) == [[4, 5]] })
                #expect(!good.events.contains { if case .disconnected = $0 { true } else { false } })
                #expect(!victim.messages.contains { $0.peer != good.id })
                let closes = victim.service.statistics.closes
                for code in ["p2p.unknown_node", "p2p.bad_signature", "p2p.authentication_failed",
                             "p2p.frame_too_large", "p2p.malformed_frame", "p2p.self_connection"] {
                    #expect(closes[code, default: 0] >= 1, "no close counted for \(code)")
                }
            } catch {
                Issue.record("\(error)")
            }
            await cluster.shutdownAll()
        }
        try await cluster.close()
    }

    @Test func redialsAPeerThatRestarts() async throws {
        var cluster = Cluster()
        await withTaskGroup(of: Void.self) { tasks in
            do {
                let b = try await cluster.start(testConfiguration(ids[1]), seed: 1, in: &tasks)
                let a = try await cluster.start(testConfiguration(ids[0], peers: [b.address]), seed: 2, in: &tasks)
                #expect(await eventually { a.service.connectedPeers == [b.id] })
                let port = b.port
                await b.service.shutdown()
                #expect(await eventually { a.events.contains(.disconnected(b.id, reason: "p2p.peer_closed")) })
                #expect(a.service.connectedPeers.isEmpty)
                #expect(a.service.send(to: b.id, channel: .consensus, bytes: [1]) == .notConnected)
                // Let a fail a few dials (backoff grows), then bring b back on the same port.
                try? await Task.sleep(for: .milliseconds(300))
                let b2 = try await cluster.start(testConfiguration(ids[1], port: port), seed: 3, in: &tasks)
                #expect(await eventually { a.service.connectedPeers == [b2.id] && b2.service.connectedPeers == [a.id] })
                // The event stream is delivered asynchronously: wait for it rather than race it.
                #expect(await eventually { a.events.filter { $0 == .connected(b.id) }.count == 2 })
                #expect(a.service.send(to: b2.id, channel: .blockSync, bytes: [9, 9]) == .queued)
                #expect(await eventually { b2.messages(from: a.id, on: .blockSync) == [[9, 9]] })
            } catch {
                Issue.record("\(error)")
            }
            await cluster.shutdownAll()
        }
        try await cluster.close()
    }
}

@Suite(.timeLimit(.minutes(1))) struct BackPressureTests {
    let ids = TestKeys.members.map { NodeIdentity(privateKey: $0) }

    @Test func aPeerThatStopsReadingHitsTheSendQueueBounds() async throws {
        var cluster = Cluster()
        await withTaskGroup(of: Void.self) { tasks in
            do {
                var config = testConfiguration(ids[0])
                config.sendQueueLimits.transactionsBytesMax = 256 << 10
                config.sendQueueLimits.consensusBytesMax = 256 << 10
                // The hog never answers pings (it stops reading): keep the idle timeout longer
                // than the filling loop below can take on a loaded machine, so that only the
                // send-queue bound can end the link.
                config.idleTimeoutMilliseconds = 30_000
                let node = try await cluster.start(config, in: &tasks)
                let good = try await cluster.start(testConfiguration(ids[1], peers: [node.address]), in: &tasks)
                let hog = try await RawPeer.connect(port: node.port, machine: TestKeys.machine(.initiator, ids[2]),
                                                    group: cluster.group)
                #expect(await eventually { hog.isEstablished && node.service.connectedPeers.count == 2 })
                try await hog.channel!.setOption(ChannelOptions.autoRead, value: false).get()

                // Transactions: once the queue is full, further ones are dropped; the link stays.
                let payload = [UInt8](repeating: 0x55, count: 64 << 10)
                // Keep sending, retrying after drops, until the queue stays full for 250 ms: by
                // then the socket buffers are full too and only the bound holds data back.
                var queued = 0
                var dropped: SendResult?
                var drops = 0
                let deadline = ContinuousClock.now + .seconds(15)
                while drops < 50 && ContinuousClock.now < deadline {
                    let r = node.service.send(to: hog.peerID, channel: .transactions, bytes: payload)
                    if r == .queued {
                        queued += 1
                        drops = 0
                    } else {
                        dropped = r
                        drops += 1
                        try? await Task.sleep(for: .milliseconds(5))
                    }
                }
                #expect(dropped == .dropped(P2PError("p2p.send_queue_full", "")))
                // More than the bound went out (into the socket buffers) before the queue filled.
                #expect(queued > 4)
                #expect(node.service.connectedPeers.contains(hog.peerID))

                // Consensus: past the bound the lagging peer is disconnected.
                var consensusResult: SendResult?
                for _ in 0..<4_000 {
                    let r = node.service.send(to: hog.peerID, channel: .consensus, bytes: payload)
                    if r != .queued { consensusResult = r; break }
                }
                #expect(consensusResult == .dropped(P2PError("p2p.send_queue_full", "")))
                #expect(await eventually { !node.service.connectedPeers.contains(hog.peerID) })
                #expect(node.logged("p2p.send_queue_full"))

                // The good peer is unaffected.
                #expect(node.service.send(to: good.id, channel: .consensus, bytes: [1]) == .queued)
                #expect(await eventually { good.messages(from: node.id, on: .consensus) == [[1]] })
            } catch {
                Issue.record("\(error)")
            }
            await cluster.shutdownAll()
            for node in cluster.nodes { #expect(node.service.openConnectionCount == 0) }
        }
        try await cluster.close()
    }
}

@Suite(.timeLimit(.minutes(1))) struct MembershipTests {
    let ids = TestKeys.members.map { NodeIdentity(privateKey: $0) }

    @Test func removingAMemberClosesItsConnectionAndRefusesItsRedials() async throws {
        var cluster = Cluster()
        await withTaskGroup(of: Void.self) { tasks in
            do {
                let a = try await cluster.start(testConfiguration(ids[0]), in: &tasks)
                let b = try await cluster.start(testConfiguration(ids[1], peers: [a.address]), in: &tasks)
                let c = try await cluster.start(testConfiguration(ids[2], peers: [a.address]), in: &tasks)
                #expect(await eventually { a.service.connectedPeers.count == 2 })
                a.service.updateMembership(Membership([TestKeys.members[0], TestKeys.members[1]].map(\.publicKey)))
                #expect(await eventually { a.events.contains(.disconnected(c.id, reason: "p2p.membership_revoked")) })
                #expect(await eventually { a.logged("p2p.unknown_node") })  // c redials and is refused
                #expect(a.service.connectedPeers == [b.id])
                #expect(!a.service.membership.contains(c.id))
                // Admitting it again lets its next redial in.
                a.service.updateMembership(TestKeys.membership)
                #expect(await eventually(within: 8) { a.service.connectedPeers.count == 2 })
            } catch {
                Issue.record("\(error)")
            }
            await cluster.shutdownAll()
            for node in cluster.nodes { #expect(node.service.openConnectionCount == 0) }
        }
        try await cluster.close()
    }
}

@Suite(.timeLimit(.minutes(1))) struct LatencyTests {
    let ids = TestKeys.members.map { NodeIdentity(privateKey: $0) }

    /// Every burst must be flushed at once, not left waiting for the next send or ping.
    @Test func burstsArriveWithoutWaitingForTheNextPing() async throws {
        var cluster = Cluster()
        await withTaskGroup(of: Void.self) { tasks in
            do {
                var slowPings = testConfiguration(ids[0])
                slowPings.pingIntervalMilliseconds = 20_000
                slowPings.idleTimeoutMilliseconds = 60_000
                let a = try await cluster.start(slowPings, in: &tasks)
                var config = testConfiguration(ids[1], peers: [a.address])
                config.pingIntervalMilliseconds = 20_000
                config.idleTimeoutMilliseconds = 60_000
                let b = try await cluster.start(config, in: &tasks)
                #expect(await eventually { a.service.connectedPeers == [b.id] && b.service.connectedPeers == [a.id] })
                var late = 0
                for round in 0..<100 {
                    for i in 0..<3 { b.service.send(to: a.id, channel: .consensus, bytes: [UInt8(round), UInt8(i)]) }
                    if !(await eventually(within: 1) { a.messages.count == 3 * (round + 1) }) { late += 1 }
                }
                #expect(late == 0)
            } catch {
                Issue.record("\(error)")
            }
            await cluster.shutdownAll()
        }
        try await cluster.close()
    }
}
