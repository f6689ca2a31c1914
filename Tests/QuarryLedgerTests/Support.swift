import Foundation
import QuarryCore
import QuarryCrypto
import QuarryStore
@testable import QuarryLedger

extension SplitMix64 {
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

/// Keys derived deterministically from a label, so runs are reproducible.
func testKey(_ label: String, scheme: SignatureScheme = .sm2) -> SigningKey {
    var seed = SM3.hash(Array(label.utf8)).bytes
    seed[0] &= 0x7f
    seed[0] |= 0x01
    return try! SigningKey(scheme: scheme, rawRepresentation: seed)
}

func testGenesis(chainID: String = "quarry-test", batchSeconds: UInt64 = 10, transfers: Bool = false,
                 blockTransactionsMax: UInt64 = 5_000, settlementChunkMax: UInt64 = 5_000) -> Genesis {
    var e = EconomicParameters()
    e.batchSeconds = batchSeconds
    e.transfersEnabled = transfers
    e.settlementChunkMax = settlementChunkMax
    e.refundChunkMax = max(blockTransactionsMax, 1)
    var c = ConsensusParameters()
    c.blockTransactionsMax = blockTransactionsMax
    return Genesis(
        chainID: chainID, genesisTime: 1_800_000_000,
        validators: [GenesisValidator(name: "v1", publicKey: testKey("validator-1").publicKeyBytes, power: 1)],
        roles: Roles(registrar: testKey("registrar").address, crystalIssuer: testKey("issuer").address,
                     boxOperator: testKey("operator").address, merchants: [testKey("merchant").address]),
        economics: e, consensus: c)
}

/// A ledger plus helpers that sign transactions with the right nonces and run blocks.
final class TestChain {
    let genesis: Genesis
    let store: KeyValueStore
    var ledger: Ledger
    var nonces: [Address: UInt64] = [:]
    /// Seconds since genesis of the next block.
    var clock: UInt64 = 1
    var previousHash: Hash256
    var lastResult: BlockResult?

    init(genesis: Genesis = testGenesis(), store: KeyValueStore = InMemoryStore()) throws {
        self.genesis = genesis
        self.store = store
        ledger = try Ledger(store: store, genesis: genesis)
        previousHash = genesis.hash
    }

    var now: UInt64 { genesis.genesisTime + clock }

    func tx(_ key: SigningKey, _ payload: Payload, nonce: UInt64? = nil, chainID: String? = nil) -> [UInt8] {
        let address = key.address
        let n = nonce ?? nonces[address, default: 0]
        if nonce == nil { nonces[address] = n + 1 }
        let body = TransactionBody(chainID: chainID ?? genesis.chainID, nonce: n, signer: key.publicKeyBytes, payload: payload)
        return try! SignedTransaction(body: body, key: key).canonicalBytes
    }

    var context: BlockContext {
        BlockContext(height: ledger.height + 1, timeMilliseconds: now * 1_000, previousBlockHash: previousHash)
    }

    /// Executes (without committing) a block at the current clock.
    func execute(_ txs: [[UInt8]]) throws -> BlockResult {
        let ctx = context
        return try ledger.executeBlock(ctx, systemTransactions: ledger.systemTransactions(for: ctx), transactions: txs)
    }

    /// Executes and commits a block, then advances the clock by `advance` seconds.
    @discardableResult
    func block(_ txs: [[UInt8]], advance: UInt64 = 1) throws -> BlockResult {
        let result = try execute(txs)
        try ledger.commit(result, sync: false)
        previousHash = SM3.hash(result.stateRoot.bytes + StateKey.be64(result.height))
        clock += advance
        lastResult = result
        return result
    }

    /// Runs one transaction in its own block and returns its result.
    @discardableResult
    func run(_ key: SigningKey, _ payload: Payload, advance: UInt64 = 1) throws -> TransactionResult {
        try block([tx(key, payload)], advance: advance).transactions[0]
    }

    /// Runs a transaction expected to fail with `code`; checks that the block's state root is
    /// the root of the same block without the transaction, i.e. the rejection changed nothing.
    func expectRejected(_ raw: [UInt8], _ code: String, advance: UInt64 = 1) throws -> Bool {
        let without = try execute([])
        let with = try execute([raw])
        let ok = with.transactions[0].error?.code == code && with.stateRoot == without.stateRoot
        if !ok { print("expected \(code), got \(String(describing: with.transactions[0].error)); roots equal: \(with.stateRoot == without.stateRoot)") }
        try ledger.commit(with, sync: false)
        previousHash = SM3.hash(with.stateRoot.bytes + StateKey.be64(with.height))
        clock += advance
        return ok
    }

    func rejects(_ key: SigningKey, _ payload: Payload, _ code: String) throws -> Bool {
        let address = key.address
        let n = nonces[address, default: 0]
        let raw = tx(key, payload, nonce: n)
        return try expectRejected(raw, code)
    }

    /// Sum of every account balance, by scanning (tests only).
    func scannedBalances() throws -> UInt64 {
        var sum: UInt64 = 0
        try store.scan(column: Ledger.stateColumn, prefix: [0x02]) { _, value in
            sum += try Account(canonicalBytes: value).balanceGrains
            return true
        }
        return sum
    }
}

let registrar = testKey("registrar")
let issuer = testKey("issuer")
let boxOperator = testKey("operator")
let merchant = testKey("merchant")

func vehicleID(_ n: Int) -> Hash256 { SM3.hash(Array("salted-vin-\(n)".utf8)) }
func vehicleKey(_ n: Int) -> SigningKey { testKey("vehicle-\(n)") }
func ownerKey(_ n: Int, scheme: SignatureScheme = .sm2) -> SigningKey { testKey("owner-\(n)", scheme: scheme) }

func temporaryDirectory(_ label: String) -> String {
    let path = NSTemporaryDirectory() + "quarry-ledger-\(label)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
