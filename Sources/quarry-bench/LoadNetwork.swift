import Foundation
import QuarryClient
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryNode
import QuarryRPC

/// A copy of a network directory (networks/local-4) in a temporary directory, its node
/// processes, and their CPU time read from /proc.
final class LoadNetwork: @unchecked Sendable {
    let root: URL
    let homes: [URL]
    let genesis: Genesis
    let clients: [QuarryClient]
    /// RPC clients of the validators (the generator submits only to them).
    let validatorClients: [RPCClient]
    private let quarry: URL
    private var processes: [Process] = []

    init(settings: LoadBench.Settings, engine: SM2VerificationEngine) throws {
        let fm = FileManager.default
        root = fm.temporaryDirectory.appendingPathComponent("quarry-load-\(engine.rawValue)-\(UUID().uuidString.prefix(8))")
        quarry = settings.quarry
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        let names = try fm.contentsOfDirectory(atPath: settings.source.path)
            .filter { $0.hasPrefix("node") && Int($0.dropFirst(4)) != nil }
            .sorted { Int($0.dropFirst(4))! < Int($1.dropFirst(4))! }
        guard !names.isEmpty else { throw LoadBench.BenchError("\(settings.source.path) has no node homes") }
        // Only the definition: genesis, role keys, and each home's config, genesis and keys
        // (never a data directory a devnet run left behind).
        try fm.copyItem(at: settings.source.appendingPathComponent("role-keys"), to: root.appendingPathComponent("role-keys"))
        var homes: [URL] = []
        var endpoints: [RPCEndpoint] = []
        var roles: [Bool] = []
        for name in names {
            let from = settings.source.appendingPathComponent(name), to = root.appendingPathComponent(name)
            try fm.createDirectory(at: to, withIntermediateDirectories: true)
            try fm.copyItem(at: from.appendingPathComponent("keys"), to: to.appendingPathComponent("keys"))
            var config = try String(contentsOf: from.appendingPathComponent("config.toml"), encoding: .utf8)
            config = try LoadNetwork.movePorts(config, base: settings.portBase)
            if let level = ProcessInfo.processInfo.environment["QUARRY_LOAD_LOG_LEVEL"] {
                config = config.replacingOccurrences(of: "log_level = \"info\"", with: "log_level = \"\(level)\"")
            }
            guard !config.contains("[crypto]") else { throw LoadBench.BenchError("\(name)/config.toml already names an SM2 engine") }
            config += "\n[crypto]\nsm2_engine = \"\(engine.rawValue)\"\n"
            try config.write(to: to.appendingPathComponent("config.toml"), atomically: true, encoding: .utf8)
            let parsed: NodeConfig
            do { parsed = try NodeConfig(toml: config) } catch { throw LoadBench.BenchError("\(name)/config.toml: \(error)") }
            endpoints.append(try RPCEndpoint(parsing: parsed.rpcListen))
            roles.append(parsed.role == .validator)
            homes.append(to)
        }
        self.homes = homes
        guard let data = fm.contents(atPath: settings.source.appendingPathComponent("genesis.json").path) else {
            throw LoadBench.BenchError("cannot read \(settings.source.path)/genesis.json")
        }
        var genesis = try Genesis.load(json: Array(data))
        genesis.genesisTime = UInt64(Date().timeIntervalSince1970)
        genesis.economics.transfersEnabled = true
        try genesis.validate()
        self.genesis = genesis
        let bytes = Data(genesis.json())
        try bytes.write(to: root.appendingPathComponent("genesis.json"))
        for home in homes { try bytes.write(to: home.appendingPathComponent("genesis.json")) }
        clients = endpoints.map { QuarryClient(endpoint: $0, timeoutMilliseconds: 10_000) }
        validatorClients = zip(endpoints, roles).filter(\.1).map { RPCClient(endpoint: $0.0, timeoutMilliseconds: 30_000) }
        guard !validatorClients.isEmpty else { throw LoadBench.BenchError("the network has no validator") }
    }

