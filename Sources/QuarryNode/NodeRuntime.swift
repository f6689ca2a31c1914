#if canImport(Glibc)
import Glibc
#endif
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
    private let log: @Sendable (String) -> Void
    private let driver: ConsensusDriver
    private let verifier: any SignatureVerifier
    private var requested: (peer: NodeID, from: UInt64, at: UInt64)?
    /// A sync request unanswered this long is abandoned and may go to another peer.
    private let syncRequestTimeoutMilliseconds: UInt64 = 2_000
    private var best: [NodeID: UInt64] = [:]
    private var syncTrigger = SyncTrigger()
    /// The committed height is announced to every peer this often, not only after commits,
    /// so a peer that dropped this node after a failed sync request learns it again.
    private let statusIntervalMilliseconds: UInt64 = 2_000
    private var lastStatusAt: UInt64 = 0
    /// Codes of the last problems seen, newest last, bounded (for logs and tests).
    public private(set) var problems: [String] = []

    /// Transactions waiting for a block; fed by `submit` and by peers' gossip.
    public let mempool: Mempool

    public init(app: ChainApplication, config: ConsensusConfig, signer: (any ConsensusSigner)?,
                wal: FileWAL?, signedFile: SignedStateFile?, p2p: P2PService,
                mempoolConfig: MempoolConfig = MempoolConfig(),
                log: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.p2p = p2p
        let mempool = Mempool(genesis: app.ledger.genesis, config: mempoolConfig, nonces: app.ledger)
        self.mempool = mempool
        self.log = log
        let verifier = SM2ConsensusVerifier()
        self.verifier = verifier
        driver = try ConsensusDriver(
            app: app, config: config, signer: signer, verifier: verifier, wal: wal, signedFile: signedFile,
            send: { message in _ = p2p.broadcast(channel: .consensus, bytes: message.canonicalBytes) },
            transactions: { count, bytes in mempool.reap(maxTransactions: count, maxBytes: bytes) },
            onCommit: { block, result in
                do { try mempool.update(afterCommit: block.transactions) } catch {
                    log("mempool re-check failed after block \(block.height): \(error)")
                }
                log("committed height=\(block.height) hash=\(block.hash.hex.prefix(16)) txs=\(block.transactions.count) state=\(result.stateRoot.hex.prefix(16))")
                _ = p2p.broadcast(channel: .blockSync, bytes: SyncMessage.status(height: block.height).canonicalBytes)
            })
    }

    public var height: UInt64 { driver.app.height }
    public var stateRoot: Hash256 { driver.app.ledger.stateRoot }
    /// An account's crystals in the committed state (0 when unknown or unreadable).
    public func crystals(of address: Address) -> UInt64 { (try? driver.app.ledger.account(address).crystals) ?? 0 }
    public func blockHash(at h: UInt64) throws -> Hash256? { try driver.app.chain.block(at: h)?.hash }

    private func note(_ code: String) {
        problems.append(code)
        if problems.count > 64 { problems.removeFirst(problems.count - 64) }
    }

    /// Runs until cancelled: starts consensus, then handles inbound messages, peer events
    /// and timer ticks. Errors from storage end the run (the caller stops the node).
    public func run(tickMilliseconds: UInt64 = 10) async throws {
        try driver.start(now: wallClockMilliseconds())
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in self.p2p.inbound { try await self.handle(message) }
            }
            group.addTask {
                for await event in self.p2p.events {
                    if case .connected(let peer) = event { await self.announce(to: peer) }
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
    /// mempool's reason for refusing it.
    public func submit(_ raw: [UInt8]) throws -> Hash256 {
        let hash = try mempool.add(raw)
        _ = p2p.broadcast(channel: .transactions, bytes: raw)
        return hash
    }

    private func tick() throws {
        let now = wallClockMilliseconds()
        try driver.tick(now: now)
        if let r = requested, now >= r.at + syncRequestTimeoutMilliseconds {
            note("sync.timeout")
            requested = nil
            best[r.peer] = nil
        }
        if now >= lastStatusAt + statusIntervalMilliseconds {
            lastStatusAt = now
            _ = p2p.broadcast(channel: .blockSync, bytes: SyncMessage.status(height: driver.app.height).canonicalBytes)
        }
        requestIfBehind()
    }

    /// A peer just connected: it may have missed everything sent before, so it gets this
    /// node's height and its own consensus messages of the current height at once.
    private func announce(to peer: NodeID) {
        _ = p2p.send(to: peer, channel: .blockSync, bytes: SyncMessage.status(height: driver.app.height).canonicalBytes)
        for m in driver.gossipMessages(older: true) { _ = p2p.send(to: peer, channel: .consensus, bytes: m.canonicalBytes) }
    }

    func handle(_ message: InboundMessage) throws {
        switch message.channel {
        case .consensus:
            try driver.receive(message.payload, now: wallClockMilliseconds())
        case .transactions:
            // Admit, and relay only what was new here: the mempool's duplicate check is the
            // gossip's duplicate suppression.
            if (try? mempool.add(message.payload)) != nil {
                _ = p2p.broadcast(channel: .transactions, bytes: message.payload, except: [message.peer])
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
            requestIfBehind()
        case .request(let from, let count):
            _ = p2p.send(to: peer, channel: .blockSync, bytes: try app.chain.syncReply(from: from, count: count).canonicalBytes)
        case .blocks(let list):
            guard let pending = requested, pending.peer == peer else { return }
            requested = nil
            let before = app.height
            for item in list where item.block.height == app.height + 1 {
                do {
                    try app.applyCertified(item, verifier: verifier)
                } catch {
                    // Whatever a peer sends, a refused block changes nothing and is logged;
                    // the peer is not asked again until it announces a height anew.
                    let code = (error as? any QuarryError)?.code ?? "sync.failed"
                    note(code)
                    log("refused block \(item.block.height) from peer \(peer.hex.prefix(12)): \(error)")
                    best[peer] = nil
                    break
                }
            }
            if app.height > before {
                do { try mempool.recheckAll() } catch { note(error.code) }
                log("synced to height=\(app.height) from peer \(peer.hex.prefix(12))")
                try driver.resynchronize(now: wallClockMilliseconds())
            }
            requestIfBehind()
        }
    }

    /// Asks a peer that announced a higher height for the next blocks, one request at a
    /// time, when `SyncTrigger` says so.
    private func requestIfBehind() {
        guard requested == nil else { return }
        let mine = driver.app.height
        let now = wallClockMilliseconds()
        guard let peer = syncTrigger.peerToAsk(height: mine, announced: best, now: now) else { return }
        requested = (peer, mine + 1, now)
        _ = p2p.send(to: peer, channel: .blockSync, bytes: SyncMessage.request(from: mine + 1, count: 16).canonicalBytes)
    }
}
