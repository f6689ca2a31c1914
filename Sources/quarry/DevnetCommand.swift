import ArgumentParser
import Foundation
import QuarryClient
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryNode

struct DevnetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devnet",
        abstract: "Run the local demo network: 4 validators and a read-only node, with a workload of vehicles, claims, blind boxes and a redemption.",
        discussion: """
            Generates the network with 'quarry testnet' if the directory holds none, starts every \
            node under it ('quarry node start', one process each, logs in <network>/nodeN.log), \
            and drives a demo through JSON-RPC: the registrar registers a fleet, owners sign the \
            data-rights agreement, vehicles submit signed mileage claims, batches settle, the \
            crystal issuer grants crystals, the box operator opens a season and answers draws, \
            and the merchant lists items and handles a redemption. Progress is printed every few \
            seconds. Ctrl-C (or --duration) stops the workload, then every node, cleanly, and \
            prints a summary. The chain data stays on disk for 'quarry query'; the demo's keys \
            are kept in <network>/demo-keys (plain text: development only).
            """)

    @Option(help: ArgumentHelp("The network directory (created when missing).", valueName: "dir"))
    var network: String = "networks/local-4"

    @Option(help: "Vehicles in the simulated fleet.") var vehicles: Int = 8

    @Option(help: ArgumentHelp("Stop by itself after this many seconds (0: run until Ctrl-C).", valueName: "seconds"))
    var duration: UInt64 = 0

    @Flag(help: "Only start the nodes; no workload.") var noWorkload = false

    @Option(help: ArgumentHelp("Seconds between progress lines.", valueName: "seconds")) var progressInterval: UInt64 = 3

    func validate() throws {
        guard (1...200).contains(vehicles) else { throw ValidationError("--vehicles must be 1 to 200") }
        guard (1...60).contains(progressInterval) else { throw ValidationError("--progress-interval must be 1 to 60 seconds") }
    }

    func run() async throws {
        let root = URL(fileURLWithPath: (network as NSString).expandingTildeInPath).standardizedFileURL
        if !FileManager.default.fileExists(atPath: root.appendingPathComponent("genesis.json").path) {
            say("==> generating \(root.path)")
            try TestnetCommand.parse(["--output", root.path, "--validators", "4", "--read-only", "1",
                                      "--base-port", "26600", "--chain-id", "quarry-local-4"]).run()
        }
        let nodes = try DevnetNodes(root: root)
        try nodes.refreshGenesisTimeIfUnstarted()
        let stop = StopSignal()
        stop.watchSignals()
        if duration > 0 { stop.after(seconds: duration) }

        say("==> starting \(nodes.homes.count) nodes (logs: \(root.path)/nodeN.log); Ctrl-C stops them")
        var summary = DemoSummary()
        do {
            try nodes.startAll()
            let clients = try nodes.clients()
            guard let ready = await waitUntilServing(clients, nodes: nodes, stop: stop) else {
                if !stop.isSet { say("==> the nodes did not start serving JSON-RPC within 90 s; see the logs") }
                nodes.stopAll()
                throw ExitCode(stop.isSet ? 0 : ClientExit.unreachable.rawValue)
            }
            say("==> chain \(ready.chainID) at height \(ready.height); RPC: " + nodes.endpoints.map(\.description).joined(separator: " "))
            if noWorkload {
                await progressOnly(nodes: nodes, clients: clients, stop: stop)
            } else {
                let workload = try DemoWorkload(root: root, client: clients[0], vehicleCount: vehicles, chainID: ready.chainID)
                summary = await workload.run(nodes: nodes, clients: clients, stop: stop, progressSeconds: progressInterval)
            }
        } catch let e as ExitCode {
            throw e
        } catch {
            // Whatever went wrong, no node is left running.
            say("==> \(error); stopping every node")
            nodes.stopAll()
            throw ExitCode(ClientExit.local.rawValue)
        }
        say("")
        say("==> stopping every node")
        nodes.stopAll()
        summary.print(nodes: nodes, workload: !noWorkload)
    }

    /// Waits (up to 90 s) until every node answers node_status.
    func waitUntilServing(_ clients: [QuarryClient], nodes: DevnetNodes, stop: StopSignal) async -> NodeStatus? {
        let deadline = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < deadline && !stop.isSet {
            if let gone = nodes.exited.first {
                say("==> \(gone) exited: \(nodes.lastLine(of: gone))")
                return nil
            }
            var first: NodeStatus?
            var all = true
            for c in clients {
                if let s = try? await c.status() { first = first ?? s } else { all = false }
            }
            if all, let first { return first }
            try? await Task.sleep(nanoseconds: 500_000_000)
        }
        return nil
    }

    func progressOnly(nodes: DevnetNodes, clients: [QuarryClient], stop: StopSignal) async {
        while !stop.isSet {
            await stop.sleep(seconds: progressInterval)
            var heights: [String] = []
            for c in clients { heights.append((try? await c.status()).map { String($0.height) } ?? "-") }
            say("\(clock()) heights: \(heights.joined(separator: " "))  (nodes running: \(nodes.running))")
            if nodes.running == 0 {
                say("==> every node has stopped (see the logs)")
                stop.trigger()
            }
        }
    }
}

/// Writes a line to standard output at once (no buffering), so progress shows live even
/// when the output is a pipe.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func clock() -> String {
    let f = DateFormatter()
    f.dateFormat = "HH:mm:ss"
    return f.string(from: Date())
}

/// Set once: by SIGINT/SIGTERM or by the --duration timer.
final class StopSignal: @unchecked Sendable {
    private let lock = Lock()
    private var set = false
    private var sources: [DispatchSourceSignal] = []

    var isSet: Bool { lock.withLock { set } }

    func trigger() { lock.withLock { set = true } }

