import Foundation
import Testing

/// Runs the built `quarry` executable as a user would and checks its output and exit codes.
struct QuarryProcess {
    static var binary: URL {
        // The test bundle sits in the build products directory beside the executable.
        var dir = Bundle.main.bundleURL
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("quarry")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: ".build/debug/quarry")
    }

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    @discardableResult
    static func run(_ args: [String], environment: [String: String] = [:], stdin: String? = nil) throws -> Output {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "QUARRY_PASSPHRASE")
        env.removeValue(forKey: "QUARRY_HOME")
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Output(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: e, as: UTF8.self))
    }
}

func temporaryHome() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.path
}

@Suite struct CLITests {
    @Test func sm3OfTextHexAndFile() throws {
        let abc = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        #expect(try QuarryProcess.run(["crypto", "sm3", "--text", "abc"]).stdout == abc + "\n")
        #expect(try QuarryProcess.run(["crypto", "sm3", "--hex", "616263"]).stdout == abc + "\n")
        let home = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let file = home + "/input"
        try Data("abc".utf8).write(to: URL(fileURLWithPath: file))
        #expect(try QuarryProcess.run(["crypto", "sm3", file]).stdout == abc + "\n")
        #expect(try QuarryProcess.run(["crypto", "sm3", "-"], stdin: "abc").stdout == abc + "\n")
        let empty = try QuarryProcess.run(["crypto", "sm3", "--text", ""])
        #expect(empty.stdout == "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b\n")
    }

    @Test func sm3RejectsBadInput() throws {
        let bad = try QuarryProcess.run(["crypto", "sm3", "--hex", "abz"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--hex"))
        let none = try QuarryProcess.run(["crypto", "sm3"])
        #expect(none.status != 0)
        #expect(none.stderr.contains("exactly one"))
        let missing = try QuarryProcess.run(["crypto", "sm3", "/nonexistent/file"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("cannot read"))
    }

    @Test(arguments: ["sm2", "secp256k1"])
    func keysLifecycleSignAndVerify(scheme: String) throws {
        let home = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let env = ["QUARRY_PASSPHRASE": "correct horse"]
        let created = try QuarryProcess.run(["keys", "new", "k1", "--scheme", scheme, "--home", home, "--json"], environment: env)
        #expect(created.status == 0, "\(created.stderr)")
        let info = try #require(try JSONSerialization.jsonObject(with: Data(created.stdout.utf8)) as? [String: Any])
        #expect(info["scheme"] as? String == scheme)
        #expect(info["encrypted"] as? Bool == true)
        let address = try #require(info["address"] as? String)
        #expect(address.hasPrefix("quarry1"))
        let publicKey = try #require(info["publicKey"] as? String)

        // The key file never holds the private key in plain text.
        let file = try String(contentsOfFile: home + "/keys/k1.json", encoding: .utf8)
        #expect(!file.contains("insecurePlaintextPrivateKey"))
        let attributes = try FileManager.default.attributesOfItem(atPath: home + "/keys/k1.json")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)

        let shown = try QuarryProcess.run(["keys", "show", "k1", "--home", home])
        #expect(shown.stdout.contains(address))
        let listed = try QuarryProcess.run(["keys", "list", "--home", home])
        #expect(listed.stdout.contains("k1\t\(scheme)\t\(address)"))

        // Duplicate names are refused.
        let dup = try QuarryProcess.run(["keys", "new", "k1", "--home", home], environment: env)
        #expect(dup.status != 0)
        #expect(dup.stderr.contains("already exists"))

        let message = "6d696c65616765"
        let signed = try QuarryProcess.run(["keys", "sign", "k1", "--home", home, "--message-hex", message], environment: env)
        #expect(signed.status == 0, "\(signed.stderr)")
        let signature = signed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(signature.count == 128)

        let verify = ["keys", "verify", "--scheme", scheme, "--public-key", publicKey, "--message-hex"]
        #expect(try QuarryProcess.run(verify + [message, "--signature", signature]).status == 0)
        #expect(try QuarryProcess.run(verify + [message + "00", "--signature", signature]).status == 1)
        var flipped = Array(signature)
        flipped[10] = flipped[10] == "0" ? "1" : "0"
        #expect(try QuarryProcess.run(verify + [message, "--signature", String(flipped)]).status == 1)
        #expect(try QuarryProcess.run(verify + [message, "--signature", "00"]).status == 1)

        // Wrong passphrase, and no passphrase at all without a terminal, fail clearly.
        let wrong = try QuarryProcess.run(["keys", "sign", "k1", "--home", home, "--message-hex", message],
                                          environment: ["QUARRY_PASSPHRASE": "wrong"])
        #expect(wrong.status != 0)
        #expect(wrong.stderr.contains("wrong passphrase"))
        let none = try QuarryProcess.run(["keys", "sign", "k1", "--home", home, "--message-hex", message])
        #expect(none.status != 0)
        #expect(none.stderr.contains("no passphrase"))
    }

    @Test func sm2SigningHonoursTheDistinguishingID() throws {
        let home = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let passFile = home + "/pass"
        try Data("from a file\n".utf8).write(to: URL(fileURLWithPath: passFile))
        #expect(try QuarryProcess.run(["keys", "new", "v", "--home", home, "--passphrase-file", passFile]).status == 0)
        let pub = try QuarryProcess.run(["keys", "show", "v", "--home", home, "--json"])
        let info = try #require(try JSONSerialization.jsonObject(with: Data(pub.stdout.utf8)) as? [String: Any])
        let publicKey = try #require(info["publicKey"] as? String)
        let sig = try QuarryProcess.run(["keys", "sign", "v", "--home", home, "--passphrase-file", passFile,
                                         "--message-hex", "00", "--id", "ALICE123@YAHOO.COM"])
        let signature = sig.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let base = ["keys", "verify", "--scheme", "sm2", "--public-key", publicKey, "--message-hex", "00", "--signature", signature]
        #expect(try QuarryProcess.run(base + ["--id", "ALICE123@YAHOO.COM"]).status == 0)
        #expect(try QuarryProcess.run(base).status == 1)
    }

    @Test func insecurePlaintextKeysAreLabelled() throws {
        let home = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let r = try QuarryProcess.run(["keys", "new", "dev", "--home", home, "--insecure-plaintext"])
        #expect(r.status == 0)
        #expect(r.stderr.contains("UNENCRYPTED"))
        #expect(try QuarryProcess.run(["keys", "list", "--home", home]).stdout.contains("UNENCRYPTED"))
        #expect(try QuarryProcess.run(["keys", "sign", "dev", "--home", home, "--message-hex", "01"]).status == 0)
    }

    @Test func badFlagsAndNamesAreExplained() throws {
        let home = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let scheme = try QuarryProcess.run(["keys", "new", "x", "--scheme", "rsa", "--home", home, "--insecure-plaintext"])
        #expect(scheme.status != 0)
        #expect(scheme.stderr.contains("sm2 or secp256k1"))
        let name = try QuarryProcess.run(["keys", "new", "../evil", "--home", home, "--insecure-plaintext"])
        #expect(name.status != 0)
        #expect(name.stderr.contains("invalid key name"))
        let missing = try QuarryProcess.run(["keys", "show", "nobody", "--home", home])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("no key named"))
        let flag = try QuarryProcess.run(["keys", "list", "--hom", home])
        #expect(flag.status != 0)
        #expect(flag.stderr.contains("--hom"))
    }
}

@Suite struct ScheduleCLITests {
    func info(_ batch: String) throws -> [String: Any] {
        let r = try QuarryProcess.run(["schedule", "--batch", batch])
        #expect(r.status == 0, "\(r.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    @Test func knownBatches() throws {
        let first = try info("0")
        #expect(first["era"] as? Int == 0)
        #expect(first["dropGrains"] as? String == "50000000000")
        #expect(first["cumulativeGrains"] as? String == "50000000000")
        let halving = try info("210000")
        #expect(halving["era"] as? Int == 1)
        #expect(halving["dropGrains"] as? String == "25000000000")
        #expect(halving["cumulativeGrains"] as? String == String(210_001 * 50_000_000_000 - 25_000_000_000))
        let last = try info("100000000")
        #expect(last["dropGrains"] as? String == "0")
        #expect(last["cumulativeGrains"] as? String == "20999999996850000")
    }

