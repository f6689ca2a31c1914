import CoreMetrics
import Logging
import Prometheus
import QuarryCore
import QuarryLedger
import QuarryNetwork
import QuarryRPC

/// Who a node is, for logs, metrics and health.
public struct NodeDescription: Sendable, Equatable {
    public var moniker: String
    public var role: String
    public var nodeID: String
    public var chainID: String
    public var version: String
    public init(moniker: String, role: String, nodeID: String, chainID: String, version: String = "0.1.0") {
        self.moniker = moniker; self.role = role; self.nodeID = nodeID; self.chainID = chainID; self.version = version
    }
}

/// What `GET /health` answers (docs/spec/metrics.md).
public struct NodeHealth: Sendable, Equatable {
    public enum Status: String, Sendable {
        /// The node has not started consensus and sync yet.
        case starting
        /// Running, with its peers, and no peer is two or more blocks ahead.
        case ok
        /// A peer announced a height two or more blocks ahead: block sync is fetching.
        case catchingUp = "catching_up"
        /// Other members exist but none is connected.
        case noPeers = "no_peers"
        /// Shutting down.
        case stopping
    }

    public var status: Status
    public var sync: SyncStatus
    public var peers: Int
    public var stateRoot: Hash256?
    public var node: NodeDescription

    /// HTTP 200 only when `ok`; 503 otherwise (the body says why).
    public var isHealthy: Bool { status == .ok }

    public var json: [UInt8] {
        let value: JSONValue = .object([
            ("status", .string(status.rawValue)),
            ("catchingUp", .bool(sync.catchingUp)),
            ("height", .integer(sync.height)),
            ("bestPeerHeight", .integer(sync.bestPeerHeight)),
            ("blocksBehind", .integer(sync.blocksBehind)),
            ("blocksSynced", .integer(sync.blocksSynced)),
            ("peers", .integer(Int64(peers))),
            ("peersReporting", .integer(Int64(sync.peersReporting))),
            ("stateRoot", stateRoot.map { .string($0.hex) } ?? .null),
            ("role", .string(node.role)),
            ("moniker", .string(node.moniker)),
            ("nodeId", .string(node.nodeID)),
            ("chainId", .string(node.chainID)),
        ])
        var out: [UInt8] = []
        value.write(to: &out)
        out.append(UInt8(ascii: "\n"))
        return out
    }
}

/// Logs, metrics and the health snapshot of one node, in one place, so the runtime only
/// reports events. Thread-safe: the runtime actor writes, the metrics listener's event loop
/// reads. Nothing here feeds back into consensus or the ledger.
public final class NodeTelemetry: @unchecked Sendable {
    public let loggers: NodeLoggers
    public let metrics: NodeMetrics
    /// Where `/metrics` is read from; nil when metrics are not exported.
    public let registry: PrometheusCollectorRegistry?
    public let node: NodeDescription
    /// While catching up, a progress line is logged this often.
    public let lagLogIntervalMilliseconds: UInt64

    private let lock = Lock()
    // Guarded by `lock`.
    private var p2p: P2PService?
    private var mempool: Mempool?
    private var started = false
    private var stopping = false
    private var sync = SyncStatus(height: 0)
    private var stateRoot: Hash256?
    private var lastP2P: P2PStatistics?
    private var lastRejectedInputs = 0
    private var consensusAt: (height: UInt64, round: UInt32) = (0, 0)
    private var lastLiveCommit: ContinuousClock.Instant?
    private var catchingUp = false
    private var lastLagLog: (at: UInt64, height: UInt64) = (0, 0)
    private var rejectedCounters: [String: CoreMetrics.Counter] = [:]

    public init(node: NodeDescription, loggers: NodeLoggers = .disabled, registry: PrometheusCollectorRegistry? = nil,
                lagLogIntervalMilliseconds: UInt64 = 5_000) {
        self.node = node
        self.loggers = loggers
        self.registry = registry
        self.lagLogIntervalMilliseconds = lagLogIntervalMilliseconds
        metrics = registry.map { NodeMetrics(factory: NodeMetrics.prometheus(registry: $0)) } ?? .disabled
        metrics.recordInfo(chainID: node.chainID, moniker: node.moniker, nodeID: node.nodeID, role: node.role,
                           version: node.version)
        metrics.shuttingDown.record(0)
    }

    /// Gives the sources sampled at every scrape (both are thread-safe).
    public func attach(p2p: P2PService, mempool: Mempool) {
        lock.withLock { self.p2p = p2p; self.mempool = mempool }
    }

