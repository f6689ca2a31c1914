import Foundation
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryRPC

/// The parts of `season_get` a draw result needs.
public struct SeasonView: Sendable, Equatable {
    public let id: UInt64
    public let oddsPPM: [UInt32]
    public let commitment: Hash256
    public let chainTip: Hash256
    public let requests: UInt64
    public let settled: UInt64
    public let closed: Bool

    public init(_ v: JSONValue) throws(ClientError) {
        let w = "season_get result"
        let idText = try v.string("id", of: w)
        guard let parsedID = JSONValue.parseGrains(idText) else { throw .malformedResponse("\(w).id is not a decimal id: \"\(idText)\"") }
        id = parsedID
        let odds = try v.member("oddsPPM", of: w)
        var parsed: [UInt32] = []
        for r in Rarity.allCases {
            let n = try odds.uint64(r.description, of: "\(w).oddsPPM")
            guard n <= 1_000_000 else { throw .malformedResponse("\(w).oddsPPM.\(r) is above 1000000") }
            parsed.append(UInt32(n))
        }
        oddsPPM = parsed
        commitment = try v.hash("commitment", of: w)
        chainTip = try v.hash("chainTip", of: w)
        requests = try v.uint64("requests", of: w)
        settled = try v.uint64("settled", of: w)
        closed = try v.bool("closed", of: w)
    }
}

/// The parts of `draw_get` a draw result needs: the block that included the request.
public struct DrawView: Sendable, Equatable {
    public let seasonID: UInt64
    public let index: UInt64
    /// `pending` until answered, then `answered` or `refunded`.
    public let status: String
    /// Height of the block that included the request.
    public let requestHeight: UInt64
    public let requester: Address

    public init(_ v: JSONValue) throws(ClientError) {
        let w = "draw_get result"
        let seasonText = try v.string("seasonId", of: w)
        guard let s = JSONValue.parseGrains(seasonText) else { throw .malformedResponse("\(w).seasonId is not a decimal id") }
        seasonID = s
        index = try v.uint64("index", of: w)
        status = try v.string("status", of: w)
        requestHeight = try v.uint64("requestHeight", of: w)
        requester = try v.address("requester", of: w)
    }
}

/// Answers draw requests for the box operator: finds the season's hash chain, derives the
/// next pre-image and the outcome every validator will derive, and builds the result.
public enum BoxOperator {
    /// The `drawResult` payload answering request `index` of `season` (default: the oldest
    /// unanswered one), and the rarity it states.
    public static func answer(season seasonID: UInt64, index: UInt64? = nil, client: QuarryClient, key: SigningKey,
                              chain: BoxChain?, chainsDirectory: URL) async throws(ClientError) -> (Payload, Rarity, UInt64) {
        let season = try SeasonView(await client.season(seasonID))
        let request = index ?? season.settled
        guard request < season.requests else {
            throw .invalidArgument("request", "season \(seasonID) has no unanswered request (requests \(season.requests), settled \(season.settled))")
        }
        let draw = try DrawView(await client.draw(season: seasonID, index: request))
        guard draw.status == "pending" else {
            throw .invalidArgument("request", "request \(request) of season \(seasonID) is already \(draw.status)")
        }
        // The outcome uses the including block's height and its previous-block hash.
        let block = try await client.block(height: draw.requestHeight)
        let previousBlockHash = try block.member("header", of: "chain_getBlock result").hash("previousBlockHash", of: "chain_getBlock result.header")
        let found: BoxChain
        if let chain { found = chain } else { found = try BoxChain.load(directory: chainsDirectory, commitment: season.commitment, key: key) }
        let preimage = try found.preimage(below: season.chainTip, key: key)
        let rarity = outcome(preimage: preimage, seasonID: seasonID, index: request, height: draw.requestHeight,
                             previousBlockHash: previousBlockHash, oddsPPM: season.oddsPPM)
        return (PayloadBuilder.drawResult(seasonID: seasonID, requestIndex: request, preimage: preimage, rarity: rarity), rarity, request)
    }

    /// The rarity the ledger derives (docs/spec/economics.md section 4).
    public static func outcome(preimage: Hash256, seasonID: UInt64, index: UInt64, height: UInt64,
                               previousBlockHash: Hash256, oddsPPM: [UInt32]) -> Rarity {
        let roll = BlindBox.roll(preimage: preimage, seasonID: seasonID, requestIndex: index, height: height,
                                 previousBlockHash: previousBlockHash)
        return BlindBox.rarity(roll: roll, oddsPPM: oddsPPM)
    }
}
