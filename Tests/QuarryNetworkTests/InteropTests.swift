import Foundation
import NIOPosix
import QuarryCore
import QuarryCrypto
import Testing
@testable import QuarryNetwork

/// Runs `scripts/p2p_interop.py`, an independent Python implementation of the initiator
/// written from docs/spec/p2p.md, against a real node.
enum PythonInterop {
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/p2p_interop.py").path

    /// Python with `gmssl` and `cryptography` (scripts/ensure-deps.sh installs gmssl).
    static let available: Bool = {
        guard let p = try? run(["-c", "import gmssl, cryptography"]) else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }()

    static func run(_ arguments: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3"] + arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }
}

@Suite(.timeLimit(.minutes(1)), .enabled(if: PythonInterop.available, "needs python3 with gmssl and cryptography"))
struct InteropTests {
    @Test func aPythonImplementationOfTheSpecInteroperates() async throws {
        let pythonKey = SM2PrivateKey()
        let nodeKey = TestKeys.members[0]
        let members = Membership([nodeKey.publicKey, pythonKey.publicKey])
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var config = P2PConfiguration(identity: NodeIdentity(privateKey: nodeKey), membership: members,
                                      chainID: "interop-chain")
        config.pingIntervalMilliseconds = 50  // so the client has to answer pings too
        let service = P2PService(configuration: config, group: group)
        let port = try await service.start().port!
        let pythonID = NodeID(publicKey: pythonKey.publicKey)

        var python = try PythonInterop.run([
            PythonInterop.script, "--port", "\(port)", "--chain", "interop-chain",
            "--key", Hex.encode(pythonKey.rawRepresentation), "--expect-peer", service.localNodeID.hex,
            "--send", "hello from python", "--expect", "hello from swift",
        ])
        var inbound = service.inbound.makeAsyncIterator()
        let first = await inbound.next()
        #expect(first == InboundMessage(peer: pythonID, channel: .consensus, payload: Array("hello from python".utf8)))
        try? await Task.sleep(for: .milliseconds(200))  // a few pings go out and are answered
        #expect(service.connectedPeers == [pythonID])
        #expect(service.send(to: pythonID, channel: .consensus, bytes: Array("hello from swift".utf8)) == .queued)
        #expect(await eventually(within: 10) { !python.isRunning })
        #expect(python.terminationStatus == 0)

        // The same client with a key outside the membership is refused.
        python = try PythonInterop.run([
            PythonInterop.script, "--port", "\(port)", "--chain", "interop-chain",
            "--key", Hex.encode(TestKeys.outsider.rawRepresentation),
            "--send", "let me in", "--expect", "never",
        ])
        #expect(await eventually(within: 10) { !python.isRunning })
        #expect(python.terminationStatus == 3)
        #expect(service.connectedPeers.isEmpty)

        await service.shutdown()
        try await group.shutdownGracefully()
    }
}
