import Logging
import Prometheus
import Testing
import QuarryCore
import QuarryCrypto
import QuarryNetwork
@testable import QuarryNode

/// Collects log lines in memory.
final class LineCollector: @unchecked Sendable {
    private let lock = Lock()
    private var stored: [String] = []
    var sink: LogLineSink { { line in self.lock.withLock { self.stored.append(line) } } }
    var lines: [String] { lock.withLock { stored } }
}

func nodeID(_ byte: UInt8) -> NodeID { try! NodeID(hex: Hex.encode([UInt8](repeating: byte, count: 20))) }

@Suite struct LogfmtTests {
    @Test func formatsFixedFieldsThenScriptFieldsThenSortedKeys() {
        let line = LogfmtLogHandler.format(
            timeMilliseconds: 1_767_225_600_123, level: .info, subsystem: "consensus", message: "committed",
            fields: ["state": "ab12", "peer.id": "ff", "height": "12", "block.round": "0", "hash": "cd34", "txs": "3"])
        #expect(line == "time=2026-01-01T00:00:00.123Z level=info subsystem=consensus msg=committed height=12 hash=cd34 txs=3 state=ab12 block.round=0 peer.id=ff\n")
        // The strings scripts grep for survive.
        #expect(line.contains("msg=committed height=12"))
    }

    @Test func quotesAndEscapesWhatIsNotBare() {
        #expect(LogfmtLogHandler.value("plain-value_1.2") == "plain-value_1.2")
        #expect(LogfmtLogHandler.value("") == "\"\"")
        #expect(LogfmtLogHandler.value("two words") == "\"two words\"")
        #expect(LogfmtLogHandler.value("a=b") == "\"a=b\"")
        #expect(LogfmtLogHandler.value("say \"hi\"\\") == "\"say \\\"hi\\\"\\\\\"")
        #expect(LogfmtLogHandler.value("line\nbreak\ttab\r") == "\"line\\nbreak\\ttab\\r\"")
        #expect(LogfmtLogHandler.value("bell\u{07}") == "\"bell\\u{7}\"")
        #expect(LogfmtLogHandler.value("石") == "\"石\"")
        #expect(LogfmtLogHandler.key("bad key=") == "bad_key_")
        // A record is always one line, whatever the message holds.
        let line = LogfmtLogHandler.format(timeMilliseconds: 0, level: .warning, subsystem: "p2p", message: "a\nb", fields: ["k": "x\ny"])
        #expect(line.filter { $0 == "\n" }.count == 1)
        #expect(line.hasPrefix("time=1970-01-01T00:00:00.000Z level=warning subsystem=p2p msg=\"a\\nb\" k=\"x\\ny\""))
    }

    @Test func everySubsystemHonoursTheLevel() {
        let collected = LineCollector()
        let loggers = NodeLoggers(level: .warning, sink: collected.sink, clock: { 0 })
        for logger in [loggers.node, loggers.consensus, loggers.sync, loggers.mempool, loggers.p2p, loggers.metrics] {
            logger.info("dropped")
            logger.debug("dropped")
            logger.warning("kept", metadata: ["block.height": "7"])
        }
        loggers.p2pLogHandler(.info, "dropped", [:])
        loggers.p2pLogHandler(.warning, "peer refused", ["peer.id": "ab"])
        let lines = collected.lines
        #expect(lines.count == 7)
        #expect(!lines.contains { $0.contains("dropped") })
        let subsystems = lines.compactMap { $0.split(separator: " ").first { $0.hasPrefix("subsystem=") } }.map { String($0.dropFirst(10)) }
        #expect(subsystems == ["node", "consensus", "sync", "mempool", "p2p", "metrics", "p2p"])
        #expect(lines.last == "time=1970-01-01T00:00:00.000Z level=warning subsystem=p2p msg=\"peer refused\" peer.id=ab\n")

        let verbose = LineCollector()
        let debug = NodeLoggers(level: .trace, sink: verbose.sink, clock: { 0 })
        debug.sync.debug("shown")
        debug.p2pLogHandler(.trace, "shown too", [:])
        #expect(verbose.lines.count == 2)
        #expect(verbose.lines[1].contains("level=trace"))

        // Every config.toml level is known.
        for name in ["trace", "debug", "info", "notice", "warning", "error", "critical"] {
            #expect(NodeLoggers.level(named: name) != nil)
        }
        #expect(NodeLoggers.level(named: "loud") == nil)
    }
}

