import Foundation
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryStore

/// Ledger figures (docs/performance.md, "Ledger"):
/// 1. a block of 5,000 mileage claims: execution with and without the signature checks,
///    against 5,000 SM2 verifications measured in the same run;
/// 2. settling one batch of 10,000 / 100,000 / 1,000,000 participants: time per block and
///    memory;
/// 3. state-root update of a 10,000-key block as the state grows from 10^4 to 10^6 keys.
/// Every state lives in RocksDB in a temporary directory.
enum LedgerBench {
    static func run() throws {
        let sizes = ProcessInfo.processInfo.environment["QUARRY_BENCH_SETTLE"].map { $0.split(separator: ",").compactMap { Int($0) } }
            ?? [10_000, 100_000, 1_000_000]
        let parts = ProcessInfo.processInfo.environment["QUARRY_BENCH_PARTS"] ?? "claims,settle,root"
        if parts.contains("claims") { try claimBlock() }
        if parts.contains("settle") { for n in sizes { try settlement(participants: n) } }
        let rootSizes = ProcessInfo.processInfo.environment["QUARRY_BENCH_ROOT"].map { $0.split(separator: ",").compactMap { Int($0) } }
            ?? [10_000, 100_000, 1_000_000]
        if parts.contains("root") { try rootUpdates(sizes: rootSizes) }
    }

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    static func residentMiB() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb / 1024
    }

    static func temporaryStore(_ label: String) throws -> (RocksDBStore, String) {
        let path = NSTemporaryDirectory() + "quarry-bench-ledger-\(label)-\(UUID().uuidString)"
        return (try RocksDBStore(path: path, columns: Ledger.columns), path)
    }

    static func benchGenesis(batchSeconds: UInt64 = 600, chunk: UInt64 = 5_000) -> Genesis {
        var e = EconomicParameters()
        e.batchSeconds = batchSeconds
        e.settlementChunkMax = chunk
        var c = ConsensusParameters()
        c.blockTransactionsMax = min(5_000, chunk)
        c.blockBytesMax = 64 * 1024 * 1024
        return Genesis(chainID: "quarry-bench", genesisTime: 1_800_000_000,
                       validators: [GenesisValidator(name: "v", publicKey: SigningKey(scheme: .sm2).publicKeyBytes, power: 1)],
                       roles: Roles(registrar: registrar.address, crystalIssuer: registrar.address, boxOperator: registrar.address, merchants: []),
                       economics: e, consensus: c)
    }

    static let registrar = SigningKey(scheme: .sm2)

    /// The real serial checker, timed.
    final class TimedChecker: SignatureChecker {
        var seconds = 0.0
        func check(_ items: [SignatureCheckItem]) -> [Bool] {
            var out: [Bool] = []
            seconds += LedgerBench.seconds { out = SerialSignatureChecker().check(items) }
            return out
        }
    }

    // MARK: 1. A block of 5,000 claims

    static func claimBlock() throws {
        let count = 5_000
        let genesis = benchGenesis()
        let (store, path) = try temporaryStore("claims")
        defer { store.close(); try? FileManager.default.removeItem(atPath: path) }
        let ledger = try Ledger(store: store, genesis: genesis)
        let g = genesis.genesisTime
        var height: UInt64 = 0
        let checker = TimedChecker()
        func block(_ txs: [[UInt8]], at time: UInt64) throws -> (BlockResult, Double) {
            height += 1
            let ctx = BlockContext(height: height, timeMilliseconds: time * 1_000, previousBlockHash: .zero)
            var result: BlockResult!
            checker.seconds = 0
            let s = try seconds {
                result = try ledger.executeBlock(ctx, systemTransactions: ledger.systemTransactions(for: ctx), transactions: txs,
                                                 signatureChecker: checker)
            }
            try ledger.commit(result, sync: true)
            return (result, s)
        }
        func sign(_ key: SigningKey, _ nonce: UInt64, _ payload: Payload) throws -> [UInt8] {
            try SignedTransaction(body: TransactionBody(chainID: genesis.chainID, nonce: nonce, signer: key.publicKeyBytes, payload: payload),
                                  key: key).canonicalBytes
        }
        print("ledger: preparing \(count) vehicles (signing setup transactions)...")
        let vehicles = (0..<count).map { _ in SigningKey(scheme: .sm2) }
        let owners = (0..<count).map { _ in SigningKey(scheme: .sm2) }
        let ids = (0..<count).map { SM3.hash(Array("bench-vin-\($0)".utf8)) }
        let register = try (0..<count).map { i in
            try sign(registrar, UInt64(i), .registerVehicle(vehicleID: ids[i], vehicleKey: vehicles[i].publicKeyBytes, model: "LS7",
                                                            cohortTags: ["angel-wheel"], owner: owners[i].address, odometerMetres: 0))
        }
        _ = try block(register, at: g + 1)
        _ = try block(try owners.map { try sign($0, 0, .signAgreement(version: .zero)) }, at: g + 2)
        let claims = try (0..<count).map { i in
            try sign(vehicles[i], 0, .mileageClaim(MileageClaim(vehicleID: ids[i], odometerStartMetres: 0, odometerEndMetres: 1_000 + UInt64(i),
                                                                spanStart: g + 2, spanEnd: g + 100, tripDigest: .zero)))
        }
        let (result, total) = try block(claims, at: g + 110)
        precondition(result.transactions.allSatisfy(\.succeeded), "bench claims failed")
        let verify = checker.seconds
        let withoutSignatures = total - verify
        print(String(format: "ledger: 5,000 SM2 verifications (one core): %.3f s (%.0f/s)", verify, Double(count) / verify))
        print(String(format: "ledger: block of 5,000 claims incl. signatures and state root: %.3f s", total))
        print(String(format: "ledger: same without signature checks: %.3f s = %.0f claims/s; %.1f%% of the verification time (target < 20%%)",
                     withoutSignatures, Double(count) / withoutSignatures, 100 * withoutSignatures / verify))
        print("ledger: state writes in that block: \(result.writeBatch.count)")
    }

    // MARK: 2. Settlement

    /// Writes `values` into the state column and the state tree in slices, as blocks would.
    static func inject(_ store: RocksDBStore, _ values: [([UInt8], [UInt8])], cache: StateTreeCache? = nil) throws {
        var offset = 0
        while offset < values.count {
            let slice = values[offset..<min(offset + 100_000, values.count)]
            var batch = WriteBatch()
            var changes: [StateTree.Change] = []
            changes.reserveCapacity(slice.count)
            for (k, v) in slice {
                batch.put(k, v, column: Ledger.stateColumn)
                changes.append(.init(keyHash: SM3.hash(k).bytes, valueHash: SM3.hash(v).bytes))
            }
            _ = try StateTree.update(store: store, changes: changes, batch: &batch)
            try store.write(batch, sync: false)
            cache?.apply(batch)
            offset += slice.count
        }
    }

    static func settlement(participants n: Int) throws {
        // QUARRY_BENCH_CHUNK: settlementChunkMax (default 5,000, as in the bench genesis).
        let chunk = ProcessInfo.processInfo.environment["QUARRY_BENCH_CHUNK"].flatMap { UInt64($0) } ?? 5_000
        let genesis = benchGenesis(chunk: chunk)
        let (store, path) = try temporaryStore("settle-\(n)")
        defer { store.close(); try? FileManager.default.removeItem(atPath: path) }
        _ = try Ledger(store: store, genesis: genesis)
        // Batch 0 with n participants, each paid to its own account (distinct owners: the
        // worst case for state writes).
        var record = BatchRecord()
        var values: [([UInt8], [UInt8])] = []
        values.reserveCapacity(n + 1)
        for i in 0..<n {
            let id = SM3.hash(Array("bench-vehicle-\(i)".utf8))
            let owner = Address(scheme: .sm2, digest20: Array(SM3.hash(id.bytes).bytes.prefix(20)))
            let metres = UInt64(1_000 + (i * 7_919) % 50_000)
            record.totalMetres += metres
            record.participants += 1
            values.append((StateKey.participant(batch: 0, vehicle: id), Participant(owner: owner, metres: metres).canonicalBytes))
        }
        values.append((StateKey.batch(0), record.canonicalBytes))
        let setup = try seconds { try inject(store, values) }
        values = []
        var ledger: Ledger!
        let open = try seconds { ledger = try Ledger(store: store, genesis: genesis) }
        // QUARRY_BENCH_SETTLE_BLOCKS stops after that many blocks (the batch stays unfinished).
        let blockLimit = ProcessInfo.processInfo.environment["QUARRY_BENCH_SETTLE_BLOCKS"].flatMap { Int($0) } ?? Int.max
        var height: UInt64 = 0
        var times: [Double] = []
        var commitTimes: [Double] = []
        var paid: UInt64 = 0
        var done = false
        let memoryBefore = residentMiB()
        var peak = memoryBefore
        while !done && times.count < blockLimit {
            height += 1
            let ctx = BlockContext(height: height, timeMilliseconds: (genesis.genesisTime + 600 + height) * 1_000, previousBlockHash: .zero)
            var result: BlockResult!
            let t = try seconds {
                let system = try ledger.systemTransactions(for: ctx)
                result = try ledger.executeBlock(ctx, systemTransactions: system, transactions: [])
            }
            commitTimes.append(try seconds { try ledger.commit(result, sync: true) })
            times.append(t)
            peak = max(peak, residentMiB())
            for case .settleBatch(_, _, _, _, let grains, let complete) in result.systemTransactions {
                paid += grains
                if complete { done = true }
            }
        }
        let sorted = times.sorted()
        let commits = commitTimes.sorted()
        print(String(format: "ledger: settle %d participants: commit (RocksDB write, sync) median %.0f ms, max %.0f ms per block",
                     n, 1000 * commits[commits.count / 2], 1000 * commits.last!))
        print(String(format: "ledger: settle %d participants: %d blocks of <= %d, per block (proposer: systemTransactions + executeBlock) median %.0f ms, p90 %.0f ms, max %.0f ms, total %.1f s; setup %.1f s; opening (tree preload) %.1f s; RSS %.0f -> peak %.0f MiB; paid %llu of %llu grains" + (done ? "" : " (stopped early)"),
                     n, times.count, Int(genesis.economics.settlementChunkMax), 1000 * sorted[sorted.count / 2],
                     1000 * sorted[sorted.count * 9 / 10], 1000 * sorted.last!,
                     times.reduce(0, +), setup, open, memoryBefore, peak, paid, genesis.economics.initialDropGrains))
    }

    // MARK: 3. State root update as the state grows

    static func rootUpdates(sizes: [Int]) throws {
        let (store, path) = try temporaryStore("root")
        defer { store.close(); try? FileManager.default.removeItem(atPath: path) }
        var present = 0
        let cache = StateTreeCache(capacity: 4_000_000)
        var rng = UInt64(0x1234_5678)
        func next() -> UInt64 {
            rng &+= 0x9E37_79B9_7F4A_7C15
            var z = rng
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        for size in sizes {
            var values: [([UInt8], [UInt8])] = []
            while present < size {
                var a = Account()
                a.balanceGrains = UInt64(present)
                values.append((StateKey.account(Address(scheme: .sm2, digest20: Array(SM3.hash(StateKey.be64(UInt64(present))).bytes.prefix(20)))),
                               a.canonicalBytes))
                present += 1
            }
            try inject(store, values, cache: cache)
            // A block touching 10,000 existing accounts (the scale of a 5,000-claim block).
            var times: [Double] = []
            for round in 0..<5 {
                var batch = WriteBatch()
                var changes: [StateTree.Change] = []
                var seen = Set<UInt64>()
                while changes.count < 10_000 {
                    let i = next() % UInt64(present)
                    guard seen.insert(i).inserted else { continue }
                    let key = StateKey.account(Address(scheme: .sm2, digest20: Array(SM3.hash(StateKey.be64(i)).bytes.prefix(20))))
                    var a = Account()
                    a.balanceGrains = i + UInt64(round) + 1
                    changes.append(.init(keyHash: SM3.hash(key).bytes, valueHash: SM3.hash(a.canonicalBytes).bytes))
                }
                let t = try seconds { _ = try StateTree.update(store: store, cache: round == 0 ? nil : cache, changes: changes, batch: &batch) }
                try store.write(batch, sync: false)
                cache.apply(batch)
                times.append(t)
            }
            let sorted = times.sorted()
            print(String(format: "ledger: state root update, 10,000 changed keys in a state of %d keys: uncached %.0f ms; with the node cache median %.0f ms (%.1f us per key); cache %d nodes",
                         present, 1000 * times[0], 1000 * sorted[2], 1e6 * sorted[2] / 10_000, cache.count))
        }
    }
}
