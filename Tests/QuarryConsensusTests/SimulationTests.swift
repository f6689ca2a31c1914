import Testing
import QuarryConsensus
@testable import QuarrySimulation

/// Runs `count` seeds starting at `from`; returns the failing reports.
func runSeeds(from: UInt64, count: UInt64, configure: (inout SimulationOptions) -> Void = { _ in }) -> [SimulationReport] {
    var failures = [SimulationReport]()
    for seed in from..<(from + count) {
        var options = SimulationOptions(seed: seed)
        configure(&options)
        let report = Simulation(options: options).run()
        if report.violation != nil { failures.append(report) }
    }
    return failures
}

@Suite("Simulator")
struct SimulationTests {
    /// 1,000 seeds with every fault family, in 10 parallel batches of 100.
    @Test("1,000 seeds with faults keep agreement, validity, no honest double-sign, liveness",
          arguments: 0..<10)
    func faultySeeds(batch: Int) {
        let failures = runSeeds(from: 1 + UInt64(batch) * 100, count: 100)
        for f in failures.prefix(3) { Issue.record("\(f)") }
        #expect(failures.isEmpty)
    }

    @Test("without faults every seed decides many heights")
    func faultFree() {
        for seed in UInt64(1)...20 {
            var options = SimulationOptions(seed: seed, faults: .none)
            options.chaosMilliseconds = 0
            options.heightsAfterHeal = 30
            let report = Simulation(options: options).run()
            #expect(report.violation == nil, "\(report)")
            #expect(report.decidedHeight >= 30)
            #expect(report.evidence == 0 && report.rejectedInputs == 0)
        }
    }

    @Test("the same seed replays exactly")
    func determinism() {
        for seed in [UInt64(7), 42, 4242] {
            let a = Simulation(options: SimulationOptions(seed: seed)).run()
            let b = Simulation(options: SimulationOptions(seed: seed)).run()
            #expect(a.fingerprint == b.fingerprint)
            #expect(a.deliveries == b.deliveries && a.inputs == b.inputs && a.decidedHeight == b.decidedHeight)
        }
    }
}
