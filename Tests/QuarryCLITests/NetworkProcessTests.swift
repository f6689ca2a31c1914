import Foundation
import Testing

/// Starts a real network as separate `quarry node start` processes on 127.0.0.1 (4
/// validators and 1 read-only node from `quarry testnet`), and checks what an operator
/// would: every node commits the same block at every height; with one validator killed
/// (SIGKILL) the other three keep committing; restarted, it catches up by block sync and
/// rejoins; a validator paused (SIGSTOP) longer than the timeouts resumes and catches up.
/// Every process is stopped at the end, whatever happens. Bounded in time.
@Suite(.serialized) struct NetworkProcessTests {
    final class Network {
        let root: String
        var processes: [Int: Process] = [:]

        init(root: String) { self.root = root }

        func log(_ i: Int) -> String { root + "/node\(i).log" }

        func start(_ i: Int) throws {
            let p = Process()
            p.executableURL = QuarryProcess.binary
            p.arguments = ["node", "start", "--home", root + "/node\(i)"]
            if !FileManager.default.fileExists(atPath: log(i)) {
                FileManager.default.createFile(atPath: log(i), contents: nil)
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log(i)))
            handle.seekToEndOfFile()
            p.standardInput = FileHandle.nullDevice
            p.standardOutput = handle
            p.standardError = handle
            try p.run()
            processes[i] = p
        }

        func signal(_ i: Int, _ sig: Int32) {
            if let p = processes[i], p.isRunning { kill(p.processIdentifier, sig) }
        }

        func stopAll() {
            for (_, p) in processes where p.isRunning { kill(p.processIdentifier, SIGCONT); kill(p.processIdentifier, SIGINT) }
            let deadline = Date().addingTimeInterval(5)
            while processes.values.contains(where: \.isRunning) && Date() < deadline { usleep(50_000) }
            for (_, p) in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) }
            for (_, p) in processes { p.waitUntilExit() }
        }

        /// height -> block hash prefix, from the node's log.
        func committed(_ i: Int) -> [Int: String] {
            guard let text = try? String(contentsOfFile: log(i), encoding: .utf8) else { return [:] }
            var out: [Int: String] = [:]
            for line in text.split(separator: "\n") where line.contains("committed height=") {
                let fields = line.split(separator: " ")
                guard let h = fields.first(where: { $0.hasPrefix("height=") }).flatMap({ Int($0.dropFirst(7)) }),
                      let hash = fields.first(where: { $0.hasPrefix("hash=") }) else { continue }
                out[h] = String(hash.dropFirst(5))
            }
            return out
        }

        func height(_ i: Int) -> Int {
            guard let text = try? String(contentsOfFile: log(i), encoding: .utf8) else { return 0 }
            var best = 0
            for line in text.split(separator: "\n") {
                for f in line.split(separator: " ") where f.hasPrefix("height=") { best = max(best, Int(f.dropFirst(7)) ?? 0) }
            }
            return best
        }

        func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if condition() { return true }
                usleep(100_000)
            }
            return condition()
        }
    }

    @Test(.timeLimit(.minutes(3))) func killPauseRestartAndCatchUp() throws {
        let root = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let base = 27_000 + Int.random(in: 0..<50) * 100
        let made = try QuarryProcess.run(["testnet", "--output", root + "/net", "--validators", "4", "--read-only", "1",
                                          "--base-port", String(base)])
        #expect(made.status == 0, "\(made.stderr)")
        let net = Network(root: root + "/net")
        defer { net.stopAll() }
        for i in 0..<5 { try net.start(i) }

        #expect(net.waitUntil(seconds: 40) { (0..<5).allSatisfy { net.height($0) >= 3 } },
                "heights \((0..<5).map(net.height)); node0 log: \((try? String(contentsOfFile: net.log(0), encoding: .utf8))?.suffix(600) ?? "none")")
        guard (0..<5).allSatisfy({ net.height($0) >= 3 }) else { return }

        // SIGKILL validator 3: the other three (30 of 40 power) keep committing.
        net.signal(3, SIGKILL)
        net.processes[3]?.waitUntilExit()
        let killedAt = net.height(0)
        #expect(net.waitUntil(seconds: 30) { net.height(0) >= killedAt + 3 && net.height(4) >= killedAt + 3 },
                "without validator 3: heights \((0..<5).map(net.height))")

        // Restart it: it syncs the blocks it missed and commits new ones with the others.
        try net.start(3)
        let target = net.height(0) + 2
        #expect(net.waitUntil(seconds: 40) { net.committed(3).keys.contains { $0 >= target } },
                "restarted validator: height \(net.height(3)), others \(net.height(0))")

        // Pause validator 2 past the timeouts, resume it: it catches up too.
        net.signal(2, SIGSTOP)
        let pausedAt = net.height(0)
        #expect(net.waitUntil(seconds: 30) { net.height(0) >= pausedAt + 3 })
        net.signal(2, SIGCONT)
        let after = net.height(0) + 2
        #expect(net.waitUntil(seconds: 40) { net.height(2) >= after }, "resumed validator at \(net.height(2)), others \(net.height(0))")

        net.stopAll()
        // No fork: every height committed by several nodes has one hash.
        let logs = (0..<5).map(net.committed)
        let all = Set(logs.flatMap(\.keys))
        for h in all.sorted() {
            let hashes = Set(logs.compactMap { $0[h] })
            #expect(hashes.count == 1, "height \(h) has \(hashes.count) different blocks")
        }
        #expect(all.count >= 10)
        // Graceful shutdown on SIGINT is logged by every node.
        for i in 0..<5 {
            let text = (try? String(contentsOfFile: net.log(i), encoding: .utf8)) ?? ""
            #expect(text.contains("stopped at height"), "node \(i) did not shut down gracefully")
        }
    }
}
