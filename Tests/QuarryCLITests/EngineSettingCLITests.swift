import Foundation
import Testing

/// `quarry node start` applies `crypto.sm2_engine` from config.toml to the whole process.
@Suite struct EngineSettingCLITests {
    @Test func aBadEngineNameStopsTheNodeWithTheKey() throws {
        let root = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let port = 10_000 + Int.random(in: 0..<200) * 10  // below the ephemeral range
        #expect(try QuarryProcess.run(["testnet", "--output", root + "/net", "--validators", "1", "--read-only", "0",
                                       "--base-port", "\(port)"]).status == 0)
        let config = root + "/net/node0/config.toml"
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try (text + "\n[crypto]\nsm2_engine = \"gmssl\"\n").write(toFile: config, atomically: true, encoding: .utf8)
        let r = try QuarryProcess.run(["node", "start", "--home", root + "/net/node0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("crypto.sm2_engine"), "\(r.stderr)")
    }

    /// A one-validator network on the OpenSSL engine commits blocks (its own votes are
    /// verified by the engine it names). Bounded: stopped after the first commit or 60 s.
    @Test func aNodeRunsOnTheEngineItsConfigNames() throws {
        let root = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let port = 12_000 + Int.random(in: 0..<200) * 10
        #expect(try QuarryProcess.run(["testnet", "--output", root + "/net", "--validators", "1", "--read-only", "0",
                                       "--base-port", "\(port)"]).status == 0)
        let home = root + "/net/node0"
        let text = try String(contentsOfFile: home + "/config.toml", encoding: .utf8)
        try (text + "\n[crypto]\nsm2_engine = \"openssl\"\n").write(toFile: home + "/config.toml", atomically: true, encoding: .utf8)
        let log = root + "/node0.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let p = Process()
        p.executableURL = QuarryProcess.binary
        p.arguments = ["node", "start", "--home", home]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        defer {
            if p.isRunning { kill(p.processIdentifier, SIGINT) }
            let deadline = Date().addingTimeInterval(10)
            while p.isRunning && Date() < deadline { usleep(50_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        let deadline = Date().addingTimeInterval(60)
        var output = ""
        while Date() < deadline && p.isRunning {
            output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if output.contains("committed height=") { break }
            usleep(100_000)
        }
        #expect(output.contains("msg=\"SM2 verification engine\" crypto.sm2_engine=openssl"), "\(output)")
        #expect(output.contains("committed height="), "\(output)")
    }
}
