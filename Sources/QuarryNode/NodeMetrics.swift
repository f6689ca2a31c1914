import CoreMetrics
import Prometheus

/// Which execution of a block a timing belongs to.
public enum BlockExecutionPhase: String, Sendable, CaseIterable {
    /// This node built the block as proposer.
    case propose
    /// This node re-executed a proposal to vote on it.
    case validate
    /// A decided block this node had not executed yet.
    case commit
    /// A block applied by block sync.
    case sync
}

/// What `ChainApplication.timingObserver` receives.
public enum BlockTiming: Sendable, Equatable {
    /// One execution of a block by the ledger.
    case execution(BlockExecutionPhase, Duration)
    /// A committed block: the synced store write, and the time since this node first
    /// executed that block (nil for a block applied by sync, which it had not seen proposed).
    case commit(write: Duration, sinceFirstExecution: Duration?)
}

/// The node's metrics (docs/spec/metrics.md), made through swift-metrics from the factory
/// given; `NodeMetrics.prometheus(registry:)` gives the factory the node exports from.
/// Nothing here is read back by consensus or the ledger.
public struct NodeMetrics: Sendable {
    // Chain and consensus.
    public let blockHeight: CoreMetrics.Gauge
    public let consensusHeight: CoreMetrics.Gauge
    public let consensusRound: CoreMetrics.Gauge
    public let consensusRoundChanges: CoreMetrics.Counter
    public let consensusRejectedInputs: CoreMetrics.Counter
    public let blocksCommittedByConsensus: CoreMetrics.Counter
    public let blocksCommittedBySync: CoreMetrics.Counter
    public let transactionsCommitted: CoreMetrics.Counter
    public let transactionsFailed: CoreMetrics.Counter
    public let systemTransactionsCommitted: CoreMetrics.Counter
    public let blockExecution: [BlockExecutionPhase: Timer]
    public let blockStoreWrite: Timer
    public let commitLatency: Timer
    public let blockInterval: Timer
    // P2P.
    public let peersConnected: CoreMetrics.Gauge
    public let connectionsOpen: CoreMetrics.Gauge
    public let p2pBytesReceived: CoreMetrics.Counter
    public let p2pBytesSent: CoreMetrics.Counter
    public let p2pInboundDropped: CoreMetrics.Counter
    public let p2pSendsDropped: CoreMetrics.Counter
    // Mempool.
    public let mempoolTransactions: CoreMetrics.Gauge
    public let mempoolBytes: CoreMetrics.Gauge
    public let mempoolSenders: CoreMetrics.Gauge
    // Sync.
    public let syncBestPeerHeight: CoreMetrics.Gauge
    public let syncBlocksBehind: CoreMetrics.Gauge
    public let syncCatchingUp: CoreMetrics.Gauge
    public let syncBlocksApplied: CoreMetrics.Counter
    public let syncBlocksRefused: CoreMetrics.Counter
    public let syncRequestsServed: CoreMetrics.Counter
    public let syncRequestsLimited: CoreMetrics.Counter
    public let syncRequestTimeouts: CoreMetrics.Counter
    public let shuttingDown: CoreMetrics.Gauge
    private let factory: any MetricsFactory

