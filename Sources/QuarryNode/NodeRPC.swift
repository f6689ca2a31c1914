import QuarryConsensus
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryRPC
import QuarryStore

/// Limits and waits of the node's JSON-RPC methods (the server's own limits are in
/// `RPCServerConfiguration`).
public struct NodeRPCConfiguration: Sendable {
    /// Longest `tx_submit` with `wait: "committed"` waits before answering -32005.
    public var commitWaitMilliseconds: Int64 = 30_000
    /// Default and largest page of `batch_get` (participants) and `catalog_list` (items).
    public var pageSizeDefault: Int = 100
    public var pageSizeMax: Int = 1_000
    /// Most `wait: "none"` submissions queued for admission at once.
    public var admissionQueueMax: Int = 4_096

    public init() {}
}

/// The node's JSON-RPC methods and subscription topics (docs/openrpc.json,
/// docs/spec/json-rpc.md): registered on an `RPCServer` for a running `NodeRuntime`.
///
/// Reads go to the latest `CommittedView` (a RocksDB snapshot), never through the runtime
/// actor, so queries do not wait for consensus and consensus does not wait for queries, and
/// one request always sees one height (ADR 0076). Submissions go straight to the thread-safe
/// mempool. `run(publishingTo:)` publishes every committed block to the subscription topics.
public final class NodeRPC: Sendable {
    public let configuration: NodeRPCConfiguration
    let runtime: NodeRuntime
    let committed: CommittedState
    let nodeID: String
    let mempool: Mempool
    private let admissions: AsyncStream<[UInt8]>
    private let admissionInput: AsyncStream<[UInt8]>.Continuation
    private let lock = Lock()
    nonisolated(unsafe) private var queued = 0

    public init(runtime: NodeRuntime, configuration: NodeRPCConfiguration = NodeRPCConfiguration()) {
        precondition(configuration.pageSizeDefault >= 1 && configuration.pageSizeDefault <= configuration.pageSizeMax)
        self.runtime = runtime
        self.configuration = configuration
        self.committed = runtime.committed
        self.mempool = runtime.mempool
        self.nodeID = runtime.p2p.configuration.identity.id.hex
        (admissions, admissionInput) = AsyncStream<[UInt8]>.makeStream()
    }

    // MARK: Registration

    /// Registers every method and topic on `server`.
    public func register(on server: RPCServer) {
        for spec in NodeRPC.methods {
            server.register(method: spec.name, summary: spec.summary, params: spec.params, result: spec.result) { [self] p in
                try await self.call(spec.name, p)
            }
        }
        for topic in NodeRPC.topics { server.register(topic: topic) }
    }

