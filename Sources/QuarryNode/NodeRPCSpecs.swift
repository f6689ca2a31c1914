import QuarryCore
import QuarryLedger
import QuarryRPC

/// The declarations of the node's methods and topics: names, params, result schemas. The
/// OpenRPC document (docs/openrpc.json) must describe exactly these (tested).
extension NodeRPC {
    public struct MethodSpec: Sendable {
        public let name: String
        public let summary: String
        public let params: [RPCParamSpec]
        public let result: JSONValue
    }

    static let proofParam = RPCParamSpec("proof", .boolean, required: false,
                                         summary: "Include a state proof against the state root of the block at the result's height.")
    static let limitParam = RPCParamSpec("limit", .unsignedInteger, required: false,
                                         summary: "Entries per page: 1 to 1000 (default 100).")

    static let transactionStatus = Schema.enumeration(["pending", "committed", "rejected", "unknown"])
    static let transactionResult = Schema.described(Schema.object([("events", Schema.array(Schema.event))]),
                                                    "What the transaction did: its events, in order.")

    static let drawOutcome = Schema.object([
        ("kind", Schema.enumeration(["answered", "refunded"])),
        ("rarity", Schema.described(Schema.nullable(Schema.enumeration(rarityNames)), "The rarity drawn; null for a refund.")),
        ("roll", Schema.described(Schema.u64, "The roll in [0, 1000000) derived from the revealed pre-image (0 for a refund).")),
        ("stoneGrains", Schema.described(Schema.grains, "Stones paid (vehicle owners only, within the season budget).")),
        ("crystals", Schema.described(Schema.u64, "Crystals given: the substitute prize, or the refund.")),
        ("height", Schema.u64),
        ("transaction", Schema.described(Schema.nullable(Schema.hash), "The result transaction; null for a refund.")),
    ])

    static func rarityMap(_ value: JSONValue) -> JSONValue {
        Schema.object(rarityNames.map { ($0, value) })
    }

