import Foundation
import QuarryClient
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryRPC

/// The network load benchmark (docs/performance.md, "Network load"): a copy of
/// `networks/local-4` (4 validators and the read-only node, each a real `quarry node
/// start` process on 127.0.0.1) and a generator in this process that submits pre-signed
/// transactions over JSON-RPC at increasing rates:
/// - SM2-signed mileage claims from a fleet of simulated vehicles (one key each);
/// - secp256k1-signed transfers between the fleet's owners (client accounts).
/// For each rate it prints the committed throughput, the commit latency (submission to the
/// block being visible on validator 0's RPC) at p50 and p99, and the nodes' CPU per
/// transaction. The bound it compares with is signature verification measured in this
/// process before the network starts: every node verifies every transaction once, and all
/// of them share the machine's cores, so the network cannot commit more than
/// `rate x cores / 4` transactions per second (the 4 validators; `/ 5` with the read-only node).
///
/// The network copy differs from networks/local-4 in three things, all outside consensus
/// rules except the last: its ports (29600 and up, so a running devnet is not disturbed),
/// its genesis time (now, as `quarry devnet` does for a fresh network), and
/// `transfersEnabled = true` (so secp256k1 accounts have something to send).
///
/// Settings (environment): QUARRY_LOAD_ENGINES=fast,openssl  QUARRY_LOAD_RATES=250,500,...
/// QUARRY_LOAD_SECP_RATES=...  QUARRY_LOAD_STEP_SECONDS=10  QUARRY_LOAD_VEHICLES=4000
/// QUARRY_LOAD_OWNERS=200  QUARRY_LOAD_LOG_LEVEL=debug (the nodes')  QUARRY_LOAD_NETWORK=networks/local-4  QUARRY_LOAD_QUARRY=path of
/// the `quarry` binary (default: beside this one)  QUARRY_LOAD_KEEP=1 keeps the directory.
enum LoadBench {
    struct Settings {
        var source = URL(fileURLWithPath: "networks/local-4")
        var quarry = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("quarry")
        var engines: [SM2VerificationEngine] = [.fast, .openSSL]
        var rates = [250, 500, 1_000, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000, 6_000]
        var secpRates = [250, 500, 1_000, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000, 6_000]
        var stepSeconds = 10
        var vehicles = 4_000
        var owners = 200
        var portBase = 29_600
        var keep = false

        static func fromEnvironment() throws -> Settings {
            let env = ProcessInfo.processInfo.environment
            var s = Settings()
            func ints(_ name: String) throws -> [Int]? {
                guard let text = env[name] else { return nil }
                let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else {
                    throw BenchError("\(name) must be a comma-separated list of positive integers, got '\(text)'")
                }
                return values.map { $0! }
            }
            if let v = env["QUARRY_LOAD_NETWORK"] { s.source = URL(fileURLWithPath: v) }
            if let v = env["QUARRY_LOAD_QUARRY"] { s.quarry = URL(fileURLWithPath: v) }
            if let v = env["QUARRY_LOAD_ENGINES"] {
                s.engines = try v.split(separator: ",").map {
                    guard let e = SM2VerificationEngine(rawValue: String($0)) else {
                        throw BenchError("QUARRY_LOAD_ENGINES: '\($0)' is not an engine (fast, openssl)")
                    }
                    return e
                }
            }
            if let v = try ints("QUARRY_LOAD_RATES") { s.rates = v }
            if let v = try ints("QUARRY_LOAD_SECP_RATES") { s.secpRates = v }
            if let v = try ints("QUARRY_LOAD_STEP_SECONDS")?.first { s.stepSeconds = max(4, v) }
            if let v = try ints("QUARRY_LOAD_VEHICLES")?.first { s.vehicles = v }
            if let v = try ints("QUARRY_LOAD_OWNERS")?.first { s.owners = min(v, s.vehicles) }
            s.keep = env["QUARRY_LOAD_KEEP"] == "1"
            return s
        }
    }

    struct BenchError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    static func run() throws {
        let settings = try Settings.fromEnvironment()
        guard FileManager.default.isExecutableFile(atPath: settings.quarry.path) else {
            throw BenchError("no quarry binary at \(settings.quarry.path): build it (swift build -c release --product quarry) or set QUARRY_LOAD_QUARRY")
        }
        guard FileManager.default.fileExists(atPath: settings.source.appendingPathComponent("genesis.json").path) else {
            throw BenchError("no network at \(settings.source.path) (run from the repository root or set QUARRY_LOAD_NETWORK)")
        }
        let done = DispatchSemaphore(value: 0)
        let box = NetworkBench.ErrorBox()
        Task {
            do {
                for engine in settings.engines { try await runNetwork(settings, engine: engine) }
            } catch { box.error = error }
            done.signal()
        }
        done.wait()
        if let error = box.error { throw error }
    }