    @Test func badBatchIsExplained() throws {
        let r = try QuarryProcess.run(["schedule", "--batch", "-1"])
        #expect(r.status != 0)
        let missing = try QuarryProcess.run(["schedule", "--batch", "1", "--genesis", "/nonexistent.json"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("cannot read genesis"))
    }
}

@Suite struct TestnetCLITests {
    @Test func writesACompleteNetworkAndRefusesToOverwriteIt() throws {
        let root = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let out = root + "/net"
        let r = try QuarryProcess.run(["testnet", "--output", out, "--validators", "3", "--read-only", "1", "--base-port", "30000"])
        #expect(r.status == 0, "\(r.stderr)")
        let fm = FileManager.default
        for i in 0..<4 {
            for file in ["config.toml", "genesis.json", "keys/node.json"] {
                #expect(fm.fileExists(atPath: "\(out)/node\(i)/\(file)"), "node\(i)/\(file) missing")
            }
        }
        let config3 = try String(contentsOfFile: out + "/node3/config.toml", encoding: .utf8)
        #expect(config3.contains("role = \"read-only\""))
        #expect(config3.contains("127.0.0.1:30030"))
        let genesis = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/genesis.json"))) as? [String: Any])
        #expect((genesis["validators"] as? [Any])?.count == 3)
        #expect(fm.fileExists(atPath: out + "/UNSAFE-DEV-KEYS.txt"))
        let again = try QuarryProcess.run(["testnet", "--output", out])
        #expect(again.status != 0)
        #expect(again.stderr.contains("already holds a network"))
    }

    @Test func nodeStartExplainsAMissingOrBrokenHome() throws {
        let root = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let missing = try QuarryProcess.run(["node", "start", "--home", root])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("no config"))
        try Data("role = \"boss\"\n".utf8).write(to: URL(fileURLWithPath: root + "/config.toml"))
        let broken = try QuarryProcess.run(["node", "start", "--home", root])
        #expect(broken.status != 0)
        #expect(broken.stderr.contains("config.toml"))
    }
}
