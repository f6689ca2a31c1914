import QuarryConsensus
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryRPC

/// JSON Schemas of the node's results, built from a few pieces so that the served registry
/// and docs/openrpc.json say exactly the same thing (OpenRPC.differences compares them).
enum Schema {
    static let u64 = RPCParamType.unsignedInteger.schema
    static let u32: JSONValue = ["type": "integer", "minimum": 0, "maximum": .integer(UInt64(UInt32.max))]
    static let grains = RPCParamType.amount.schema
    static let hash = RPCParamType.hash.schema
    static let address = RPCParamType.address.schema
    static let hex: JSONValue = ["type": "string", "pattern": "^([0-9a-f]{2})*$"]
    static let string: JSONValue = ["type": "string"]
    static let boolean: JSONValue = ["type": "boolean"]
    static let null: JSONValue = ["type": "null"]

    static func nullable(_ s: JSONValue) -> JSONValue { ["oneOf": [s, null]] }
    static func array(_ items: JSONValue) -> JSONValue { ["type": "array", "items": items] }
    static func enumeration(_ values: [String]) -> JSONValue { ["type": "string", "enum": .array(values.map { .string($0) })] }
    static func described(_ s: JSONValue, _ text: String) -> JSONValue {
        guard case .object(var members) = s else { return s }
        members.append(("description", .string(text)))
        return .object(members)
    }

    /// An object with exactly these properties; all are required unless listed in `optional`.
    static func object(_ properties: [(String, JSONValue)], optional: [String] = []) -> JSONValue {
        [
            "type": "object",
            "properties": .object(properties),
            "required": .array(properties.map(\.0).filter { !optional.contains($0) }.map { .string($0) }),
            "additionalProperties": false,
        ]
    }

    static let event = object([
        ("kind", described(string, "What happened, e.g. claim.accepted, mileage.payout (docs/spec/transactions.md).")),
        ("attributes", ["type": "object", "additionalProperties": string,
                        "description": "The event's attributes, every value a string (amounts in grains, ids in hex or decimal)."]),
    ])

    static let transactionError = object([
        ("code", described(string, "Stable code of the ledger's reason, e.g. claim.odometer_overlap.")),
        ("reason", described(string, "Human-readable reason.")),
    ])

    static let header = object([
        ("version", u64), ("chainId", string), ("height", u64),
        ("timeMilliseconds", described(u64, "Block time, Unix milliseconds (BFT time, docs/spec/consensus.md).")),
        ("previousBlockHash", hash), ("lastCommitHash", hash), ("transactionsRoot", hash), ("resultsRoot", hash),
        ("stateRoot", described(hash, "Root of the state tree after this block (docs/spec/state.md).")),
        ("validatorsHash", hash), ("proposer", described(u64, "Index of the proposer in the validator set.")),
    ])

    static let certificate = object([
        ("height", u64), ("round", u64), ("blockId", hash),
        ("signatures", array(object([("validator", u64), ("timestamp", u64), ("signature", hex)]))),
    ])

    static let systemTransaction = object([
        ("hash", described(hash, "SM3 of the canonical encoding (a leaf of transactionsRoot).")),
        ("kind", enumeration(["carryEmptyBatches", "settleBatch", "refundDraw", "activateValidatorSet"])),
        ("encoded", described(hex, "Canonical encoding (docs/spec/transactions.md).")),
        ("fromBatch", u64), ("toBatch", u64), ("carriedGrains", grains),
        ("batch", u64), ("poolGrains", grains), ("totalMetres", u64), ("participantsPaid", u64), ("paidGrains", grains),
        ("complete", boolean),
        ("seasonId", string), ("requestIndex", u64), ("crystals", u64),
        ("validators", u64), ("totalPower", u64),
    ], optional: ["fromBatch", "toBatch", "carriedGrains", "batch", "poolGrains", "totalMetres", "participantsPaid",
                  "paidGrains", "complete", "seasonId", "requestIndex", "crystals", "validators", "totalPower"])

