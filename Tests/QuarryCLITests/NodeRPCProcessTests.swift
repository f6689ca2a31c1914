import Foundation
import QuarryRPC
import QuarryRPCTestSupport
import Testing

/// `quarry node start` serves JSON-RPC on the configured address and stops it cleanly on
/// SIGTERM (and SIGINT): a real node process from `quarry testnet`, asked over HTTP.
@Suite(.serialized) struct NodeRPCProcessTests {
    @Test(.timeLimit(.minutes(2)), arguments: [SIGTERM, SIGINT])
    func nodeServesJSONRPCUntilSignalled(signal: Int32) async throws {
        let root = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let base = Int.random(in: 31_000...38_000) / 10 * 10
        let made = try QuarryProcess.run(["testnet", "--output", root + "/net", "--validators", "1", "--read-only", "0",
                                          "--base-port", String(base)])
        #expect(made.status == 0, "\(made.stderr)")
        let rpcPort = base + 1
        let process = Process()
        process.executableURL = QuarryProcess.binary
        process.arguments = ["node", "start", "--home", root + "/net/node0"]
        let log = root + "/node.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }

        func status() async -> JSONValue? {
            guard let r = try? await post(rpcPort, #"{"jsonrpc":"2.0","method":"node_status","id":1}"#) else { return nil }
            return r.json?["result"]
        }
        var height: UInt64 = 0
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            height = await status()?["height"]?.numberValue?.uint64Value ?? 0
            if height >= 2 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(height >= 2, "no height from node_status: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        let block = try await post(rpcPort, #"{"jsonrpc":"2.0","method":"chain_getBlock","params":[1],"id":2}"#)
        #expect(block.json?["result"]?["header"]?["height"] == 1)
        let refused = try await post(rpcPort, #"{"jsonrpc":"2.0","method":"tx_submit","params":{"tx":"00"},"id":3}"#)
        #expect(refused.json?["error"]?["code"] == -32000)
        #expect(refused.json?["error"]?["data"]?["code"] == "mempool.decode")

        kill(process.processIdentifier, signal)
        let stopBy = ContinuousClock.now + .seconds(15)
        while process.isRunning && ContinuousClock.now < stopBy { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning, "the node did not stop on signal \(signal)")
        if !process.isRunning { #expect(process.terminationStatus == 0) }
        // Nothing listens any more.
        #expect((try? await post(rpcPort, #"{"jsonrpc":"2.0","method":"node_status","id":4}"#)) == nil)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("JSON-RPC on 127.0.0.1:\(rpcPort)"))
        #expect(text.contains("stopped at height"))
    }
}
