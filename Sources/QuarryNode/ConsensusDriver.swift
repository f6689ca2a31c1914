import Logging
import QuarryConsensus
import QuarryCore
import QuarryLedger

/// Drives one `ConsensusCore` for a node: logs every input in the WAL before handing it to
/// the core, syncs the WAL and saves the double-sign guard before any signature leaves,
/// answers the core's requests through `ChainApplication`, and commits decided blocks.
/// Time comes in as Unix milliseconds from the caller. Owned by one thread or actor.
public final class ConsensusDriver {
    public let app: ChainApplication
    public private(set) var core: ConsensusCore
    private let verifier: any SignatureVerifier
    private let wal: FileWAL?
    private let signedFile: SignedStateFile?
    private let send: (ConsensusMessage) -> Void
    private let transactions: (_ maxCount: Int, _ maxBytes: Int) -> [[UInt8]]
    private let onCommit: (Block, BlockResult) -> Void
    private var validatorsByHeight: [UInt64: QuarryConsensus.ValidatorSet] = [:]
    private var lastTick: UInt64 = 0
    /// After a commit the next height starts only `commitDelayMilliseconds` later (the
    /// genesis `timeoutCommitMs`), which paces empty blocks and lets late precommits arrive;
    /// except under load: when the committed block carried transactions and more are
    /// waiting (`waitingTransactions`), the next height starts after a twentieth of it, or
    /// at once when a full block is waiting (docs/adr/0097-commit-delay-paces-idle-chains.md).
    private let commitDelayMilliseconds: UInt64
    private let waitingTransactions: () -> Int
    private var pendingStartAt: UInt64?
    /// This node's own messages at its height are sent again this often (0: never), for
    /// peers that missed them: a message sent while a connection was not up yet, or was
    /// being replaced, is lost, and without the repeat a network whose nodes all missed
    /// each other's round-0 votes would wait forever (docs/adr/0096-consensus-regossip.md).
    public let gossipIntervalMilliseconds: UInt64
    private var lastGossipAt: UInt64 = 0
    private var gossipCount: UInt64 = 0
    /// Inputs the core refused (bad signatures, wrong proposers, undecodable bytes...).
    public private(set) var rejectedInputs = 0
    /// The last reason a proposed block was refused, for logs and tests.
    public private(set) var lastInvalidBlock: BlockValidationError?
    /// Round changes (info), refused proposals (warning), new heights (debug).
    private let logger: Logger

    public init(app: ChainApplication, config: ConsensusConfig, signer: (any ConsensusSigner)?,
                verifier: any SignatureVerifier, wal: FileWAL?, signedFile: SignedStateFile?,
                send: @escaping (ConsensusMessage) -> Void,
                transactions: @escaping (_ maxCount: Int, _ maxBytes: Int) -> [[UInt8]] = { _, _ in [] },
                onCommit: @escaping (Block, BlockResult) -> Void = { _, _ in },
                waitingTransactions: @escaping () -> Int = { 0 },
                logger: Logger = Logger(label: "quarry.consensus") { _ in SwiftLogNoOpLogHandler() },
                gossipIntervalMilliseconds: UInt64 = 1_000) throws {
        self.app = app
        self.logger = logger
        self.gossipIntervalMilliseconds = gossipIntervalMilliseconds
        self.verifier = verifier
        self.wal = wal
        self.signedFile = signedFile
        self.send = send
        self.transactions = transactions
        self.onCommit = onCommit
        self.waitingTransactions = waitingTransactions
        self.commitDelayMilliseconds = app.ledger.genesis.consensus.timeoutCommitMilliseconds
        let signed = try signedFile?.load()
        self.core = ConsensusCore(config: config, signer: signer, verifier: verifier, signed: signed)
    }

    /// How long after a commit the next height starts (ADR 0097). Asked after `onCommit`,
    /// which drops the committed transactions from the mempool. An empty block always waits
    /// the full delay, so transactions that cannot go in yet (a nonce gap) never make the
    /// chain spin through empty heights; under light load the short pause lets a block
    /// gather transactions instead of paying a block's fixed cost for a handful.
    func nextHeightDelay(committedTransactions: Int) -> UInt64 {
        guard commitDelayMilliseconds > 0, committedTransactions > 0 else { return commitDelayMilliseconds }
        let waiting = waitingTransactions()
        if waiting == 0 { return commitDelayMilliseconds }
        if waiting >= Int(clamping: app.ledger.genesis.consensus.blockTransactionsMax) { return 0 }
        return max(1, commitDelayMilliseconds / 20)
    }

    public var height: UInt64 { core.height }
    public var nextDeadline: UInt64? {
        var best = core.nextDeadline
        for d in [pendingStartAt, gossipIntervalMilliseconds == 0 ? nil : lastGossipAt + gossipIntervalMilliseconds] {
            if let d, best.map({ d < $0 }) ?? true { best = d }
        }
        return best
    }

    /// This node's own messages at the current height that peers may be missing: all of the
    /// current and the previous round; with `older`, also its proposals and prevotes for a
    /// value from earlier rounds and the prevotes behind its valid value, which the others
    /// need for lines 28 and 36 when that value is proposed again (ADR 0031). Nothing for
    /// a node without a signer. Precommits of a decided height stay here until the next
    /// height starts, so a peer that missed them can still decide.
    public func gossipMessages(older: Bool) -> [ConsensusMessage] {
        let round = core.round
        var out: [ConsensusMessage] = []
        for m in core.ownMessages where m.height == core.height {
            var keep = UInt64(m.round) + 1 >= UInt64(round)
            if !keep && older {
                switch m {
                case .proposal: keep = true
                case .vote(let v): keep = v.type == .prevote && v.blockID != nil
                }
            }
            if keep { out.append(m) }
        }
        if older { out += core.polkaVotes }
        return out
    }