    /// Until cancelled: publishes each committed block to the subscription topics and admits
    /// the transactions submitted with `wait: "none"`.
    public func run(publishingTo server: RPCServer) async {
        let blocks = committed.committedBlocks()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await block in blocks { NodeRPC.publish(block, to: server) }
            }
            group.addTask {
                for await raw in self.admissions {
                    self.lock.withLock { self.queued -= 1 }
                    // The client asked not to wait: a refusal is visible later as "unknown".
                    _ = try? self.runtime.submit(raw)
                }
            }
            // Both loops end when this task is cancelled (the children inherit it).
            await group.next()
            group.cancelAll()
        }
    }

    // MARK: Errors

    /// A read failed inside the node (for example the store was closed): the client sees
    /// -32603 with no details; the server's internal-error hook logs it.
    struct ReadFailure: Error, CustomStringConvertible {
        let underlying: any Error
        var description: String { "read failed: \(underlying)" }
    }

    static func applicationError(code: String, reason: String, _ extra: [(String, JSONValue)] = []) -> RPCError {
        RPCError(code: RPCError.applicationErrorCode, message: "Application error",
                 data: .object([("code", .string(code)), ("reason", .string(reason))] + extra))
    }

    /// A mempool refusal as -32000 with the mempool's code and its reason (without the code prefix).
    static func refusal(_ e: MempoolError, hash: Hash256?) -> RPCError {
        var reason = e.description
        if reason.hasPrefix(e.code + ": ") { reason.removeFirst(e.code.count + 2) }
        return applicationError(code: e.code, reason: reason, hash.map { [("hash", .string($0.hex))] } ?? [])
    }

    func view() throws(RPCError) -> CommittedView {
        guard let v = committed.view else {
            throw .unavailable(code: "node.no_state_view", "this node's store cannot serve consistent reads")
        }
        return v
    }

    func call(_ name: String, _ p: RPCParams) async throws -> JSONValue {
        do {
            switch name {
            case "node_status": return try nodeStatus()
            case "chain_getBlock": return try block(p)
            case "chain_getValidators": return try validators(p)
            case "tx_submit": return try await submit(p)
            case "tx_get": return try transaction(p)
            case "account_get": return try account(p)
            case "vehicle_get": return try vehicle(p)
            case "batch_get": return try batch(p)
            case "supply_get": return try supply()
            case "chain_getParameters": return try parameters()
            case "season_get": return try season(p)
            case "draw_get": return try draw(p)
            case "catalog_list": return try catalog(p)
            case "redemption_get": return try redemption(p)
            default: preconditionFailure("no handler for \(name)")
            }
        } catch let e as RPCError {
            throw e
        } catch let e as StoreError where e == .closed {
            throw RPCError.unavailable(code: "rpc.shutting_down", "the node is shutting down")
        } catch {
            throw ReadFailure(underlying: error)
        }
    }

    // MARK: Ids and paging

    /// A decimal id (`"0"`, `"17"`): digits only, no leading zeros, below 2^64.
    static func decimalID(_ text: Substring) -> UInt64? {
        guard !text.isEmpty, text.utf8.count <= 20, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              text == "0" || text.first != "0" else { return nil }
        return UInt64(text)
    }

    static func id(_ p: RPCParams, _ what: String) throws -> UInt64 {
        let text = try p.string("id")
        guard let id = decimalID(text[...]) else {
            throw RPCError.invalidParams("param \"id\" of \(p.method) must be a decimal \(what) id such as \"0\", got \"\(text.prefix(40))\"")
        }
        return id
    }

    func limit(_ p: RPCParams) throws -> Int {
        guard p.has("limit") else { return configuration.pageSizeDefault }
        let n = try p.uint64("limit")
        guard n >= 1, n <= UInt64(configuration.pageSizeMax) else {
            throw RPCError.invalidParams("param \"limit\" of \(p.method) must be 1 to \(configuration.pageSizeMax), got \(n)")
        }
        return Int(n)
    }

    // MARK: node and chain

    func nodeStatus() throws -> JSONValue {
        let v = try view()
        let (peers, syncing) = committed.syncState
        let time = v.header?.timeMilliseconds ?? v.genesis.genesisTime * 1_000
        var validator = false
        if let key = committed.consensusKey, let set: QuarryLedger.ValidatorSet = try v.record(StateKey.validators) {
            validator = set.validators.contains { $0.publicKey.bytes == key }
        }
        return [
            "chainId": .string(v.genesis.chainID), "nodeId": .string(nodeID), "height": .u64(v.height),
            "latestBlockHash": .string(v.blockHash.hex), "latestBlockTime": .string(NodeJSON.iso8601(milliseconds: time)),
            "latestBlockTimeMilliseconds": .u64(time), "catchingUp": .bool(syncing || peers > v.height + 1),
            "validator": .bool(validator), "genesisHash": .string(v.genesis.hash.hex),
            "highestPeerHeight": .u64(peers), "mempoolTransactions": .u64(UInt64(mempool.count)),
        ]
    }

    func block(_ p: RPCParams) throws -> JSONValue {
        let h = try p.uint64("height")
        let v = try view()
        guard h >= 1, h <= v.height, let block = try v.chain.block(at: h), let cert = try v.chain.certificate(at: h),
              let results = try v.chain.results(at: h) else {
            throw RPCError.notFound(code: "block.not_found", "no committed block at height \(h) (the latest is \(v.height))")
        }
        return [
            "hash": .string(block.hash.hex),
            "header": NodeJSON.header(block.header),
            "lastCommit": block.lastCommit.map(NodeJSON.certificate) ?? .null,
            "systemTransactions": .array(block.systemTransactions.map(NodeJSON.systemTransaction)),
            "transactionHashes": .array(block.transactions.map { .string(SM3.hash($0).hex) }),
            "results": .array(results.map { ["hash": .string($0.transactionHash.hex), "code": .string($0.errorCode)] }),
            "commit": NodeJSON.certificate(cert),
        ]
    }

    func validators(_ p: RPCParams) throws -> JSONValue {
        let v = try view()
        let h = p.has("height") ? try p.uint64("height") : max(v.height, 1)
        guard h >= 1, h <= v.height + 1 else {
            throw RPCError.notFound(code: "validators.not_found",
                                    "the validator set is known for heights 1 to \(v.height + 1), not \(h)")
        }
        let set = try ChainIndex.validatorSet(at: h, genesis: v.genesis, in: v.store)
        let consensusSet = try QuarryConsensus.ValidatorSet(validators: set.validators.map {
            Validator(publicKey: $0.publicKey.bytes, power: $0.power)
        })
        return [
            "height": .u64(h), "validatorsHash": .string(consensusSet.hash.hex), "totalVotingPower": .u64(set.totalPower),
            "validators": .array(set.validators.map {
                ["name": .string($0.name), "publicKey": .hex($0.publicKey.bytes), "scheme": .string($0.publicKey.scheme.name),
                 "address": .string(Address(publicKey: $0.publicKey).text), "votingPower": .u64($0.power)]
            }),
        ]
    }

    // MARK: transactions

    func submit(_ p: RPCParams) async throws -> JSONValue {
        let raw = try p.bytes("tx", bytesMax: 65_536)
        let wait = p.has("wait") ? try p.string("wait") : "checked"
        let hash = SM3.hash(raw)
        func pending() -> JSONValue { ["hash": .string(hash.hex), "status": "pending"] }
        switch wait {
        case "none":
            // Cheap checks now; the signature and nonce are checked by the admission task.
            guard raw.count <= Limits.transactionBytesMax else {
                throw NodeRPC.refusal(.tooLarge(bytes: raw.count, limit: Limits.transactionBytesMax), hash: hash)
            }
            guard let tx = try? SignedTransaction(canonicalBytes: raw), tx.canonicalBytes == raw else {
                throw NodeRPC.refusal(.decode("the bytes are not one canonical signed transaction"), hash: hash)
            }
            let admitted: Bool = lock.withLock {
                guard queued < configuration.admissionQueueMax else { return false }
                queued += 1
                return true
            }
            guard admitted else {
                throw RPCError.limitExceeded(code: "rpc.admission_queue_full",
                                             "\(configuration.admissionQueueMax) submissions are already waiting for admission",
                                             limit: configuration.admissionQueueMax)
            }
            admissionInput.yield(raw)
            return pending()
        case "checked":
            if let answer = try admit(raw, hash: hash) { return answer }
            return pending()
        default:
            guard case .registered(let token) = committed.register(hash) else {
                throw RPCError.limitExceeded(code: "rpc.too_many_waiting",
                                             "\(committed.waitersMax) submissions are already waiting for their block",
                                             limit: committed.waitersMax)
            }
            do {
                if let answer = try admit(raw, hash: hash) {
                    committed.cancel(token)
                    return answer
                }
            } catch {
                committed.cancel(token)
                throw error
            }
            guard let outcome = await committed.wait(token, timeoutMilliseconds: configuration.commitWaitMilliseconds) else {
                throw RPCError(code: RPCError.timeoutCode, message: "Timeout", data: [
                    "code": "tx.commit_timeout",
                    "reason": .string("not committed within \(configuration.commitWaitMilliseconds) ms; it may still be (ask tx_get)"),
                    "hash": .string(hash.hex),
                ])
            }
            if let error = outcome.result.error {
                throw NodeRPC.applicationError(code: error.code, reason: error.message,
                                               [("hash", .string(hash.hex)), ("height", .u64(outcome.height)),
                                                ("index", .u32(outcome.index))])
            }
            return [
                "hash": .string(hash.hex), "status": "committed", "height": .u64(outcome.height),
                "index": .u32(outcome.index), "result": ["events": .array(outcome.result.events.map(NodeJSON.event))],
            ]
        }
    }

    /// Admits `raw` to the mempool (and gossips it). Returns nil when it is waiting in the
    /// mempool now; an answer when it was already committed; throws the mempool's refusal.
    private func admit(_ raw: [UInt8], hash: Hash256) throws -> JSONValue? {
        do {
            _ = try runtime.submit(raw)
            return nil
        } catch let e as MempoolError {
            switch e {
            case .duplicate:
                return nil
            case .nonceTooLow:
                // Perhaps this very transaction is already in a block.
                if let v = committed.view, let receipt = try ChainIndex.receipt(of: hash, in: v.store) {
                    if !receipt.succeeded {
                        throw NodeRPC.applicationError(code: receipt.errorCode, reason: receipt.errorMessage,
                                                       [("hash", .string(hash.hex)), ("height", .u64(receipt.height)),
                                                        ("index", .u32(receipt.index))])
                    }
                    return ["hash": .string(hash.hex), "status": "committed", "height": .u64(receipt.height),
                            "index": .u32(receipt.index), "result": ["events": .array(receipt.events.map(NodeJSON.event))]]
                }
                throw NodeRPC.refusal(e, hash: hash)
            default:
                throw NodeRPC.refusal(e, hash: hash)
            }
        }
    }

    func transaction(_ p: RPCParams) throws -> JSONValue {
        let hash = try p.hash("hash")
        let v = try view()
        if let receipt = try ChainIndex.receipt(of: hash, in: v.store) {
            var m: [(String, JSONValue)] = [
                ("hash", .string(hash.hex)), ("status", .string(receipt.succeeded ? "committed" : "rejected")),
                ("height", .u64(receipt.height)), ("index", .u32(receipt.index)),
                ("result", ["events": .array(receipt.events.map(NodeJSON.event))]),
            ]
            if !receipt.succeeded {
                m.append(("error", NodeJSON.transactionError(code: receipt.errorCode, reason: receipt.errorMessage)))
            }
            return .object(m)
        }
        if mempool.contains(hash) { return ["hash": .string(hash.hex), "status": "pending"] }
        return ["hash": .string(hash.hex), "status": "unknown"]
    }

    // MARK: state

    /// `proof` of `key` in `v` when the params ask for one.
    func proofMember(_ p: RPCParams, _ key: [UInt8], _ v: CommittedView) throws -> [(String, JSONValue)] {
        guard p.has("proof"), try p.bool("proof") else { return [] }
        let (value, proof) = try v.prove(key)
        return [("proof", NodeJSON.proof(key: key, value: value, proof: proof, height: v.height, stateRoot: try v.stateRoot()))]
    }

    func account(_ p: RPCParams) throws -> JSONValue {
        let address = try p.address("address")
        let v = try view()
        let key = StateKey.account(address)
        let a: Account = try v.record(key) ?? Account()
        return .object([
            ("address", .string(address.text)), ("height", .u64(v.height)), ("balanceGrains", .amount(a.balanceGrains)),
            ("nonce", .u64(a.nonce)), ("crystals", .u64(a.crystals)),
            ("agreement", a.agreement.map { .string($0.hex) } ?? .null), ("activeVehicles", .u32(a.activeVehicles)),
        ] + (try proofMember(p, key, v)))
    }

    func vehicle(_ p: RPCParams) throws -> JSONValue {
        let id = try p.hash("vehicleId")
        let v = try view()
        let key = StateKey.vehicle(id)
        guard let vehicle: Vehicle = try v.record(key) else {
            throw RPCError.notFound(code: "vehicle.not_found", "no vehicle \(id.hex) is registered")
        }
        let week = (v.global.time - v.genesis.genesisTime) / Vehicle.weekSeconds
        return .object([
            ("vehicleId", .string(id.hex)), ("height", .u64(v.height)), ("owner", .string(vehicle.owner.text)),
            ("publicKey", .hex(vehicle.key.bytes)), ("scheme", .string(vehicle.key.scheme.name)),
            ("address", .string(Address(publicKey: vehicle.key).text)), ("model", .string(vehicle.model)),
            ("cohortTags", .array(vehicle.cohortTags.map { .string($0) })), ("active", .bool(vehicle.active)),
            ("odometerMetres", .u64(vehicle.odometerMetres)), ("lastSpanEnd", .u64(vehicle.lastSpanEnd)),
            ("totalClaimedMetres", .u64(vehicle.totalClaimedMetres)),
            ("metresInTrailingYear", .u64(vehicle.metresInTrailingYear(week: week))),
        ] + (try proofMember(p, key, v)))
    }

    func batch(_ p: RPCParams) throws -> JSONValue {
        let n = try p.uint64("index")
        let pageSize = try limit(p)
        let after: Hash256? = p.has("cursor") ? try p.hash("cursor") : nil
        let v = try view()
        let e = v.genesis.economics
        let current = v.currentBatch
        guard n <= current else {
            throw RPCError.notFound(code: "batch.not_started", "batch \(n) has not started; the current batch is \(current)")
        }
        let record: BatchRecord? = try v.record(StateKey.batch(n))
        let cursor = v.global.mileage
        let status: String
        var poolGrains = record?.poolGrains ?? 0
        var paidGrains = record?.paidGrains ?? 0
        var paidParticipants = record?.paidParticipants ?? 0
        if n == current {
            status = "open"
        } else if let record {
            if record.settled {
                status = "settled"
            } else if let active = cursor.active, active.batch == n {
                status = "settling"
                poolGrains = active.poolGrains; paidGrains = active.paidGrains; paidParticipants = active.paidParticipants
            } else {
                status = "closed"
            }
        } else {
            status = n < cursor.nextBatch ? "carried" : "closed"
        }
        // Paid participants are in the payout index, unpaid ones in the state; both in
        // ascending vehicle-id order. Merge one page from the two.
        let paid = try ChainIndex.payouts(batch: n, after: after, limit: pageSize + 1, in: v.store)
        var unpaid: [(Hash256, Participant)] = []
        let prefix = StateKey.participants(batch: n)
        try v.store.scan(column: Ledger.stateColumn, from: after.map { prefix + $0.bytes + [0x00] } ?? prefix,
                         to: prefixSuccessor(prefix)) { key, value in
            unpaid.append((Hash256(unchecked: Array(key[9..<41])), try Participant(canonicalBytes: value)))
            return unpaid.count <= pageSize
        }
        // One list in vehicle-id order: (vehicle, owner, metres, payout if paid).
        var merged: [(Hash256, Address, UInt64, ChainIndex.PayoutRecord?)] = []
        var i = 0, j = 0
        while merged.count <= pageSize, i < paid.count || j < unpaid.count {
            if j >= unpaid.count || (i < paid.count && paid[i].vehicle < unpaid[j].0) {
                merged.append((paid[i].vehicle, paid[i].record.owner, paid[i].record.metres, paid[i].record))
                i += 1
            } else {
                merged.append((unpaid[j].0, unpaid[j].1.owner, unpaid[j].1.metres, nil))
                j += 1
            }
        }
        let more = merged.count > pageSize
        let page = merged.prefix(pageSize)
        let distances: [JSONValue] = page.map {
            ["vehicleId": .string($0.0.hex), "owner": .string($0.1.text), "metres": .u64($0.2)]
        }
        let payouts: [JSONValue] = page.compactMap { entry in
            entry.3.map { ["vehicleId": .string(entry.0.hex), "owner": .string(entry.1.text),
                           "grains": .amount($0.grains), "height": .u64($0.height)] }
        }
        let last = page.last?.0
        let participants = record?.participants ?? 0
        return [
            "index": .u64(n), "status": .string(status), "height": .u64(v.height),
            "startTime": .u64(v.genesis.genesisTime + n * e.batchSeconds),
            "endTime": .u64(v.genesis.genesisTime + (n + 1) * e.batchSeconds),
            "dropGrains": .amount(e.schedule.drop(batch: n)), "poolGrains": .amount(poolGrains),
            "totalMetres": .u64(record?.totalMetres ?? 0), "participants": .u64(participants),
            "paidGrains": .amount(paidGrains), "paidParticipants": .u64(paidParticipants),
            "distances": .array(distances), "payouts": .array(payouts),
            "nextCursor": more ? .string(last!.hex) : .null,
        ]
    }

    func supply() throws -> JSONValue {
        let v = try view()
        let g = v.global
        let scheduled = v.genesis.economics.schedule.cumulative(before: v.currentBatch)
        return [
            "totalGrains": .amount(g.supply), "mileagePoolGrains": .amount(g.mileagePoolGrains),
            "cultivationPoolGrains": .amount(g.cultivationPoolGrains), "balancesGrains": .amount(g.balancesGrains),
            "treasuryGrains": .amount(g.treasuryGrains), "escrowGrains": .amount(g.escrowGrains),
            "mintedMileageGrains": .amount(g.mileagePaidGrains), "scheduledMileageGrains": .amount(scheduled),
            "carriedMileageGrains": .amount(g.mileage.carryGrains),
            "cultivationPaidGrains": .amount(g.cultivationPaidGrains),
            "cultivationReservedGrains": .amount(g.cultivationReservedGrains),
            "height": .u64(v.height),
        ]
    }

    /// The economic parameters of the committed state (governance may have changed some
    /// since genesis) and the consensus parameters of genesis, each written as genesis.json
    /// writes it (GenesisJSON: the same names, amounts as decimal strings).
    func parameters() throws -> JSONValue {
        let v = try view()
        guard let e: EconomicParameters = try v.record(StateKey.parameters) else {
            throw RPCError.unavailable(code: "node.no_state_view", "the committed state holds no parameters record")
        }
        var inForce = v.genesis
        inForce.economics = e
        let document = try JSONValue.parse(inForce.json())
        guard let economics = document["economics"], let consensus = document["consensus"] else {
            preconditionFailure("genesis JSON without economics or consensus")
        }
        return ["height": .u64(v.height), "economics": economics, "consensus": consensus]
    }

    static let rarityNames = Rarity.allCases.map(\.description)

    func season(_ p: RPCParams) throws -> JSONValue {
        let id = try NodeRPC.id(p, "season")
        let v = try view()
        let key = StateKey.season(id)
        guard let s: Season = try v.record(key) else {
            throw RPCError.notFound(code: "season.not_found", "no season \(id) (seasons are numbered from 0 in opening order)")
        }
        let t = s.terms
        return .object([
            ("id", .string(String(id))), ("height", .u64(v.height)), ("priceCrystals", .u64(t.priceCrystals)),
            ("oddsPPM", .object(zip(NodeRPC.rarityNames, t.oddsPPM).map { ($0, .u64(UInt64($1))) })),
            ("prizes", .object(zip(NodeRPC.rarityNames, t.prizes).map {
                ($0, ["stoneGrains": .amount($1.stoneGrains), "substituteCrystals": .u64($1.substituteCrystals)])
            })),
            ("budgetGrains", .amount(t.budgetGrains)), ("budgetLeftGrains", .amount(s.budgetLeftGrains)),
            ("startTime", .u64(t.startTime)), ("endTime", .u64(t.endTime)), ("commitment", .string(t.commitment.hex)),
            ("chainTip", .string(s.chainTip.hex)), ("responseWindowSeconds", .u64(t.responseWindowSeconds)),
            ("requests", .u64(s.requests)), ("settled", .u64(s.settled)), ("closed", .bool(s.closed)),
        ] + (try proofMember(p, key, v)))
    }

    func draw(_ p: RPCParams) throws -> JSONValue {
        let text = try p.string("id")
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let season = NodeRPC.decimalID(parts[0]), let index = NodeRPC.decimalID(parts[1]) else {
            throw RPCError.invalidParams("param \"id\" of draw_get must be \"SEASON/INDEX\" in decimal, such as \"0/3\", got \"\(text.prefix(40))\"")
        }
        let v = try view()
        let notFound = RPCError.notFound(code: "draw.not_found", "season \(season) has no draw request \(index)")
        guard let s: Season = try v.record(StateKey.season(season)), index < s.requests else { throw notFound }
        var m: [(String, JSONValue)] = [("id", .string("\(season)/\(index)")), ("seasonId", .string(String(season))),
                                        ("index", .u64(index)), ("height", .u64(v.height))]
        if let pendingDraw: DrawRequest = try v.record(StateKey.draw(season: season, index: index)) {
            let requested = try ChainIndex.drawRequest(season: season, index: index, in: v.store)
            m += [("status", "pending"), ("requester", .string(pendingDraw.requester.text)), ("crystals", .u64(pendingDraw.crystals)),
                  ("deadline", .u64(pendingDraw.deadline)), ("requestHeight", .u64(pendingDraw.height)),
                  ("requestTransaction", requested.map { .string($0.transaction.hex) } ?? .null), ("outcome", .null)]
            return .object(m)
        }
        guard let requested = try ChainIndex.drawRequest(season: season, index: index, in: v.store),
              let outcome = try ChainIndex.drawOutcome(season: season, index: index, in: v.store) else {
            // Settled before this node kept the draw index (not possible for a node synced from genesis).
            throw notFound
        }
        m += [("status", .string(outcome.kind == .answered ? "answered" : "refunded")),
              ("requester", .string(requested.requester.text)), ("crystals", .u64(s.terms.priceCrystals)),
              ("deadline", .u64(requested.deadline)), ("requestHeight", .u64(requested.height)),
              ("requestTransaction", .string(requested.transaction.hex)),
              ("outcome", NodeRPC.outcomeJSON(outcome))]
        return .object(m)
    }

    static func outcomeJSON(_ o: ChainIndex.DrawOutcomeRecord) -> JSONValue {
        [
            "kind": .string(o.kind == .answered ? "answered" : "refunded"),
            "rarity": o.rarity.map { .string($0.description) } ?? .null, "roll": .u64(o.roll),
            "stoneGrains": .amount(o.stoneGrains), "crystals": .u64(o.crystals), "height": .u64(o.height),
            "transaction": o.kind == .answered ? .string(o.transaction.hex) : .null,
        ]
    }

    func catalog(_ p: RPCParams) throws -> JSONValue {
        let pageSize = try limit(p)
        let merchant: Address? = p.has("merchant") ? try p.address("merchant") : nil
        let v = try view()
        var start: [UInt8] = [0x0A] + (merchant?.bytes ?? [])
        let end = prefixSuccessor(start)
        if p.has("cursor") {
            let c = try p.bytes("cursor", bytesMax: Address.byteCount + Limits.itemIDBytesMax)
            guard c.count > Address.byteCount, merchant.map({ Array(c.prefix(Address.byteCount)) == $0.bytes }) ?? true else {
                throw RPCError.invalidParams("param \"cursor\" of catalog_list is not a cursor this method returned for these params")
            }
            start = [0x0A] + c + [0x00]
        }
        var items: [JSONValue] = []
        var lastKey: [UInt8]?
        var more = false
        try v.store.scan(column: Ledger.stateColumn, from: start, to: end) { key, value in
            guard items.count < pageSize else { more = true; return false }
            let owner = try Address(bytes: Array(key[1...Address.byteCount]))
            let itemID = String(decoding: key[(1 + Address.byteCount)...], as: UTF8.self)
            let item = try CatalogItem(canonicalBytes: value)
            items.append([
                "merchant": .string(owner.text), "id": .string(itemID), "title": .string(item.title),
                "priceGrains": .amount(item.priceGrains), "stock": .u64(item.stock), "eligibility": NodeJSON.rule(item.rule),
            ])
            lastKey = Array(key.dropFirst())
            return true
        }
        return [
            "height": .u64(v.height), "items": .array(items),
            "nextCursor": more ? .hex(lastKey!) : .null,
        ]
    }

    func redemption(_ p: RPCParams) throws -> JSONValue {
        let id = try NodeRPC.id(p, "redemption")
        let v = try view()
        let key = StateKey.redemption(id)
        guard let r: Redemption = try v.record(key) else {
            throw RPCError.notFound(code: "redemption.not_found", "no redemption \(id) (redemptions are numbered from 0)")
        }
        let status = switch r.status {
        case .pending: "pending"
        case .fulfilled: "fulfilled"
        case .rejected: "rejected"
        }
        return .object([
            ("id", .string(String(id))), ("height", .u64(v.height)), ("redeemer", .string(r.redeemer.text)),
            ("merchant", .string(r.merchant.text)), ("itemId", .string(r.itemID)), ("priceGrains", .amount(r.priceGrains)),
            ("status", .string(status)),
        ] + (try proofMember(p, key, v)))
    }

    // MARK: Subscriptions

    static func publish(_ committed: CommittedBlock, to server: RPCServer) {
        let block = committed.block
        let h = block.height
        server.publish(topic: "newBlocks", payload: [
            "height": .u64(h), "hash": .string(block.hash.hex), "header": NodeJSON.header(block.header),
            "transactionHashes": .array(block.transactions.map { .string(SM3.hash($0).hex) }),
            "systemTransactions": .u64(UInt64(block.systemTransactions.count)),
        ])
        for (i, raw) in block.transactions.enumerated() {
            let r = committed.results[i]
            let tx = try? SignedTransaction(canonicalBytes: raw)
            let (kind, accounts, vehicles) = NodeJSON.touched(tx, events: r.events)
            var payload: [(String, JSONValue)] = [
                ("hash", .string((r.hash ?? SM3.hash(raw)).hex)), ("height", .u64(h)), ("index", .u64(UInt64(i))),
                ("kind", .string(kind)), ("sender", tx.map { .string($0.sender.text) } ?? .null),
                ("status", .string(r.error == nil ? "committed" : "rejected")),
                ("error", r.error.map { NodeJSON.transactionError(code: $0.code, reason: $0.message) } ?? .null),
                ("events", .array(r.events.map(NodeJSON.event))),
                ("accounts", .array(accounts.map { .string($0.text) })), ("vehicles", .array(vehicles.map { .string($0.hex) })),
            ]
            server.publish(topic: "transactions", matching: { filter in
                if let a = filter.value("account")?.stringValue {
                    guard let wanted = try? Address(text: a), accounts.contains(wanted) else { return false }
                }
                if let id = filter.value("vehicleId")?.stringValue {
                    guard let wanted = try? Hash256(hex: id), vehicles.contains(wanted) else { return false }
                }
                return true
            }, payload: .object(payload))
            for e in r.events where e.kind == "draw.result" {
                publishDraw(e, height: h, transaction: r.hash, to: server)
            }
        }
        for e in committed.systemEvents {
            switch e.kind {
            case "mileage.batch_settled":
                server.publish(topic: "batchDrops", payload: [
                    "kind": "settled", "height": .u64(h), "batch": .u64(UInt64(e["batch"] ?? "") ?? 0),
                    "poolGrains": .string(e["pool"] ?? "0"), "paidGrains": .string(e["paid"] ?? "0"),
                    "remainderGrains": .string(e["remainder"] ?? "0"),
                ])
            case "mileage.empty_batches":
                server.publish(topic: "batchDrops", payload: [
                    "kind": "carried", "height": .u64(h), "fromBatch": .u64(UInt64(e["from"] ?? "") ?? 0),
                    "toBatch": .u64(UInt64(e["to"] ?? "") ?? 0), "carriedGrains": .string(e["carried"] ?? "0"),
                ])
            case "draw.refunded":
                publishDraw(e, height: h, transaction: nil, to: server)
            default:
                break
            }
        }
    }

    static func publishDraw(_ e: Event, height: UInt64, transaction: Hash256?, to server: RPCServer) {
        let season = e["season"] ?? "", index = e["index"] ?? "", requester = e["requester"] ?? ""
        let answered = e.kind == "draw.result"
        let payload: JSONValue = [
            "id": .string("\(season)/\(index)"), "seasonId": .string(season), "index": .u64(UInt64(index) ?? 0),
            "requester": .string(requester), "kind": .string(answered ? "answered" : "refunded"),
            "rarity": answered ? .string(e["rarity"] ?? "") : .null, "roll": .u64(UInt64(e["roll"] ?? "0") ?? 0),
            "stoneGrains": .string(e["stoneGrains"] ?? "0"), "crystals": .u64(UInt64(e["crystals"] ?? "0") ?? 0),
            "height": .u64(height), "transaction": transaction.map { .string($0.hex) } ?? .null,
        ]
        server.publish(topic: "drawResults", matching: { filter in
            if let a = filter.value("account")?.stringValue {
                guard let wanted = try? Address(text: a), (try? Address(text: requester)) == wanted else { return false }
            }
            if let s = filter.value("seasonId")?.stringValue, s != season { return false }
            return true
        }, payload: payload)
    }
}
