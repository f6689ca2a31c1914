import Foundation
import Testing
import QuarryCore
import QuarryCrypto
@testable import QuarryNode

@Suite struct TOMLTests {
    @Test func parsesTheSupportedSubset() throws {
        let doc = try TOMLDocument(parsing: """
            # comment
            a = "x\\"y\\u00e9"   # trailing comment
            n = -1_000
            b = true

            [t]
            list = [
              "one",  # inside
              "two",
            ]
            nums = [1, 2]
            """)
        #expect(doc.value("a") == .string("x\"yé"))
        #expect(doc.value("n") == .integer(-1000))
        #expect(doc.value("b") == .boolean(true))
        #expect(doc.value("list", in: "t") == .array([.string("one"), .string("two")]))
        #expect(doc.value("nums", in: "t") == .array([.integer(1), .integer(2)]))
    }

    @Test(arguments: [
        "a = 1.5", "a = 1979-05-27", "a = bare", "a = \"open", "[t\nx = 1", "a = 1\na = 2",
        "[t]\n[t]", "a = [1, 2", "a = 1 2", "= 1", "a.b = 1", "a = '''x'''", "a = 1__0", "[a.b]",
    ])
    func rejectsWhatItDoesNotSupportWithALine(text: String) {
        #expect(throws: TOMLError.self) { _ = try TOMLDocument(parsing: text) }
    }
}

@Suite struct NodeConfigTests {
    func sample() -> NodeConfig {
        let member = Hex.encode(SM2PrivateKey().publicKey.rawRepresentation)
        return NodeConfig(moniker: "v0 \"main\"", role: .validator, p2pListen: "127.0.0.1:26656",
                          peers: ["abcd@127.0.0.1:26666"], members: [member],
                          rpcListen: "127.0.0.1:26657", metricsListen: "127.0.0.1:26660")
    }

    @Test func writesAndReadsBack() throws {
        var c = sample()
        c.timeoutProposeMilliseconds = 1_500
        #expect(try NodeConfig(toml: c.toml) == c)
        var r = sample()
        r.role = .readOnly
        r.peers = []
        #expect(try NodeConfig(toml: r.toml) == r)
    }

    @Test func refusesUnknownKeysBadValuesAndBadAddresses() throws {
        let good = sample().toml
        #expect(throws: NodeConfig.Invalid.self) { _ = try NodeConfig(toml: good + "\n[extra]\n") }
        #expect(throws: NodeConfig.Invalid.self) { _ = try NodeConfig(toml: good.replacingOccurrences(of: "log_level", with: "log_lvl")) }
        #expect(throws: NodeConfig.Invalid.self) { _ = try NodeConfig(toml: good.replacingOccurrences(of: "\"validator\"", with: "\"boss\"")) }
        #expect(throws: NodeConfig.Invalid.self) { _ = try NodeConfig(toml: good.replacingOccurrences(of: "127.0.0.1:26657", with: "nowhere")) }
        #expect(throws: NodeConfig.Invalid.self) { _ = try NodeConfig(toml: good.replacingOccurrences(of: "timeout_propose_ms = 3000", with: "timeout_propose_ms = 0")) }
        #expect(throws: NodeConfig.Invalid.self) { _ = try NodeConfig(toml: good.replacingOccurrences(of: "\"04", with: "\"05")) }
        #expect(throws: TOMLError.self) { _ = try NodeConfig(toml: good + "\nbroken") }
    }
}
