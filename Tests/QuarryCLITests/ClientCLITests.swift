import Foundation
import QuarryClient
import QuarryCore
import QuarryCrypto
import QuarryLedger
import Testing

/// `quarry tx` and `quarry query` without a node: offline signing of every kind, usage
/// errors that name the flag, exit codes, help text.
@Suite struct ClientCLITests {
    /// A keystore with plain-text keys for the tests (development keys only).
    struct Keys {
        let home: String
        var dir: String { home + "/keys" }

        init() throws {
            home = try temporaryHome()
            for (name, scheme) in [("alice", "sm2"), ("bob", "secp256k1"), ("car", "sm2")] {
                let r = try QuarryProcess.run(["keys", "new", name, "--scheme", scheme, "--home", home, "--insecure-plaintext"])
                #expect(r.status == 0, "\(r.stderr)")
            }
        }

        func key(_ name: String) throws -> SigningKey {
            try Keystore(directory: URL(fileURLWithPath: dir)).load(name: name, passphrase: nil)
        }

        func remove() { try? FileManager.default.removeItem(atPath: home) }
    }

    static let hash = String(repeating: "ab", count: 32)

    /// Every kind, as command-line arguments after `quarry tx`.
    static func kinds(_ keys: Keys) throws -> [(tag: UInt8, args: [String])] {
        let owner = try keys.key("bob").address.text
        return [
            (1, ["register-vehicle", "--vin", "LSJW74C99NZ123456", "--vin-salt", String(repeating: "07", count: 16),
                 "--vehicle-key-name", "car", "--model", "LS6", "--cohort", "angel-wheel", "--cohort", "2024", "--owner", "bob", "--odometer", "1000"]),
            (2, ["change-owner", "--vehicle-id", hash, "--new-owner", owner]),
            (3, ["deactivate-vehicle", "--vehicle-id", hash]),
            (4, ["sign-agreement", "--agreement-version", hash]),
            (5, ["revoke-agreement"]),
            (6, ["claim", "--vehicle-id", hash, "--odometer-start", "1000", "--odometer-end", "2000", "--span-start", "100",
                 "--span-end", "200", "--trip-digest", hash]),
            (7, ["grant-crystals", "--to", "bob", "--amount", "50"]),
            (8, ["open-season", "--price-crystals", "10", "--odds", "10000,90000,300000,600000",
                 "--stone-prizes", "100stones,10stones,1stone,0.1stones", "--substitute-crystals", "50,20,10,5",
                 "--budget", "5000stones", "--start", "1000", "--end", "999999", "--chain-length", "100"]),
            (9, ["draw", "--season", "3"]),
            (10, ["draw-result", "--season", "3", "--request", "2", "--revealed", "1", "--odds", "10000,90000,300000,600000",
                  "--draw-height", "40", "--draw-previous-hash", hash, "--open-nonce", "7", "--chain-length", "100"]),
            (11, ["close-season", "--season", "3"]),
            (12, ["upsert-item", "--item-id", "lidar", "--title", "Lidar upgrade", "--price", "6800stones", "--stock", "5",
                  "--rule-model", "LS6", "--rule-cohort", "angel-wheel", "--rule-min-metres", "5000000"]),
            (13, ["redeem", "--merchant", owner, "--item-id", "lidar", "--vehicle-id", hash]),
            (14, ["fulfil", "--redemption", "4"]),
            (15, ["reject", "--redemption", "4"]),
            (16, ["transfer", "--to", "bob", "--amount", "1.5stones"]),
            (17, ["propose", "--set-parameter", "transfers-enabled", "--value", "1", "--voting-period", "50"]),
            (18, ["vote", "--proposal", "0"]),
        ]
    }

