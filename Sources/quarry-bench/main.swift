import Foundation

// quarry-bench: prints throughput figures for Quarry's hot paths, each next to a
// reference measured on the same machine in the same run. Build it in release:
//   swift build -c release --product quarry-bench && .build/release/quarry-bench all
// Suites: crypto, store, ledger, consensus, network, rpc, client (or `all`). Figures go in docs/performance.md.

let suites: [(name: String, run: () throws -> Void)] = [
    ("crypto", CryptoBench.run),
    ("store", StoreBench.run),
    ("ledger", LedgerBench.run),
    ("consensus", ConsensusBench.run),
    ("network", NetworkBench.run),
    ("rpc", RPCBench.run),
    ("client", ClientBench.run),
]

let args = Array(CommandLine.arguments.dropFirst())
let wanted = args.isEmpty || args.contains("all") ? suites.map(\.name) : args
for name in wanted {
    guard let suite = suites.first(where: { $0.name == name }) else {
        print("unknown suite '\(name)'; choose from: \(suites.map(\.name).joined(separator: ", ")), all")
        exit(2)
    }
    print("== \(name) ==")
    try suite.run()
}
