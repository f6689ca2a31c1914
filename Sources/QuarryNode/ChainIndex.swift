import QuarryCore
import QuarryCrypto
import QuarryLedger

/// Indexes a node keeps beside its blocks so that clients can ask about the past: what a
/// transaction did, which validators certified a height, what each participant of a mileage
/// batch was paid, how a draw ended. None of it is consensus state (the state root does not
/// commit to it): each entry is derived deterministically from a committed block and its
/// execution, and written in the same atomic batch as the block (`ChainApplication.commit`,
/// `applyCertified`), so after a crash the indexes are exactly as far as the chain.
///
/// Layout: docs/spec/storage.md, "Chain indexes".
public enum ChainIndex {
    /// transaction hash -> `Receipt`.
    public static let receiptsColumn = "index.receipts"
    /// u64 first height -> ledger `ValidatorSet` in force from that height (written only when
    /// a set changes; the genesis set applies before the first entry).
    public static let validatorSetsColumn = "index.validator_sets"
    /// u64 batch || vehicle id -> `PayoutRecord`.
    public static let payoutsColumn = "index.payouts"
    /// u64 season || u64 index || u8 part (0 request, 1 outcome) -> `DrawRequestRecord` / `DrawOutcomeRecord`.
    public static let drawsColumn = "index.draws"
    public static let columns = [receiptsColumn, validatorSetsColumn, payoutsColumn, drawsColumn]

    static let eventKindBytesMax = 64
    static let eventAttributesMax = 32
    static let eventKeyBytesMax = 64
    static let eventValueBytesMax = 1_024
    static let receiptEventsMax = 4_096

    /// What one committed client transaction did.
    public struct Receipt: Sendable, Equatable, CanonicalCodable {
        public let height: UInt64
        /// Index among the block's client transactions.
        public let index: UInt32
        /// Empty when the transaction succeeded.
        public let errorCode: String
        public let errorMessage: String
        public let events: [Event]

        public init(height: UInt64, index: UInt32, errorCode: String, errorMessage: String, events: [Event]) {
            self.height = height; self.index = index; self.errorCode = errorCode
            self.errorMessage = errorMessage; self.events = events
        }

        public var succeeded: Bool { errorCode.isEmpty }

        public func encode(to e: inout CanonicalEncoder) {
            e.u64(height); e.u32(index); e.string(errorCode); e.string(errorMessage)
            e.sequence(events) { ChainIndex.encode($1, to: &$0) }
        }

        public init(from d: inout CanonicalDecoder) throws {
            height = try d.u64(); index = try d.u32()
            errorCode = try d.string(limit: 128, field: "receipt.error_code")
            errorMessage = try d.string(limit: 4_096, field: "receipt.error_message")
            events = try d.sequence(limit: ChainIndex.receiptEventsMax, field: "receipt.events") { try ChainIndex.decodeEvent(&$0) }
        }
    }

    /// One participant's payout in a settled (or settling) batch.
    public struct PayoutRecord: Sendable, Equatable, CanonicalCodable {
        public let owner: Address
        public let metres: UInt64
        public let grains: UInt64
        /// Height of the block whose system transactions paid it.
        public let height: UInt64

        public init(owner: Address, metres: UInt64, grains: UInt64, height: UInt64) {
            self.owner = owner; self.metres = metres; self.grains = grains; self.height = height
        }

        public func encode(to e: inout CanonicalEncoder) { e.value(owner); e.u64(metres); e.u64(grains); e.u64(height) }
        public init(from d: inout CanonicalDecoder) throws {
            owner = try d.value(); metres = try d.u64(); grains = try d.u64(); height = try d.u64()
        }
    }

    /// A draw request as it was made (the ledger deletes its own record once it is settled).
    public struct DrawRequestRecord: Sendable, Equatable, CanonicalCodable {
        public let requester: Address
        public let deadline: UInt64
        public let height: UInt64
        public let transaction: Hash256

        public init(requester: Address, deadline: UInt64, height: UInt64, transaction: Hash256) {
            self.requester = requester; self.deadline = deadline; self.height = height; self.transaction = transaction
        }

        public func encode(to e: inout CanonicalEncoder) { e.value(requester); e.u64(deadline); e.u64(height); e.value(transaction) }
        public init(from d: inout CanonicalDecoder) throws {
            requester = try d.value(); deadline = try d.u64(); height = try d.u64(); transaction = try d.value()
        }
    }