    // MARK: Events from the runtime

    public func didStart(height: UInt64, stateRoot: Hash256) {
        lock.withLock {
            started = true
            sync.height = height
            self.stateRoot = stateRoot
        }
        metrics.blockHeight.record(Int(clamping: height))
    }

    public func willStop() {
        lock.withLock { stopping = true }
        metrics.shuttingDown.record(1)
    }

    public func record(_ timing: BlockTiming) {
        switch timing {
        case .execution(let phase, let d): metrics.blockExecution[phase]?.recordDuration(d)
        case .commit(let write, let since):
            metrics.blockStoreWrite.recordDuration(write)
            if let since { metrics.commitLatency.recordDuration(since) }
        }
    }

    /// A block was committed, by consensus (`bySync == false`) or by block sync.
    public func committed(_ block: Block, _ result: BlockResult, bySync: Bool) {
        let now = ContinuousClock.now
        let interval: Duration? = lock.withLock {
            sync.height = block.height
            stateRoot = result.stateRoot
            if bySync { lastLiveCommit = nil; return nil }
            defer { lastLiveCommit = now }
            return lastLiveCommit.map { now - $0 }
        }
        if let interval { metrics.blockInterval.recordDuration(interval) }
        metrics.blockHeight.record(Int(clamping: block.height))
        (bySync ? metrics.blocksCommittedBySync : metrics.blocksCommittedByConsensus).increment()
        let failed = result.transactions.filter { !$0.succeeded }.count
        metrics.transactionsCommitted.increment(by: block.transactions.count)
        if failed > 0 { metrics.transactionsFailed.increment(by: failed) }
        if !block.systemTransactions.isEmpty { metrics.systemTransactionsCommitted.increment(by: block.systemTransactions.count) }
        if bySync { metrics.syncBlocksApplied.increment() }
    }

    /// The consensus core's position and its count of refused inputs, after each step.
    public func consensus(height: UInt64, round: UInt32, rejectedInputs: Int) {
        let (roundChanges, newRejected) = lock.withLock { () -> (Int, Int) in
            var changes = 0
            if height == consensusAt.height && round > consensusAt.round {
                changes = Int(round - consensusAt.round)
            } else if height > consensusAt.height {
                changes = Int(round)
            }
            consensusAt = (height, round)
            let delta = max(0, rejectedInputs - lastRejectedInputs)
            lastRejectedInputs = rejectedInputs
            return (changes, delta)
        }
        metrics.consensusHeight.record(Int(clamping: height))
        metrics.consensusRound.record(Int(round))
        if roundChanges > 0 { metrics.consensusRoundChanges.increment(by: roundChanges) }
        if newRejected > 0 { metrics.consensusRejectedInputs.increment(by: newRejected) }
    }

    /// The sync picture changed or time passed; logs progress while catching up (at once
    /// when it starts, then every `lagLogIntervalMilliseconds`) and once when caught up.
    public func observe(_ status: SyncStatus, now: UInt64) {
        enum Line { case started, progress(rate: UInt64), caughtUp }
        let line: Line? = lock.withLock {
            sync = status
            if status.catchingUp {
                if !catchingUp {
                    catchingUp = true
                    lastLagLog = (now, status.height)
                    return .started
                }
                guard now >= lastLagLog.at + lagLogIntervalMilliseconds else { return nil }
                let elapsed = max(1, now - lastLagLog.at)
                let gained = status.height >= lastLagLog.height ? status.height - lastLagLog.height : 0
                lastLagLog = (now, status.height)
                return .progress(rate: gained * 1_000 / elapsed)
            }
            if catchingUp {
                catchingUp = false
                return .caughtUp
            }
            return nil
        }
        metrics.syncBestPeerHeight.record(Int(clamping: status.bestPeerHeight))
        metrics.syncBlocksBehind.record(Int(clamping: status.blocksBehind))
        metrics.syncCatchingUp.record(status.catchingUp ? 1 : 0)
        guard let line else { return }
        var fields: Logger.Metadata = [
            "sync.height": "\(status.height)", "sync.best_height": "\(status.bestPeerHeight)",
            "sync.behind": "\(status.blocksBehind)",
        ]
        if let peer = status.bestPeer { fields["sync.best_peer"] = "\(peer.hex.prefix(12))" }
        switch line {
        case .started:
            loggers.sync.info("behind peers, catching up", metadata: fields)
        case .progress(let rate):
            fields["sync.blocks_per_second"] = "\(rate)"
            loggers.sync.info("catching up", metadata: fields)
        case .caughtUp:
            loggers.sync.info("caught up", metadata: fields)
        }
    }