    @Test(arguments: ["alice", "bob"])
    func generateOnlySignsEveryKindOffline(signer: String) throws {
        let keys = try Keys()
        defer { keys.remove() }
        let key = try keys.key(signer)
        let chains = keys.home + "/chains"
        let all = try Self.kinds(keys)
        #expect(Set(all.map(\.tag)) == Set(1...18))
        for (tag, args) in all {
            var full = ["tx"] + args + ["--keys", keys.dir, "--from", signer, "--generate-only", "--nonce", "7", "--chain-id", "quarry-offline"]
            if tag == 8 { full += ["--chains-dir", chains] }
            let r = try QuarryProcess.run(full)
            #expect(r.status == 0, "\(args[0]): \(r.stderr)")
            guard r.status == 0 else { continue }
            let tx = try SignedTransaction.decode(Hex.decode(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(tx.body.payload.tag == tag, "\(args[0])")
            #expect(tx.body.nonce == 7 && tx.body.chainID == "quarry-offline")
            #expect(tx.body.signer == key.publicKeyBytes)
            #expect(SignatureVerification.isValid(signature: tx.signature, message: tx.body.signingBytes, publicKey: tx.body.signer))
            switch tx.body.payload {
            case .registerVehicle(let id, let vk, let model, let tags, let owner, let odometer):
                #expect(id == SM3.hash([UInt8](repeating: 7, count: 16) + Array("LSJW74C99NZ123456".utf8)))
                #expect(vk == (try keys.key("car")).publicKeyBytes)
                #expect(model == "LS6" && tags == ["angel-wheel", "2024"] && odometer == 1_000)
                #expect(owner == (try keys.key("bob")).address)
            case .openSeason(let t):
                let chain = try BoxChain(key: key, chainID: "quarry-offline", openNonce: 7, length: 100)
                #expect(t.commitment == chain.commitment)
                #expect(t.prizes.map(\.stoneGrains) == [100 * Grains.perStone, 10 * Grains.perStone, Grains.perStone, Grains.perStone / 10])
                #expect(t.budgetGrains == 5_000 * Grains.perStone && t.oddsPPM == [10_000, 90_000, 300_000, 600_000])
                #expect(FileManager.default.fileExists(atPath: BoxChain.indexURL(directory: URL(fileURLWithPath: chains), commitment: chain.commitment).path))
            case .drawResult(let season, let index, let preimage, let rarity):
                let chain = try BoxChain(key: key, chainID: "quarry-offline", openNonce: 7, length: 100)
                #expect(season == 3 && index == 2)
                #expect(preimage == (try chain.preimage(afterRevealing: 1, key: key)))
                #expect(rarity == BoxOperator.outcome(preimage: preimage, seasonID: 3, index: 2, height: 40,
                                                      previousBlockHash: try Hash256(hex: Self.hash), oddsPPM: [10_000, 90_000, 300_000, 600_000]))
            case .transfer(_, let amount):
                #expect(amount == 150_000_000)
            case .upsertItem(_, _, let price, _, let rule):
                #expect(price == 680_000_000_000 && rule == EligibilityRule(model: "LS6", cohortTag: "angel-wheel", minimumMetresLastYear: 5_000_000))
            default:
                break
            }
        }
        // JSON output carries the same transaction with its hash.
        let r = try QuarryProcess.run(["tx", "vote", "--proposal", "1", "--keys", keys.dir, "--from", signer, "--generate-only",
                                       "--nonce", "0", "--chain-id", "c", "--output", "json"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let bytes = try Hex.decode(try #require(json["tx"] as? String))
        #expect(json["hash"] as? String == SM3.hash(bytes).hex)
        #expect(json["sender"] as? String == key.address.text)
    }

    @Test func usageErrorsNameTheFlag() throws {
        let keys = try Keys()
        defer { keys.remove() }
        let offline = ["--keys", keys.dir, "--from", "alice", "--generate-only", "--nonce", "0", "--chain-id", "c"]
        func check(_ args: [String], mentions: String, status: Int32 = 64, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let r = try QuarryProcess.run(args)
            #expect(r.status == status, "\(args): \(r.stderr)", sourceLocation: sourceLocation)
            #expect(r.stderr.contains(mentions), "\(args): \(r.stderr)", sourceLocation: sourceLocation)
        }
        try check(["tx", "vote", "--proposal", "1", "--bogus"] + offline, mentions: "--bogus")
        try check(["tx", "vote", "--proposal", "one"] + offline, mentions: "--proposal")
        try check(["tx", "transfer", "--to", "bob", "--amount", "2.5 bananas"] + offline, mentions: "--amount")
        try check(["tx", "transfer", "--to", "bob", "--amount", "0.000000001stones"] + offline, mentions: "8 decimals")
        try check(["tx", "transfer", "--to", "nobody", "--amount", "1"] + offline, mentions: "--to")
        try check(["tx", "grant-crystals", "--to", "bob", "--amount", "0"] + offline, mentions: "amount")
        try check(["tx", "vote", "--proposal", "1"], mentions: "--from")
        try check(["tx", "vote", "--proposal", "1", "--keys", keys.dir, "--from", "alice", "--generate-only"], mentions: "--nonce")
        try check(["tx", "vote", "--proposal", "1", "--wait", "forever"] + offline, mentions: "--wait")
        try check(["tx", "vote", "--proposal", "1", "--output", "xml"] + offline, mentions: "--output")
        try check(["tx", "vote", "--proposal", "1", "--rpc", "https://127.0.0.1:1"] + offline, mentions: "--rpc")
        try check(["tx", "claim", "--vehicle-id", "abc", "--odometer-start", "1", "--odometer-end", "2", "--span-start", "1",
                   "--trip-digest", Self.hash] + offline, mentions: "--vehicle-id")
        try check(["tx", "claim", "--vehicle-id", Self.hash, "--odometer-start", "5", "--odometer-end", "5", "--span-start", "1",
                   "--span-end", "9", "--trip-digest", Self.hash] + offline, mentions: "odometer")
        try check(["tx", "open-season", "--price-crystals", "1", "--odds", "1,2,3,4", "--stone-prizes", "0,0,0,0",
                   "--substitute-crystals", "0,0,0,0", "--budget", "0", "--chain-length", "10", "--chains-dir", keys.home + "/c"] + offline,
                  mentions: "odds")
        try check(["tx", "propose", "--add-merchant", "bob", "--remove-merchant", "bob"] + offline, mentions: "exactly one")
        try check(["tx", "propose", "--set-role", "emperor", "--address", "bob"] + offline, mentions: "--set-role")
        try check(["tx", "register-vehicle", "--vehicle-id", Self.hash, "--vehicle-key-name", "car", "--model", "LS6",
                   "--owner", "bob", "--vin", "LSJW74C99NZ123456"] + offline, mentions: "--vehicle-id or --vin")
        // A key that does not exist is a local problem (exit 3), named.
        try check(["tx", "vote", "--proposal", "1", "--keys", keys.dir, "--from", "carol", "--generate-only", "--nonce", "0", "--chain-id", "c"],
                  mentions: "carol", status: 3)
        try check(["query", "account", "carol", "--keys", keys.dir, "--rpc", "127.0.0.1:1"], mentions: "carol")
        try check(["query", "tx", "xyz"], mentions: "HASH")
    }

    @Test func unreachableNodeExitsTwo() async throws {
        let keys = try Keys()
        defer { keys.remove() }
        let port = try closedLoopbackPort()
        let q = try QuarryProcess.run(["query", "status", "--rpc", "http://127.0.0.1:\(port)"])
        #expect(q.status == 2)
        #expect(q.stderr.contains("cannot reach the node at http://127.0.0.1:\(port)/"), "\(q.stderr)")
        let t = try QuarryProcess.run(["tx", "revoke-agreement", "--keys", keys.dir, "--from", "alice", "--rpc", "127.0.0.1:\(port)"])
        #expect(t.status == 2, "\(t.stderr)")
        // Without --rpc the address comes from <home>/config.toml.
        let net = keys.home + "/net"
        let made = try QuarryProcess.run(["testnet", "--output", net, "--validators", "1", "--read-only", "0", "--base-port", String(port - 1)])
        #expect(made.status == 0, "\(made.stderr)")
        let h = try QuarryProcess.run(["query", "supply", "--home", net + "/node0"])
        #expect(h.status == 2)
        #expect(h.stderr.contains("127.0.0.1:\(port)/"), "\(h.stderr)")
    }

    @Test func helpListsEveryCommand() throws {
        let tx = try QuarryProcess.run(["tx", "--help"])
        #expect(tx.status == 0)
        for name in ["register-vehicle", "change-owner", "deactivate-vehicle", "sign-agreement", "revoke-agreement", "claim",
                     "grant-crystals", "open-season", "draw", "draw-result", "close-season", "upsert-item", "redeem", "fulfil",
                     "reject", "transfer", "propose", "vote"] {
            #expect(tx.stdout.contains("  \(name) "), "tx --help lacks \(name)")
        }
        #expect(tx.stdout.contains("Exit codes"))
        let query = try QuarryProcess.run(["query", "--help"])
        for name in ["status", "block", "validators", "tx", "account", "vehicle", "batch", "supply", "parameters", "season", "draw", "catalog", "redemption"] {
            #expect(query.stdout.contains("  \(name) "), "query --help lacks \(name)")
        }
        let claim = try QuarryProcess.run(["tx", "claim", "--help"])
        for flag in ["--vehicle-id", "--odometer-start", "--span-end", "--trip-file", "--rpc", "--from", "--wait", "--generate-only", "--output"] {
            #expect(claim.stdout.contains(flag), "claim --help lacks \(flag)")
        }
        let devnet = try QuarryProcess.run(["devnet", "--help"])
        #expect(devnet.stdout.contains("--duration") && devnet.stdout.contains("Ctrl-C"))
    }
}

/// A loopback port nothing listens on (bound, then closed, by the test).
func closedLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    precondition(fd >= 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw CocoaError(.fileReadUnknown) }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    let port = Int(UInt16(bigEndian: address.sin_port))
    // testnet puts the RPC port at base+1 and needs base >= 1024.
    return port > 1_100 ? port : try closedLoopbackPort()
}
