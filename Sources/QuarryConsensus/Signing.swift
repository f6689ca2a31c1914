import QuarryCore

/// Produces this node's consensus signatures. Production plugs SM2 in (QuarryCrypto's
/// `SM2PrivateKey.signature(for:)`, 64-byte `r||s`); the simulator uses a fast test scheme.
/// The core calls `sign` only after its double-sign guard allowed it.
public protocol ConsensusSigner: Sendable {
    /// The public key as it appears in the validator set.
    var publicKey: [UInt8] { get }
    func sign(_ message: [UInt8]) throws -> [UInt8]
}

/// Checks other validators' signatures. Production: SM2 verification with the default ID.
public protocol SignatureVerifier: Sendable {
    func isValid(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool
}

/// Domain tags that start every signed byte string, so a consensus signature can never be
/// replayed as a transaction signature or as another kind of consensus message.
public enum SignDomain {
    public static let proposal = "quarry/consensus/proposal/v1"
    public static let vote = "quarry/consensus/vote/v1"
}

/// The canonical bytes a proposer signs (specified in docs/spec/consensus.md).
public func proposalSignBytes(chainID: String, height: Height, round: Round, validRound: Round?,
                              blockID: Hash256) -> [UInt8] {
    var e = CanonicalEncoder(capacity: 96)
    e.string(SignDomain.proposal)
    e.string(chainID)
    e.u64(height)
    e.u32(round)
    e.optional(validRound) { $0.u32($1) }
    e.value(blockID)
    return e.bytes
}

/// The canonical bytes a voter signs (specified in docs/spec/consensus.md).
public func voteSignBytes(chainID: String, type: VoteType, height: Height, round: Round,
                          blockID: Hash256?, timestamp: UInt64) -> [UInt8] {
    var e = CanonicalEncoder(capacity: 96)
    e.string(SignDomain.vote)
    e.string(chainID)
    e.value(type)
    e.u64(height)
    e.u32(round)
    e.optional(blockID) { $0.value($1) }
    e.u64(timestamp)
    return e.bytes
}