    func watchSignals() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in self?.trigger() }
            source.resume()
            sources.append(source)
        }
    }

    func after(seconds: UInt64) {
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(Int(seconds))) { [weak self] in self?.trigger() }
    }

    /// Sleeps up to `seconds`, returning early once set.
    func sleep(seconds: UInt64) async {
        let end = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < end && !isSet { try? await Task.sleep(nanoseconds: 100_000_000) }
    }
}

/// The node processes of a network directory: `nodeN/` homes, `nodeN.log` logs.
final class DevnetNodes: @unchecked Sendable {
    let root: URL
    let homes: [URL]
    let endpoints: [RPCEndpoint]
    private var processes: [Process] = []
    private let lock = Lock()

    init(root: URL) throws {
        self.root = root
        let names = try FileManager.default.contentsOfDirectory(atPath: root.path)
            .filter { $0.hasPrefix("node") && Int($0.dropFirst(4)) != nil }
            .sorted { Int($0.dropFirst(4))! < Int($1.dropFirst(4))! }
        homes = names.map { root.appendingPathComponent($0) }
        guard !homes.isEmpty else { throw CLIError("\(root.path) has no node homes (node0, node1, ...)") }
        endpoints = try homes.map { home in
            let path = home.appendingPathComponent("config.toml").path
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIError("cannot read \(path)") }
            let config: NodeConfig
            do { config = try NodeConfig(toml: text) } catch { throw CLIError("\(path): \(error)") }
            return try RPCEndpoint(parsing: config.rpcListen)
        }
    }

    func clients() throws -> [QuarryClient] { endpoints.map { QuarryClient(endpoint: $0, timeoutMilliseconds: 10_000) } }

    var names: [String] { homes.map(\.lastPathComponent) }

    func log(_ i: Int) -> URL { root.appendingPathComponent("\(names[i]).log") }

    func startAll() throws {
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        for (i, home) in homes.enumerated() {
            let p = Process()
            p.executableURL = binary
            p.arguments = ["node", "start", "--home", home.path]
            let logURL = log(i)
            if !FileManager.default.fileExists(atPath: logURL.path) {
                _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
            }
            let handle = try FileHandle(forWritingTo: logURL)
            handle.seekToEndOfFile()
            p.standardInput = FileHandle.nullDevice
            p.standardOutput = handle
            p.standardError = handle
            try p.run()
            lock.withLock { processes.append(p) }
        }
    }

    var running: Int { lock.withLock { processes.filter(\.isRunning).count } }

    /// Names of the nodes whose process has ended.
    var exited: [String] {
        lock.withLock { zip(names, processes).filter { !$0.1.isRunning }.map(\.0) }
    }

    /// The last line of a node's log.
    func lastLine(of name: String) -> String {
        guard let i = names.firstIndex(of: name), let text = try? String(contentsOf: log(i), encoding: .utf8) else { return "no log" }
        return text.split(separator: "\n").last.map(String.init) ?? "empty log"
    }

    /// SIGINT to every node, up to 15 s for them to finish, then SIGKILL for any left.
    func stopAll() {
        let all = lock.withLock { processes }
        for p in all where p.isRunning { kill(p.processIdentifier, SIGINT) }
        let deadline = Date().addingTimeInterval(15)
        while all.contains(where: \.isRunning) && Date() < deadline { usleep(100_000) }
        for p in all where p.isRunning {
            FileHandle.standardError.write(Data("node pid \(p.processIdentifier) did not stop in 15 s; killing it\n".utf8))
            kill(p.processIdentifier, SIGKILL)
        }
        for p in all { p.waitUntilExit() }
        lock.withLock { processes.removeAll { !$0.isRunning } }
    }

    /// A network no node has started yet gets its genesis time set to now, in the network's
    /// genesis.json and every node's copy. Otherwise the mileage batches between the time the
    /// network was written (for networks/local-4: when it was committed) and now would all be
    /// empty, and by the rules their drops roll into the first batch with a claim, which would
    /// then pay out millions of stones at once. Nothing changes once any node has data.
    func refreshGenesisTimeIfUnstarted() throws {
        let fm = FileManager.default
        guard !homes.contains(where: { fm.fileExists(atPath: $0.appendingPathComponent("data/db").path) }) else { return }
        let files = [root.appendingPathComponent("genesis.json")] + homes.map { $0.appendingPathComponent("genesis.json") }
        guard let data = fm.contents(atPath: files[0].path) else { return }
        var genesis = try Genesis.load(json: Array(data))
        let now = UInt64(Date().timeIntervalSince1970)
        guard genesis.genesisTime + 60 < now else { return }
        genesis.genesisTime = now
        try genesis.validate()
        let bytes = Data(genesis.json())
        for file in files where fm.fileExists(atPath: file.path) { try bytes.write(to: file) }
        say("==> fresh network: genesis time set to now (\(now)), so the first mileage batch starts with the chain")
    }

    /// The last height each node logged as committed or synced.
    func loggedHeights() -> [String] {
        (0..<homes.count).map { i in
            guard let text = try? String(contentsOf: log(i), encoding: .utf8) else { return "-" }
            var last = "-"
            for line in text.split(separator: "\n").reversed() {
                // logfmt lines (docs/spec/logs.md): `msg="stopped at height N" block.height=N`,
                // `msg=committed height=N ...`, `msg=synced height=N ...`.
                guard line.contains("msg=\"stopped at height") || line.contains("msg=committed ") || line.contains("msg=synced ") else { continue }
                if let f = line.split(separator: " ").first(where: { $0.hasPrefix("height=") || $0.hasPrefix("block.height=") }) {
                    last = String(f.split(separator: "=")[1])
                }
                break
            }
            return last
        }
    }
}
