import Testing
import QuarryCore
import QuarryCrypto
@testable import QuarryNode

/// `crypto.sm2_engine` in config.toml (docs/spec/config.md).
@Suite struct EngineConfigTests {
    func config() -> NodeConfig {
        NodeConfig(moniker: "v", role: .validator, p2pListen: "127.0.0.1:26656", peers: [], members: [],
                   rpcListen: "127.0.0.1:26657", metricsListen: "127.0.0.1:26660")
    }

    @Test func defaultsToTheFastEngineAndIsOmittedWhenDefault() throws {
        let c = config()
        #expect(c.sm2Engine == .fast)
        #expect(!c.toml.contains("[crypto]"))
        #expect(try NodeConfig(toml: c.toml).sm2Engine == .fast)
    }

    @Test(arguments: SM2VerificationEngine.allCases)
    func writesAndReadsEitherEngine(engine: SM2VerificationEngine) throws {
        var c = config()
        c.sm2Engine = engine
        #expect(try NodeConfig(toml: c.toml) == c)
        #expect(try NodeConfig(toml: config().toml + "\n[crypto]\nsm2_engine = \"\(engine.rawValue)\"\n").sm2Engine == engine)
    }

    @Test(arguments: ["\"OpenSSL\"", "\"fastest\"", "1", "true", "[\"fast\"]"])
    func refusesOtherValues(value: String) {
        let text = config().toml + "\n[crypto]\nsm2_engine = \(value)\n"
        #expect(throws: NodeConfig.Invalid(key: "crypto.sm2_engine", reason: "must be \"fast\" or \"openssl\"")) {
            _ = try NodeConfig(toml: text)
        }
        #expect(throws: NodeConfig.Invalid.self) { _ = try NodeConfig(toml: config().toml + "\n[crypto]\nengine = \"fast\"\n") }
    }
}
