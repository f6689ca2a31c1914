import Testing
import Foundation
import QuarryCore
import QuarryCrypto
@testable import QuarryLedger

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func genesisFile(_ name: String) throws -> [UInt8] {
    Array(try Data(contentsOf: repositoryRoot.appendingPathComponent("genesis/\(name)")))
}

@Suite struct GenesisTests {
    @Test func committedGenesisFilesLoad() throws {
        let main = try Genesis.load(json: genesisFile("mainnet.example.json"))
        #expect(main.economics.batchSeconds == 600)
        #expect(main.economics.initialDropGrains == 500 * Grains.perStone)
        #expect(main.economics.halvingIntervalBatches == 210_000)
        #expect(main.economics.maxSpeedKmh == 250)
        #expect(!main.economics.transfersEnabled)
        #expect(main.validators.count == 4)
        let dev = try Genesis.load(json: genesisFile("devnet.json"))
        #expect(dev.economics.batchSeconds <= 10)
        // The devnet keys are derived from public labels so local networks can use them.
        #expect(dev.validators[0].publicKey == testKey("quarry-devnet/validator-1").publicKeyBytes)
        #expect(dev.roles.registrar == testKey("quarry-devnet/registrar").address)
        #expect(dev.hash != main.hash)
        // JSON -> Genesis -> JSON is stable, and the hash does not depend on formatting.
        #expect(try Genesis.load(json: dev.json()) == dev)
        #expect(try Genesis(canonicalBytes: dev.canonicalBytes).hash == dev.hash)
        #expect(dev.json() == (try genesisFile("devnet.json")))
    }

    func mutated(_ edit: (inout [String: Any]) -> Void) throws -> [UInt8] {
        var object = try JSONSerialization.jsonObject(with: Data(genesisFile("devnet.json"))) as! [String: Any]
        edit(&object)
        return Array(try JSONSerialization.data(withJSONObject: object))
    }

    func code(_ bytes: [UInt8]) -> String? {
        do { _ = try Genesis.load(json: bytes); return nil } catch { return error.code + " " + error.message }
    }

    @Test func invalidGenesisIsRejectedWithClearErrors() throws {
        #expect(code(Array("{".utf8))?.hasPrefix("genesis.invalid_json") == true)
        #expect(code(try mutated { $0["chainId"] = nil })?.hasPrefix("genesis.missing_field missing field 'chainId'") == true)
        #expect(code(try mutated { $0["chainId"] = "Upper Case" })?.contains("chainId") == true)
        #expect(code(try mutated { $0["genesisTime"] = "soon" })?.hasPrefix("genesis.wrong_type") == true)
        #expect(code(try mutated {
            var e = $0["economics"] as! [String: Any]; e["mileagePoolGrains"] = "21000000000000001"; $0["economics"] = e
        })?.contains("300,000,000 stones") == true)
        #expect(code(try mutated {
            var e = $0["economics"] as! [String: Any]; e["cultivationPoolGrains"] = "9e15"; $0["economics"] = e
        })?.contains("decimal string") == true)
        #expect(code(try mutated {
            var e = $0["economics"] as! [String: Any]; e["initialDropGrains"] = "200000000000"; $0["economics"] = e
        })?.contains("more than the mileage pool") == true)
        #expect(code(try mutated {
            var v = $0["validators"] as! [[String: Any]]; v[0]["publicKey"] = "04" + String(repeating: "07", count: 64); $0["validators"] = v
        })?.contains("not a point on the SM2 curve") == true)
        #expect(code(try mutated {
            var v = $0["validators"] as! [[String: Any]]; v[1]["publicKey"] = v[0]["publicKey"]; $0["validators"] = v
        })?.contains("duplicate validator key") == true)
        #expect(code(try mutated { $0["validators"] = [] })?.contains("validators") == true)
        #expect(code(try mutated {
            var r = $0["roles"] as! [String: Any]; r["registrar"] = "quarry1notanaddress"; $0["roles"] = r
        })?.contains("roles.registrar") == true)
        #expect(code(try mutated {
            var c = $0["consensus"] as! [String: Any]; c["blockTransactionsMax"] = 6_000; $0["consensus"] = c
        })?.contains("settlementChunkMax") == true)
        #expect(code(try mutated {
            var e = $0["economics"] as! [String: Any]; e["batchSeconds"] = 0; $0["economics"] = e
        })?.contains("batchSeconds") == true)
    }

    @Test func ledgerRefusesAnotherChainsStore() throws {
        let store = InMemoryStore()
        _ = try Ledger(store: store, genesis: testGenesis())
        #expect(throws: LedgerOpenError.self) { try Ledger(store: store, genesis: testGenesis(chainID: "other")) }
        let reopened = try Ledger(store: store, genesis: testGenesis())
        #expect(reopened.height == 0)
        #expect(reopened.global.supply == Grains.totalSupply)
    }
}
