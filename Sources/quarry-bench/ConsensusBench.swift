import QuarryCore
import QuarryConsensus
import QuarrySimulation
import Foundation

/// Consensus core throughput, fault-free, empty blocks:
/// 1. the whole simulator (network, canonical encoding, WAL records with CRC-32C, test
///    MAC signatures) for 4 and 7 validators;
/// 2. the core alone: each node's recorded inputs replayed into a fresh core, with the
///    test-MAC verification, and with signature checks excluded (the inputs were verified
///    when they were recorded);
/// 3. the signature work per height, and what SM2 at the measured ~4,000 verifications/s
///    per core would allow.
enum ConsensusBench {
    /// Skips verification: only for replaying inputs that were verified when recorded.
    struct PreverifiedInputs: SignatureVerifier {
        func isValid(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool { true }
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    static func run() throws {
        let clock = ContinuousClock()
        for validators in [4, 7] {
            let heights: UInt64 = validators == 4 ? 20_000 : 10_000
            var options = SimulationOptions(seed: 1, faults: .none)
            options.validatorCount = validators
            options.chaosMilliseconds = 0
            options.heightsAfterHeal = heights
            options.livenessBoundMilliseconds = UInt64.max / 4
            options.traceLength = 0
            options.recordInputs = true
            let sim = Simulation(options: options)
            var report: SimulationReport? = nil
            let simTime = seconds(clock.measure { report = sim.run() })
            let r = report!
            precondition(r.violation == nil, "benchmark run failed: \(r)")
            let decided = Double(r.decidedHeight)
            print(String(format: "%d validators, simulator end to end: %.0f heights/s, %.0f messages delivered/s, %.0f inputs/s (%llu heights in %.2f s)",
                         validators, decided / simTime, Double(r.deliveries) / simTime, Double(r.inputs) / simTime, r.decidedHeight, simTime))

            // The core alone: replay every node's inputs into a fresh core.
            let logs = sim.recorded
            var messages = 0
            for log in logs { for i in log { if case .message = i { messages += 1 } } }
            let totalInputs = logs.reduce(0) { $0 + $1.count }
            for (label, verifier) in [("test-MAC verification", sim.verifierForBenchmark), ("signature checks excluded", PreverifiedInputs() as any SignatureVerifier)] {
                var sink = 0
                let t = seconds(clock.measure {
                    for (node, log) in logs.enumerated() {
                        var core = ConsensusCore(config: sim.configForBenchmark, signer: sim.signerForBenchmark(node: node),
                                                 verifier: verifier, signed: nil)
                        for input in log {
                            if let ready = try? core.handle(input) { sink &+= ready.broadcast.count }
                        }
                    }
                })
                print(String(format: "%d validators, core alone (%@), all %d cores on one CPU core: %.0f heights/s, %.0f messages/s, %.0f inputs/s (%d signed)",
                             validators, label, logs.count, decided / t, Double(messages) / t, Double(totalInputs) / t, sink))
            }
            // Signature work per height in this configuration.
            let verifiesPerHeight = Double(messages) / decided
            let perNode = verifiesPerHeight / Double(validators)
            print(String(format: "%d validators: %.1f signature verifications per height per node; at SM2's ~4,000 verifications/s per core (docs/performance.md, crypto) one node tops out near %.0f heights/s",
                         validators, perNode, 4000.0 / perNode))
        }
    }
}
