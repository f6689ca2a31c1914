import Foundation
import NIOCore
import NIOPosix
import QuarryCore
import QuarryCrypto
import QuarryNetwork

/// P2P transport figures on loopback, two nodes in this process: handshakes per second
/// (each a full SM2-authenticated X25519 handshake over TCP), and sustained frames per
/// second and MB/s one way for small (consensus-vote-sized) and large (block-sized) frames.
/// The reference is this machine's SM2 sign + verify rate measured in the same run: a
/// handshake costs one of each per side.
enum NetworkBench {
    static func run() throws {
        let done = DispatchSemaphore(value: 0)
        let box = ErrorBox()
        Task {
            do { try await runAsync() } catch { box.error = error }
            done.signal()
        }
        done.wait()
        if let error = box.error { throw error }
    }

    final class ErrorBox: @unchecked Sendable { var error: Error? }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    static func runAsync() async throws {
        // Reference: SM2 sign + verify, the asymmetric cost of one side of a handshake.
        let key = SM2PrivateKey()
        let message = [UInt8](repeating: 7, count: 64)
        let n = 400
        var start = ContinuousClock.now
        for _ in 0..<n {
            let s = try key.signature(for: message)
            precondition(key.publicKey.isValidSignature(s, for: message))
        }
        let sm2PairsPerSecond = Double(n) / seconds(since: start)
        print(String(format: "reference: SM2 sign+verify          %8.0f /s", sm2PairsPerSecond))

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let keys = (0..<2).map { _ in SM2PrivateKey() }
        let dialers = (0..<40).map { _ in SM2PrivateKey() }
        let membership = Membership((keys + dialers).map(\.publicKey))
        func config(_ key: SM2PrivateKey, peers: [PeerAddress] = []) -> P2PConfiguration {
            var c = P2PConfiguration(identity: NodeIdentity(privateKey: key), membership: membership,
                                     chainID: "bench", peers: peers)
            c.sendQueueLimits.consensusBytesMax = 64 << 20
            c.sendQueueLimits.blockSyncBytesMax = 64 << 20
            c.inboundQueueMessagesMax = 1 << 20
            c.inboundQueueBytesMax = 256 << 20
            return c
        }
        let server = P2PService(configuration: config(keys[0]), group: group)
        let port = try await server.start().port!
        let address = PeerAddress(host: "127.0.0.1", port: port, nodeID: NodeID(publicKey: keys[0].publicKey))

        // Handshakes: 40 nodes dial the server at once; time until all are connected.
        start = ContinuousClock.now
        var clients: [P2PService] = []
        for k in dialers {
            let c = P2PService(configuration: config(k, peers: [address]), group: group)
            try await c.start()
            clients.append(c)
        }
        while server.connectedPeers.count < dialers.count { try await Task.sleep(for: .milliseconds(1)) }
        let handshakesPerSecond = Double(dialers.count) / seconds(since: start)
        print(String(format: "handshakes (40 concurrent dials)    %8.0f /s   (%.2f x the SM2 sign+verify rate)",
                     handshakesPerSecond, handshakesPerSecond / sm2PairsPerSecond))
        for c in clients { await c.shutdown() }

        let sender = P2PService(configuration: config(keys[1], peers: [address]), group: group)
        try await sender.start()
        while !sender.connectedPeers.contains(address.nodeID!) { try await Task.sleep(for: .milliseconds(1)) }

        var inbound = server.inbound.makeAsyncIterator()
        for (label, size, count, channel) in [("frames of 256 B  ", 256, 200_000, P2PChannel.consensus),
                                              ("frames of 64 KiB ", 64 << 10, 4_000, P2PChannel.blockSync)] {
            let payload = [UInt8](repeating: 0xA5, count: size)
            start = ContinuousClock.now
            var received = 0
            var sent = 0
            let window = min(2_000, (16 << 20) / size)  // frames in flight, well inside every bound
            while received < count {
                while sent < count && sent - received < window {
                    if sender.send(to: address.nodeID!, channel: channel, bytes: payload) == .queued {
                        sent += 1
                    } else {
                        break
                    }
                }
                guard let m = await inbound.next() else { break }
                if m.payload.count == size { received += 1 }
            }
            let elapsed = seconds(since: start)
            print(String(format: "\(label) one way         %8.0f frames/s  %7.1f MB/s",
                         Double(count) / elapsed, Double(count * size) / elapsed / 1e6))
        }
        await sender.shutdown()
        await server.shutdown()
        try await group.shutdownGracefully()
    }
}