@Suite struct SyncRequestLimiterTests {
    @Test func burstThenRefusedThenRefilled() {
        var limiter = SyncRequestLimiter(policy: .init(burst: 3, perSecond: 2))
        let a = nodeID(1), b = nodeID(2)
        for _ in 0..<3 { #expect(limiter.admit(a, now: 1_000) == .allowed) }
        #expect(limiter.admit(a, now: 1_000) == .refused(refusedInRow: 1))
        #expect(limiter.admit(a, now: 1_100) == .refused(refusedInRow: 2))
        // Another peer has its own bucket.
        #expect(limiter.admit(b, now: 1_100) == .allowed)
        // 2 per second: one request back after 500 ms, counted from the last update.
        #expect(limiter.admit(a, now: 1_599) == .allowed)
        #expect(limiter.admit(a, now: 1_599) == .refused(refusedInRow: 1))
        #expect(limiter.refusedTotal == 3)
        // A long pause refills up to the burst, never more.
        for _ in 0..<3 { #expect(limiter.admit(a, now: 1_000_000) == .allowed) }
        #expect(limiter.admit(a, now: 1_000_000) == .refused(refusedInRow: 1))
        // A clock that goes back refills nothing, and does not crash.
        #expect(limiter.admit(a, now: 5) == .refused(refusedInRow: 2))
        // Far future: no overflow.
        #expect(limiter.admit(a, now: .max) == .allowed)
        #expect(limiter.trackedPeers == 2)
        limiter.forget(a)
        #expect(limiter.trackedPeers == 1)
    }

    @Test func sustainedRateIsBounded() {
        var limiter = SyncRequestLimiter(policy: .init(burst: 4, perSecond: 10))
        let peer = nodeID(9)
        var allowed = 0
        // A peer asking every millisecond for 10 s gets the burst plus 10 a second.
        for t in stride(from: UInt64(0), to: 10_000, by: 1) where limiter.admit(peer, now: t) == .allowed { allowed += 1 }
        #expect(allowed >= 100 && allowed <= 104, "allowed \(allowed)")
    }
}

@Suite struct SyncStatusTests {
    @Test func bestPeerAndCatchingUp() {
        var peers = PeerHeights()
        #expect(peers.best == nil)
        #expect(peers.status(height: 5, blocksSynced: 0) == SyncStatus(height: 5))
        peers.record(nodeID(3), height: 6)
        var s = peers.status(height: 5, blocksSynced: 0)
        #expect(s.blocksBehind == 1 && !s.catchingUp, "one block behind is live consensus, not catching up")
        peers.record(nodeID(2), height: 9)
        peers.record(nodeID(1), height: 9)
        s = peers.status(height: 5, blocksSynced: 4)
        #expect(s.bestPeerHeight == 9 && s.bestPeer == nodeID(1) && s.peersReporting == 3)
        #expect(s.blocksBehind == 4 && s.catchingUp && s.blocksSynced == 4)
        // Ahead of every peer: nothing behind.
        #expect(peers.status(height: 20, blocksSynced: 0).blocksBehind == 0)
        peers.forget(nodeID(1))
        peers.forget(nodeID(2))
        #expect(peers.best?.peer == nodeID(3))
        #expect(!peers.status(height: 5, blocksSynced: 0).catchingUp)
    }
}

@Suite struct TelemetryTests {
    func telemetry(_ collected: LineCollector, registry: PrometheusCollectorRegistry? = PrometheusCollectorRegistry()) -> NodeTelemetry {
        NodeTelemetry(node: NodeDescription(moniker: "m \"1\"", role: "read-only", nodeID: "ab", chainID: "c"),
                      loggers: NodeLoggers(level: .info, sink: collected.sink, clock: { 0 }), registry: registry,
                      lagLogIntervalMilliseconds: 1_000)
    }

    @Test func lagIsLoggedWhenItStartsPeriodicallyAndWhenCaughtUp() {
        let collected = LineCollector()
        let t = telemetry(collected)
        var s = SyncStatus(height: 0, bestPeerHeight: 100, bestPeer: nodeID(4), peersReporting: 1)
        t.observe(s, now: 10_000)
        s.height = 10
        t.observe(s, now: 10_500)   // within the interval: no line
        s.height = 40
        t.observe(s, now: 11_000)   // 40 blocks in 1 s
        s.height = 99
        t.observe(s, now: 11_200)   // one behind: caught up
        t.observe(s, now: 20_000)   // nothing new
        let lines = collected.lines
        #expect(lines.count == 3, "\(lines)")
        #expect(lines[0].contains("msg=\"behind peers, catching up\"") && lines[0].contains("sync.behind=100")
                && lines[0].contains("sync.best_height=100") && lines[0].contains("sync.height=0")
                && lines[0].contains("sync.best_peer=040404040404"))
        #expect(lines[1].contains("msg=\"catching up\"") && lines[1].contains("sync.blocks_per_second=40") && lines[1].contains("sync.behind=60"))
        #expect(lines[2].contains("msg=\"caught up\"") && lines[2].contains("sync.height=99"))
        let text = String(decoding: t.scrape(), as: UTF8.self)
        #expect(text.contains("quarry_sync_blocks_behind 1.0"))
        #expect(text.contains("quarry_sync_best_peer_height 100.0"))
        #expect(text.contains("quarry_sync_catching_up 0.0"))
    }

    @Test func healthFollowsTheNodeState() throws {
        let t = telemetry(LineCollector())
        #expect(t.health().status == .starting)
        #expect(!t.health().isHealthy)
        t.didStart(height: 3, stateRoot: .zero)
        #expect(t.health().status == .ok)
        t.observe(SyncStatus(height: 3, bestPeerHeight: 10, peersReporting: 1), now: 1)
        let behind = t.health()
        #expect(behind.status == .catchingUp && !behind.isHealthy)
        let json = String(decoding: behind.json, as: UTF8.self)
        #expect(json.hasPrefix("{\"status\":\"catching_up\",\"catchingUp\":true,\"height\":3,\"bestPeerHeight\":10,\"blocksBehind\":7,"))
        #expect(json.contains("\"moniker\":\"m \\\"1\\\"\""))
        #expect(json.contains("\"stateRoot\":\"" + Hash256.zero.hex + "\""))
        t.willStop()
        #expect(t.health().status == .stopping)
        #expect(String(decoding: t.scrape(), as: UTF8.self).contains("quarry_node_shutting_down 1.0"))
    }

    @Test func metricsCountWhatHappens() {
        let t = telemetry(LineCollector())
        t.consensus(height: 4, round: 0, rejectedInputs: 0)
        t.consensus(height: 4, round: 2, rejectedInputs: 3)
        t.consensus(height: 5, round: 1, rejectedInputs: 3)
        t.record(.execution(.validate, .milliseconds(3)))
        t.record(.execution(.sync, .milliseconds(40)))
        t.record(.commit(write: .milliseconds(1), sinceFirstExecution: .milliseconds(120)))
        t.mempoolRejected(code: "mempool.bad_nonce")
        t.mempoolRejected(code: "mempool.bad_nonce")
        t.syncRequestServed()
        t.syncRequestLimited(peer: nodeID(7), refusedInRow: 1)
        let text = String(decoding: t.scrape(), as: UTF8.self)
        for expected in [
            "quarry_consensus_height 5.0", "quarry_consensus_round 1.0", "quarry_consensus_round_changes_total 3",
            "quarry_consensus_rejected_inputs_total 3",
            "quarry_block_execution_seconds_count{phase=\"validate\"} 1",
            "quarry_block_execution_seconds_bucket{phase=\"validate\",le=\"0.005\"} 1",
            "quarry_block_execution_seconds_bucket{phase=\"sync\",le=\"0.025\"} 0",
            "quarry_block_commit_latency_seconds_count 1",
            "quarry_block_commit_latency_seconds_bucket{le=\"0.1\"} 0",
            "quarry_block_commit_latency_seconds_bucket{le=\"0.25\"} 1",
            "quarry_mempool_rejected_total{code=\"mempool.bad_nonce\"} 2",
            "quarry_sync_requests_served_total 1", "quarry_sync_requests_limited_total 1",
            "quarry_node_info{chain_id=\"c\",moniker=\"m \\\"1\\\"\",node_id=\"ab\",role=\"read-only\",version=\"0.1.0\"} 1.0",
        ] {
            #expect(text.contains(expected), "missing \(expected)")
        }
        // Without a registry nothing is exported, and nothing breaks.
        let silent = telemetry(LineCollector(), registry: nil)
        silent.consensus(height: 1, round: 0, rejectedInputs: 0)
        #expect(silent.scrape().isEmpty)
    }

    @Test func rateLimitWarningsDoNotFloodTheLog() {
        let collected = LineCollector()
        let t = telemetry(collected)
        for n in UInt64(1)...100 { t.syncRequestLimited(peer: nodeID(7), refusedInRow: n) }
        // 1, 2, 4, ..., 64
        #expect(collected.lines.count == 7)
        #expect(collected.lines[0].contains("level=warning") && collected.lines[0].contains("peer.id=070707070707"))
    }
}