    public func syncRequestServed() { metrics.syncRequestsServed.increment() }
    public func syncRequestTimedOut() { metrics.syncRequestTimeouts.increment() }
    public func syncBlockRefused() { metrics.syncBlocksRefused.increment() }

    /// A peer's block-sync request was refused by the rate limit. Logged on the first
    /// refusal in a row and then at every power of two, so a flood cannot flood the log.
    public func syncRequestLimited(peer: NodeID, refusedInRow: UInt64) {
        metrics.syncRequestsLimited.increment()
        guard refusedInRow & (refusedInRow - 1) == 0 else { return }
        loggers.sync.warning("block-sync requests over the per-peer limit, answering with nothing",
                             metadata: ["peer.id": "\(peer.hex.prefix(12))", "sync.refused_in_row": "\(refusedInRow)"])
    }

    /// A transaction the mempool refused (from a client or a peer).
    public func mempoolRejected(code: String) {
        let counter = lock.withLock { () -> CoreMetrics.Counter in
            if let c = rejectedCounters[code] { return c }
            let c = metrics.mempoolRejected(code: code)
            rejectedCounters[code] = c
            return c
        }
        counter.increment()
    }

    // MARK: Reading

    /// Samples the transport and mempool into their gauges and counters.
    public func sample() {
        let (p2p, mempool) = lock.withLock { (self.p2p, self.mempool) }
        if let mempool {
            metrics.mempoolTransactions.record(mempool.count)
            metrics.mempoolBytes.record(mempool.totalBytes)
            metrics.mempoolSenders.record(mempool.senderCount)
        }
        guard let p2p else { return }
        let stats = p2p.statistics
        metrics.peersConnected.record(stats.connectedPeers)
        metrics.connectionsOpen.record(stats.openConnections)
        // The transport's counters are totals; the exported counters advance by the growth
        // since the last sample, computed and recorded under the lock so that two scrapes at
        // once never count the same growth twice.
        func delta(_ now: UInt64, _ before: UInt64?) -> Int { now > (before ?? 0) ? Int(clamping: now - (before ?? 0)) : 0 }
        let (received, sent, inDropped, sendDropped) = lock.withLock { () -> (Int, Int, Int, Int) in
            let last = lastP2P
            if let last, stats.payloadBytesReceived < last.payloadBytesReceived || stats.payloadBytesSent < last.payloadBytesSent {
                return (0, 0, 0, 0)  // an older snapshot than one already counted
            }
            lastP2P = stats
            return (delta(stats.payloadBytesReceived, last?.payloadBytesReceived), delta(stats.payloadBytesSent, last?.payloadBytesSent),
                    delta(stats.inboundDropped, last?.inboundDropped), delta(stats.sendsDropped, last?.sendsDropped))
        }
        if received > 0 { metrics.p2pBytesReceived.increment(by: received) }
        if sent > 0 { metrics.p2pBytesSent.increment(by: sent) }
        if inDropped > 0 { metrics.p2pInboundDropped.increment(by: inDropped) }
        if sendDropped > 0 { metrics.p2pSendsDropped.increment(by: sendDropped) }
    }

    /// `GET /metrics`: a fresh sample, then the registry in Prometheus text format.
    public func scrape() -> [UInt8] {
        sample()
        return registry?.emitToBuffer() ?? []
    }

    /// The current sync picture (as last reported by the runtime).
    public var syncStatus: SyncStatus { lock.withLock { sync } }

    /// `GET /health`.
    public func health() -> NodeHealth {
        let (p2p, started, stopping, sync, root) = lock.withLock { (self.p2p, self.started, self.stopping, self.sync, stateRoot) }
        let peers = p2p?.connectedPeers.count ?? 0
        let othersExist = p2p.map { service in service.membership.ids.contains { $0 != service.localNodeID } } ?? false
        let status: NodeHealth.Status =
            stopping ? .stopping
            : !started ? .starting
            : sync.catchingUp ? .catchingUp
            : (othersExist && peers == 0) ? .noPeers
            : .ok
        return NodeHealth(status: status, sync: sync, peers: peers, stateRoot: root, node: node)
    }
}