    // MARK: - One network, one SM2 engine

    static func runNetwork(_ settings: Settings, engine: SM2VerificationEngine) async throws {
        emit("-- SM2 engine '\(engine.rawValue)' in every node; \(settings.vehicles) vehicles, \(settings.owners) owners; load average \(loadAverage())")
        let net = try LoadNetwork(settings: settings, engine: engine)
        defer {
            net.stop()
            if !settings.keep { try? FileManager.default.removeItem(at: net.root) } else { emit("network kept in \(net.root.path)") }
        }
        let fleet = try Fleet(settings: settings, chainID: net.genesis.chainID)

        // The bound, measured before the nodes start (the machine is otherwise idle).
        let before = SM2.verificationEngine
        SM2.verificationEngine = engine
        let sm2Rate = fleet.verificationRate(fleet.vehicleSamples)
        SM2.verificationEngine = before
        let secpRate = fleet.verificationRate(fleet.ownerSamples)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        emit(String(format: "verification on one core: SM2 (%@, per-key cache) %.0f /s, secp256k1 %.0f /s; %d cores",
                     engine.rawValue, sm2Rate, secpRate, cores))

        try net.start()
        let tracker = Tracker()
        let follower = Task { await tracker.follow(net.clients[0]) }
        defer { follower.cancel() }
        try await net.waitUntilServing()
        try await fleet.setUp(net: net, tracker: tracker)

        let sm2Bound = sm2Rate * Double(cores) / 4
        let sm2 = try await sweep(name: "SM2 mileage claims", rates: settings.rates, bound: sm2Bound, withAuditor: sm2Rate * Double(cores) / 5,
                                  settings: settings, net: net, tracker: tracker) { count in try fleet.claims(count) }
        try await fleet.awaitOwnerBalances(net: net)
        let secpBound = secpRate * Double(cores) / 4
        let secp = try await sweep(name: "secp256k1 transfers", rates: settings.secpRates, bound: secpBound, withAuditor: secpRate * Double(cores) / 5,
                                   settings: settings, net: net, tracker: tracker) { count in try fleet.transfers(count) }
        emit(String(format: "summary (%@): SM2 claims sustained %.0f tx/s = %.1f %% of %.0f; secp256k1 transfers sustained %.0f tx/s = %.1f %% of %.0f",
                     engine.rawValue, sm2, 100 * sm2 / sm2Bound, sm2Bound, secp, 100 * secp / secpBound, secpBound))
        let roots = try await net.stateRootsAgree()
        emit("all \(net.clients.count) nodes at height \(roots.height) with state root \(roots.root.prefix(16))...: \(roots.agree ? "identical" : "DIFFERENT")")
        guard roots.agree else { throw BenchError("the nodes' state roots differ") }
    }

    /// Runs the steps of one kind at increasing rates until one does not keep up, then a
    /// step at half the sustained rate for the latency target. Returns the sustained rate.
    static func sweep(name: String, rates: [Int], bound: Double, withAuditor: Double, settings: Settings, net: LoadNetwork,
                      tracker: Tracker, make: (Int) throws -> [SignedTransaction]) async throws -> Double {
        emit(String(format: "%@: bound %.0f tx/s (4 validators verify each; %.0f with the read-only node too)", name, bound, withAuditor))
        emit("  offered   committed/s   p50 ms   p99 ms   node CPU/tx   gen CPU/tx   refused   kept up")
        var sustained = 0.0
        for rate in rates {
            let txs = try make(rate * settings.stepSeconds)
            let r = try await step(txs, rate: rate, seconds: settings.stepSeconds, net: net, tracker: tracker)
            emit(r.line)
            if r.keptUp { sustained = max(sustained, r.committedRate) } else { break }
        }
        guard sustained > 0 else { return 0 }
        let half = Int(sustained / 2)
        let txs = try make(half * settings.stepSeconds)
        let r = try await step(txs, rate: half, seconds: settings.stepSeconds, net: net, tracker: tracker)
        emit(r.line + "   <- half of the sustained rate")
        emit(String(format: "  %@: sustained %.0f tx/s = %.1f %% of the bound; at %d tx/s p50 %.0f ms, p99 %.0f ms",
                     name, sustained, 100 * sustained / bound, half, r.p50, r.p99))
        return sustained
    }

