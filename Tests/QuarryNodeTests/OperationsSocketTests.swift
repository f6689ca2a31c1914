#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOPosix
import Prometheus
import Testing
import QuarryConsensus
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryNetwork
import QuarryStore
@testable import QuarryNode

/// A plain HTTP/1.1 request over a blocking socket to 127.0.0.1 (5 s timeouts).
func httpRequest(port: Int, method: String = "GET", path: String) throws -> (status: Int, headers: String, body: String) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    let request = Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var response: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while response.count < 16 << 20 {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        response += chunk[0..<n]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { throw POSIXError(.EBADMSG) }
    let head = String(text[..<split.lowerBound])
    let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
    return (status, head.lowercased(), String(text[split.upperBound...]))
}

/// Nodes in this process over loopback TCP: one validator that commits alone, and probes
/// (bare P2P services holding a member key) that talk to it as a peer would.
final class OperationsHarness: @unchecked Sendable {
    let validatorKey = SM2PrivateKey()
    let auditorKey = SM2PrivateKey()
    let probeKey = SM2PrivateKey()
    let genesis: Genesis
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-ops-\(UUID().uuidString)").path
    var stores: [RocksDBStore] = []
    var services: [P2PService] = []

    init() {
        var consensus = ConsensusParameters()
        consensus.timeoutCommitMilliseconds = 200
        let other = SigningKey(scheme: .sm2).address
        genesis = Genesis(
            chainID: "quarry-ops", genesisTime: wallClockMilliseconds() / 1_000 - 5,
            validators: [GenesisValidator(name: "v0", publicKey: try! PublicKeyBytes(scheme: .sm2, bytes: validatorKey.publicKey.rawRepresentation), power: 10)],
            roles: Roles(registrar: other, crystalIssuer: other, boxOperator: other, merchants: []),
            consensus: consensus)
    }

    var membership: Membership { Membership([validatorKey.publicKey, auditorKey.publicKey, probeKey.publicKey]) }

    func service(_ key: SM2PrivateKey, peers: [PeerAddress] = []) async throws -> (P2PService, Int) {
        var c = P2PConfiguration(identity: NodeIdentity(privateKey: key), membership: membership, chainID: genesis.chainID, peers: peers)
        c.reconnectDelayMinMilliseconds = 20
        c.reconnectDelayMaxMilliseconds = 200
        let s = P2PService(configuration: c, group: group)
        let address = try await s.start()
        services.append(s)
        return (s, address.port ?? 0)
    }

    func runtime(_ name: String, key: SM2PrivateKey, validator: Bool, p2p: P2PService, policy: SyncRequestLimiter.Policy = .init(),
                 telemetry: NodeTelemetry) throws -> NodeRuntime {
        let dir = base + "/" + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let store = try RocksDBStore(path: dir + "/db", columns: Ledger.columns + BlockStore.columns)
        stores.append(store)
        let app = try ChainApplication(ledger: Ledger(store: store, genesis: genesis), chain: BlockStore(store: store))
        let timeouts = TimeoutConfig(proposeBase: 500, proposeDelta: 200, prevoteBase: 200, prevoteDelta: 100,
                                     precommitBase: 200, precommitDelta: 100)
        return try NodeRuntime(app: app, config: ConsensusConfig(chainID: genesis.chainID, timeouts: timeouts),
                               signer: validator ? SM2ConsensusSigner(key: key) : nil,
                               wal: FileWAL(path: dir + "/consensus.wal"),
                               signedFile: validator ? SignedStateFile(path: dir + "/signed_state") : nil,
                               p2p: p2p, syncRequestPolicy: policy, telemetry: telemetry)
    }

    func telemetry(_ name: String, role: String, collector: LineCollector) -> NodeTelemetry {
        NodeTelemetry(node: NodeDescription(moniker: name, role: role, nodeID: name, chainID: genesis.chainID),
                      loggers: NodeLoggers(level: .debug, sink: collector.sink), registry: PrometheusCollectorRegistry(),
                      lagLogIntervalMilliseconds: 500)
    }

