import Foundation
import QuarryClient
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryRPC

/// Client figures: building and signing a mileage claim (what a vehicle gateway does per
/// claim) with each scheme, and JSON-RPC calls per second through `RPCClient` against the
/// project's own server on loopback (a fresh HTTP connection per call, ADR 0100), one at a
/// time and 16 at once. The reference is a bare SM2 signature, measured in the same run.
enum ClientBench {
    static func run() throws {
        let done = DispatchSemaphore(value: 0)
        let box = NetworkBench.ErrorBox()
        Task {
            do { try await runAsync() } catch { box.error = error }
            done.signal()
        }
        done.wait()
        if let error = box.error { throw error }
    }

    static func runAsync() async throws {
        let message = [UInt8](repeating: 7, count: 200)
        let sm2 = SM2PrivateKey()
        let n = 500
        var start = ContinuousClock.now
        for _ in 0..<n { _ = try sm2.signature(for: message) }
        let signRate = Double(n) / NetworkBench.seconds(since: start)
        print(String(format: "reference: SM2 signatures of 200 bytes   %8.0f /s", signRate))

        for scheme in SignatureScheme.allCases {
            let signer = try TransactionSigner(chainID: "quarry-bench", key: SigningKey(scheme: scheme))
            let vehicle = SM3.hash([1])
            start = ContinuousClock.now
            var bytes = 0
            for i in 0..<n {
                let payload = try PayloadBuilder.mileageClaim(vehicleID: vehicle, odometerStartMetres: UInt64(i) * 100,
                                                              odometerEndMetres: UInt64(i) * 100 + 90, spanStart: UInt64(i) * 10,
                                                              spanEnd: UInt64(i) * 10 + 9, tripDigest: SM3.hash([UInt8(i & 0xff)]))
                bytes += try signer.sign(payload, nonce: UInt64(i)).canonicalBytes.count
            }
            let rate = Double(n) / NetworkBench.seconds(since: start)
            print(String(format: "claim built, signed, encoded (%@)%@ %8.0f /s (%.2f x reference, %d bytes each)",
                         scheme.name, scheme == .sm2 ? "      " : "", rate, rate / signRate, bytes / n))
        }

        var configuration = RPCServerConfiguration()
        configuration.port = 0
        let server = RPCServer(configuration: configuration)
        server.register(method: "ping", summary: "answers at once") { _ in ["height": .integer(UInt64(42)), "ok": true] }
        try await server.start()
        guard let port = server.port else { fatalError("no port") }
        let client = RPCClient(endpoint: RPCEndpoint(host: "127.0.0.1", port: port), timeoutMilliseconds: 10_000)
        let calls = 2_000
        start = ContinuousClock.now
        for _ in 0..<calls { _ = try await client.call("ping") }
        let sequential = Double(calls) / NetworkBench.seconds(since: start)
        print(String(format: "JSON-RPC calls, one at a time          %8.0f /s (%.0f us each)", sequential, 1e6 / sequential))
        start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    for _ in stride(from: worker, to: calls, by: 16) { _ = try await client.call("ping") }
                }
            }
            try await group.waitForAll()
        }
        let concurrent = Double(calls) / NetworkBench.seconds(since: start)
        print(String(format: "JSON-RPC calls, 16 at once             %8.0f /s (%.1f x one at a time)", concurrent, concurrent / sequential))
        await server.shutdown()
    }
}