    static let proof = described(object([
        ("height", described(u64, "Height of the block whose header.stateRoot the proof is against.")),
        ("stateRoot", hash),
        ("key", described(hex, "The state key (docs/spec/state.md, section 2).")),
        ("value", described(nullable(hex), "The canonical record under the key; null when the key is absent.")),
        ("siblings", described(array(hash), "Sibling hashes from the root downwards.")),
        ("terminal", object([("kind", enumeration(["empty", "leaf"])), ("keyHash", hash), ("valueHash", hash)],
                            optional: ["keyHash", "valueHash"])),
        ("encoded", described(hex, "The canonical StateProof encoding.")),
    ]), "A Merkle proof of value (or absence) under key against the state root of block height (docs/spec/json-rpc.md, Proofs).")
}

extension JSONValue {
    static func u64(_ v: UInt64) -> JSONValue { .integer(v) }
    static func u32(_ v: UInt32) -> JSONValue { .integer(UInt64(v)) }
}

/// JSON forms of the node's values (docs/spec/json-rpc.md).
enum NodeJSON {
    static func header(_ h: BlockHeader) -> JSONValue {
        [
            "version": .u64(UInt64(h.version)), "chainId": .string(h.chainID), "height": .u64(h.height),
            "timeMilliseconds": .u64(h.timeMilliseconds), "previousBlockHash": .string(h.previousBlockHash.hex),
            "lastCommitHash": .string(h.lastCommitHash.hex), "transactionsRoot": .string(h.transactionsRoot.hex),
            "resultsRoot": .string(h.resultsRoot.hex), "stateRoot": .string(h.stateRoot.hex),
            "validatorsHash": .string(h.validatorsHash.hex), "proposer": .u64(UInt64(h.proposer)),
        ]
    }

    static func certificate(_ c: CommitCertificate) -> JSONValue {
        [
            "height": .u64(c.height), "round": .u64(UInt64(c.round)), "blockId": .string(c.blockID.hex),
            "signatures": .array(c.signatures.map {
                ["validator": .u64(UInt64($0.validator)), "timestamp": .u64($0.timestamp), "signature": .hex($0.signature)]
            }),
        ]
    }

    static func systemTransaction(_ t: SystemTransaction) -> JSONValue {
        let bytes = t.canonicalBytes
        var m: [(String, JSONValue)] = [("hash", .string(SM3.hash(bytes).hex))]
        switch t {
        case .carryEmptyBatches(let from, let to, let grains):
            m += [("kind", "carryEmptyBatches"), ("fromBatch", .u64(from)), ("toBatch", .u64(to)), ("carriedGrains", .amount(grains))]
        case .settleBatch(let batch, let pool, let metres, let paidCount, let paid, let complete):
            m += [("kind", "settleBatch"), ("batch", .u64(batch)), ("poolGrains", .amount(pool)), ("totalMetres", .u64(metres)),
                  ("participantsPaid", .u64(paidCount)), ("paidGrains", .amount(paid)), ("complete", .bool(complete))]
        case .refundDraw(let season, let index, let crystals):
            m += [("kind", "refundDraw"), ("seasonId", .string(String(season))), ("requestIndex", .u64(index)),
                  ("crystals", .u64(crystals))]
        case .activateValidatorSet(let count, let power):
            m += [("kind", "activateValidatorSet"), ("validators", .u64(count)), ("totalPower", .u64(power))]
        }
        m.append(("encoded", .hex(bytes)))
        return .object(m)
    }

    static func event(_ e: Event) -> JSONValue {
        // Attribute keys are unique within an event (the ledger writes each once).
        ["kind": .string(e.kind), "attributes": .object(e.attributes.map { ($0.key, .string($0.value)) })]
    }

    static func transactionError(code: String, reason: String) -> JSONValue {
        ["code": .string(code), "reason": .string(reason)]
    }

    static func proof(key: [UInt8], value: [UInt8]?, proof: StateProof, height: UInt64, stateRoot: Hash256) -> JSONValue {
        let terminal: JSONValue
        switch proof.terminal {
        case .empty: terminal = ["kind": "empty"]
        case .leaf(let k, let v): terminal = ["kind": "leaf", "keyHash": .string(k.hex), "valueHash": .string(v.hex)]
        }
        return [
            "height": .u64(height), "stateRoot": .string(stateRoot.hex), "key": .hex(key),
            "value": value.map { .hex($0) } ?? .null, "siblings": .array(proof.siblings.map { .string($0.hex) }),
            "terminal": terminal, "encoded": .hex(proof.canonicalBytes),
        ]
    }

