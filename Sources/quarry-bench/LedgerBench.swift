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
        // Issue 3's reference is 5,000 SM2 verifications with OpenSSL; the node's default
        // engine is the faster own one (ADR 0012). QUARRY_BENCH_SM2_ENGINE=fast measures with it.
        let engine = ProcessInfo.processInfo.environment["QUARRY_BENCH_SM2_ENGINE"].flatMap(SM2VerificationEngine.init(rawValue:)) ?? .openSSL
        let previousEngine = SM2.verificationEngine
        SM2.verificationEngine = engine
        defer { SM2.verificationEngine = previousEngine }
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
        print(String(format: "ledger: 5,000 SM2 verifications (one core, engine \(engine)): %.3f s (%.0f/s)", verify, Double(count) / verify))
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

    /// The store options of a settlement run. `QUARRY_BENCH_PARTITIONED=0` opens the store
    /// with whole-file index and filter blocks (the options before ADR 0048), to compare.
    static func settlementStoreOptions() -> RocksDBOptions {
        var options = RocksDBOptions()
        if ProcessInfo.processInfo.environment["QUARRY_BENCH_PARTITIONED"] == "0" { options.partitionedIndexAndFilters = false }
        return options
    }

    /// What one settlement block cost, phase by phase.
    struct BlockCost {
        var height: UInt64 = 0
        /// `systemTransactions(for:)`: reading participants and accounts, computing payouts.
        var systemWall: UInt64 = 0, systemCPU: UInt64 = 0
        /// `executeBlock` (reusing the system phase): hashing keys and values, ordering the
        /// writes, updating the state tree.
        var executeWall: UInt64 = 0, executeCPU: UInt64 = 0
        /// `commit`: the synced RocksDB write and the node-cache update.
        var commitWall: UInt64 = 0, commitCPU: UInt64 = 0
        /// Wall time inside the store's reads during system phase + execute.
        var stateReadWall: UInt64 = 0, treeReadWall: UInt64 = 0
        var stateReads = 0, treeReads = 0
        /// RocksDB perf context (this thread) during system phase + execute.
        var blockReads: UInt64 = 0, blockReadNanos: UInt64 = 0, indexNanos: UInt64 = 0, filterNanos: UInt64 = 0
        var commitDelayNanos: UInt64 = 0
        /// The commit's RocksDB write alone (the rest of the commit is the node-cache update).
        var commitWriteWall: UInt64 = 0
        /// SM3 calls of the block (state keys and values, tree nodes), counted from the batch.
        var hashes = 0
        /// Involuntary context switches and the process's CPU (all threads, RocksDB's
        /// background flushes and compactions included) over the whole block.
        var involuntarySwitches = 0
        var processCPU: UInt64 = 0

        var wall: UInt64 { systemWall + executeWall }
        var cpu: UInt64 { systemCPU + executeCPU }
    }

    static func settlement(participants n: Int) throws {
        // QUARRY_BENCH_CHUNK: settlementChunkMax (default 5,000, as in the bench genesis).
        let chunk = ProcessInfo.processInfo.environment["QUARRY_BENCH_CHUNK"].flatMap { UInt64($0) } ?? 5_000
        let genesis = benchGenesis(chunk: chunk)
        let options = settlementStoreOptions()
        let path = NSTemporaryDirectory() + "quarry-bench-ledger-settle-\(n)-\(UUID().uuidString)"
        let rocks = try RocksDBStore(path: path, columns: Ledger.columns, options: options)
        let store = TimedStore(rocks)
        defer { rocks.close(); try? FileManager.default.removeItem(atPath: path) }
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
        let setup = try seconds { try inject(rocks, values) }
        values = []
        var ledger: Ledger!
        let open = try seconds { ledger = try Ledger(store: store, genesis: genesis) }
        let hashNanos = sm3NanosPerCall()
        // QUARRY_BENCH_SETTLE_BLOCKS stops after that many blocks (the batch stays unfinished).
        let blockLimit = ProcessInfo.processInfo.environment["QUARRY_BENCH_SETTLE_BLOCKS"].flatMap { Int($0) } ?? Int.max
        var height: UInt64 = 0
        var costs: [BlockCost] = []
        var paid: UInt64 = 0
        var done = false
        let memoryBefore = residentMiB()
        var peak = memoryBefore
        let perf = RocksDBPerfContext()
        // QUARRY_BENCH_PERF=0 leaves RocksDB's perf counters off (their timers cost a clock
        // read per measured step); the block-read columns then read 0.
        let countReads = ProcessInfo.processInfo.environment["QUARRY_BENCH_PERF"] != "0"
        if countReads { RocksDBPerfContext.enable() }
        defer { if countReads { RocksDBPerfContext.disable() } }
        while !done && costs.count < blockLimit {
            height += 1
            let ctx = BlockContext(height: height, timeMilliseconds: (genesis.genesisTime + 600 + height) * 1_000, previousBlockHash: .zero)
            var cost = BlockCost()
            cost.height = height
            let usageBefore = ResourceUsage.now()
            store.resetCounters()
            perf.reset()
            var system: [SystemTransaction] = []
            (cost.systemWall, cost.systemCPU) = try measure { system = try ledger.systemTransactions(for: ctx) }
            var result: BlockResult!
            (cost.executeWall, cost.executeCPU) = try measure {
                result = try ledger.executeBlock(ctx, systemTransactions: system, transactions: [])
            }
            cost.stateReadWall = store.stateReadNanos
            cost.treeReadWall = store.treeReadNanos
            cost.stateReads = store.stateReads
            cost.treeReads = store.treeReads
            cost.blockReads = perf.value(.blockReads)
            cost.blockReadNanos = perf.value(.blockReadNanos)
            cost.indexNanos = perf.value(.readIndexBlockNanos)
            cost.filterNanos = perf.value(.readFilterBlockNanos)
            perf.reset()
            (cost.commitWall, cost.commitCPU) = try measure { try ledger.commit(result, sync: true) }
            cost.commitDelayNanos = perf.value(.writeDelayNanos)
            cost.commitWriteWall = store.lastWriteNanos
            let usageAfter = ResourceUsage.now()
            cost.involuntarySwitches = usageAfter.involuntarySwitches - usageBefore.involuntarySwitches
            cost.processCPU = usageAfter.cpuNanos - usageBefore.cpuNanos
            cost.hashes = hashCount(result.writeBatch)
            costs.append(cost)
            peak = max(peak, residentMiB())
            for case .settleBatch(_, _, _, _, let grains, let complete) in result.systemTransactions {
                paid += grains
                if complete { done = true }
            }
        }
        report(n: n, chunk: Int(genesis.economics.settlementChunkMax), costs: costs, hashNanos: hashNanos, options: options,
               done: done, setup: setup, open: open, memory: (memoryBefore, peak), paid: paid, drop: genesis.economics.initialDropGrains)
        if let csv = ProcessInfo.processInfo.environment["QUARRY_BENCH_SETTLE_CSV"] { try writeCSV(costs, to: csv) }
    }

    static func ms(_ nanos: UInt64) -> Double { Double(nanos) / 1e6 }

    /// The value at quantile `q` (nearest rank) of `values`, sorted here.
    static func quantile(_ values: [UInt64], _ q: Double) -> UInt64 {
        let sorted = values.sorted()
        let rank = Int((q * Double(sorted.count)).rounded(.up))
        return sorted[max(0, min(sorted.count - 1, rank - 1))]
    }

    static func spread(_ values: [UInt64]) -> String {
        String(format: "median %.0f / p90 %.0f / p99 %.0f / max %.0f ms", ms(quantile(values, 0.5)), ms(quantile(values, 0.9)),
               ms(quantile(values, 0.99)), ms(values.max() ?? 0))
    }

    static func report(n: Int, chunk: Int, costs: [BlockCost], hashNanos: Double, options: RocksDBOptions, done: Bool,
                       setup: Double, open: Double, memory: (Double, Double), paid: UInt64, drop: UInt64) {
        let label = "ledger: settle \(n) (chunk \(chunk), \(options.partitionedIndexAndFilters ? "partitioned" : "whole-file") index/filters)"
        print("\(label): \(costs.count) blocks" + (done ? "" : " (stopped early)") +
              String(format: "; setup %.1f s; opening (tree preload) %.1f s; RSS %.0f -> peak %.0f MiB; paid %llu of %llu grains; SM3 %.0f ns/call",
                     setup, open, memory.0, memory.1, paid, drop, hashNanos))
        print("\(label): execute per block (proposer: systemTransactions + executeBlock), wall: " + spread(costs.map(\.wall)))
        print("\(label): execute per block, thread CPU:                                  " + spread(costs.map(\.cpu)))
        print("\(label): commit (synced RocksDB write + node cache), wall: " + spread(costs.map(\.commitWall)) +
              "; CPU " + spread(costs.map(\.commitCPU)))
        let count = Double(costs.count)
        func mean(_ f: (BlockCost) -> UInt64) -> Double { Double(costs.reduce(0) { $0 + f($1) }) / count / 1e6 }
        print(String(format: "\(label): mean per block: system phase %.1f ms (state reads %.1f ms, %.0f reads); execute %.1f ms " +
                     "(tree-node reads from RocksDB %.1f ms, %.0f reads; SM3 ~%.1f ms for %.0f calls; the rest is the tree walk, " +
                     "ordering and encoding); RocksDB block reads %.1f (%.2f ms, index %.2f ms, filter %.2f ms); commit %.1f ms " +
                     "(RocksDB write %.1f ms, write stalls %.2f ms; the rest is the node-cache update)",
                     mean(\.systemWall), mean(\.stateReadWall), Double(costs.reduce(0) { $0 + $1.stateReads }) / count,
                     mean(\.executeWall), mean(\.treeReadWall), Double(costs.reduce(0) { $0 + $1.treeReads }) / count,
                     Double(costs.reduce(0) { $0 + $1.hashes }) / count * hashNanos / 1e6, Double(costs.reduce(0) { $0 + $1.hashes }) / count,
                     Double(costs.reduce(0) { $0 + $1.blockReads }) / count, mean(\.blockReadNanos), mean(\.indexNanos), mean(\.filterNanos),
                     mean(\.commitWall), mean(\.commitWriteWall), mean(\.commitDelayNanos)))
        let over = costs.filter { $0.wall > 250_000_000 }
        let overCPU = costs.filter { $0.cpu > 250_000_000 }
        print("\(label): blocks over 250 ms: \(over.count) of \(costs.count) by wall time, \(overCPU.count) by thread CPU time")
        print("\(label): slowest blocks (wall ms = system + execute; cpu; state reads; tree reads; block reads n/ms; index/filter ms; " +
              "involuntary switches; process CPU ms (all threads); commit ms):")
        for c in costs.sorted(by: { $0.wall > $1.wall }).prefix(6) {
            print(String(format: "  h%llu: %.0f = %.0f + %.0f; cpu %.0f; state %.1f; tree %.1f (%d); blocks %llu/%.1f; idx %.1f flt %.1f; ivcsw %d; proc %.0f; commit %.0f",
                         c.height, ms(c.wall), ms(c.systemWall), ms(c.executeWall), ms(c.cpu), ms(c.stateReadWall), ms(c.treeReadWall),
                         c.treeReads, c.blockReads, ms(c.blockReadNanos), ms(c.indexNanos), ms(c.filterNanos), c.involuntarySwitches,
                         ms(c.processCPU), ms(c.commitWall)))
        }
    }

    static func writeCSV(_ costs: [BlockCost], to path: String) throws {
        var out = "height,system_wall_ns,system_cpu_ns,execute_wall_ns,execute_cpu_ns,commit_wall_ns,commit_cpu_ns,state_read_ns,state_reads," +
            "tree_read_ns,tree_reads,block_reads,block_read_ns,index_ns,filter_ns,commit_delay_ns,commit_write_ns,hashes,involuntary_switches,process_cpu_ns\n"
        for c in costs {
            let fields: [CustomStringConvertible] = [c.height, c.systemWall, c.systemCPU, c.executeWall, c.executeCPU, c.commitWall, c.commitCPU,
                                                     c.stateReadWall, c.stateReads, c.treeReadWall, c.treeReads, c.blockReads, c.blockReadNanos,
                                                     c.indexNanos, c.filterNanos, c.commitDelayNanos, c.commitWriteWall, c.hashes, c.involuntarySwitches, c.processCPU]
            out += fields.map(\.description).joined(separator: ",") + "\n"
        }
        try out.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// SM3 calls behind a block's batch: a key hash and a value hash per state put, a key
    /// hash per state delete, one hash per tree node written (inner node or leaf; a leaf
    /// moved up without change is counted too, so this is an upper bound).
    static func hashCount(_ batch: WriteBatch) -> Int {
        var count = 0
        for op in batch.operations {
            switch op {
            case .put(let column, _, let value):
                if column == Ledger.stateColumn { count += 2 } else if column == StateTree.column, value.count > 33 { count += 1 }
            case .delete(let column, _):
                if column == Ledger.stateColumn { count += 1 }
            }
        }
        return count
    }

    /// Thread CPU nanoseconds per SM3 call on a 65-byte input (a tree node's hash input).
    static func sm3NanosPerCall() -> Double {
        var input = [UInt8](repeating: 1, count: 65)
        let calls = 200_000
        let start = threadCPUNanos()
        for i in 0..<calls {
            input[1] = UInt8(truncatingIfNeeded: i)
            input[2] = SM3.hash(input).bytes[0]
        }
        return Double(threadCPUNanos() - start) / Double(calls)
    }

    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func threadCPUNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// (wall, thread CPU) nanoseconds of `body`.
    static func measure(_ body: () throws -> Void) rethrows -> (UInt64, UInt64) {
        let wall = monotonicNanos(), cpu = threadCPUNanos()
        try body()
        return (monotonicNanos() - wall, threadCPUNanos() - cpu)
    }

    struct ResourceUsage {
        var involuntarySwitches: Int
        var cpuNanos: UInt64

        static func now() -> ResourceUsage {
            var u = rusage()
            getrusage(RUSAGE_SELF.rawValue, &u)
            func nanos(_ t: timeval) -> UInt64 { UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_usec) * 1_000 }
            return ResourceUsage(involuntarySwitches: Int(u.ru_nivcsw), cpuNanos: nanos(u.ru_utime) + nanos(u.ru_stime))
        }
    }

    /// A `RocksDBStore` whose reads are timed per column (wall clock, the calling thread).
    final class TimedStore: KeyValueStore {
        let base: RocksDBStore
        var stateReadNanos: UInt64 = 0, treeReadNanos: UInt64 = 0
        var stateReads = 0, treeReads = 0

        init(_ base: RocksDBStore) { self.base = base }

        func resetCounters() { stateReadNanos = 0; treeReadNanos = 0; stateReads = 0; treeReads = 0 }

        private func timed<R>(_ column: String, _ body: () throws -> R) rethrows -> R {
            let start = LedgerBench.monotonicNanos()
            defer {
                let elapsed = LedgerBench.monotonicNanos() - start
                if column == StateTree.column { treeReadNanos += elapsed; treeReads += 1 } else { stateReadNanos += elapsed; stateReads += 1 }
            }
            return try body()
        }

        func get(_ key: [UInt8], column: String) throws -> [UInt8]? {
            try timed(column) { try base.get(key, column: column) }
        }

        /// Wall time of the last write (the commit's RocksDB part).
        var lastWriteNanos: UInt64 = 0

        func write(_ batch: WriteBatch, sync: Bool) throws {
            let start = LedgerBench.monotonicNanos()
            defer { lastWriteNanos = LedgerBench.monotonicNanos() - start }
            try base.write(batch, sync: sync)
        }

        func scan(column: String, from start: [UInt8], to end: [UInt8]?, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
            try timed(column) { try base.scan(column: column, from: start, to: end, body) }
        }
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
