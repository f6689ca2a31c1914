import QuarryCore
import QuarryCrypto

/// How a draw's outcome is derived (`docs/spec/transactions.md`, "Blind boxes"). Every
/// validator recomputes it; the operator only reveals the next pre-image of its committed
/// hash chain, so it cannot pick outcomes.
public enum BlindBox {
    public static let rollDomain: [UInt8] = Array("QUARRY/DRAW/V1".utf8)
    public static let partsPerMillion: UInt64 = 1_000_000

    /// A number in `[0, 1_000_000)`: the top 64 bits of
    /// `SM3("QUARRY/DRAW/V1" || preimage || u64 season || u64 index || u64 height || previousBlockHash)`
    /// scaled by `floor(x * 1_000_000 / 2^64)` (bias below 2^-44 per value).
    public static func roll(preimage: Hash256, seasonID: UInt64, requestIndex: UInt64,
                            height: UInt64, previousBlockHash: Hash256) -> UInt32 {
        var e = CanonicalEncoder(capacity: 128)
        e.fixed(rollDomain); e.value(preimage); e.u64(seasonID); e.u64(requestIndex); e.u64(height); e.value(previousBlockHash)
        let digest = SM3.hash(e.bytes).bytes
        var x: UInt64 = 0
        for b in digest[0..<8] { x = x << 8 | UInt64(b) }
        return UInt32(x.multipliedFullWidth(by: partsPerMillion).high)
    }

    /// The rarity a roll selects: SSR covers `[0, odds[0])`, S the next `odds[1]`, and so on.
    public static func rarity(roll: UInt32, oddsPPM: [UInt32]) -> Rarity {
        precondition(oddsPPM.count == 4, "four rarities")
        var upper: UInt64 = 0
        for r in Rarity.allCases {
            upper += UInt64(oddsPPM[Int(r.rawValue)])
            if UInt64(roll) < upper { return r }
        }
        preconditionFailure("odds do not cover the roll")
    }

    /// The seed's hash chain: `chain[0] = seed`, `chain[i+1] = SM3(chain[i])`. The operator
    /// publishes `chain[length]` as the commitment and reveals `chain[length-1]`, then
    /// `chain[length-2]`, ...
    public static func hashChain(seed: Hash256, length: Int) -> [Hash256] {
        var out = [seed]
        out.reserveCapacity(length + 1)
        for _ in 0..<length { out.append(SM3.hash(out[out.count - 1].bytes)) }
        return out
    }
}
