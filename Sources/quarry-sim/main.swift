// quarry-sim: soak runs of the consensus simulator.
//   swift build -c release --product quarry-sim
//   .build/release/quarry-sim --seeds 100000 --from 1 [--faults none|all] [--verbose]
// Prints each failing seed with its trace; exits 1 if any seed fails.
import QuarrySimulation
import QuarryConsensus

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

var seeds: UInt64 = 1000
var from: UInt64 = 1
var faults = FaultSet.all
var verbose = false
var bugs: PlantedBugs = []
var stopAtFirst = false
var lockStress = false
var args = Array(CommandLine.arguments.dropFirst())
while !args.isEmpty {
    let a = args.removeFirst()
    switch a {
    case "--seeds": seeds = UInt64(args.isEmpty ? "" : args.removeFirst()) ?? seeds
    case "--from": from = UInt64(args.isEmpty ? "" : args.removeFirst()) ?? from
    case "--faults": faults = (args.isEmpty ? "all" : args.removeFirst()) == "none" ? .none : .all
    case "--verbose": verbose = true
    case "--stop-at-first": stopAtFirst = true
    case "--lock-stress": lockStress = true
    case "--planted-bug":
        // Testing the simulator itself: run a deliberately broken core.
        switch args.isEmpty ? "" : args.removeFirst() {
        case "skip-lock-check": bugs.insert(.skipLockCheck)
        case "quorum-inclusive": bugs.insert(.quorumInclusive)
        case "forget-last-signed": bugs.insert(.forgetLastSignedOnRestart)
        case "skip-validation": bugs.insert(.skipValueValidation)
        default: print("planted bugs: skip-lock-check, quorum-inclusive, forget-last-signed, skip-validation"); exit(2)
        }
    default:
        print("usage: quarry-sim [--seeds N] [--from S] [--faults all|none] [--verbose] [--stop-at-first] [--planted-bug NAME] [--lock-stress]")
        exit(2)
    }
}

var failures = 0
var heights: UInt64 = 0
var deliveries = 0
var seed = from
while seed < from &+ seeds {
    var options = lockStress ? SimulationOptions.lockStress(seed: seed) : SimulationOptions(seed: seed, faults: faults)
    options.plantedBugs = bugs
    let sim = Simulation(options: options)
    let report = sim.run()
    heights += report.decidedHeight
    deliveries += report.deliveries
    if report.violation != nil {
        failures += 1
        print(report)
        if verbose { for line in sim.nodeStates { print("  " + line) } }
        if stopAtFirst { print("first failure after \(seed - from + 1) seeds"); exit(1) }
    } else if verbose {
        print(report)
    }
    seed &+= 1
}
print("\(seeds) seeds from \(from): \(failures) failing, \(heights) heights decided, \(deliveries) messages delivered")
exit(failures == 0 ? 0 : 1)
