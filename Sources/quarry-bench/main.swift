import Foundation

// quarry-bench: prints throughput figures for Quarry's hot paths, each next to a
// reference measured on the same machine in the same run. Build it in release:
//   swift build -c release --product quarry-bench && .build/release/quarry-bench all
// Suites: crypto, store, ledger, consensus, network, rpc, client (or `all`), and load (the
// network load benchmark on a copy of networks/local-4; needs the release `quarry` binary). Figures go in docs/performance.md.
// `quarry-bench sm2-soak [--cases N] [--seed S] [--first I] [--threads T]` runs the SM2
// engines' differential soak instead (docs/adr/0012).

let suites: [(name: String, run: () throws -> Void)] = [
    ("crypto", CryptoBench.run),
    ("store", StoreBench.run),
    ("ledger", LedgerBench.run),
    ("consensus", ConsensusBench.run),
    ("network", NetworkBench.run),
    ("rpc", RPCBench.run),
    ("client", ClientBench.run),
    ("load", LoadBench.run),
]
/// `all` leaves out the network load benchmark: it starts five node processes and runs
/// for minutes (LoadBench.swift; `quarry-bench load`).
let inAll = suites.map(\.name).filter { $0 != "load" }

let args = Array(CommandLine.arguments.dropFirst())
// The long differential run of the SM2 engines takes its own options (SM2Soak.swift).
if args.first == "sm2-soak" { exit(SM2Soak.run(Array(args.dropFirst()))) }
let wanted = args.isEmpty || args.contains("all") ? inAll : args
for name in wanted {
    guard let suite = suites.first(where: { $0.name == name }) else {
        print("unknown suite '\(name)'; choose from: \(suites.map(\.name).joined(separator: ", ")), all")
        exit(2)
    }
    print("== \(name) ==")
    do { try suite.run() } catch {
        print("\(name) failed: \(error)")
        fflush(nil)
        exit(1)
    }
}
