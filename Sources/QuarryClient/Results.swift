import QuarryCore
import QuarryRPC

/// Reading the members of a result object, with an error that names the member when the
/// node's answer does not have the documented shape.
extension JSONValue {
    func member(_ name: String, of what: String) throws(ClientError) -> JSONValue {
        guard case .object = self else { throw .malformedResponse("\(what) is not an object") }
        guard let v = self[name], !v.isNull else { throw .malformedResponse("\(what) has no \"\(name)\"") }
        return v
    }

    func string(_ name: String, of what: String) throws(ClientError) -> String {
        guard let s = try member(name, of: what).stringValue else { throw .malformedResponse("\(what).\(name) is not a string") }
        return s
    }

    func uint64(_ name: String, of what: String) throws(ClientError) -> UInt64 {
        guard let n = try member(name, of: what).numberValue?.uint64Value else {
            throw .malformedResponse("\(what).\(name) is not an integer in 0...2^64-1")
        }
        return n
    }

    func optionalUInt64(_ name: String, of what: String) throws(ClientError) -> UInt64? {
        guard let v = self[name], !v.isNull else { return nil }
        guard let n = v.numberValue?.uint64Value else { throw .malformedResponse("\(what).\(name) is not an integer in 0...2^64-1") }
        return n
    }

    /// An amount: a decimal string of grains below 2^64, digits only, no leading zeros.
    func grains(_ name: String, of what: String) throws(ClientError) -> UInt64 {
        let s = try string(name, of: what)
        guard let n = JSONValue.parseGrains(s) else { throw .malformedResponse("\(what).\(name) is not a decimal string of grains: \"\(s)\"") }
        return n
    }

    func bool(_ name: String, of what: String) throws(ClientError) -> Bool {
        guard let b = try member(name, of: what).boolValue else { throw .malformedResponse("\(what).\(name) is not a boolean") }
        return b
    }

    func hash(_ name: String, of what: String) throws(ClientError) -> Hash256 {
        let s = try string(name, of: what)
        guard s.utf8.count == 64, let h = try? Hash256(hex: s) else { throw .malformedResponse("\(what).\(name) is not a 32-byte hex hash") }
        return h
    }

    func address(_ name: String, of what: String) throws(ClientError) -> Address {
        let s = try string(name, of: what)
        guard let a = try? Address(text: s) else { throw .malformedResponse("\(what).\(name) is not an address: \"\(s)\"") }
        return a
    }

    /// `"0"` or digits without a leading zero, below 2^64 (the RPC amount format).
    static func parseGrains(_ s: String) -> UInt64? {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              s == "0" || !s.hasPrefix("0") else { return nil }
        return UInt64(s)
    }
}

/// How long `tx_submit` waits before it answers.
public enum WaitMode: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Answer as soon as the transaction is decoded and queued for checking.
    case none
    /// Answer once the mempool admitted it (signature, nonce window checked).
    case checked
    /// Answer once a committed block includes it, with the ledger's result.
    case committed

    public var description: String { rawValue }
}

/// `node_status`.
public struct NodeStatus: Sendable, Equatable {
    public let chainID: String
    public let nodeID: String
    public let height: UInt64
    public let latestBlockHash: Hash256
    public let latestBlockTime: String
    public let catchingUp: Bool
    public let validator: Bool
    public let raw: JSONValue

    public init(_ v: JSONValue) throws(ClientError) {
        let w = "node_status result"
        chainID = try v.string("chainId", of: w)
        nodeID = try v.string("nodeId", of: w)
        height = try v.uint64("height", of: w)
        latestBlockHash = try v.hash("latestBlockHash", of: w)
        let time = try v.member("latestBlockTime", of: w)
        latestBlockTime = time.stringValue ?? time.description
        catchingUp = try v.bool("catchingUp", of: w)
        validator = try v.bool("validator", of: w)
        raw = v
    }
}

/// `account_get`: the committed state of one account.
public struct AccountState: Sendable, Equatable {
    public let address: Address
    public let height: UInt64
    public let balanceGrains: UInt64
    /// The nonce the account's next transaction must carry.
    public let nonce: UInt64
    public let raw: JSONValue

    public init(_ v: JSONValue) throws(ClientError) {
        let w = "account_get result"
        address = try v.address("address", of: w)
        height = try v.uint64("height", of: w)
        balanceGrains = try v.grains("balanceGrains", of: w)
        nonce = try v.uint64("nonce", of: w)
        raw = v
    }
}

/// Why the ledger refused a transaction: its stable code and reason
/// (docs/spec/transactions.md), for example `claim.odometer_overlap`.
public struct LedgerFailure: Sendable, Equatable, CustomStringConvertible {
    public let code: String
    public let reason: String

    public init(code: String, reason: String) {
        self.code = code
        self.reason = reason
    }

    init?(_ v: JSONValue?) {
        guard let v, let code = v["code"]?.stringValue else { return nil }
        self.init(code: code, reason: v["reason"]?.stringValue ?? v["message"]?.stringValue ?? code)
    }