    /// Closes every transport, which ends the runtimes' `run()` (call inside the task group).
    func stopServices() async {
        let all = services
        services = []
        for s in all { await s.shutdown() }
    }

    func finish() async throws {
        await stopServices()
        for s in stores { s.close() }
        try await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: base)
    }
}

func waitFor(seconds: Double, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1_000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

final class ReplyCounter: @unchecked Sendable {
    private let lock = Lock()
    private var counts = (full: 0, empty: 0, malformed: 0)
    func add(_ list: [CertifiedBlock]) {
        lock.withLock {
            if list.isEmpty { counts.empty += 1 } else { counts.full += 1 }
            if !list.isEmpty && list.map(\.block.height) != [1, 2] { counts.malformed += 1 }
        }
    }
    var full: Int { lock.withLock { counts.full } }
    var empty: Int { lock.withLock { counts.empty } }
    var total: Int { lock.withLock { counts.full + counts.empty } }
    var wellFormed: Bool { lock.withLock { counts.malformed == 0 } }
}

@Suite(.serialized) struct OperationsSocketTests {
    /// A validator serves a probe's block requests up to the per-peer limit and answers the
    /// rest with empty `blocks` messages; an auditor that joins later catches up by sync and
    /// reports it; the metrics listener shows both over real HTTP.
    @Test(.timeLimit(.minutes(1))) func rateLimitCatchUpAndMetricsOverHTTP() async throws {
        let h = OperationsHarness()
        let validatorLog = LineCollector(), auditorLog = LineCollector()
        let (vp2p, vport) = try await h.service(h.validatorKey)
        let vTelemetry = h.telemetry("v0", role: "validator", collector: validatorLog)
        let validator = try h.runtime("v0", key: h.validatorKey, validator: true, p2p: vp2p,
                                      policy: .init(burst: 4, perSecond: 2), telemetry: vTelemetry)
        let server = MetricsServer(host: "127.0.0.1", port: 0,
                                   endpoints: MetricsEndpoints(metrics: { vTelemetry.scrape() }, health: { vTelemetry.health() }),
                                   group: h.group)
        let metricsPort = try await server.start().port ?? 0
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await validator.run() }
            #expect(await waitFor(seconds: 20) { await validator.height >= 6 })

            // A probe floods the validator with block requests.
            let (probe, _) = try await h.service(h.probeKey, peers: [PeerAddress(host: "127.0.0.1", port: vport, nodeID: NodeID(publicKey: h.validatorKey.publicKey))])
            let vid = NodeID(publicKey: h.validatorKey.publicKey)
            #expect(await waitFor(seconds: 10) { probe.connectedPeers.contains(vid) })
            let started = ContinuousClock.now
            let sent = 30
            for _ in 0..<sent { _ = probe.send(to: vid, channel: .blockSync, bytes: SyncMessage.request(from: 1, count: 2).canonicalBytes) }
            // Replies are counted as they arrive (the stream ends when the probe shuts down).
            let replies = ReplyCounter()
            let reader = Task {
                for await message in probe.inbound where message.channel == .blockSync {
                    if case .blocks(let list)? = try? SyncMessage(canonicalBytes: message.payload) { replies.add(list) }
                }
            }
            #expect(await waitFor(seconds: 10) { replies.total >= sent })
            let (full, empty) = (replies.full, replies.empty)
            #expect(replies.wellFormed, "a served reply holds blocks 1 and 2")
            let elapsedSeconds = Int((ContinuousClock.now - started).components.seconds) + 1
            #expect(full + empty == sent, "every request is answered")
            #expect(full >= 4 && full <= 4 + 2 * elapsedSeconds, "served \(full) of \(sent) in about \(elapsedSeconds) s")
            #expect(empty >= sent - 4 - 2 * elapsedSeconds)
            #expect(await validator.problems.contains("sync.rate_limited"))
            #expect(validatorLog.lines.contains { $0.contains("level=warning subsystem=sync") && $0.contains("per-peer limit") })
            await probe.shutdown()
            await reader.value

            // An auditor joins late and catches up by block sync.
            let (ap2p, _) = try await h.service(h.auditorKey, peers: [PeerAddress(host: "127.0.0.1", port: vport, nodeID: vid)])
            let aTelemetry = h.telemetry("a0", role: "read-only", collector: auditorLog)
            let auditor = try h.runtime("a0", key: h.auditorKey, validator: false, p2p: ap2p, telemetry: aTelemetry)
            tasks.addTask { try await auditor.run() }
            #expect(await waitFor(seconds: 20) {
                let a = await auditor.syncStatus, v = await validator.height
                return a.height + 1 >= v && a.height >= 6 && a.blocksSynced > 0 && !a.catchingUp
            })
            let status = await auditor.syncStatus
            #expect(status.bestPeer == vid && status.peersReporting == 1)
            #expect(aTelemetry.health().status == .ok)
            #expect(auditorLog.lines.contains { $0.contains("subsystem=sync msg=synced height=") })
            #expect(auditorLog.lines.contains { $0.contains("level=debug subsystem=sync msg=applied height=") })
            let auditorMetrics = String(decoding: aTelemetry.scrape(), as: UTF8.self)
            #expect(!auditorMetrics.contains("quarry_sync_blocks_applied_total 0\n"))
            #expect(auditorMetrics.contains("quarry_p2p_peers_connected 1.0"))
            // Same chain on both.
            for height in 1...status.height {
                #expect(try await auditor.blockHash(at: height) == (try await validator.blockHash(at: height)))
            }

            // The validator's metrics listener, over HTTP.
            let metrics = try httpRequest(port: metricsPort, path: "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.headers.contains("content-type: text/plain; version=0.0.4"))
            #expect(metrics.body.contains("# TYPE quarry_block_height gauge"))
            #expect(metrics.body.contains("quarry_sync_requests_limited_total"))
            #expect(!metrics.body.contains("quarry_sync_requests_limited_total 0\n"))
            let heightLine = metrics.body.split(separator: "\n").first { $0.hasPrefix("quarry_block_height ") }
            #expect((heightLine.flatMap { Double($0.split(separator: " ")[1]) } ?? 0) >= 6)
            let health = try httpRequest(port: metricsPort, path: "/health?verbose=1")
            #expect(health.status == 200)
            #expect(health.headers.contains("content-type: application/json"))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(health.body.utf8)) as? [String: Any])
            #expect(object["status"] as? String == "ok")
            #expect(object["role"] as? String == "validator")
            #expect((object["height"] as? Int ?? 0) >= 6)
            #expect(object["catchingUp"] as? Bool == false)
            #expect(try httpRequest(port: metricsPort, path: "/nothing").status == 404)
            #expect(try httpRequest(port: metricsPort, method: "POST", path: "/metrics").status == 405)
            let head = try httpRequest(port: metricsPort, method: "HEAD", path: "/health")
            #expect(head.status == 200 && head.body.isEmpty)

            await server.stop()
            #expect(throws: (any Error).self) { try httpRequest(port: metricsPort, path: "/metrics") }
            tasks.cancelAll()
            await h.stopServices()
        }
        try await h.finish()
    }

    /// A member that announces a height it cannot serve: the auditor reports how far behind
    /// it is (status, health 503, metrics, a log line), times the request out, and is no
    /// longer catching up once that peer is gone.
    @Test(.timeLimit(.minutes(1))) func lagIsReportedWhileAPeerIsAhead() async throws {
        let h = OperationsHarness()
        let log = LineCollector()
        let (ap2p, aport) = try await h.service(h.auditorKey)
        let telemetry = h.telemetry("a0", role: "read-only", collector: log)
        let auditor = try h.runtime("a0", key: h.auditorKey, validator: false, p2p: ap2p, telemetry: telemetry)
        let aid = NodeID(publicKey: h.auditorKey.publicKey)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await auditor.run() }
            let (probe, _) = try await h.service(h.probeKey, peers: [PeerAddress(host: "127.0.0.1", port: aport, nodeID: aid)])
            #expect(await waitFor(seconds: 10) { probe.connectedPeers.contains(aid) })
            _ = probe.send(to: aid, channel: .blockSync, bytes: SyncMessage.status(height: 1_000).canonicalBytes)
            #expect(await waitFor(seconds: 10) { await auditor.syncStatus.catchingUp })
            let status = await auditor.syncStatus
            #expect(status.height == 0 && status.bestPeerHeight == 1_000 && status.blocksBehind == 1_000)
            #expect(status.bestPeer == NodeID(publicKey: h.probeKey.publicKey))
            let health = telemetry.health()
            #expect(health.status == .catchingUp && !health.isHealthy)
            #expect(String(decoding: telemetry.scrape(), as: UTF8.self).contains("quarry_sync_catching_up 1.0"))
            #expect(log.lines.contains { $0.contains("msg=\"behind peers, catching up\"") && $0.contains("sync.behind=1000") })
            // The request the auditor sent is never answered: it times out (2 s).
            #expect(await waitFor(seconds: 10) { await auditor.problems.contains("sync.timeout") })
            // Progress lines keep coming while behind.
            #expect(await waitFor(seconds: 5) { log.lines.contains { $0.contains("msg=\"catching up\"") } })
            await probe.shutdown()
            #expect(await waitFor(seconds: 10) { !(await auditor.syncStatus.catchingUp) })
            #expect(telemetry.health().status == .noPeers)
            #expect(await waitFor(seconds: 5) { log.lines.contains { $0.contains("msg=\"caught up\"") } })
            tasks.cancelAll()
            await h.stopServices()
        }
        try await h.finish()
    }

    /// Shutdown: stop accepting work, flush, close peers, in that order; afterwards nothing
    /// is committed or admitted and `run()` ends.
    @Test(.timeLimit(.minutes(1))) func shutdownStopsWorkFlushesThenClosesPeers() async throws {
        let h = OperationsHarness()
        let log = LineCollector()
        let (vp2p, vport) = try await h.service(h.validatorKey)
        let telemetry = h.telemetry("v0", role: "validator", collector: log)
        let validator = try h.runtime("v0", key: h.validatorKey, validator: true, p2p: vp2p, telemetry: telemetry)
        let vid = NodeID(publicKey: h.validatorKey.publicKey)
        let (probe, _) = try await h.service(h.probeKey, peers: [PeerAddress(host: "127.0.0.1", port: vport, nodeID: vid)])
        let ended = LineCollector()
        let runner = Task {
            try? await validator.run()
            ended.sink("run ended")
        }
        #expect(await waitFor(seconds: 20) { await validator.height >= 3 && probe.connectedPeers.contains(vid) })
        let flushes = LineCollector()
        let store = h.stores[0]
        await validator.shutdown(flushStore: {
            flushes.sink(store.isClosed ? "closed" : "open")
            try store.flush()
        })
        #expect(flushes.lines == ["open"], "the store is flushed once, while still open")
        #expect(await validator.acceptingWork == false)
        #expect(telemetry.health().status == .stopping)
        // The peers are disconnected, and run() returns by itself once the transport is closed.
        #expect(await waitFor(seconds: 5) { probe.connectedPeers.isEmpty })
        #expect(await waitFor(seconds: 5) { ended.lines == ["run ended"] })
        runner.cancel()
        await runner.value
        let stoppedAt = await validator.height
        try await Task.sleep(for: .milliseconds(300))
        #expect(await validator.height == stoppedAt, "no block after shutdown")
        let client = SigningKey(scheme: .sm2)
        let transaction = try SignedTransaction(body: TransactionBody(chainID: h.genesis.chainID, nonce: 0, signer: client.publicKeyBytes,
                                                                      payload: .grantCrystals(to: client.address, amount: 1)),
                                                key: client)
        await #expect(throws: NodeShuttingDown.self) { _ = try await validator.submit(transaction.canonicalBytes) }
        let steps = log.lines.filter { $0.contains("msg=\"shutdown:") }
        #expect(steps.count == 3)
        #expect(steps.count == 3 && steps[0].contains("stopped accepting work") && steps[1].contains("store flushed")
                && steps[2].contains("peers closed"))
        // Twice is harmless.
        await validator.shutdown(flushStore: { Issue.record("flushed twice") })
        try await h.finish()
    }
}
