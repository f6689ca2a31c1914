// The genesis file loader is the one place in QuarryLedger that uses Foundation (for
// JSON parsing); it runs once at start-up and nothing it produces depends on Foundation
// beyond the parsed values. See docs/adr/0041-genesis-json.md.
import Foundation
import QuarryCore

extension Genesis {
    /// Parses and validates a genesis file (`docs/spec/genesis.md`).
    public static func load(json data: [UInt8]) throws(GenesisError) -> Genesis {
        guard data.count <= 1 << 20 else { throw GenesisError("genesis.too_large", "genesis file exceeds 1 MiB") }
        let file: GenesisFile
        do {
            file = try JSONDecoder().decode(GenesisFile.self, from: Data(data))
        } catch let DecodingError.keyNotFound(key, context) {
            throw GenesisError("genesis.missing_field", "missing field '\(path(context.codingPath + [key]))'")
        } catch let DecodingError.typeMismatch(_, context) {
            throw GenesisError("genesis.wrong_type", "field '\(path(context.codingPath))' has the wrong type")
        } catch let DecodingError.valueNotFound(_, context) {
            throw GenesisError("genesis.wrong_type", "field '\(path(context.codingPath))' is null")
        } catch let DecodingError.dataCorrupted(context) {
            throw GenesisError("genesis.invalid_json", "\(context.debugDescription) at '\(path(context.codingPath))'")
        } catch {
            throw GenesisError("genesis.invalid_json", "not valid JSON: \(error)")
        }
        let genesis = try file.genesis()
        try genesis.validate()
        return genesis
    }

    private static func path(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    /// The genesis as JSON in the format `load(json:)` reads (keys sorted, pretty-printed).
    public func json() -> [UInt8] {
        let file = GenesisFile(self)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try! encoder.encode(file)) + [0x0a]
    }
}

/// The JSON shape of a genesis file. Amounts in grains are decimal strings so that no JSON
/// reader rounds them.
private struct GenesisFile: Codable {
    struct Validator: Codable { var name: String; var publicKey: String; var power: UInt64 }
    struct RoleHolders: Codable { var registrar: String; var crystalIssuer: String; var boxOperator: String; var merchants: [String] }
    struct Economics: Codable {
        var batchSeconds: UInt64
        var initialDropGrains: String
        var halvingIntervalBatches: UInt64
        var mileagePoolGrains: String
        var cultivationPoolGrains: String
        var maxSpeedKmh: UInt64
        var claimStalenessSeconds: UInt64
        var clockToleranceSeconds: UInt64
        var claimSpanMaxSeconds: UInt64
        var transfersEnabled: Bool
        var settlementChunkMax: UInt64
        var refundChunkMax: UInt64
    }
    struct Consensus: Codable {
        var blockBytesMax: UInt64
        var blockTransactionsMax: UInt64
        var timeoutProposeMs: UInt64
        var timeoutPrevoteMs: UInt64
        var timeoutPrecommitMs: UInt64
        var timeoutCommitMs: UInt64
    }

    var chainId: String
    var genesisTime: UInt64
    var validators: [Validator]
    var roles: RoleHolders
    var economics: Economics
    var consensus: Consensus