    public var description: String { "\(reason) (\(code))" }
}

/// What `tx_submit` and `tx_get` say about a transaction.
public struct TransactionStatus: Sendable, Equatable {
    public enum Status: String, Sendable {
        /// Known to the node, not yet in a committed block.
        case pending
        /// In a committed block (with the ledger's result, which may be a failure).
        case committed
        /// Refused: by the mempool or, in a committed block, by the ledger.
        case rejected
        /// The node does not know it.
        case unknown
    }

    public let hash: Hash256
    public let status: Status
    public let height: UInt64?
    public let result: JSONValue?
    /// Set when the ledger (or the mempool) refused the transaction.
    public let failure: LedgerFailure?
    public let raw: JSONValue

    public init(hash: Hash256, status: Status, height: UInt64?, result: JSONValue?, failure: LedgerFailure?, raw: JSONValue) {
        self.hash = hash
        self.status = status
        self.height = height
        self.result = result
        self.failure = failure
        self.raw = raw
    }

    /// A `tx_submit` with `wait: committed` whose block refused the transaction answers with
    /// an application error carrying `hash`, `height` and `index` (docs/spec/json-rpc.md
    /// section 8.3): that is a transaction status, `rejected`, not a transport failure.
    public init?(ledgerRefusal e: RemoteError) {
        guard e.code == -32000, let data = e.data, let code = e.dataCode,
              let hashText = data["hash"]?.stringValue, let hash = try? Hash256(hex: hashText),
              let height = data["height"]?.numberValue?.uint64Value else { return nil }
        var raw: [(String, JSONValue)] = [("hash", .string(hash.hex)), ("status", "rejected"), ("height", .integer(height))]
        if let index = data["index"] { raw.append(("index", index)) }
        raw.append(("error", ["code": .string(code), "reason": .string(e.reason ?? code)]))
        self.init(hash: hash, status: .rejected, height: height, result: nil,
                  failure: LedgerFailure(code: code, reason: e.reason ?? code), raw: .object(raw))
    }

    public init(_ v: JSONValue, method: String) throws(ClientError) {
        let w = "\(method) result"
        hash = try v.hash("hash", of: w)
        let s = try v.string("status", of: w)
        guard let st = Status(rawValue: s) else { throw .malformedResponse("\(w).status is \"\(s)\", not pending|committed|rejected|unknown") }
        status = st
        height = try v.optionalUInt64("height", of: w)
        result = v["result"].flatMap { $0.isNull ? nil : $0 }
        failure = LedgerFailure(v["error"]) ?? LedgerFailure(result?["error"])
        raw = v
    }

    /// Committed and executed without error.
    public var succeeded: Bool { status == .committed && failure == nil }

    /// The value of attribute `name` of the first event of kind `kind` in the result, for
    /// example `attribute("season", of: "season.opened")`.
    public func attribute(_ name: String, of kind: String) -> String? {
        for event in result?["events"]?.arrayValue ?? [] where event["kind"]?.stringValue == kind {
            if let v = event["attributes"]?[name]?.stringValue { return v }
        }
        return nil
    }
}

/// `supply_get`: where every grain is.
public struct SupplyState: Sendable, Equatable {
    public let totalGrains: UInt64
    public let mileagePoolGrains: UInt64
    public let cultivationPoolGrains: UInt64
    public let balancesGrains: UInt64
    public let treasuryGrains: UInt64
    public let escrowGrains: UInt64
    public let mintedMileageGrains: UInt64
    public let scheduledMileageGrains: UInt64
    public let raw: JSONValue

    public init(_ v: JSONValue) throws(ClientError) {
        let w = "supply_get result"
        totalGrains = try v.grains("totalGrains", of: w)
        mileagePoolGrains = try v.grains("mileagePoolGrains", of: w)
        cultivationPoolGrains = try v.grains("cultivationPoolGrains", of: w)
        balancesGrains = try v.grains("balancesGrains", of: w)
        treasuryGrains = try v.grains("treasuryGrains", of: w)
        escrowGrains = try v.grains("escrowGrains", of: w)
        mintedMileageGrains = try v.grains("mintedMileageGrains", of: w)
        scheduledMileageGrains = try v.grains("scheduledMileageGrains", of: w)
        raw = v
    }

    /// The parts, added without overflow; nil if they overflow (which conservation forbids).
    public var sumOfParts: UInt64? {
        var sum: UInt64 = 0
        for part in [mileagePoolGrains, cultivationPoolGrains, balancesGrains, treasuryGrains, escrowGrains] {
            let (s, o) = sum.addingReportingOverflow(part)
            if o { return nil }
            sum = s
        }
        return sum
    }

    /// Conservation as MISSION.md states it: pools + balances + treasury + escrow equal the
    /// fixed total (300,000,000 stones), and mileage paid never runs ahead of the schedule.
    public var isConserved: Bool {
        sumOfParts == totalGrains && mintedMileageGrains <= scheduledMileageGrains
    }
}
