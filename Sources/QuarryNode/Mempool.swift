import QuarryCore
import QuarryCrypto
import QuarryLedger

/// Where the mempool reads the committed nonce of an account (the nonce the account's next
/// transaction must carry). `Ledger` is the real source.
public protocol MempoolNonceSource {
    func committedNonce(of address: Address) throws -> UInt64
}

extension Ledger: MempoolNonceSource {
    public func committedNonce(of address: Address) throws -> UInt64 { try account(address).nonce }
}

/// Checks transaction signatures. The mempool calls it once per admitted transaction
/// (`isValid`), or once per batch of admissions (`areValid`).
public protocol MempoolSignatureVerifier {
    func isValid(signature: [UInt8], message: [UInt8], publicKey: PublicKeyBytes) -> Bool
    /// The answers of `isValid` for each item, in order. The default asks `isValid` one
    /// item after another.
    func areValid(_ items: [(signature: [UInt8], message: [UInt8], publicKey: PublicKeyBytes)]) -> [Bool]
}

extension MempoolSignatureVerifier {
    public func areValid(_ items: [(signature: [UInt8], message: [UInt8], publicKey: PublicKeyBytes)]) -> [Bool] {
        items.map { isValid(signature: $0.signature, message: $0.message, publicKey: $0.publicKey) }
    }
}

/// The real check: `SignatureVerification.isValid` (SM2 with the default ID, or secp256k1
/// over SM3 of the message), exactly as the ledger verifies; a batch over all cores. Every
/// signature that verifies is remembered in `verified`, so the block that later carries the
/// transaction does not verify it again (`ParallelSignatureChecker`).
public struct StandardSignatureVerifier: MempoolSignatureVerifier, Sendable {
    public let verified: VerifiedSignatures?

    public init(verified: VerifiedSignatures? = .shared) { self.verified = verified }

    public func isValid(signature: [UInt8], message: [UInt8], publicKey: PublicKeyBytes) -> Bool {
        let valid = SignatureVerification.isValid(signature: signature, message: message, publicKey: publicKey)
        if valid { verified?.insert(signature: signature, message: message, publicKey: publicKey) }
        return valid
    }

    public func areValid(_ items: [(signature: [UInt8], message: [UInt8], publicKey: PublicKeyBytes)]) -> [Bool] {
        ParallelVerification.map(count: items.count) { i in
            isValid(signature: items[i].signature, message: items[i].message, publicKey: items[i].publicKey)
        }
    }
}

/// Limits of the mempool. Every structure it keeps is bounded by one of these.
public struct MempoolConfig: Sendable, Equatable {
    /// Largest encoded transaction admitted (never above the ledger's `Limits.transactionBytesMax`).
    public var transactionBytesMax: Int = Limits.transactionBytesMax
    /// Most transactions one sender may have waiting (executable and pending together).
    public var perSenderMax: Int = 64
    /// A nonce is admitted if `committed <= nonce < committed + nonceWindow`.
    public var nonceWindow: UInt64 = 64
    /// Most transactions waiting in total.
    public var totalMax: Int = 50_000
    /// Most encoded bytes waiting in total.
    public var totalBytesMax: Int = 64 * 1024 * 1024
    /// How many hashes of transactions whose signature failed are remembered (so the same bad
    /// transaction is not verified again), oldest forgotten first.
    public var rejectedSignaturesRemembered: Int = 10_000

    public init() {}
}

/// Why a transaction was not admitted. The mempool is unchanged after any of these.
public enum MempoolError: QuarryError, Equatable {
    case tooLarge(bytes: Int, limit: Int)
    case decode(String)
    case wrongChain(got: String, expected: String)
    case badSignature
    case nonceTooLow(committed: UInt64, got: UInt64)
    case nonceGapTooLarge(committed: UInt64, got: UInt64, window: UInt64)
    case duplicate(Hash256)
    case nonceTaken(nonce: UInt64)
    case senderFull(limit: Int)
    case full(limit: Int)
    case bytesFull(bytes: Int, limit: Int)
    case invalid(String)
    case stateUnavailable(String)

    public var code: String {
        switch self {
        case .tooLarge: return "mempool.too_large"
        case .decode: return "mempool.decode"
        case .wrongChain: return "mempool.wrong_chain"
        case .badSignature: return "mempool.bad_signature"
        case .nonceTooLow: return "mempool.nonce_too_low"
        case .nonceGapTooLarge: return "mempool.nonce_gap_too_large"
        case .duplicate: return "mempool.duplicate"
        case .nonceTaken: return "mempool.nonce_taken"
        case .senderFull: return "mempool.sender_full"
        case .full: return "mempool.full"
        case .bytesFull: return "mempool.bytes_full"
        case .invalid: return "mempool.invalid"
        case .stateUnavailable: return "mempool.state_unavailable"
        }
    }