    /// Every method the node serves, in the order of docs/openrpc.json.
    public static let methods: [MethodSpec] = [
        MethodSpec(name: "node_status", summary: "The node's chain, identity, latest block and sync state.", params: [],
                   result: Schema.object([
                       ("chainId", Schema.string),
                       ("nodeId", Schema.described(Schema.hex, "The node's P2P id (20 bytes: see docs/spec/p2p.md).")),
                       ("height", Schema.described(Schema.u64, "Height of the latest committed block (0 before the first).")),
                       ("latestBlockHash", Schema.described(Schema.hash, "Hash of that block (the genesis hash at height 0).")),
                       ("latestBlockTime", Schema.described(Schema.string, "Its block time, ISO 8601 UTC with milliseconds (the genesis time at height 0).")),
                       ("latestBlockTimeMilliseconds", Schema.described(Schema.u64, "The same time, Unix milliseconds.")),
                       ("catchingUp", Schema.described(Schema.boolean, "True while block sync fetches blocks or a peer announced a height more than one ahead.")),
                       ("validator", Schema.described(Schema.boolean, "True when this node signs votes: it has a consensus key in the validator set in force.")),
                       ("genesisHash", Schema.hash),
                       ("highestPeerHeight", Schema.described(Schema.u64, "The highest height a connected peer announced.")),
                       ("mempoolTransactions", Schema.described(Schema.u64, "Transactions waiting in this node's mempool.")),
                   ])),
        MethodSpec(name: "chain_getBlock",
                   summary: "A committed block: header, system transactions, transaction hashes, results and commit certificate.",
                   params: [RPCParamSpec("height", .unsignedInteger, summary: "Block height, from 1.")],
                   result: Schema.object([
                       ("hash", Schema.described(Schema.hash, "The block id: SM3(string \"quarry/block/v1\" || canonical header) (docs/spec/blocks.md).")),
                       ("header", Schema.header),
                       ("lastCommit", Schema.described(Schema.nullable(Schema.certificate), "The certificate of the previous block carried in this block (null at height 1).")),
                       ("systemTransactions", Schema.array(Schema.systemTransaction)),
                       ("transactionHashes", Schema.described(Schema.array(Schema.hash), "SM3 of each client transaction, in block order.")),
                       ("results", Schema.described(Schema.array(Schema.object([("hash", Schema.hash), ("code", Schema.string)])),
                                                    "Per client transaction: its hash and error code (empty on success); the leaves of resultsRoot.")),
                       ("commit", Schema.described(Schema.certificate, "The certificate that finalised this block.")),
                   ])),
        MethodSpec(name: "chain_getValidators",
                   summary: "The validator set in force at a height (the one that certifies that block); default: the latest height.",
                   params: [RPCParamSpec("height", .unsignedInteger, required: false, summary: "Block height, 1 to latest + 1; latest when absent.")],
                   result: Schema.object([
                       ("height", Schema.u64),
                       ("validatorsHash", Schema.described(Schema.hash, "Equals header.validatorsHash of the block at this height.")),
                       ("totalVotingPower", Schema.u64),
                       ("validators", Schema.array(Schema.object([
                           ("name", Schema.string), ("publicKey", Schema.hex), ("scheme", Schema.enumeration(["sm2", "secp256k1"])),
                           ("address", Schema.address), ("votingPower", Schema.u64),
                       ]))),
                   ])),
        MethodSpec(name: "tx_submit", summary: "Submits a signed transaction and waits as asked.",
                   params: [
                       RPCParamSpec("tx", .hex(byteCount: nil, bytesMax: 65_536), summary: "The canonical encoding of the signed transaction, lowercase hex."),
                       RPCParamSpec("wait", .oneOf(["none", "checked", "committed"]), required: false,
                                    summary: "none: return once decoded; checked: after admission to the mempool (default); committed: after inclusion in a committed block."),
                   ],
                   result: Schema.object([
                       ("hash", Schema.hash), ("status", Schema.enumeration(["pending", "committed"])),
                       ("height", Schema.u64), ("index", Schema.u32), ("result", transactionResult),
                   ], optional: ["height", "index", "result"])),
        MethodSpec(name: "tx_get", summary: "A transaction's status: pending in the mempool, committed (with its result), rejected by the ledger in a block (with the error), or unknown.",
                   params: [RPCParamSpec("hash", .hash, summary: "Transaction hash (SM3 of its canonical encoding), lowercase hex.")],
                   result: Schema.object([
                       ("hash", Schema.hash), ("status", transactionStatus), ("height", Schema.u64), ("index", Schema.u32),
                       ("result", transactionResult), ("error", Schema.transactionError),
                   ], optional: ["height", "index", "result", "error"])),
        MethodSpec(name: "account_get", summary: "An account's balance, nonce, crystals and consent, optionally with a state proof.",
                   params: [RPCParamSpec("address", .address, summary: "Account address (Bech32m, quarry1...)."), proofParam],
                   result: Schema.object([
                       ("address", Schema.address), ("height", Schema.u64), ("balanceGrains", Schema.grains),
                       ("nonce", Schema.described(Schema.u64, "The nonce the account's next transaction must carry.")),
                       ("crystals", Schema.u64),
                       ("agreement", Schema.described(Schema.nullable(Schema.hash), "Version digest of the data-rights agreement signed (null: none or revoked).")),
                       ("activeVehicles", Schema.u32), ("proof", Schema.proof),
                   ], optional: ["proof"])),
        MethodSpec(name: "vehicle_get", summary: "A registered vehicle, optionally with a state proof.",
                   params: [RPCParamSpec("vehicleId", .hash, summary: "The vehicle id (salted SM3 digest of the VIN), lowercase hex."), proofParam],
                   result: Schema.object([
                       ("vehicleId", Schema.hash), ("height", Schema.u64), ("owner", Schema.address),
                       ("publicKey", Schema.described(Schema.hex, "The vehicle's key (signs its mileage claims).")),
                       ("scheme", Schema.enumeration(["sm2", "secp256k1"])),
                       ("address", Schema.described(Schema.address, "Address of the vehicle's key (the sender of its claims).")),
                       ("model", Schema.string), ("cohortTags", Schema.array(Schema.string)), ("active", Schema.boolean),
                       ("odometerMetres", Schema.described(Schema.u64, "Odometer at the end of the last accepted claim (or at registration).")),
                       ("lastSpanEnd", Schema.described(Schema.u64, "End time (Unix seconds) of the last accepted claim.")),
                       ("totalClaimedMetres", Schema.u64),
                       ("metresInTrailingYear", Schema.described(Schema.u64, "Metres claimed in the 53 chain weeks up to the latest block (eligibility rules use it).")),
                       ("proof", Schema.proof),
                   ], optional: ["proof"])),
        MethodSpec(name: "batch_get", summary: "A mileage batch: its drop, pool, claimed distances and payouts (paged by vehicle id).",
                   params: [
                       RPCParamSpec("index", .unsignedInteger, summary: "Batch index n (window [genesis + n*batchSeconds, genesis + (n+1)*batchSeconds))."),
                       RPCParamSpec("cursor", .hash, required: false, summary: "nextCursor of the previous page: the entries after this vehicle id."),
                       limitParam,
                   ],
                   result: Schema.object([
                       ("index", Schema.u64),
                       ("status", Schema.described(Schema.enumeration(["open", "closed", "settling", "settled", "carried"]),
                                                   "open: the current batch; closed: ended, not yet paid; settling: being paid in chunks; settled: paid; carried: ended without claims, its drop rolled on.")),
                       ("height", Schema.u64), ("startTime", Schema.u64), ("endTime", Schema.u64),
                       ("dropGrains", Schema.described(Schema.grains, "The batch's own drop from the schedule.")),
                       ("poolGrains", Schema.described(Schema.grains, "Drop plus everything carried in, once settlement started (else 0).")),
                       ("totalMetres", Schema.u64), ("participants", Schema.u64), ("paidGrains", Schema.grains), ("paidParticipants", Schema.u64),
                       ("distances", Schema.described(Schema.array(Schema.object([("vehicleId", Schema.hash), ("owner", Schema.address), ("metres", Schema.u64)])),
                                                      "This page's participants, ascending by vehicle id.")),
                       ("payouts", Schema.described(Schema.array(Schema.object([("vehicleId", Schema.hash), ("owner", Schema.address),
                                                                                 ("grains", Schema.grains), ("height", Schema.u64)])),
                                                    "The payouts of this page's participants that are paid, with the height that paid them.")),
                       ("nextCursor", Schema.described(Schema.nullable(Schema.hash), "Pass as cursor for the next page; null on the last page.")),
                   ])),
        MethodSpec(name: "chain_getParameters",
                   summary: "The parameters in force at the latest block: economic ones as governance last set them, consensus ones from genesis.",
                   params: [],
                   result: Schema.object([
                       ("height", Schema.u64),
                       ("economics", Schema.described(Schema.object([
                           ("batchSeconds", Schema.u64), ("initialDropGrains", Schema.grains), ("halvingIntervalBatches", Schema.u64),
                           ("mileagePoolGrains", Schema.grains), ("cultivationPoolGrains", Schema.grains),
                           ("maxSpeedKmh", Schema.u64), ("claimStalenessSeconds", Schema.u64), ("clockToleranceSeconds", Schema.u64),
                           ("claimSpanMaxSeconds", Schema.u64), ("transfersEnabled", Schema.boolean),
                           ("settlementChunkMax", Schema.u64), ("refundChunkMax", Schema.u64),
                       ]), "Named as in genesis.json; maxSpeedKmh, the claim limits and transfersEnabled change by governance (setParameter).")),
                       ("consensus", Schema.described(Schema.object([
                           ("blockBytesMax", Schema.u64), ("blockTransactionsMax", Schema.u64), ("timeoutProposeMs", Schema.u64),
                           ("timeoutPrevoteMs", Schema.u64), ("timeoutPrecommitMs", Schema.u64), ("timeoutCommitMs", Schema.u64),
                       ]), "From genesis; no transaction changes them.")),
                   ])),
        MethodSpec(name: "supply_get", summary: "Where every grain is; the first six parts sum to totalGrains.", params: [],
                   result: Schema.object([
                       ("totalGrains", Schema.grains), ("mileagePoolGrains", Schema.grains), ("cultivationPoolGrains", Schema.grains),
                       ("balancesGrains", Schema.grains), ("treasuryGrains", Schema.grains), ("escrowGrains", Schema.grains),
                       ("mintedMileageGrains", Schema.described(Schema.grains, "Paid out by batch drops so far.")),
                       ("scheduledMileageGrains", Schema.described(Schema.grains, "The schedule's drops of every batch closed at the latest block time; minted never exceeds it.")),
                       ("carriedMileageGrains", Schema.described(Schema.grains, "Drops and remainders owed to the next settled batch.")),
                       ("cultivationPaidGrains", Schema.grains), ("cultivationReservedGrains", Schema.grains), ("height", Schema.u64),
                   ])),
        MethodSpec(name: "season_get", summary: "A blind-box season: price, odds, prizes, budget, times, randomness commitment and progress.",
                   params: [RPCParamSpec("id", .string(lengthMax: 64), summary: "Season id: decimal, from \"0\" in opening order."), proofParam],
                   result: Schema.object([
                       ("id", Schema.string), ("height", Schema.u64), ("priceCrystals", Schema.u64),
                       ("oddsPPM", Schema.described(rarityMap(Schema.u64), "Odds per rarity in parts per million (sum 1000000).")),
                       ("prizes", rarityMap(Schema.object([("stoneGrains", Schema.grains), ("substituteCrystals", Schema.u64)]))),
                       ("budgetGrains", Schema.grains), ("budgetLeftGrains", Schema.grains),
                       ("startTime", Schema.u64), ("endTime", Schema.u64),
                       ("commitment", Schema.described(Schema.hash, "Head of the operator's SM3 hash chain, published at opening.")),
                       ("chainTip", Schema.described(Schema.hash, "The last revealed pre-image (the commitment before the first result).")),
                       ("responseWindowSeconds", Schema.u64), ("requests", Schema.u64), ("settled", Schema.u64), ("closed", Schema.boolean),
                       ("proof", Schema.proof),
                   ], optional: ["proof"])),
        MethodSpec(name: "draw_get", summary: "A draw request and how it ended, if it has.",
                   params: [RPCParamSpec("id", .string(lengthMax: 64), summary: "Draw id \"SEASON/INDEX\", both decimal (index from 0 within the season).")],
                   result: Schema.object([
                       ("id", Schema.string), ("seasonId", Schema.string), ("index", Schema.u64), ("height", Schema.u64),
                       ("status", Schema.enumeration(["pending", "answered", "refunded"])),
                       ("requester", Schema.address), ("crystals", Schema.described(Schema.u64, "Crystals the request burnt.")),
                       ("deadline", Schema.described(Schema.u64, "Unix seconds; unanswered by then, it is refunded.")),
                       ("requestHeight", Schema.u64), ("requestTransaction", Schema.nullable(Schema.hash)),
                       ("outcome", Schema.nullable(drawOutcome)),
                   ])),
        MethodSpec(name: "catalog_list", summary: "The catalog items merchants list, by merchant then item id (paged).",
                   params: [
                       RPCParamSpec("merchant", .address, required: false, summary: "Only this merchant's items."),
                       RPCParamSpec("cursor", .hex(byteCount: nil, bytesMax: Address.byteCount + Limits.itemIDBytesMax), required: false,
                                    summary: "nextCursor of the previous page (opaque)."),
                       limitParam,
                   ],
                   result: Schema.object([
                       ("height", Schema.u64),
                       ("items", Schema.array(Schema.object([
                           ("merchant", Schema.address), ("id", Schema.string), ("title", Schema.string), ("priceGrains", Schema.grains),
                           ("stock", Schema.u64), ("eligibility", NodeJSON.ruleSchema),
                       ]))),
                       ("nextCursor", Schema.described(Schema.nullable(Schema.hex), "Pass as cursor for the next page; null on the last page.")),
                   ])),
        MethodSpec(name: "redemption_get", summary: "A redemption: redeemer, merchant, item, escrowed price and state.",
                   params: [RPCParamSpec("id", .string(lengthMax: 64), summary: "Redemption id: decimal, from \"0\"."), proofParam],
                   result: Schema.object([
                       ("id", Schema.string), ("height", Schema.u64), ("redeemer", Schema.address), ("merchant", Schema.address),
                       ("itemId", Schema.string), ("priceGrains", Schema.grains),
                       ("status", Schema.enumeration(["pending", "fulfilled", "rejected"])), ("proof", Schema.proof),
                   ], optional: ["proof"])),
    ]