    public init(factory: any MetricsFactory) {
        self.factory = factory
        func gauge(_ name: String) -> CoreMetrics.Gauge { CoreMetrics.Gauge(label: name, factory: factory) }
        func counter(_ name: String, _ dimensions: [(String, String)] = []) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: name, dimensions: dimensions, factory: factory)
        }
        func timer(_ name: String, _ dimensions: [(String, String)] = []) -> Timer {
            Timer(label: name, dimensions: dimensions, factory: factory)
        }
        blockHeight = gauge("quarry_block_height")
        consensusHeight = gauge("quarry_consensus_height")
        consensusRound = gauge("quarry_consensus_round")
        consensusRoundChanges = counter("quarry_consensus_round_changes_total")
        consensusRejectedInputs = counter("quarry_consensus_rejected_inputs_total")
        blocksCommittedByConsensus = counter("quarry_blocks_committed_total", [("source", "consensus")])
        blocksCommittedBySync = counter("quarry_blocks_committed_total", [("source", "sync")])
        transactionsCommitted = counter("quarry_transactions_committed_total")
        transactionsFailed = counter("quarry_transactions_failed_total")
        systemTransactionsCommitted = counter("quarry_system_transactions_committed_total")
        var execution: [BlockExecutionPhase: Timer] = [:]
        for phase in BlockExecutionPhase.allCases {
            execution[phase] = timer("quarry_block_execution_seconds", [("phase", phase.rawValue)])
        }
        blockExecution = execution
        blockStoreWrite = timer("quarry_block_store_write_seconds")
        commitLatency = timer("quarry_block_commit_latency_seconds")
        blockInterval = timer("quarry_block_interval_seconds")
        peersConnected = gauge("quarry_p2p_peers_connected")
        connectionsOpen = gauge("quarry_p2p_connections_open")
        p2pBytesReceived = counter("quarry_p2p_received_bytes_total")
        p2pBytesSent = counter("quarry_p2p_sent_bytes_total")
        p2pInboundDropped = counter("quarry_p2p_inbound_dropped_total")
        p2pSendsDropped = counter("quarry_p2p_sends_dropped_total")
        mempoolTransactions = gauge("quarry_mempool_transactions")
        mempoolBytes = gauge("quarry_mempool_bytes")
        mempoolSenders = gauge("quarry_mempool_senders")
        syncBestPeerHeight = gauge("quarry_sync_best_peer_height")
        syncBlocksBehind = gauge("quarry_sync_blocks_behind")
        syncCatchingUp = gauge("quarry_sync_catching_up")
        syncBlocksApplied = counter("quarry_sync_blocks_applied_total")
        syncBlocksRefused = counter("quarry_sync_blocks_refused_total")
        syncRequestsServed = counter("quarry_sync_requests_served_total")
        syncRequestsLimited = counter("quarry_sync_requests_limited_total")
        syncRequestTimeouts = counter("quarry_sync_request_timeouts_total")
        shuttingDown = gauge("quarry_node_shutting_down")
    }

    /// Metrics that go nowhere (for nodes and tests that export none).
    public static var disabled: NodeMetrics { NodeMetrics(factory: NOOPMetricsHandler.instance) }

    /// A counter of refused transactions by mempool error code (`quarry_mempool_rejected_total{code}`).
    /// Codes are a fixed set (docs/spec/mempool.md), so the series stay bounded.
    public func mempoolRejected(code: String) -> CoreMetrics.Counter {
        CoreMetrics.Counter(label: "quarry_mempool_rejected_total", dimensions: [("code", code)], factory: factory)
    }

    /// `quarry_node_info{chain_id, moniker, node_id, role, version} 1`.
    public func recordInfo(chainID: String, moniker: String, nodeID: String, role: String, version: String) {
        CoreMetrics.Gauge(label: "quarry_node_info",
              dimensions: [("chain_id", chainID), ("moniker", moniker), ("node_id", nodeID), ("role", role),
                           ("version", version)],
              factory: factory).record(1)
    }

    /// The factory a node exports from: Prometheus histograms with buckets fit for block
    /// work (1 ms to 10 s) and for block intervals (50 ms to 60 s).
    public static func prometheus(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        let work: [Duration] = [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                .seconds(1), .milliseconds(2_500), .seconds(5), .seconds(10)]
        let interval: [Duration] = [.milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                    .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60)]
        factory.defaultDurationHistogramBuckets = work
        factory.durationHistogramBuckets = [
            "quarry_block_commit_latency_seconds": interval,
            "quarry_block_interval_seconds": interval,
        ]
        return factory
    }
}

extension Timer {
    func recordDuration(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
