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
    /// Codes of the last problems seen, newest last, bounded (for logs and tests).
    public private(set) var problems: [String] = []

    /// Transactions waiting for a block; fed by `submit` and by peers' gossip.
    public let mempool: Mempool
    /// What readers (JSON-RPC) see: committed views, sync state, commit waiters.
    public let committed: CommittedState

    public init(app: ChainApplication, config: ConsensusConfig, signer: (any ConsensusSigner)?,
                wal: FileWAL?, signedFile: SignedStateFile?, p2p: P2PService,
                mempoolConfig: MempoolConfig = MempoolConfig(),
                log: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.p2p = p2p
        let mempool = Mempool(genesis: app.ledger.genesis, config: mempoolConfig, nonces: app.ledger)
        self.mempool = mempool
        let committed = CommittedState(store: app.ledger.store, chain: app.chain, genesis: app.ledger.genesis,
                                       consensusKey: signer?.publicKey)
        self.committed = committed
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
                committed.didCommit(block: block, result: result)
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
    /// mempool's reason for refusing it. Needs no actor hop: the mempool and the transport
    /// are thread-safe.
    public nonisolated func submit(_ raw: [UInt8]) throws -> Hash256 {
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
            requestIfBehind()
            publishSyncState()
        }
    }

    private func announce(to peer: NodeID) {
        _ = p2p.send(to: peer, channel: .blockSync, bytes: SyncMessage.status(height: driver.app.height).canonicalBytes)
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
            publishSyncState()
        case .request(let from, let count):
            _ = p2p.send(to: peer, channel: .blockSync, bytes: try app.chain.syncReply(from: from, count: count).canonicalBytes)
        case .blocks(let list):
            guard let pending = requested, pending.peer == peer else { return }
            requested = nil
            let before = app.height
            for item in list where item.block.height == app.height + 1 {
                do {
                    let result = try app.applyCertified(item, verifier: verifier)
                    committed.didCommit(block: item.block, result: result)
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
            publishSyncState()
        }
    }

    /// Tells readers how far the best peer is and whether a sync request is out.
    private func publishSyncState() {
        committed.setSync(highestPeerHeight: best.values.max() ?? 0, syncing: requested != nil)
    }

    /// Asks the peer with the highest announced height for the next blocks, one request at
    /// a time. Consensus itself decides the block at height + 1, so sync starts only when a
    /// peer is at least two blocks ahead.
    private func requestIfBehind() {
        guard requested == nil else { return }
        let mine = driver.app.height
        guard let (peer, h) = best.max(by: { ($0.value, $0.key.hex) < ($1.value, $1.key.hex) }), h > mine + 1 else { return }
        requested = (peer, mine + 1, wallClockMilliseconds())
        _ = p2p.send(to: peer, channel: .blockSync, bytes: SyncMessage.request(from: mine + 1, count: 16).canonicalBytes)
    }
}