    static func rule(_ r: EligibilityRule) -> JSONValue {
        ["model": r.model.map { .string($0) } ?? .null, "cohortTag": r.cohortTag.map { .string($0) } ?? .null,
         "minimumMetresLastYear": .u64(r.minimumMetresLastYear)]
    }

    static let ruleSchema = Schema.object([
        ("model", Schema.nullable(Schema.string)), ("cohortTag", Schema.nullable(Schema.string)),
        ("minimumMetresLastYear", Schema.u64),
    ])

    /// What a transaction is and which accounts and vehicles it touches: the signer, every
    /// account or vehicle named in its payload, and every one named in its events.
    static func touched(_ tx: SignedTransaction?, events: [Event]) -> (kind: String, accounts: [Address], vehicles: [Hash256]) {
        var accounts: [Address] = []
        var vehicles: [Hash256] = []
        var kind = "undecodable"
        if let tx {
            accounts.append(tx.sender)
            switch tx.body.payload {
            case .registerVehicle(let id, let key, _, _, let owner, _):
                kind = "registerVehicle"; accounts += [owner, Address(publicKey: key)]; vehicles.append(id)
            case .changeOwner(let id, let owner): kind = "changeOwner"; accounts.append(owner); vehicles.append(id)
            case .deactivateVehicle(let id): kind = "deactivateVehicle"; vehicles.append(id)
            case .signAgreement: kind = "signAgreement"
            case .revokeAgreement: kind = "revokeAgreement"
            case .mileageClaim(let c): kind = "mileageClaim"; vehicles.append(c.vehicleID)
            case .grantCrystals(let to, _): kind = "grantCrystals"; accounts.append(to)
            case .openSeason: kind = "openSeason"
            case .drawRequest: kind = "drawRequest"
            case .drawResult: kind = "drawResult"
            case .closeSeason: kind = "closeSeason"
            case .upsertItem: kind = "upsertItem"
            case .redeem(let merchant, _, let vehicle):
                kind = "redeem"; accounts.append(merchant); if let vehicle { vehicles.append(vehicle) }
            case .fulfilRedemption: kind = "fulfilRedemption"
            case .rejectRedemption: kind = "rejectRedemption"
            case .transfer(let to, _): kind = "transfer"; accounts.append(to)
            case .propose: kind = "propose"
            case .vote: kind = "vote"
            }
        }
        for e in events {
            for a in e.attributes {
                if addressAttributes.contains(a.key), let address = try? Address(text: a.value) { accounts.append(address) }
                if a.key == "vehicle", let id = try? Hash256(hex: a.value) { vehicles.append(id) }
            }
        }
        var seenA = Set<Address>(), seenV = Set<Hash256>()
        return (kind, accounts.filter { seenA.insert($0).inserted }, vehicles.filter { seenV.insert($0).inserted })
    }

    static let addressAttributes: Set<String> = ["from", "to", "owner", "merchant", "proposer", "redeemer", "requester", "validator"]

    static let transactionKinds = [
        "registerVehicle", "changeOwner", "deactivateVehicle", "signAgreement", "revokeAgreement", "mileageClaim",
        "grantCrystals", "openSeason", "drawRequest", "drawResult", "closeSeason", "upsertItem", "redeem",
        "fulfilRedemption", "rejectRedemption", "transfer", "propose", "vote", "undecodable",
    ]

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC) for Unix milliseconds, computed with integers only.
    static func iso8601(milliseconds: UInt64) -> String {
        let seconds = milliseconds / 1_000
        let days = Int64(seconds / 86_400)
        let secondOfDay = seconds % 86_400
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(Int64(secondOfDay / 3_600), 2)):"
            + "\(pad(Int64(secondOfDay / 60 % 60), 2)):\(pad(Int64(secondOfDay % 60), 2)).\(pad(Int64(milliseconds % 1_000), 3))Z"
    }
}