    /// Starts consensus at the height after the last committed block, replaying the WAL's
    /// inputs for that height if it has them.
    public func start(now: UInt64) throws {
        lastTick = now
        lastGossipAt = now
        // The core learns the time first, so the timeouts of the new height are measured
        // from now rather than from zero.
        try process(.tick(now))
        let start = try app.nextHeightStart()
        validatorsByHeight[start.height] = start.validators
        let replay = wal.map { WALFormat.replayInputs($0.recovered.inputs, height: start.height) } ?? []
        if replay.isEmpty {
            try wal?.rotate(start: start)
            try process(.start(start), log: false)
        } else {
            for input in replay { try process(input, log: false) }
        }
    }

    /// After blocks were applied from block sync, moves consensus to the height after the
    /// newest committed block (a fresh WAL for it). Does nothing if consensus is already there.
    public func resynchronize(now: UInt64) throws {
        guard core.height <= app.height else { return }
        pendingStartAt = nil
        try tick(now: now)
        let start = try app.nextHeightStart()
        validatorsByHeight = validatorsByHeight.filter { $0.key + 1 >= start.height }
        validatorsByHeight[start.height] = start.validators
        try wal?.rotate(start: start)
        try process(.start(start), log: false)
    }

    /// Makes every WAL record written so far durable (at shutdown).
    public func syncWAL() throws { try wal?.sync() }

    /// A consensus message from a peer, as received. Bytes that do not decode are counted
    /// and dropped; they never reach the core or the WAL.
    public func receive(_ bytes: [UInt8], now: UInt64) throws {
        guard let message = try? ConsensusMessage(canonicalBytes: bytes) else {
            rejectedInputs += 1
            return
        }
        try tick(now: now)
        try process(.message(message))
    }

    /// Advances the core's clock; fires due timeouts.
    public func tick(now: UInt64) throws {
        guard now > lastTick else { return }
        lastTick = now
        try process(.tick(now))
        if let due = pendingStartAt, now >= due {
            pendingStartAt = nil
            try startNextHeight()
        }
        if gossipIntervalMilliseconds > 0, now >= lastGossipAt + gossipIntervalMilliseconds {
            lastGossipAt = now
            gossipCount += 1
            // Older rounds' messages every other time: they matter less and cost the peers
            // a signature check each.
            for m in gossipMessages(older: gossipCount % 2 == 0) { send(m) }
        }
    }

    private func startNextHeight() throws {
        let start = try app.nextHeightStart()
        validatorsByHeight[start.height] = start.validators
        try wal?.rotate(start: start)
        try process(.start(start), log: false)
        try process(.tick(lastTick))
    }

    private func process(_ input: ConsensusInput, log: Bool = true) throws {
        if log { try wal?.append(input) }
        let before = (height: core.height, round: core.round)
        let ready: Ready
        do {
            ready = try core.handle(input)
        } catch {
            rejectedInputs += 1
            logger.debug("refused a consensus input", metadata: ["error": "\(error)"])
            return
        }
        if core.height != before.height {
            logger.debug("entered height", metadata: ["consensus.height": "\(core.height)"])
        } else if core.round > before.round {
            // A round past 0 means the previous round timed out or failed at this node.
            logger.info("entered round", metadata: [
                "consensus.height": "\(core.height)", "consensus.round": "\(core.round)", "consensus.step": "\(core.step)",
            ])
        }
        try apply(ready)
    }

    private func apply(_ ready: Ready) throws {
        if let signed = ready.signed {
            // Durability before any signature leaves: the WAL first, then the guard.
            try wal?.sync()
            try signedFile?.save(signed)
        }
        for m in ready.broadcast { send(m) }
        if let decision = ready.decision {
            let (block, result) = try app.commit(decision)
            validatorsByHeight = validatorsByHeight.filter { $0.key + 1 >= decision.height }
            onCommit(block, result)
            let delay = nextHeightDelay(committedTransactions: block.transactions.count)
            if delay == 0 {
                try startNextHeight()
            } else {
                pendingStartAt = lastTick + delay
            }
            return
        }
        let h = core.height
        if let request = ready.valueRequest, request.height == h, let validators = validatorsByHeight[h] {
            let limits = app.ledger.genesis.consensus
            let txs = transactions(Int(limits.blockTransactionsMax), Int(limits.blockBytesMax))
            let value = try app.buildProposal(proposer: UInt16(core.myIndex ?? 0), transactions: txs, validators: validators)
            try process(.proposalValue(height: request.height, round: request.round, value: value))
        }
        for value in ready.validationRequests {
            var valid = false
            if let validators = validatorsByHeight[h] {
                do {
                    try app.validate(value, validators: validators, previousValidators: try previousValidators(h),
                                     verifier: verifier)
                    valid = true
                } catch let e as BlockValidationError {
                    lastInvalidBlock = e
                    logger.warning("refused a proposed block", metadata: [
                        "consensus.height": "\(h)", "block.id": "\(value.id.hex.prefix(16))", "error.code": "\(e.code)",
                        "error": "\(e.reason)",
                    ])
                }
            }
            try process(.validation(height: h, blockID: value.id, valid: valid))
        }
    }

    private func previousValidators(_ h: UInt64) throws -> QuarryConsensus.ValidatorSet? {
        guard h > 1 else { return nil }
        if let known = validatorsByHeight[h - 1] { return known }
        // After a restart the previous height's set is the one that certified its block.
        return try app.validatorSet()
    }
}
