import Testing
@testable import QuarryConsensus
@testable import QuarrySimulation

/// The simulator has teeth: each deliberately broken core is caught within a bounded
/// number of seeds, with the expected kind of violation. (Seeds run in order from 1 and
/// stop at the first violation; the bounds leave room above the seed that finds it today.)
@Suite("Planted bugs are caught")
struct PlantedBugTests {
    func firstViolation(bug: PlantedBugs, seeds: UInt64, options make: (UInt64) -> SimulationOptions)
        -> (seed: UInt64, violation: Violation)? {
        for seed in 1...seeds {
            var o = make(seed)
            o.plantedBugs = bug
            o.traceLength = 12
            if let v = Simulation(options: o).run().violation { return (seed, v) }
        }
        return nil
    }

    @Test("skipping the lock check forks (agreement), within 1,000 lock-stress seeds")
    func skipLockCheck() throws {
        let found = try #require(firstViolation(bug: .skipLockCheck, seeds: 1000, options: SimulationOptions.lockStress))
        #expect(found.violation.kind == .agreement)
    }

    @Test("a quorum of exactly 2/3 yields certificates that do not verify (validity), within 50 seeds")
    func quorumInclusive() throws {
        let found = try #require(firstViolation(bug: .quorumInclusive, seeds: 50) { SimulationOptions(seed: $0) })
        #expect(found.violation.kind == .validity)
    }

    @Test("forgetting the saved signed state on restart double-signs, within 50 seeds")
    func forgetLastSigned() throws {
        let found = try #require(firstViolation(bug: .forgetLastSignedOnRestart, seeds: 50) { SimulationOptions(seed: $0) })
        #expect(found.violation.kind == .doubleSign)
    }

    @Test("prevoting without asking the application decides invalid blocks (validity), within 100 seeds")
    func skipValidation() throws {
        let found = try #require(firstViolation(bug: .skipValueValidation, seeds: 100) { SimulationOptions(seed: $0) })
        #expect(found.violation.kind == .validity)
    }

    @Test("the correct core survives the lock-stress profile")
    func lockStressCorrectCore() {
        var failures = [String]()
        for seed in UInt64(1)...60 {
            let r = Simulation(options: .lockStress(seed: seed)).run()
            if let v = r.violation { failures.append("\(v)") }
        }
        #expect(failures.isEmpty, "\(failures.first ?? "")")
    }

    @Test("a failure report names the seed, the replay command and a trace")
    func failureReport() throws {
        var o = SimulationOptions(seed: 4)
        o.plantedBugs = .quorumInclusive
        let v = try #require(Simulation(options: o).run().violation)
        #expect(v.seed == 4 && !v.trace.isEmpty)
        #expect(v.description.contains("--from 4"))
    }
}