    public var description: String {
        let text: String
        switch self {
        case .tooLarge(let b, let l): text = "transaction is \(b) bytes, the limit is \(l)"
        case .decode(let m): text = "transaction does not decode canonically: \(m)"
        case .wrongChain(let g, let e): text = "transaction is for chain '\(g)', this node runs '\(e)'"
        case .badSignature: text = "the signature does not verify against the signer's public key"
        case .nonceTooLow(let c, let g): text = "nonce \(g) is already used; the account's next nonce is \(c)"
        case .nonceGapTooLarge(let c, let g, let w):
            text = "nonce \(g) is too far ahead of the account's next nonce \(c) (window \(w))"
        case .duplicate(let h): text = "transaction \(h.hex) is already in the mempool"
        case .nonceTaken(let n): text = "the sender already has another transaction with nonce \(n) waiting"
        case .senderFull(let l): text = "the sender already has \(l) transactions waiting, the limit"
        case .full(let l): text = "the mempool holds \(l) transactions, the limit"
        case .bytesFull(let b, let l): text = "admitting would make the mempool hold \(b) bytes, the limit is \(l)"
        case .invalid(let m): text = "transaction can never succeed: \(m)"
        case .stateUnavailable(let m): text = "cannot read the account nonce: \(m)"
        }
        return "\(code): \(text)"
    }
}

/// One admitted transaction.
public struct MempoolEntry: Sendable {
    public let raw: [UInt8]
    public let hash: Hash256
    public let sender: Address
    public let nonce: UInt64
    /// Admission order (unique, increasing).
    public let arrival: UInt64
    /// The signature was checked at admission and is valid; re-checks never verify it again.
    public let signatureVerified: Bool
}

/// Transactions waiting for a block.
///
/// A final class guarded by one `Lock`, so RPC handlers, gossip and consensus may call it
/// from any thread. Signature verification runs outside the lock; everything else inside.
///
/// Contract with the node: call `update(afterCommit:)` with every committed block's
/// transactions, in height order, before the next `reap`. The mempool caches each waiting
/// sender's committed nonce and refreshes it only there (a nonce changes only when one of the
/// sender's own transactions executes, and those are in the committed block).
public final class Mempool: @unchecked Sendable {
    private struct SenderQueue {
        /// The account's committed nonce as of admission or the last commit.
        var committedNonce: UInt64
        /// Waiting transactions, ascending by nonce (at most `perSenderMax`).
        var entries: [(nonce: UInt64, hash: Hash256)] = []
    }

    public let config: MempoolConfig
    public let chainID: String
    public let blockTransactionsMax: Int
    public let blockBytesMax: Int
    private let nonces: any MempoolNonceSource
    private let verifier: any MempoolSignatureVerifier
    private let lock = Lock()

    private var entries: [Hash256: MempoolEntry] = [:]
    private var senders: [Address: SenderQueue] = [:]
    private var bytes = 0
    /// Incremented by every re-check; a nonce read before a re-check is not trusted after it.
    private var generation: UInt64 = 0
    /// Hashes being verified right now (between the two locked sections of `add`), so the
    /// same transaction arriving twice at once is verified once. At most one per caller of
    /// `add`, `Mempool.batchMax` per caller of `add(batch:)`.
    private var inFlight: Set<Hash256> = []
    private var nextArrival: UInt64 = 0
    /// Hashes of transactions whose signature failed: a set plus a FIFO ring for eviction.
    private var badSignatures: Set<Hash256> = []
    private var badSignatureOrder: [Hash256] = []
    private var badSignatureNext = 0

    /// - Parameters:
    ///   - genesis: gives the chain id and the block limits `reap` respects.
    ///   - nonces: committed account nonces (normally the node's `Ledger`).
    ///   - verifier: signature verification (normally `StandardSignatureVerifier`); called once per admitted transaction.
    public init(genesis: Genesis, config: MempoolConfig = MempoolConfig(), nonces: any MempoolNonceSource,
                verifier: any MempoolSignatureVerifier = StandardSignatureVerifier()) {
        precondition(config.transactionBytesMax > 0 && config.perSenderMax > 0 && config.nonceWindow > 0
                     && config.totalMax > 0 && config.totalBytesMax > 0 && config.rejectedSignaturesRemembered >= 0,
                     "mempool limits must be positive")
        self.config = config
        self.chainID = genesis.chainID
        self.blockTransactionsMax = Int(clamping: genesis.consensus.blockTransactionsMax)
        self.blockBytesMax = Int(clamping: genesis.consensus.blockBytesMax)
        self.nonces = nonces
        self.verifier = verifier
    }