    /// Moves every `127.0.0.1:PORT` of a config (listen addresses and peers) so that the
    /// lowest port of networks/local-4, 26600, becomes `base`.
    static func movePorts(_ text: String, base: Int) throws -> String {
        var out = ""
        var rest = Substring(text)
        let marker = "127.0.0.1:"
        while let r = rest.range(of: marker) {
            out += rest[..<r.upperBound]
            rest = rest[r.upperBound...]
            let digits = rest.prefix { $0.isNumber }
            guard let port = Int(digits), port >= 26_600, port < 26_600 + 1_000 else {
                throw LoadBench.BenchError("unexpected port '\(digits)' in a config (expected 26600-27599)")
            }
            out += String(port - 26_600 + base)
            rest = rest.dropFirst(digits.count)
        }
        return out + rest
    }

    func start() throws {
        for home in homes {
            let p = Process()
            p.executableURL = quarry
            p.arguments = ["node", "start", "--home", home.path]
            let log = root.appendingPathComponent("\(home.lastPathComponent).log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            p.standardInput = FileHandle.nullDevice
            p.standardOutput = handle
            p.standardError = handle
            try p.run()
            processes.append(p)
        }
    }

    /// SIGINT to every node, up to 15 s for them to stop, then SIGKILL.
    func stop() {
        for p in processes where p.isRunning { kill(p.processIdentifier, SIGINT) }
        let deadline = Date().addingTimeInterval(15)
        while processes.contains(where: \.isRunning) && Date() < deadline { usleep(100_000) }
        for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        for p in processes { p.waitUntilExit() }
        processes.removeAll()
    }

    func waitUntilServing() async throws {
        let deadline = Monotonic.now + 60_000_000_000
        for (i, c) in clients.enumerated() {
            while true {
                if let s = try? await c.status(), s.height >= 1 { break }
                if let p = processes.first(where: { !$0.isRunning }) {
                    throw LoadBench.BenchError("a node exited (status \(p.terminationStatus)); logs in \(root.path)")
                }
                guard Monotonic.now < deadline else { throw LoadBench.BenchError("node\(i) did not serve a block within 60 s; logs in \(root.path)") }
                try await Task.sleep(nanoseconds: 200_000_000)
            }
        }
    }

    /// CPU seconds (user + system) used so far by the node processes.
    func nodeCPUSeconds() -> Double {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var total = 0.0
        for p in processes {
            guard let stat = try? String(contentsOfFile: "/proc/\(p.processIdentifier)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // Fields after the command name: state is the 3rd field of the line, utime the
            // 14th, stime the 15th.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 12, let u = Double(fields[11]), let s = Double(fields[12]) else { continue }
            total += (u + s) / ticks
        }
        return total
    }

    /// Waits until every node reaches the same height, then compares their state roots
    /// through `chain_getBlock` (the header's `stateRoot`).
    func stateRootsAgree() async throws -> (height: UInt64, root: String, agree: Bool) {
        let target = try await clients[0].status().height
        let deadline = Monotonic.now + 60_000_000_000
        var roots: [String] = []
        for c in clients {
            while (try? await c.status().height) ?? 0 < target {
                guard Monotonic.now < deadline else { throw LoadBench.BenchError("a node did not reach height \(target) within 60 s") }
                try await Task.sleep(nanoseconds: 100_000_000)
            }
            let block = try await c.block(height: target)
            roots.append(block["header"]?["stateRoot"]?.stringValue ?? "?")
        }
        return (target, roots[0], Set(roots).count == 1 && roots[0] != "?")
    }
}

/// The simulated fleet: vehicles (SM2 keys) and their owners (secp256k1 client accounts),
/// with the next claim and transfer of each kept here so that transactions can be signed
/// ahead of a step.
final class Fleet: @unchecked Sendable {
    struct Vehicle {
        let key: SigningKey
        let id: Hash256
        let owner: Int
        var nonce: UInt64 = 0
        var odometer: UInt64 = 0
        var spanEnd: UInt64
    }

    let chainID: String
    var vehicles: [Vehicle]
    let owners: [SigningKey]
    var ownerNonces: [UInt64]
    private var nextVehicle = 0, nextOwner = 0
    let vehicleSamples: [(signature: [UInt8], message: [UInt8], key: PublicKeyBytes)]
    let ownerSamples: [(signature: [UInt8], message: [UInt8], key: PublicKeyBytes)]
    static let agreement = SM3.hash(Array("Quarry load benchmark agreement, version 1".utf8))

    init(settings: LoadBench.Settings, chainID: String) throws {
        self.chainID = chainID
        owners = (0..<settings.owners).map { _ in SigningKey(scheme: .secp256k1) }
        ownerNonces = Array(repeating: 0, count: settings.owners)
        // Claims are one second of driving each. A vehicle's first span starts when it is
        // registered (the ledger sets its last span end to the registration block's time;
        // `setUp` moves `spanEnd` there), so each vehicle can claim about once per second
        // of the run plus the clock tolerance: the fleet must be larger than the rate.
        let start = UInt64(Date().timeIntervalSince1970)
        let salt = UInt64(Date().timeIntervalSince1970 * 1_000)
        vehicles = (0..<settings.vehicles).map { i in
            Vehicle(key: SigningKey(scheme: .sm2), id: SM3.hash(parts: [Array("load vehicle \(salt) \(i)".utf8)]),
                    owner: i % settings.owners, spanEnd: start)
        }
        func sample(_ key: SigningKey, _ i: Int) throws -> (signature: [UInt8], message: [UInt8], key: PublicKeyBytes) {
            let tx = try TransactionSigner(chainID: chainID, key: key).sign(.signAgreement(version: SM3.hash([UInt8(i & 0xff)])), nonce: UInt64(i))
            return (tx.signature, tx.body.signingBytes, tx.body.signer)
        }
        vehicleSamples = try vehicles.enumerated().map { try sample($0.element.key, $0.offset) }
        ownerSamples = try owners.enumerated().map { try sample($0.element, $0.offset) }
    }

    /// Verifications per CPU second on this thread over the given keys in turn, through the
    /// same entry point as the nodes (`SignatureVerification`, its key cache warm).
    func verificationRate(_ samples: [(signature: [UInt8], message: [UInt8], key: PublicKeyBytes)]) -> Double {
        for s in samples { precondition(SignatureVerification.isValid(signature: s.signature, message: s.message, publicKey: s.key)) }
        var i = 0
        return CryptoBench.rate {
            let s = samples[i % samples.count]
            i += 1
            precondition(SignatureVerification.isValid(signature: s.signature, message: s.message, publicKey: s.key))
        }
    }

    /// Registers the fleet (registrar, 60 per block: under the mempool's 64 per sender) and
    /// has every owner sign the agreement.
    func setUp(net: LoadNetwork, tracker: Tracker) async throws {
        let registrarKey = try Keystore(directory: net.root.appendingPathComponent("role-keys")).load(name: "registrar", passphrase: nil)
        let registrar = try TransactionSigner(chainID: chainID, key: registrarKey)
        var nonce = try await net.clients[0].account(registrarKey.address).nonce
        let client = net.validatorClients[0]
        let t0 = Monotonic.now
        for chunk in stride(from: 0, to: vehicles.count, by: 60) {
            var txs: [SignedTransaction] = []
            for v in vehicles[chunk..<min(vehicles.count, chunk + 60)] {
                let payload = try PayloadBuilder.registerVehicle(vehicleID: v.id, vehicleKey: v.key.publicKeyBytes, model: "LS6", cohortTags: ["load"],
                                                                 owner: owners[v.owner].address, odometerMetres: 0)
                txs.append(try registrar.sign(payload, nonce: nonce))
                nonce += 1
            }
            try await submit(txs, client: client, tracker: tracker, what: "register vehicles")
        }
        var consents: [SignedTransaction] = []
        for (i, o) in owners.enumerated() {
            consents.append(try TransactionSigner(chainID: chainID, key: o).sign(.signAgreement(version: Fleet.agreement), nonce: ownerNonces[i]))
            ownerNonces[i] += 1
        }
        for chunk in stride(from: 0, to: consents.count, by: 100) {
            try await submit(Array(consents[chunk..<min(consents.count, chunk + 100)]), client: client, tracker: tracker, what: "sign agreement")
        }
        // Registration set each vehicle's last span end to its block's time (seconds,
        // never ahead of this clock by more than the BFT time's rounding).
        let registered = UInt64(Date().timeIntervalSince1970) + 1
        for i in vehicles.indices { vehicles[i].spanEnd = registered }
        emit(String(format: "set-up: %d vehicles registered, %d owners consenting in %.1f s", vehicles.count, owners.count,
                     Double(Monotonic.now - t0) / 1e9))
    }

    private func submit(_ txs: [SignedTransaction], client: RPCClient, tracker: Tracker, what: String) async throws {
        tracker.submitted(txs.map(\.hash), at: Monotonic.now)
        let answers = try await client.batch(txs.map { (method: "tx_submit", params: [("tx", .string(Hex.encode($0.canonicalBytes))), ("wait", "checked")]) })
        for a in answers {
            if case .failure(let e) = a { throw LoadBench.BenchError("\(what): refused: \(e)") }
        }
        try await tracker.waitCommitted(txs.map(\.hash), seconds: 60, what: what)
    }

    /// The next `count` mileage claims, vehicle after vehicle (each one second of driving at
    /// 90 to 180 km/h), signed over both cores.
    func claims(_ count: Int) throws -> [SignedTransaction] {
        var work: [(SigningKey, Payload, UInt64)] = []
        work.reserveCapacity(count)
        for j in 0..<count {
            let i = (nextVehicle + j) % vehicles.count
            var v = vehicles[i]
            // A span may end at most the clock tolerance (30 s on local-4) after the block
            // time; 20 s of it is left for the time until the claim is in a block.
            guard v.spanEnd + 1 <= UInt64(Date().timeIntervalSince1970) + 20 else {
                throw LoadBench.BenchError("vehicle \(i) has claimed every second up to now: the rate is too high for \(vehicles.count) vehicles (set QUARRY_LOAD_VEHICLES higher)")
            }
            let metres = UInt64(25 + (j % 26))
            let payload = try PayloadBuilder.mileageClaim(vehicleID: v.id, odometerStartMetres: v.odometer, odometerEndMetres: v.odometer + metres,
                                                          spanStart: v.spanEnd, spanEnd: v.spanEnd + 1,
                                                          tripDigest: SM3.hash(parts: [v.id.bytes, Array("\(v.nonce)".utf8)]))
            work.append((v.key, payload, v.nonce))
            v.nonce += 1
            v.odometer += metres
            v.spanEnd += 1
            vehicles[i] = v
        }
        nextVehicle = (nextVehicle + count) % vehicles.count
        return try sign(work)
    }

    /// The next `count` transfers of one grain, owner after owner, each to the next owner.
    func transfers(_ count: Int) throws -> [SignedTransaction] {
        var work: [(SigningKey, Payload, UInt64)] = []
        for j in 0..<count {
            let i = (nextOwner + j) % owners.count
            work.append((owners[i], try PayloadBuilder.transfer(to: owners[(i + 1) % owners.count].address, amount: 1), ownerNonces[i]))
            ownerNonces[i] += 1
        }
        nextOwner = (nextOwner + count) % owners.count
        return try sign(work)
    }

    private func sign(_ work: [(SigningKey, Payload, UInt64)]) throws -> [SignedTransaction] {
        let out = SignedBox(count: work.count)
        let chainID = self.chainID
        let threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var i = t
            while i < work.count {
                let (key, payload, nonce) = work[i]
                out.set(i, Result { try TransactionSigner(chainID: chainID, key: key).sign(payload, nonce: nonce) })
                i += threads
            }
        }
        return try out.values.map { try $0!.get() }
    }

    /// The owners are paid by the batches their vehicles' claims fell in; the transfers
    /// need one grain per transfer. Waits (up to 60 s) until every owner has at least that.
    func awaitOwnerBalances(net: LoadNetwork) async throws {
        let deadline = Monotonic.now + 60_000_000_000
        for o in owners {
            while true {
                if let a = try? await net.clients[0].account(o.address), a.balanceGrains >= 1_000_000 { break }
                guard Monotonic.now < deadline else { throw LoadBench.BenchError("owner \(o.address.text) was not paid within 60 s") }
                try await Task.sleep(nanoseconds: 500_000_000)
            }
        }
    }
}

private final class SignedBox: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<SignedTransaction, Error>?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<SignedTransaction, Error>) { lock.lock(); slots[i] = r; lock.unlock() }
    var values: [Result<SignedTransaction, Error>?] { lock.lock(); defer { lock.unlock() }; return slots }
}