    struct StepResult {
        var offered: Int
        var committedRate: Double
        var p50: Double
        var p99: Double
        var nodeCPUPerTx: Double
        var generatorCPUPerTx: Double
        var refused: [String: Int]
        var failedInBlocks: [String: Int]
        var keptUp: Bool

        var line: String {
            var refusedText = refused.isEmpty && failedInBlocks.isEmpty ? "0" : ""
            for (k, v) in refused.sorted(by: { $0.key < $1.key }) { refusedText += "\(k)=\(v) " }
            for (k, v) in failedInBlocks.sorted(by: { $0.key < $1.key }) { refusedText += "block:\(k)=\(v) " }
            return String(format: "  %7d   %11.0f   %6.0f   %6.0f   %8.0f us   %7.0f us   %@   %@",
                          offered, committedRate, p50, p99, nodeCPUPerTx, generatorCPUPerTx, refusedText, keptUp ? "yes" : "no")
        }
    }

    /// Submits `txs` at `rate` per second (JSON-RPC batches of up to 100 `tx_submit` with
    /// wait "checked", spread over the 4 validators), then waits for them to commit.
    static func step(_ txs: [SignedTransaction], rate: Int, seconds: Int, net: LoadNetwork, tracker: Tracker) async throws -> StepResult {
        let encoded = txs.map { (hash: $0.hash, hex: JSONValue.string(Hex.encode($0.canonicalBytes))) }
        let refused = Counts()
        let cpuBefore = net.nodeCPUSeconds(), genBefore = selfCPUSeconds()
        let start = Monotonic.now
        var sent = 0, batches = 0
        let inFlight = Counts()
        await withTaskGroup(of: Void.self) { group in
            while sent < encoded.count {
                let due = min(encoded.count, Int(Double(rate) * Double(Monotonic.now - start) / 1e9))
                while sent < due && inFlight.value("inFlight") < 64 {
                    let slice = Array(encoded[sent..<min(due, sent + 100)])
                    sent += slice.count
                    let client = net.validatorClients[batches % net.validatorClients.count]
                    batches += 1
                    inFlight.add("inFlight", 1)
                    group.addTask {
                        defer { inFlight.add("inFlight", -1) }
                        let t = Monotonic.now
                        tracker.submitted(slice.map(\.hash), at: t)
                        let calls = slice.map { (method: "tx_submit", params: [("tx", $0.hex), ("wait", JSONValue.string("checked"))]) }
                        do {
                            let answers = try await client.batch(calls, timeoutMilliseconds: 30_000)
                            for (tx, a) in zip(slice, answers) {
                                if case .failure(let e) = a {
                                    refused.add(e.dataCode ?? "rpc.\(e.code)", 1)
                                    tracker.forget(tx.hash)
                                }
                            }
                        } catch {
                            refused.add("batch:\(error)".prefix(60).description, slice.count)
                            for tx in slice { tracker.forget(tx.hash) }
                        }
                    }
                }
                try? await Task.sleep(nanoseconds: 5_000_000)
            }
        }
        let sentEnd = Monotonic.now
        // Everything admitted should commit; a step that is over capacity leaves a backlog,
        // which is allowed 10 s (plus the step's own length) to drain.
        let hashes = encoded.map(\.hash)
        let drainDeadline = sentEnd + Int64(seconds + 10) * 1_000_000_000
        while Monotonic.now < drainDeadline && !tracker.allSettled(hashes) {
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        let cpu = net.nodeCPUSeconds() - cpuBefore, gen = selfCPUSeconds() - genBefore
        var latencies: [Int64] = []
        var inWindow = 0
        var failed: [String: Int] = [:]
        var committed = 0
        let windowStart = start + 2_000_000_000, windowEnd = start + Int64(seconds) * 1_000_000_000
        var lastCommit = start
        for h in hashes {
            guard let c = tracker.commit(of: h) else { continue }
            committed += 1
            if !c.code.isEmpty { failed[c.code, default: 0] += 1 }
            latencies.append(c.latency)
            if c.at >= windowStart && c.at < windowEnd { inWindow += 1 }
            lastCommit = max(lastCommit, c.at)
        }
        latencies.sort()
        func pct(_ p: Int) -> Double { latencies.isEmpty ? 0 : Double(latencies[min(latencies.count - 1, latencies.count * p / 100)]) / 1e6 }
        let admitted = hashes.count - refused.total
        let sentRate = Double(sent) / (Double(sentEnd - start) / 1e9)
        let windowRate = Double(inWindow) / Double(seconds - 2)
        // Kept up: every admitted transaction committed within 5 s of the last submission,
        // the generator sent at the rate asked, and the steady-state commit rate matches it.
        let keptUp = admitted > 0 && committed >= admitted && Double(lastCommit - sentEnd) < 5e9
            && sentRate >= 0.95 * Double(rate) && windowRate >= 0.9 * Double(rate)
            && refused.total == 0
        return StepResult(offered: rate, committedRate: windowRate,
                          p50: pct(50), p99: pct(99), nodeCPUPerTx: committed == 0 ? 0 : cpu / Double(committed) * 1e6,
                          generatorCPUPerTx: committed == 0 ? 0 : gen / Double(committed) * 1e6,
                          refused: refused.snapshot.filter { $0.key != "inFlight" }, failedInBlocks: failed, keptUp: keptUp)
    }

    static func loadAverage() -> String {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
    }

    /// User + system CPU seconds of this process.
    static func selfCPUSeconds() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
    }
}