    // MARK: Queries

    public var count: Int { lock.withLock { entries.count } }
    public var totalBytes: Int { lock.withLock { bytes } }
    public var senderCount: Int { lock.withLock { senders.count } }
    public func contains(_ hash: Hash256) -> Bool { lock.withLock { entries[hash] != nil } }
    public func entry(_ hash: Hash256) -> MempoolEntry? { lock.withLock { entries[hash] } }

    /// Every waiting transaction, by arrival order.
    public func snapshot() -> [MempoolEntry] {
        lock.withLock { entries.values.sorted { $0.arrival < $1.arrival } }
    }

    // MARK: Admission

    /// Admits an encoded transaction (as received from a client or a peer) and returns its
    /// hash. Checks, cheapest first: size, canonical decoding, chain id, stateless validity,
    /// duplicate, known bad signature, nonce window, limits, then the signature (once).
    @discardableResult
    public func add(_ raw: [UInt8]) throws(MempoolError) -> Hash256 {
        let admission = try prepare(raw)
        // The expensive part, outside the lock.
        let tx = admission.tx
        let valid = verifier.isValid(signature: tx.signature, message: tx.body.signingBytes, publicKey: tx.body.signer)
        return try finish(admission, signatureValid: valid)
    }

    /// Most transactions whose signatures `add(batch:)` checks together (it takes any number,
    /// in groups of this size), which also bounds what one caller holds in flight.
    public static let batchMax = 256

    /// Admits several encoded transactions with the same checks as `add`, in order, and
    /// their signatures verified together over all cores (each once). The results are in
    /// order. They are what calling `add` for each in turn would give, except that a
    /// transaction repeated within a group is refused as `mempool.duplicate` even when its
    /// first copy fails its signature.
    public func add(batch raws: [[UInt8]]) -> [Result<Hash256, MempoolError>] {
        var results: [Result<Hash256, MempoolError>] = []
        results.reserveCapacity(raws.count)
        for start in stride(from: 0, to: raws.count, by: Mempool.batchMax) {
            let group = raws[start..<min(start + Mempool.batchMax, raws.count)]
            let prepared = group.map { raw in Result { () throws(MempoolError) -> Admission in try prepare(raw) } }
            var pending: [Admission] = []
            for case .success(let admission) in prepared { pending.append(admission) }
            let verdicts = verifier.areValid(pending.map { ($0.tx.signature, $0.tx.body.signingBytes, $0.tx.body.signer) })
            precondition(verdicts.count == pending.count, "signature verifier returned the wrong number of answers")
            var next = 0
            for outcome in prepared {
                switch outcome {
                case .failure(let error):
                    results.append(.failure(error))
                case .success(let admission):
                    let valid = verdicts[next]
                    next += 1
                    results.append(Result { () throws(MempoolError) -> Hash256 in try finish(admission, signatureValid: valid) })
                }
            }
        }
        return results
    }

    /// A transaction that passed every check but its signature and is marked in flight.
    private struct Admission {
        let raw: [UInt8]
        let tx: SignedTransaction
        let hash: Hash256
        let sender: Address
        let committed: UInt64
        let readAt: UInt64
    }

    /// Checks 1-12 of docs/spec/mempool.md; marks the transaction in flight. Changes nothing else.
    private func prepare(_ raw: [UInt8]) throws(MempoolError) -> Admission {
        guard raw.count <= min(config.transactionBytesMax, Limits.transactionBytesMax) else {
            throw .tooLarge(bytes: raw.count, limit: min(config.transactionBytesMax, Limits.transactionBytesMax))
        }
        let tx: SignedTransaction
        do { tx = try SignedTransaction(canonicalBytes: raw) } catch { throw .decode("\(error)") }
        guard tx.canonicalBytes == raw else { throw .decode("the encoding is not canonical") }
        guard tx.body.chainID == chainID else { throw .wrongChain(got: tx.body.chainID, expected: chainID) }
        try Mempool.checkStateless(tx.body.payload)
        let hash = SM3.hash(raw)
        let sender = tx.sender

        // Everything but the signature, under the lock; nothing changes yet.
        let (committed, readAt) = try lock.withLock {
            Result { () throws(MempoolError) -> (UInt64, UInt64) in
                guard !inFlight.contains(hash) else { throw .duplicate(hash) }
                let c = try precheck(hash: hash, sender: sender, nonce: tx.body.nonce, size: raw.count)
                inFlight.insert(hash)
                return (c, generation)
            }
        }.get()
        return Admission(raw: raw, tx: tx, hash: hash, sender: sender, committed: committed, readAt: readAt)
    }

