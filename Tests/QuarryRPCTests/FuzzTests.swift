import QuarryCore
import QuarryRPCTestSupport
import Testing
@testable import QuarryRPC

/// Randomized robustness: arbitrary bytes and mutated valid requests always get a valid
/// JSON-RPC reply (or no reply for notifications, or a clean HTTP error), and the server
/// goes on answering good requests. Seeded: a failure names the seed and iteration.
@Suite("Randomized input")
struct FuzzTests {
    static let seeds: [UInt64] = [0xF00D_0001, 0xF00D_0002]

    static let validRequests: [String] = [
        #"{"jsonrpc":"2.0","method":"add","params":["1","2"],"id":1}"#,
        #"{"jsonrpc":"2.0","method":"echo","params":{"value":[1,"a",{"b":null}]},"id":"x"}"#,
        #"{"jsonrpc":"2.0","method":"describe","params":{"height":7,"wait":"none","flag":true},"id":99999999999999999999}"#,
        #"[{"jsonrpc":"2.0","method":"echo","params":[1],"id":1},{"jsonrpc":"2.0","method":"echo","params":[2]}]"#,
        #"{"jsonrpc":"2.0","method":"reject","id":null}"#,
        #"{"jsonrpc":"2.0","method":"rpc.discover","id":"\u00e9"}"#,
        #"{"jsonrpc":"2.0","method":"echo","params":["\ud83d\ude00 \n"]}"#,
    ]

    static let tokens: [[UInt8]] = ["[", "]", "{", "}", "\"", "\\", "\\u", "\\ud800", ",", ":", "null", "1e999", "-",
                                    "0", "01", "\"id\":", "\"jsonrpc\":\"2.0\"", "[[[[[[", "\u{0}", "\t"].map { Array($0.utf8) }
        + [[0xC0, 0x80], [0xED, 0xA0, 0x80], [0xFF], [0xEF, 0xBB, 0xBF], [0xF4, 0x90, 0x80, 0x80]]