/// Prints a line at once, even when the output is a pipe (a long run shows as it goes).
func emit(_ line: String) {
    print(line)
    fflush(nil)
}

/// Nanoseconds of CLOCK_MONOTONIC.
enum Monotonic {
    static var now: Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}

/// Named counters shared between tasks.
final class Counts: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    func add(_ key: String, _ n: Int) { lock.lock(); counts[key, default: 0] += n; lock.unlock() }
    func value(_ key: String) -> Int { lock.lock(); defer { lock.unlock() }; return counts[key] ?? 0 }
    var snapshot: [String: Int] { lock.lock(); defer { lock.unlock() }; return counts }
    /// Everything except the in-flight gauge.
    var total: Int { snapshot.filter { $0.key != "inFlight" }.values.reduce(0, +) }
}

/// When each transaction was submitted and when validator 0 showed it committed.
final class Tracker: @unchecked Sendable {
    struct Commit { let at: Int64; let latency: Int64; let code: String }
    private let lock = NSLock()
    private var sentAt: [Hash256: Int64] = [:]
    private var commits: [Hash256: (at: Int64, code: String)] = [:]

    func submitted(_ hashes: [Hash256], at t: Int64) {
        lock.lock(); defer { lock.unlock() }
        for h in hashes where sentAt[h] == nil { sentAt[h] = t }
    }

    /// A transaction the node refused: it will not commit.
    func forget(_ hash: Hash256) { lock.lock(); sentAt[hash] = nil; lock.unlock() }

    func commit(of hash: Hash256) -> Commit? {
        lock.lock(); defer { lock.unlock() }
        guard let s = sentAt[hash], let c = commits[hash] else { return nil }
        return Commit(at: c.at, latency: max(0, c.at - s), code: c.code)
    }

    func isCommitted(_ hash: Hash256) -> Bool { lock.lock(); defer { lock.unlock() }; return commits[hash] != nil }

    /// Every transaction that was admitted is committed.
    func allSettled(_ hashes: [Hash256]) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return hashes.allSatisfy { sentAt[$0] == nil || commits[$0] != nil }
    }

    func result(of hash: Hash256) -> String? { lock.lock(); defer { lock.unlock() }; return commits[hash]?.code }

    /// Polls validator 0 every 5 ms and records the commit time of every transaction in
    /// each new block (with its result code, empty on success).
    func follow(_ client: QuarryClient) async {
        var seen: UInt64 = 0
        while !Task.isCancelled {
            if let status = try? await client.status() {
                while seen < status.height, !Task.isCancelled {
                    guard let block = try? await client.block(height: seen + 1) else { break }
                    let t = Monotonic.now
                    let results = block["results"]?.arrayValue ?? []
                    var found: [(Hash256, String)] = []
                    for r in results {
                        if let hex = r["hash"]?.stringValue, let h = try? Hash256(hex: hex) {
                            found.append((h, r["code"]?.stringValue ?? ""))
                        }
                    }
                    record(found, at: t)
                    seen += 1
                }
            }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    private func record(_ found: [(Hash256, String)], at t: Int64) {
        lock.lock(); defer { lock.unlock() }
        for (hash, code) in found { commits[hash] = (t, code) }
    }

    func waitCommitted(_ hashes: [Hash256], seconds: Int, what: String) async throws {
        let deadline = Monotonic.now + Int64(seconds) * 1_000_000_000
        while !hashes.allSatisfy(isCommitted) {
            guard Monotonic.now < deadline else { throw LoadBench.BenchError("\(what): not committed within \(seconds) s") }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        for h in hashes {
            if let code = result(of: h), !code.isEmpty { throw LoadBench.BenchError("\(what): a transaction failed in its block with \(code)") }
        }
    }
}