    /// After the signature check: takes the transaction out of flight and admits it, or
    /// remembers a bad signature.
    private func finish(_ a: Admission, signatureValid valid: Bool) throws(MempoolError) -> Hash256 {
        try lock.withLock { Result { () throws(MempoolError) in
            inFlight.remove(a.hash)
            guard valid else {
                rememberBadSignature(a.hash)
                throw .badSignature
            }
            // The state may have moved while verifying: check again (no re-verification).
            let committedNow = try precheck(hash: a.hash, sender: a.sender, nonce: a.tx.body.nonce, size: a.raw.count,
                                            knownCommitted: a.readAt == generation ? a.committed : nil)
            let entry = MempoolEntry(raw: a.raw, hash: a.hash, sender: a.sender, nonce: a.tx.body.nonce, arrival: nextArrival,
                                     signatureVerified: true)
            nextArrival += 1
            entries[a.hash] = entry
            bytes += a.raw.count
            var queue = senders[a.sender] ?? SenderQueue(committedNonce: committedNow)
            let at = queue.entries.firstIndex { $0.nonce > entry.nonce } ?? queue.entries.endIndex
            queue.entries.insert((entry.nonce, a.hash), at: at)
            senders[a.sender] = queue
            checkInvariants()
        } }.get()
        return a.hash
    }

    /// Rules the ledger always enforces whatever the state: a transaction breaking one can
    /// never succeed, so it is not worth a place in a block.
    static func checkStateless(_ payload: Payload) throws(MempoolError) {
        switch payload {
        case .transfer(_, let amount), .grantCrystals(_, let amount):
            guard amount > 0 else { throw .invalid("the amount must be positive") }
        default:
            break
        }
    }

    /// The checks that need the pool (call with the lock held). Returns the sender's
    /// committed nonce.
    private func precheck(hash: Hash256, sender: Address, nonce: UInt64, size: Int,
                          knownCommitted: UInt64? = nil) throws(MempoolError) -> UInt64 {
        guard entries[hash] == nil else { throw .duplicate(hash) }
        guard !badSignatures.contains(hash) else { throw .badSignature }
        let queue = senders[sender]
        let committed: UInt64
        if let q = queue {
            committed = q.committedNonce
        } else if let known = knownCommitted {
            committed = known
        } else {
            do { committed = try nonces.committedNonce(of: sender) } catch { throw .stateUnavailable("\(error)") }
        }
        guard nonce >= committed else { throw .nonceTooLow(committed: committed, got: nonce) }
        guard nonce - committed < config.nonceWindow else {
            throw .nonceGapTooLarge(committed: committed, got: nonce, window: config.nonceWindow)
        }
        if let q = queue {
            guard !q.entries.contains(where: { $0.nonce == nonce }) else { throw .nonceTaken(nonce: nonce) }
            guard q.entries.count < config.perSenderMax else { throw .senderFull(limit: config.perSenderMax) }
        }
        guard entries.count < config.totalMax else { throw .full(limit: config.totalMax) }
        guard bytes + size <= config.totalBytesMax else { throw .bytesFull(bytes: bytes + size, limit: config.totalBytesMax) }
        return committed
    }

    private func rememberBadSignature(_ hash: Hash256) {
        let limit = config.rejectedSignaturesRemembered
        guard limit > 0, !badSignatures.contains(hash) else { return }
        if badSignatureOrder.count < limit {
            badSignatureOrder.append(hash)
        } else {
            badSignatures.remove(badSignatureOrder[badSignatureNext])
            badSignatureOrder[badSignatureNext] = hash
            badSignatureNext = (badSignatureNext + 1) % limit
        }
        badSignatures.insert(hash)
    }

    // MARK: Reaping

