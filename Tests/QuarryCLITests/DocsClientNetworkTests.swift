import Foundation
import QuarryClient
import QuarryCore
import QuarryRPC
import Testing

/// Issue 6: "a client written only from docs/ builds, signs and submits a mileage claim that
/// the node accepts". `scripts/docs_client.py` (Python, gmssl for SM2/SM3) was written from
/// docs/spec and docs/openrpc.json alone; here it runs against a real network (4 validators
/// and a read-only node, each a `quarry node start` process): it registers a vehicle with the
/// registrar's key file, the new owner signs the agreement, the vehicle claims. The outcome is
/// then checked independently, through JSON-RPC to the read-only node with QuarryClient.
@Suite(.serialized) struct DocsClientNetworkTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    /// Runs `python3 ARGS` from the repository root; the script bounds its own waits.
    static func python(_ args: [String]) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3"] + args
        p.currentDirectoryURL = repositoryRoot
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "QUARRY_PASSPHRASE")
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Output(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: e, as: UTF8.self))
    }

    /// gmssl missing is a failure with the fix in the message, never a skip.
    static func requireGmssl() throws -> Bool {
        let check = try python(["-c", "import gmssl.sm2, gmssl.sm3"])
        #expect(check.status == 0, """
            python3 cannot import gmssl, which scripts/docs_client.py needs: run scripts/ensure-deps.sh \
            (python3 -m pip install gmssl). stderr: \(check.stderr)
            """)
        return check.status == 0
    }

    @Test(.timeLimit(.minutes(5))) func aClientWrittenFromTheDocsGetsItsClaimAccepted() async throws {
        guard try Self.requireGmssl() else { return }
        let script = Self.repositoryRoot.appendingPathComponent("scripts/docs_client.py").path
        let selfTest = try Self.python([script, "--self-test"])
        #expect(selfTest.status == 0, "the docs' known answers: \(selfTest.stderr)")

        let network = try ClientNetworkTests.LiveNetwork(portRange: 26_000..<26_900)
        defer { network.stop() }
        try network.start()
        let serving = try await network.waitServing()
        #expect(serving, "the network did not serve JSON-RPC: \(network.logTail(0))")
        guard serving else { return }

        let run = try Self.python([script, "--rpc", network.rpc(0), "--network", network.dir, "--timeout", "40"])
        #expect(run.status == 0, "docs_client.py exited \(run.status): \(run.stderr)")
        guard run.status == 0 else { return }
        let summary = try JSONValue.parse(run.stdout)
        let vehicleID = try Hash256(hex: try #require(summary["vehicleId"]?.stringValue))
        let owner = try Address(text: try #require(summary["owner"]?.stringValue))
        let metres = try #require(summary["claim"]?["metres"]?.numberValue?.uint64Value)
        let odometerEnd = try #require(summary["claim"]?["odometerEndMetres"]?.numberValue?.uint64Value)
        let spanEnd = try #require(summary["claim"]?["spanEnd"]?.numberValue?.uint64Value)
        #expect(metres > 0)

        // Every transaction the script sent is committed without error, as the auditor node sees it.
        let auditor = QuarryClient(endpoint: try RPCEndpoint(parsing: network.rpc(4)), timeoutMilliseconds: 10_000)
        for kind in ["registerVehicle", "signAgreement", "mileageClaim"] {
            let hash = try Hash256(hex: try #require(summary["transactions"]?[kind]?["hash"]?.stringValue, "\(kind) hash"))
            var status = try await auditor.transaction(hash: hash)
            let deadline = ContinuousClock.now + .seconds(20)
            while status.status != .committed && status.status != .rejected && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(300))
                status = try await auditor.transaction(hash: hash)
            }
            #expect(status.succeeded, "\(kind): \(status.raw)")
        }

        // The vehicle's record shows the claimed distance; the owner's consent is recorded.
        var vehicle = try await auditor.vehicle(vehicleID)
        let deadline = ContinuousClock.now + .seconds(20)
        while vehicle["totalClaimedMetres"]?.numberValue?.uint64Value != metres && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(300))
            vehicle = try await auditor.vehicle(vehicleID)
        }
        #expect(vehicle["totalClaimedMetres"]?.numberValue?.uint64Value == metres, "\(vehicle)")
        #expect(vehicle["odometerMetres"]?.numberValue?.uint64Value == odometerEnd)
        #expect(vehicle["lastSpanEnd"]?.numberValue?.uint64Value == spanEnd)
        #expect(vehicle["owner"]?.stringValue == owner.text && vehicle["active"] == true)
        #expect(vehicle["address"]?.stringValue == summary["vehicleAddress"]?.stringValue)
        let account = try await auditor.rawAccount(owner)
        #expect(account["agreement"]?.stringValue == summary["agreementVersion"]?.stringValue)
        #expect(account["activeVehicles"] == 1)

        // Refusals come back as a non-zero exit and a message naming the ledger's code.
        let refused = try Self.python([script, "--rpc", network.rpc(0), "--network", network.dir, "--timeout", "40",
                                       "--skip-agreement"])
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("claim.no_consent") && refused.stderr.contains("ledger refused"), "\(refused.stderr)")
        let wrongGenesis = try Self.python([script, "--rpc", network.rpc(0), "--registrar-key",
                                            network.dir + "/role-keys/registrar.json",
                                            "--genesis", Self.repositoryRoot.appendingPathComponent("genesis/devnet.json").path])
        #expect(wrongGenesis.status == 3 && wrongGenesis.stderr.contains("is not the genesis of the node's chain"),
                "\(wrongGenesis.stderr)")
        print("docs client: vehicle \(vehicleID.hex) claimed \(metres) m, committed at height "
              + "\(summary["transactions"]?["mileageClaim"]?["height"]?.numberValue?.uint64Value ?? 0)")
    }
}