    /// Every topic the node publishes.
    public static let topics: [RPCTopic] = [
        RPCTopic(name: "newBlocks", summary: "Each newly committed block (from consensus or block sync).",
                 payloadSchema: Schema.object([
                     ("height", Schema.u64), ("hash", Schema.hash), ("header", Schema.header),
                     ("transactionHashes", Schema.array(Schema.hash)),
                     ("systemTransactions", Schema.described(Schema.u64, "How many system transactions the block has.")),
                 ])),
        RPCTopic(name: "transactions", summary: "Each committed client transaction touching an account or a vehicle.",
                 filter: [
                     RPCParamSpec("account", .address, required: false, summary: "Only transactions that touch this account (listed in accounts)."),
                     RPCParamSpec("vehicleId", .hash, required: false, summary: "Only transactions that touch this vehicle (listed in vehicles)."),
                 ],
                 payloadSchema: Schema.object([
                     ("hash", Schema.hash), ("height", Schema.u64), ("index", Schema.u64),
                     ("kind", Schema.enumeration(NodeJSON.transactionKinds)), ("sender", Schema.nullable(Schema.address)),
                     ("status", Schema.enumeration(["committed", "rejected"])), ("error", Schema.nullable(Schema.transactionError)),
                     ("events", Schema.array(Schema.event)),
                     ("accounts", Schema.described(Schema.array(Schema.address), "The sender, accounts named in the payload, and accounts named in the events.")),
                     ("vehicles", Schema.described(Schema.array(Schema.hash), "Vehicles named in the payload or the events.")),
                 ])),
        RPCTopic(name: "batchDrops", summary: "Each settled batch drop, and each run of empty batches whose drops were carried on.",
                 payloadSchema: Schema.object([
                     ("kind", Schema.enumeration(["settled", "carried"])), ("height", Schema.u64),
                     ("batch", Schema.u64), ("poolGrains", Schema.grains), ("paidGrains", Schema.grains), ("remainderGrains", Schema.grains),
                     ("fromBatch", Schema.u64), ("toBatch", Schema.u64), ("carriedGrains", Schema.grains),
                 ], optional: ["batch", "poolGrains", "paidGrains", "remainderGrains", "fromBatch", "toBatch", "carriedGrains"])),
        RPCTopic(name: "drawResults", summary: "Each blind-box result and each refund of an expired draw.",
                 filter: [
                     RPCParamSpec("account", .address, required: false, summary: "Only draws of this account."),
                     RPCParamSpec("seasonId", .string(lengthMax: 64), required: false, summary: "Only draws of this season (decimal id)."),
                 ],
                 payloadSchema: Schema.object([
                     ("id", Schema.string), ("seasonId", Schema.string), ("index", Schema.u64), ("requester", Schema.address),
                     ("kind", Schema.enumeration(["answered", "refunded"])),
                     ("rarity", Schema.nullable(Schema.enumeration(rarityNames))), ("roll", Schema.u64),
                     ("stoneGrains", Schema.grains), ("crystals", Schema.u64), ("height", Schema.u64),
                     ("transaction", Schema.nullable(Schema.hash)),
                 ])),
    ]
}
