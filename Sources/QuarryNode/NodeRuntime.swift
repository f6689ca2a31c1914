#if canImport(Glibc)
import Glibc
#endif
import Logging
import QuarryConsensus
import QuarryCore
import QuarryLedger
import QuarryNetwork

/// Wall-clock Unix milliseconds. Only the node runtime reads the clock; the consensus core
/// and the ledger receive time as data.
public func wallClockMilliseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) * 1_000 + UInt64(ts.tv_nsec) / 1_000_000
}

/// One node on a real network: the consensus driver, block sync and the P2P service,
/// serialised by this actor. Consensus messages go to every connected member; block sync
/// asks a peer that announced a higher height for the blocks in between, checks and
/// applies them, and moves consensus to the new height.
public actor NodeRuntime {
    public let p2p: P2PService
    /// Logs, metrics and the health snapshot (NodeTelemetry.swift).
    public let telemetry: NodeTelemetry
    private let driver: ConsensusDriver
    private let verifier: any SignatureVerifier
    private var requested: (peer: NodeID, from: UInt64, at: UInt64)?
    /// A sync request unanswered this long is abandoned and may go to another peer.
    private let syncRequestTimeoutMilliseconds: UInt64 = 2_000
    private var best: [NodeID: UInt64] = [:]
    /// Every connected peer's last announced height, for `syncStatus`.
    private var announced = PeerHeights()
    private var blocksSynced: UInt64 = 0
    /// Bounds how often each peer may ask this node for blocks.
    private var syncRequests: SyncRequestLimiter
    /// Closed once `shutdown` began: no new transactions, messages or consensus steps.
    private let gate = WorkGate()
    /// False once `shutdown` began.
    public nonisolated var acceptingWork: Bool { gate.isOpen }
    private var syncTrigger = SyncTrigger()
    /// The committed height is announced to every peer this often, not only after commits,
    /// so a peer that dropped this node after a failed sync request learns it again.
    private let statusIntervalMilliseconds: UInt64 = 2_000
    private var lastStatusAt: UInt64 = 0
    /// Codes of the last problems seen, newest last, bounded (for logs and tests).
    public private(set) var problems: [String] = []

    /// Transactions waiting for a block; fed by `submit` and by peers' gossip.
    public let mempool: Mempool
    /// What readers (JSON-RPC) see: committed views, sync state, commit waiters.
    public let committed: CommittedState

    public init(app: ChainApplication, config: ConsensusConfig, signer: (any ConsensusSigner)?,
                wal: FileWAL?, signedFile: SignedStateFile?, p2p: P2PService,
                mempoolConfig: MempoolConfig = MempoolConfig(),
                syncRequestPolicy: SyncRequestLimiter.Policy = .init(),
                telemetry: NodeTelemetry? = nil) throws {
        self.p2p = p2p
        let mempool = Mempool(genesis: app.ledger.genesis, config: mempoolConfig, nonces: app.ledger)
        self.mempool = mempool
        let committed = CommittedState(store: app.ledger.store, chain: app.chain, genesis: app.ledger.genesis,
                                       consensusKey: signer?.publicKey)
        self.committed = committed
        let telemetry = telemetry ?? NodeTelemetry(node: NodeDescription(
            moniker: "", role: signer == nil ? "read-only" : "validator", nodeID: p2p.localNodeID.hex, chainID: app.chainID))
        self.telemetry = telemetry
        telemetry.attach(p2p: p2p, mempool: mempool)
        app.timingObserver = { telemetry.record($0) }
        syncRequests = SyncRequestLimiter(policy: syncRequestPolicy)
        let verifier = SM2ConsensusVerifier()
        self.verifier = verifier
        let loggers = telemetry.loggers
        driver = try ConsensusDriver(
            app: app, config: config, signer: signer, verifier: verifier, wal: wal, signedFile: signedFile,
            send: { message in _ = p2p.broadcast(channel: .consensus, bytes: message.canonicalBytes) },
            transactions: { count, bytes in mempool.reap(maxTransactions: count, maxBytes: bytes) },
            onCommit: { block, result in
                do { try mempool.update(afterCommit: block.transactions) } catch {
                    loggers.mempool.error("re-check after a commit failed",
                                          metadata: ["block.height": "\(block.height)", "error": "\(error)"])
                }
                committed.didCommit(block: block, result: result)
                // Scripts and tests read `height`, `hash` and `state` from this line (docs/spec/logs.md).
                loggers.consensus.info("committed", metadata: [
                    "height": "\(block.height)", "hash": "\(block.hash.hex.prefix(16))", "txs": "\(block.transactions.count)",
                    "state": "\(result.stateRoot.hex.prefix(16))",
                ])
                telemetry.committed(block, result, bySync: false)
                _ = p2p.broadcast(channel: .blockSync, bytes: SyncMessage.status(height: block.height).canonicalBytes)
            },
            waitingTransactions: { mempool.count },
            logger: loggers.consensus)
    }

    public var height: UInt64 { driver.app.height }
    public var stateRoot: Hash256 { driver.app.ledger.stateRoot }
    /// An account's crystals in the committed state (0 when unknown or unreadable).
    public func crystals(of address: Address) -> UInt64 { (try? driver.app.ledger.account(address).crystals) ?? 0 }
    public func blockHash(at h: UInt64) throws -> Hash256? { try driver.app.chain.block(at: h)?.hash }

    /// How far behind its peers this node is: its height, the best height a connected peer
    /// announced, and whether block sync is catching up (docs/spec/sync.md, "Reporting").
    public var syncStatus: SyncStatus { announced.status(height: driver.app.height, blocksSynced: blocksSynced) }

    private func note(_ code: String) {
        problems.append(code)
        if problems.count > 64 { problems.removeFirst(problems.count - 64) }
    }

    /// Runs until cancelled: starts consensus, then handles inbound messages, peer events
    /// and timer ticks. Errors from storage end the run (the caller stops the node).
    public func run(tickMilliseconds: UInt64 = 10) async throws {
        try driver.start(now: wallClockMilliseconds())
        telemetry.didStart(height: driver.app.height, stateRoot: driver.app.ledger.stateRoot)
        reportConsensus()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in self.p2p.inbound { try await self.handle(message) }
            }
            group.addTask {
                for await event in self.p2p.events {
                    switch event {
                    case .connected(let peer): await self.announce(to: peer)
                    case .disconnected(let peer, _): await self.forget(peer)
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(Int(tickMilliseconds)))
                    try await self.tick()
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Admits a client's transaction and gossips it to the peers; returns its hash, or the
    /// mempool's reason for refusing it. Needs no actor hop: the mempool, the transport and
    /// the shutdown gate are thread-safe.
    public nonisolated func submit(_ raw: [UInt8]) throws -> Hash256 {
        guard gate.isOpen else { throw NodeShuttingDown() }
        let hash: Hash256
        do { hash = try mempool.add(raw) } catch {
            telemetry.mempoolRejected(code: error.code)
            throw error
        }
        _ = p2p.broadcast(channel: .transactions, bytes: raw)
        return hash
    }

    private func tick() throws {
        guard acceptingWork else { return }
        let now = wallClockMilliseconds()
        try driver.tick(now: now)
        if let r = requested, now >= r.at + syncRequestTimeoutMilliseconds {
            note("sync.timeout")
            telemetry.syncRequestTimedOut()
            requested = nil
            best[r.peer] = nil
        }
        if now >= lastStatusAt + statusIntervalMilliseconds {
            lastStatusAt = now
            _ = p2p.broadcast(channel: .blockSync, bytes: SyncMessage.status(height: driver.app.height).canonicalBytes)
        }
        requestIfBehind()
        publishSyncState()
        reportConsensus()
        telemetry.observe(syncStatus, now: now)
    }

    private func reportConsensus() {
        telemetry.consensus(height: driver.core.height, round: driver.core.round, rejectedInputs: driver.rejectedInputs)
    }

    private func forget(_ peer: NodeID) {
        announced.forget(peer)
        syncRequests.forget(peer)
        best[peer] = nil
        // Health and metrics follow at once, so they never disagree with `syncStatus`.
        telemetry.observe(syncStatus, now: wallClockMilliseconds())
        publishSyncState()
    }

    /// Stops the node in order (docs/operators.md, "Stopping a node"): (1) accept no more
    /// work: client transactions are refused, peer messages and timer ticks are ignored, so
    /// consensus signs nothing more; (2) make everything durable: the consensus WAL is
    /// synced and `flushStore` runs (RocksDB memtables to disk); (3) close every peer
    /// connection, which ends `run()`. The caller then closes the store. Safe to call twice.
    public func shutdown(flushStore: @Sendable () throws -> Void) async {
        guard gate.close() else { return }
        let log = telemetry.loggers.node
        telemetry.willStop()
        log.info("shutdown: stopped accepting work", metadata: ["block.height": "\(driver.app.height)"])
        do {
            try driver.syncWAL()
            try flushStore()
            log.info("shutdown: store flushed", metadata: ["block.height": "\(driver.app.height)"])
        } catch {
            log.error("shutdown: flushing failed; the next start recovers from the write-ahead logs",
                      metadata: ["error": "\(error)"])
        }
        await p2p.shutdown()
        log.info("shutdown: peers closed")
    }

    /// A peer just connected: it may have missed everything sent before, so it gets this
    /// node's height and its own consensus messages of the current height at once.
    private func announce(to peer: NodeID) {
        _ = p2p.send(to: peer, channel: .blockSync, bytes: SyncMessage.status(height: driver.app.height).canonicalBytes)
        for m in driver.gossipMessages(older: true) { _ = p2p.send(to: peer, channel: .consensus, bytes: m.canonicalBytes) }
    }

    func handle(_ message: InboundMessage) throws {
        guard acceptingWork else { return }
        defer { reportConsensus() }
        switch message.channel {
        case .consensus:
            try driver.receive(message.payload, now: wallClockMilliseconds())
        case .transactions:
            // Admit, and relay only what was new here: the mempool's duplicate check is the
            // gossip's duplicate suppression.
            do {
                try mempool.add(message.payload)
                _ = p2p.broadcast(channel: .transactions, bytes: message.payload, except: [message.peer])
            } catch {
                telemetry.mempoolRejected(code: error.code)
                if error.code != "mempool.duplicate" {
                    telemetry.loggers.mempool.debug("refused a gossiped transaction",
                                                    metadata: ["peer.id": "\(message.peer.hex.prefix(12))", "error.code": "\(error.code)"])
                }
            }
        case .blockSync:
            guard let sync = try? SyncMessage(canonicalBytes: message.payload) else {
                note("sync.decode")
                return
            }
            try handleSync(sync, from: message.peer)
        default:
            break
        }
    }

    private func handleSync(_ message: SyncMessage, from peer: NodeID) throws {
        let app = driver.app
        switch message {
        case .status(let h):
            best[peer] = h
            announced.record(peer, height: h)
            telemetry.observe(syncStatus, now: wallClockMilliseconds())
            requestIfBehind()
            publishSyncState()
        case .request(let from, let count):
            switch syncRequests.admit(peer, now: wallClockMilliseconds()) {
            case .allowed:
                telemetry.syncRequestServed()
                _ = p2p.send(to: peer, channel: .blockSync, bytes: try app.chain.syncReply(from: from, count: count).canonicalBytes)
            case .refused(let inRow):
                // Over the per-peer limit: answered with nothing, and nothing is read.
                note("sync.rate_limited")
                telemetry.syncRequestLimited(peer: peer, refusedInRow: inRow)
                _ = p2p.send(to: peer, channel: .blockSync, bytes: SyncMessage.blocks([]).canonicalBytes)
            }
        case .blocks(let list):
            guard let pending = requested, pending.peer == peer else { return }
            requested = nil
            if list.isEmpty {
                // The peer has nothing for us now (or refused): ask it again only after it
                // announces a height anew, so two nodes never loop on empty answers.
                note("sync.empty_reply")
                best[peer] = nil
            }
            let before = app.height
            for item in list where item.block.height == app.height + 1 {
                do {
                    let result = try app.applyCertified(item, verifier: verifier)
                    committed.didCommit(block: item.block, result: result)
                    blocksSynced += 1
                    telemetry.committed(item.block, result, bySync: true)
                    telemetry.loggers.sync.debug("applied", metadata: [
                        "height": "\(item.block.height)", "hash": "\(item.block.hash.hex.prefix(16))",
                        "txs": "\(item.block.transactions.count)", "state": "\(result.stateRoot.hex.prefix(16))",
                    ])
                } catch {
                    // Whatever a peer sends, a refused block changes nothing and is logged;
                    // the peer is not asked again until it announces a height anew.
                    let code = (error as? any QuarryError)?.code ?? "sync.failed"
                    note(code)
                    telemetry.syncBlockRefused()
                    telemetry.loggers.sync.warning("refused a synced block", metadata: [
                        "block.height": "\(item.block.height)", "peer.id": "\(peer.hex.prefix(12))",
                        "error.code": "\(code)", "error": "\(error)",
                    ])
                    best[peer] = nil
                    break
                }
            }
            if app.height > before {
                do { try mempool.recheckAll() } catch { note(error.code) }
                telemetry.loggers.sync.info("synced", metadata: [
                    "height": "\(app.height)", "hash": "\((try? app.chain.block(at: app.height))?.hash.hex.prefix(16) ?? "")",
                    "state": "\(app.ledger.stateRoot.hex.prefix(16))", "peer.id": "\(peer.hex.prefix(12))",
                    "sync.blocks": "\(app.height - before)",
                ])
                try driver.resynchronize(now: wallClockMilliseconds())
            }
            telemetry.observe(syncStatus, now: wallClockMilliseconds())
            requestIfBehind()
            publishSyncState()
        }
    }

    /// Tells readers how far the best peer is and whether a sync request is out.
    private func publishSyncState() {
        committed.setSync(highestPeerHeight: best.values.max() ?? 0, syncing: requested != nil)
    }

    /// Asks a peer that announced a higher height for the next blocks, one request at a
    /// time, when `SyncTrigger` says so.
    private func requestIfBehind() {
        guard requested == nil else { return }
        let mine = driver.app.height
        let now = wallClockMilliseconds()
        guard let peer = syncTrigger.peerToAsk(height: mine, announced: best, now: now) else { return }
        requested = (peer, mine + 1, now)
        _ = p2p.send(to: peer, channel: .blockSync,
                     bytes: SyncMessage.request(from: mine + 1, count: SyncMessage.requestCountMax).canonicalBytes)
    }
}

/// Open until the node begins to shut down; read from any thread (client submissions do not
/// hop onto the runtime actor).
final class WorkGate: Sendable {
    private let lock = Lock()
    nonisolated(unsafe) private var open = true

    var isOpen: Bool { lock.withLock { open } }

    /// Closes the gate; true if this call closed it, false if it was closed already.
    func close() -> Bool {
        lock.withLock {
            defer { open = false }
            return open
        }
    }
}
