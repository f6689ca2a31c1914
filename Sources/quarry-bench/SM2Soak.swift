import Dispatch
import Foundation
import QuarryCore
import QuarryCrypto

/// `quarry-bench sm2-soak [--cases N] [--seed S] [--first I] [--threads T]`: the long
/// differential run of the two SM2 engines (docs/adr/0012). Runs cases I ..< I + N of seed S
/// (default: 1,000,000 cases from 0, seed 1) from `SM2EngineComparison`, the generator the
/// CI tests use, on T threads (default: every core), prints progress and the report, and
/// exits 1 on any disagreement or unexpected outcome. A failing CI case is replayed with
/// `--seed S --first I --cases 1`.
enum SM2Soak {
    struct Options {
        var cases: UInt64 = 1_000_000
        var seed: UInt64 = 1
        var first: UInt64 = 0
        var threads = ProcessInfo.processInfo.activeProcessorCount
    }

    static func parse(_ arguments: [String]) -> Options? {
        var options = Options()
        var i = 0
        while i < arguments.count {
            guard i + 1 < arguments.count, let value = UInt64(arguments[i + 1].replacingOccurrences(of: "_", with: "")) else {
                return nil
            }
            switch arguments[i] {
            case "--cases": options.cases = value
            case "--seed": options.seed = value
            case "--first": options.first = value
            case "--threads": options.threads = max(1, Int(clamping: value))
            default: return nil
            }
            i += 2
        }
        return options
    }

    static func run(_ arguments: [String]) -> Int32 {
        guard let options = parse(arguments) else {
            print("usage: quarry-bench sm2-soak [--cases N] [--seed S] [--first I] [--threads T]")
            return 2
        }
        let chunk: UInt64 = 1_000
        let chunks = Int((options.cases + chunk - 1) / chunk)
        print("SM2 engine soak: cases \(options.first) ..< \(options.first + options.cases) of seed \(options.seed), "
              + "\(options.threads) threads, load \(loadAverage())")
        let start = Date()
        let lock = Lock()
        nonisolated(unsafe) var total = SM2EngineComparison.Report()
        nonisolated(unsafe) var next = 0
        nonisolated(unsafe) var done = 0
        DispatchQueue.concurrentPerform(iterations: options.threads) { _ in
            while true {
                let index: Int? = lock.withLock {
                    guard next < chunks else { return nil }
                    next += 1
                    return next - 1
                }
                guard let index else { return }
                let from = options.first + UInt64(index) * chunk
                let to = min(from + chunk, options.first + options.cases)
                let report = SM2EngineComparison.run(seed: options.seed, indices: from..<to)
                lock.withLock {
                    total.merge(report)
                    done += 1
                    if done % 50 == 0 || done == chunks || !report.passed {
                        let seconds = Date().timeIntervalSince(start)
                        print(String(format: "  %d / %llu cases, %.0f s, %d disagreements, %d unexpected",
                                     total.cases, options.cases, seconds, total.disagreementCount, total.unexpectedCount))
                        fflush(nil)  // all output streams
                    }
                }
            }
        }
        let seconds = Date().timeIntervalSince(start)
        print(total)
        print(String(format: "%@ in %.0f s (%.0f cases/s), load %@", total.passed ? "PASSED" : "FAILED", seconds,
                     Double(total.cases) / seconds, loadAverage()))
        return total.passed ? 0 : 1
    }

    static func loadAverage() -> String {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "unknown"
    }
}
