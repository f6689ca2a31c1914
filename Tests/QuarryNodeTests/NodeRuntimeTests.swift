import Foundation
import NIOPosix
import Testing
import QuarryConsensus
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryNetwork
import QuarryStore
@testable import QuarryNode

/// Four validators as four `NodeRuntime`s in this process, talking over real TCP on
/// 127.0.0.1 through the authenticated P2P transport, with wall-clock time.
@Suite(.serialized) struct NodeRuntimeTests {
    @Test(.timeLimit(.minutes(1))) func fourNodesOverLoopbackCommitTheSameChain() async throws {
        let keys = (0..<4).map { _ in SM2PrivateKey() }
        let issuer = SigningKey(scheme: .sm2)
        let other = SigningKey(scheme: .sm2).address
        let now = wallClockMilliseconds() / 1_000
        let genesis = Genesis(
            chainID: "quarry-loopback", genesisTime: now - 5,
            validators: keys.enumerated().map { i, k in
                GenesisValidator(name: "v\(i)", publicKey: try! PublicKeyBytes(scheme: .sm2, bytes: k.publicKey.rawRepresentation), power: 10)
            },
            roles: Roles(registrar: other, crystalIssuer: issuer.address, boxOperator: other, merchants: []))
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-runtime-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let membership = Membership(keys.map(\.publicKey))
        var services: [P2PService] = []
        var ports: [Int] = []
        for k in keys {
            var c = P2PConfiguration(identity: NodeIdentity(privateKey: k), membership: membership, chainID: genesis.chainID)
            c.reconnectDelayMinMilliseconds = 20
            c.reconnectDelayMaxMilliseconds = 200
            let s = P2PService(configuration: c, group: group)
            let address = try await s.start()
            services.append(s)
            ports.append(address.port ?? 0)
        }
        for (i, s) in services.enumerated() {
            for (j, k) in keys.enumerated() where j > i {
                s.addPeer(PeerAddress(host: "127.0.0.1", port: ports[j], nodeID: NodeID(publicKey: k.publicKey)))
            }
        }
        var runtimes: [NodeRuntime] = []
        var stores: [RocksDBStore] = []
        for (i, k) in keys.enumerated() {
            let dir = base + "/node\(i)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let store = try RocksDBStore(path: dir + "/db", columns: Ledger.columns + BlockStore.columns)
            stores.append(store)
            let app = try ChainApplication(ledger: Ledger(store: store, genesis: genesis), chain: BlockStore(store: store))
            let timeouts = TimeoutConfig(proposeBase: 1_000, proposeDelta: 500, prevoteBase: 300, prevoteDelta: 200,
                                         precommitBase: 300, precommitDelta: 200)
            runtimes.append(try NodeRuntime(app: app, config: ConsensusConfig(chainID: genesis.chainID, timeouts: timeouts),
                                            signer: SM2ConsensusSigner(key: k), wal: FileWAL(path: dir + "/consensus.wal"),
                                            signedFile: SignedStateFile(path: dir + "/signed_state"), p2p: services[i]))
        }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for r in runtimes { tasks.addTask { try await r.run() } }
            // A client submits two grants to one node; gossip carries them to the proposers.
            for nonce: UInt64 in 0..<2 {
                let body = TransactionBody(chainID: genesis.chainID, nonce: nonce, signer: issuer.publicKeyBytes,
                                           payload: .grantCrystals(to: other, amount: 5))
                _ = try await runtimes[2].submit(try SignedTransaction(body: body, key: issuer).canonicalBytes)
            }
            let deadline = ContinuousClock.now + .seconds(40)
            while ContinuousClock.now < deadline {
                var heights: [UInt64] = []
                for r in runtimes { heights.append(await r.height) }
                var granted: [UInt64] = []
                for r in runtimes { granted.append(await r.crystals(of: other)) }
                if heights.allSatisfy({ $0 >= 4 }) && granted.allSatisfy({ $0 == 10 }) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            tasks.cancelAll()
            for s in services { await s.shutdown() }
        }
        var heights: [UInt64] = []
        for r in runtimes { heights.append(await r.height) }
        #expect(heights.allSatisfy { $0 >= 4 }, "heights \(heights)")
        for r in runtimes { #expect(await r.crystals(of: other) == 10, "a submitted transaction is missing on a node") }
        for h in 1...(heights.min() ?? 0) {
            var hashes = Set<Hash256>()
            for r in runtimes { if let b = try await r.blockHash(at: h) { hashes.insert(b) } }
            #expect(hashes.count == 1, "block \(h) differs between nodes")
        }
        for s in stores { s.close() }
        try await group.shutdownGracefully()
    }
}