    init(_ g: Genesis) {
        chainId = g.chainID
        genesisTime = g.genesisTime
        validators = g.validators.map { Validator(name: $0.name, publicKey: Hex.encode($0.publicKey.bytes), power: $0.power) }
        roles = RoleHolders(registrar: g.roles.registrar.text, crystalIssuer: g.roles.crystalIssuer.text,
                            boxOperator: g.roles.boxOperator.text, merchants: g.roles.merchants.map(\.text))
        let e = g.economics
        economics = Economics(batchSeconds: e.batchSeconds, initialDropGrains: String(e.initialDropGrains),
                              halvingIntervalBatches: e.halvingIntervalBatches, mileagePoolGrains: String(e.mileagePoolGrains),
                              cultivationPoolGrains: String(e.cultivationPoolGrains), maxSpeedKmh: e.maxSpeedKmh,
                              claimStalenessSeconds: e.claimStalenessSeconds, clockToleranceSeconds: e.clockToleranceSeconds,
                              claimSpanMaxSeconds: e.claimSpanMaxSeconds, transfersEnabled: e.transfersEnabled,
                              settlementChunkMax: e.settlementChunkMax, refundChunkMax: e.refundChunkMax)
        let c = g.consensus
        consensus = Consensus(blockBytesMax: c.blockBytesMax, blockTransactionsMax: c.blockTransactionsMax,
                              timeoutProposeMs: c.timeoutProposeMilliseconds, timeoutPrevoteMs: c.timeoutPrevoteMilliseconds,
                              timeoutPrecommitMs: c.timeoutPrecommitMilliseconds, timeoutCommitMs: c.timeoutCommitMilliseconds)
    }

    func genesis() throws(GenesisError) -> Genesis {
        func address(_ text: String, _ field: String) throws(GenesisError) -> Address {
            do { return try Address(text: text) } catch { throw .invalid(field, error.description) }
        }
        func grains(_ text: String, _ field: String) throws(GenesisError) -> UInt64 {
            guard !text.isEmpty, text.utf8.count <= 20, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  text == "0" || !text.hasPrefix("0"), let v = UInt64(text) else {
                throw .invalid(field, "must be a decimal string of grains without leading zeros, got '\(text)'")
            }
            return v
        }
        var vals: [GenesisValidator] = []
        for (i, v) in validators.enumerated() {
            let raw: [UInt8]
            do { raw = try Hex.decode(v.publicKey) } catch { throw .invalid("validators[\(i)].publicKey", "not hex") }
            let key: PublicKeyBytes
            do { key = try PublicKeyBytes(scheme: .sm2, bytes: raw) } catch { throw .invalid("validators[\(i)].publicKey", error.description) }
            vals.append(GenesisValidator(name: v.name, publicKey: key, power: v.power))
        }
        var merchants: [Address] = []
        for (i, m) in roles.merchants.enumerated() { merchants.append(try address(m, "roles.merchants[\(i)]")) }
        let roleHolders = Roles(registrar: try address(roles.registrar, "roles.registrar"),
                                crystalIssuer: try address(roles.crystalIssuer, "roles.crystalIssuer"),
                                boxOperator: try address(roles.boxOperator, "roles.boxOperator"),
                                merchants: merchants)
        var e = EconomicParameters()
        e.batchSeconds = economics.batchSeconds
        e.initialDropGrains = try grains(economics.initialDropGrains, "economics.initialDropGrains")
        e.halvingIntervalBatches = economics.halvingIntervalBatches
        e.mileagePoolGrains = try grains(economics.mileagePoolGrains, "economics.mileagePoolGrains")
        e.cultivationPoolGrains = try grains(economics.cultivationPoolGrains, "economics.cultivationPoolGrains")
        e.maxSpeedKmh = economics.maxSpeedKmh
        e.claimStalenessSeconds = economics.claimStalenessSeconds
        e.clockToleranceSeconds = economics.clockToleranceSeconds
        e.claimSpanMaxSeconds = economics.claimSpanMaxSeconds
        e.transfersEnabled = economics.transfersEnabled
        e.settlementChunkMax = economics.settlementChunkMax
        e.refundChunkMax = economics.refundChunkMax
        var c = ConsensusParameters()
        c.blockBytesMax = consensus.blockBytesMax
        c.blockTransactionsMax = consensus.blockTransactionsMax
        c.timeoutProposeMilliseconds = consensus.timeoutProposeMs
        c.timeoutPrevoteMilliseconds = consensus.timeoutPrevoteMs
        c.timeoutPrecommitMilliseconds = consensus.timeoutPrecommitMs
        c.timeoutCommitMilliseconds = consensus.timeoutCommitMs
        return Genesis(chainID: chainId, genesisTime: genesisTime, validators: vals, roles: roleHolders, economics: e, consensus: c)
    }
}