    /// How a draw ended: answered by the operator's result, or refunded after its deadline.
    public struct DrawOutcomeRecord: Sendable, Equatable, CanonicalCodable {
        public enum Kind: UInt8, Sendable { case answered = 1, refunded = 2 }
        public let kind: Kind
        /// The rarity drawn (answered only).
        public let rarity: Rarity?
        public let roll: UInt64
        public let stoneGrains: UInt64
        /// Crystals given: the substitute prize, or the refund.
        public let crystals: UInt64
        public let height: UInt64
        /// The result transaction (zero for a refund, which is a system transaction).
        public let transaction: Hash256

        public init(kind: Kind, rarity: Rarity?, roll: UInt64, stoneGrains: UInt64, crystals: UInt64, height: UInt64,
                    transaction: Hash256) {
            self.kind = kind; self.rarity = rarity; self.roll = roll; self.stoneGrains = stoneGrains
            self.crystals = crystals; self.height = height; self.transaction = transaction
        }

        public func encode(to e: inout CanonicalEncoder) {
            e.u8(kind.rawValue); e.optional(rarity) { $0.value($1) }; e.u64(roll); e.u64(stoneGrains); e.u64(crystals)
            e.u64(height); e.value(transaction)
        }
        public init(from d: inout CanonicalDecoder) throws {
            let k = try d.u8()
            guard let kind = Kind(rawValue: k) else { throw CanonicalError.unknownTag(type: "DrawOutcome.Kind", tag: k) }
            self.kind = kind
            rarity = try d.optional { try $0.value(Rarity.self) }
            roll = try d.u64(); stoneGrains = try d.u64(); crystals = try d.u64(); height = try d.u64(); transaction = try d.value()
        }
    }

    // MARK: Events

    static func encode(_ event: Event, to e: inout CanonicalEncoder) {
        e.string(event.kind)
        e.sequence(event.attributes) { e, a in e.string(a.key); e.string(a.value) }
    }

    static func decodeEvent(_ d: inout CanonicalDecoder) throws -> Event {
        let kind = try d.string(limit: eventKindBytesMax, field: "event.kind")
        let attributes = try d.sequence(limit: eventAttributesMax, field: "event.attributes") { d in
            (try d.string(limit: eventKeyBytesMax, field: "event.key"), try d.string(limit: eventValueBytesMax, field: "event.value"))
        }
        return Event(kind, attributes)
    }

    // MARK: Keys

    static func be64(_ v: UInt64) -> [UInt8] { StateKey.be64(v) }
    public static func payoutKey(batch: UInt64, vehicle: Hash256) -> [UInt8] { be64(batch) + vehicle.bytes }
    public static func drawKey(season: UInt64, index: UInt64, part: UInt8) -> [UInt8] { be64(season) + be64(index) + [part] }

    // MARK: Writing

    /// Adds the index entries of a committed block to the batch that commits it.
    public static func add(block: Block, result: BlockResult, to batch: inout WriteBatch) {
        precondition(result.transactions.count == block.transactions.count, "results do not match the block")
        let h = block.height
        for (i, r) in result.transactions.enumerated() {
            let hash = r.hash ?? SM3.hash(block.transactions[i])
            let receipt = Receipt(height: h, index: UInt32(i), errorCode: r.error?.code ?? "",
                                  errorMessage: r.error?.message ?? "", events: r.events)
            batch.put(hash.bytes, receipt.canonicalBytes, column: receiptsColumn)
            for event in r.events { addDrawEntry(event, height: h, transaction: hash, to: &batch) }
        }
        for event in result.systemEvents {
            if event.kind == "mileage.payout" {
                let record = PayoutRecord(owner: address(event, "owner"), metres: number(event, "metres"),
                                          grains: number(event, "grains"), height: h)
                batch.put(payoutKey(batch: number(event, "batch"), vehicle: hash(event, "vehicle")), record.canonicalBytes,
                          column: payoutsColumn)
            } else {
                addDrawEntry(event, height: h, transaction: .zero, to: &batch)
            }
        }
        if let set = result.validatorSet {
            batch.put(be64(h + 1), set.canonicalBytes, column: validatorSetsColumn)
        }
    }