    /// The transactions for the next block, without removing them: for each sender only the
    /// run of consecutive nonces starting at its committed nonce; across senders, repeatedly
    /// the waiting sender whose next transaction arrived first. A sender whose next
    /// transaction does not fit the byte budget contributes nothing more. Bounded by the
    /// arguments and by the genesis block limits.
    public func reap(maxTransactions: Int = .max, maxBytes: Int = .max) -> [[UInt8]] {
        lock.withLock {
            let countLimit = max(0, min(maxTransactions, blockTransactionsMax))
            var byteBudget = max(0, min(maxBytes, blockBytesMax))
            var heap = ArrivalHeap()
            // Per sender: index of its next transaction in its queue.
            var cursor: [Address: Int] = [:]
            for (sender, queue) in senders {
                guard let first = queue.entries.first, first.nonce == queue.committedNonce else { continue }
                heap.push(arrival: entries[first.hash]!.arrival, sender: sender)
                cursor[sender] = 0
            }
            var out: [[UInt8]] = []
            while out.count < countLimit, let top = heap.pop() {
                let queue = senders[top.sender]!
                let i = cursor[top.sender]!
                let entry = entries[queue.entries[i].hash]!
                guard entry.raw.count <= byteBudget else { continue }
                out.append(entry.raw)
                byteBudget -= entry.raw.count
                let next = i + 1
                if next < queue.entries.count, queue.entries[next].nonce == entry.nonce + 1 {
                    cursor[top.sender] = next
                    heap.push(arrival: entries[queue.entries[next].hash]!.arrival, sender: top.sender)
                }
            }
            return out
        }
    }

    // MARK: Re-check after a commit

    /// Call after each committed block with its transactions (raw, as in the block). Removes
    /// the included transactions by hash, refreshes the committed nonce of every sender that
    /// appears in the block and drops that sender's transactions with a lower nonce. The rest
    /// stay, and their signatures are not verified again. Transactions that do not decode are
    /// ignored (the ledger rejected them too).
    public func update(afterCommit transactions: [[UInt8]]) throws(MempoolError) {
        var touched: [Address] = []
        var hashes: [Hash256] = []
        for raw in transactions {
            hashes.append(SM3.hash(raw))
            if let tx = try? SignedTransaction(canonicalBytes: raw) { touched.append(tx.sender) }
        }
        try lock.withLock { Result { () throws(MempoolError) in
            generation += 1
            for hash in hashes {
                if let e = entries[hash] { remove(e) }
            }
            for sender in touched {
                guard var queue = senders[sender] else { continue }
                let fresh: UInt64
                do { fresh = try nonces.committedNonce(of: sender) } catch { throw .stateUnavailable("\(error)") }
                queue.committedNonce = fresh
                while let first = queue.entries.first, first.nonce < fresh {
                    let e = entries.removeValue(forKey: first.hash)!
                    bytes -= e.raw.count
                    queue.entries.removeFirst()
                }
                senders[sender] = queue.entries.isEmpty ? nil : queue
            }
            checkInvariants()
        } }.get()
    }

    /// Re-reads the committed nonce of every waiting sender (for instance after block sync,
    /// when blocks were committed without `update(afterCommit:)`), dropping stale transactions.
    public func recheckAll() throws(MempoolError) {
        try lock.withLock { Result { () throws(MempoolError) in
            generation += 1
            let all = senders.keys.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
            for sender in all {
                var queue = senders[sender]!
                do { queue.committedNonce = try nonces.committedNonce(of: sender) } catch { throw .stateUnavailable("\(error)") }
                while let first = queue.entries.first, first.nonce < queue.committedNonce {
                    let e = entries.removeValue(forKey: first.hash)!
                    bytes -= e.raw.count
                    queue.entries.removeFirst()
                }
                senders[sender] = queue.entries.isEmpty ? nil : queue
            }
            checkInvariants()
        } }.get()
    }

    /// Removes one transaction (lock held).
    private func remove(_ e: MempoolEntry) {
        entries[e.hash] = nil
        bytes -= e.raw.count
        guard var queue = senders[e.sender] else { preconditionFailure("mempool entry without its sender queue") }
        queue.entries.removeAll { $0.hash == e.hash }
        senders[e.sender] = queue.entries.isEmpty ? nil : queue
    }

    /// Cheap structural invariants (lock held).
    private func checkInvariants() {
        precondition(entries.count <= config.totalMax && bytes <= config.totalBytesMax && bytes >= 0,
                     "mempool limits exceeded")
        precondition(badSignatures.count <= config.rejectedSignaturesRemembered, "bad-signature memory unbounded")
    }
}

/// A binary min-heap of senders keyed by the arrival number of their next transaction.
private struct ArrivalHeap {
    private var items: [(arrival: UInt64, sender: Address)] = []

    mutating func push(arrival: UInt64, sender: Address) {
        items.append((arrival, sender))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].arrival < items[parent].arrival else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (arrival: UInt64, sender: Address)? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < items.count, items[l].arrival < items[smallest].arrival { smallest = l }
            if r < items.count, items[r].arrival < items[smallest].arrival { smallest = r }
            guard smallest != i else { break }
            items.swapAt(i, smallest)
            i = smallest
        }
        return top
    }
}