    /// One random input: arbitrary bytes, or a valid request mutated a few times.
    static func input(_ rng: inout SplitMix64) -> [UInt8] {
        if Int.random(in: 0..<4, using: &rng) == 0 {
            return (0..<Int.random(in: 0...120, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        var bytes = Array(validRequests.randomElement(using: &rng)!.utf8)
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let at = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<7, using: &rng) {
            case 0: if !bytes.isEmpty { bytes[at] = UInt8.random(in: 0...255, using: &rng) }
            case 1: if !bytes.isEmpty { bytes[at] ^= 1 << UInt8.random(in: 0...7, using: &rng) }
            case 2: bytes.insert(contentsOf: tokens.randomElement(using: &rng)!, at: at)
            case 3: if !bytes.isEmpty { bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...8, using: &rng))) }
            case 4: bytes = Array(bytes[0..<at])
            case 5:
                let end = min(bytes.count, at + Int.random(in: 1...16, using: &rng))
                bytes.insert(contentsOf: bytes[at..<end], at: at)
            default:
                let other = Array(validRequests.randomElement(using: &rng)!.utf8)
                bytes = Array(bytes[0..<at]) + other[Int.random(in: 0..<other.count, using: &rng)...]
            }
        }
        return bytes
    }

    /// Nil when `reply` is a well-formed JSON-RPC response (or non-empty batch of them).
    static func problem(with reply: JSONValue) -> String? {
        if case .array(let items) = reply {
            if items.isEmpty { return "empty batch reply" }
            for item in items { if let p = problem(withOne: item) { return p } }
            return nil
        }
        return problem(withOne: reply)
    }

    static func problem(withOne r: JSONValue) -> String? {
        guard let members = r.objectValue else { return "reply is not an object" }
        guard r["jsonrpc"] == "2.0" else { return "no jsonrpc 2.0" }
        switch r["id"] {
        case .null?, .string?, .number?: break
        default: return "bad or missing id"
        }
        let hasResult = r["result"] != nil, error = r["error"]
        guard hasResult != (error != nil) else { return "needs exactly one of result and error" }
        if let error {
            guard let code = error["code"]?.numberValue?.int64Value else { return "error code not an integer" }
            guard error["message"]?.stringValue != nil else { return "error message not a string" }
            let known: Set<Int64> = [-32700, -32600, -32601, -32602, -32603]
            guard known.contains(code) || (-32099 ... -32000).contains(code) else { return "unexpected code \(code)" }
        }
        guard members.count == 3 else { return "unexpected members" }
        return nil
    }

    /// Straight through the dispatcher (no sockets): many inputs, quickly.
    @Test(arguments: seeds)
    func dispatcherAnswersEverything(seed: UInt64) async throws {
        var config = RPCServerConfiguration()
        config.port = 0
        let server = RPCServer(configuration: config)
        registerDemo(server)
        var rng = SplitMix64(seed: seed)
        for i in 0..<1500 {
            let bytes = Self.input(&rng)
            guard let reply = await server.dispatcher.handle(body: bytes, transport: .http) else { continue }
            let json = try JSONValue.parse(reply, limits: JSONLimits(documentBytesMax: 64 << 20))
            if let p = Self.problem(with: json) {
                Issue.record("seed \(seed) input \(i): \(p): \(String(decoding: bytes, as: UTF8.self)) -> \(json)")
            }
        }
        await server.shutdown()  // never started: this only frees its event loops
    }

    /// Over HTTP: each random body gets 200 with a valid reply, or 204 (only notifications).
    @Test(arguments: seeds)
    func httpAnswersEverything(seed: UInt64) async throws {
        try await withDemoServer({ $0.requestTimeoutMilliseconds = 1_000 }) { _, port in
            var rng = SplitMix64(seed: seed)
            for i in 0..<150 {
                let bytes = Self.input(&rng)
                let r = try await post(port, bytes)
                let shown = String(decoding: bytes, as: UTF8.self)
                if r.status == 204 {
                    #expect(r.body.isEmpty, "seed \(seed) input \(i)")
                    continue
                }
                #expect(r.status == 200, "seed \(seed) input \(i): status \(r.status) for \(shown)")
                guard let json = r.json else {
                    Issue.record("seed \(seed) input \(i): reply is not JSON: \(r.text)")
                    continue
                }
                if let p = Self.problem(with: json) { Issue.record("seed \(seed) input \(i): \(p): \(shown) -> \(json)") }
            }
            // Arbitrary bytes as the HTTP request itself: a clean error or a close, never a hang.
            for i in 0..<40 {
                var garbage = (0..<Int.random(in: 1...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if i % 2 == 0 { garbage = Array("POST / HTTP/1.1\r\n".utf8) + garbage + [13, 10, 13, 10] }
                let bytes = garbage
                let status: Int? = try await onPool {
                    let c = try RawClient(port: port, timeoutMilliseconds: 5_000)
                    defer { c.close() }
                    try? c.send(bytes)
                    return (try? c.readResponse())?.status
                }
                if let status {
                    #expect([400, 404, 405, 408, 413, 415, 426].contains(status), "seed \(seed) raw \(i): status \(status)")
                }
            }
            let good = try await post(port, #"{"jsonrpc":"2.0","method":"add","params":["40","2"],"id":"last"}"#)
            #expect(good.text == #"{"jsonrpc":"2.0","id":"last","result":"42"}"#)
        }
    }

    /// Over one WebSocket: every reply to a random message is valid, and the connection stays
    /// usable (each random message is followed by a good request whose reply must arrive).
    @Test func webSocketAnswersEverything() async throws {
        try await withDemoServer { _, port in
            let c = try await onPool {
                let c = try RawClient(port: port)
                guard try c.upgradeToWebSocket().status == 101 else { throw RawClient.Failure(description: "no upgrade") }
                return c
            }
            defer { c.close() }
            var rng = SplitMix64(seed: 0xF00D_0003)
            for i in 0..<150 {
                let bytes = Self.input(&rng)
                let marker = "m\(i)"
                let problems: [String] = try await onPool {
                    try c.sendFrame(opcode: 1, bytes)
                    try c.sendText(#"{"jsonrpc":"2.0","method":"echo","params":["\#(marker)"],"id":"\#(marker)"}"#)
                    var problems: [String] = []
                    while true {
                        let f = try c.readMessage()
                        guard f.opcode == 1, let json = try? JSONValue.parse(f.payload, limits: JSONLimits(documentBytesMax: 64 << 20)) else {
                            return problems + ["frame \(f.opcode) \(f.text)"]
                        }
                        if let p = Self.problem(with: json) { problems.append("\(p): \(json)") }
                        if json["id"] == .string(marker) { return problems }
                    }
                }
                #expect(problems.isEmpty, "input \(i) \(String(decoding: bytes, as: UTF8.self)): \(problems)")
            }
        }
    }
}