    private static func addDrawEntry(_ event: Event, height: UInt64, transaction: Hash256, to batch: inout WriteBatch) {
        switch event.kind {
        case "draw.requested":
            let record = DrawRequestRecord(requester: address(event, "requester"), deadline: number(event, "deadline"),
                                           height: height, transaction: transaction)
            batch.put(drawKey(season: number(event, "season"), index: number(event, "index"), part: 0), record.canonicalBytes,
                      column: drawsColumn)
        case "draw.result":
            guard let rarity = Rarity.allCases.first(where: { $0.description == event["rarity"] }) else {
                preconditionFailure("draw.result event with rarity \(event["rarity"] ?? "none")")
            }
            let record = DrawOutcomeRecord(kind: .answered, rarity: rarity, roll: number(event, "roll"),
                                           stoneGrains: number(event, "stoneGrains"), crystals: number(event, "crystals"),
                                           height: height, transaction: transaction)
            batch.put(drawKey(season: number(event, "season"), index: number(event, "index"), part: 1), record.canonicalBytes,
                      column: drawsColumn)
        case "draw.refunded":
            let record = DrawOutcomeRecord(kind: .refunded, rarity: nil, roll: 0, stoneGrains: 0,
                                           crystals: number(event, "crystals"), height: height, transaction: transaction)
            batch.put(drawKey(season: number(event, "season"), index: number(event, "index"), part: 1), record.canonicalBytes,
                      column: drawsColumn)
        default:
            break
        }
    }

    // The ledger writes these attributes itself; a malformed one is a broken invariant.
    private static func number(_ event: Event, _ key: String) -> UInt64 {
        guard let text = event[key], let v = UInt64(text) else { preconditionFailure("\(event.kind) event without integer \(key)") }
        return v
    }

    private static func address(_ event: Event, _ key: String) -> Address {
        guard let text = event[key], let a = try? Address(text: text) else { preconditionFailure("\(event.kind) event without address \(key)") }
        return a
    }

    private static func hash(_ event: Event, _ key: String) -> Hash256 {
        guard let text = event[key], let h = try? Hash256(hex: text) else { preconditionFailure("\(event.kind) event without hash \(key)") }
        return h
    }

    // MARK: Reading

    public static func receipt(of transaction: Hash256, in store: KeyValueStore) throws -> Receipt? {
        guard let raw = try store.get(transaction.bytes, column: receiptsColumn) else { return nil }
        return try Receipt(canonicalBytes: raw)
    }

    /// The ledger validator set in force at height `h` (the one that certifies block `h`):
    /// the newest entry at or below `h`, else the genesis validators. Entries are written only
    /// when governance changes the set, so the scan is short.
    public static func validatorSet(at h: UInt64, genesis: Genesis, in store: KeyValueStore) throws -> QuarryLedger.ValidatorSet {
        var found: [UInt8]?
        try store.scan(column: validatorSetsColumn, from: [], to: be64(h) + [0x00]) { _, value in
            found = value
            return true
        }
        guard let found else { return QuarryLedger.ValidatorSet(validators: genesis.validators) }
        return try QuarryLedger.ValidatorSet(canonicalBytes: found)
    }

    public static func drawRequest(season: UInt64, index: UInt64, in store: KeyValueStore) throws -> DrawRequestRecord? {
        guard let raw = try store.get(drawKey(season: season, index: index, part: 0), column: drawsColumn) else { return nil }
        return try DrawRequestRecord(canonicalBytes: raw)
    }

    public static func drawOutcome(season: UInt64, index: UInt64, in store: KeyValueStore) throws -> DrawOutcomeRecord? {
        guard let raw = try store.get(drawKey(season: season, index: index, part: 1), column: drawsColumn) else { return nil }
        return try DrawOutcomeRecord(canonicalBytes: raw)
    }

    /// Payouts of batch `n` for vehicles after `after` (exclusive; nil from the first), in
    /// ascending vehicle-id order, at most `limit`.
    public static func payouts(batch n: UInt64, after: Hash256?, limit: Int,
                               in store: KeyValueStore) throws -> [(vehicle: Hash256, record: PayoutRecord)] {
        let prefix = be64(n)
        let start = after.map { prefix + $0.bytes + [0x00] } ?? prefix
        var out: [(Hash256, PayoutRecord)] = []
        guard limit > 0 else { return out }
        try store.scan(column: payoutsColumn, from: start, to: prefixSuccessor(prefix)) { key, value in
            out.append((Hash256(unchecked: Array(key[8..<40])), try PayoutRecord(canonicalBytes: value)))
            return out.count < limit
        }
        return out
    }
}
