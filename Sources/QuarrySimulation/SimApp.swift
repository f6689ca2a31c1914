import QuarryCore
import QuarryConsensus

/// The simulated application's block: enough structure to check validity and block time.
public struct SimBlock: Hashable, Sendable, CanonicalCodable {
    public let height: Height
    public let round: Round
    public let proposer: UInt16
    /// BFT time: the weighted median of `previous`'s precommit timestamps (genesis time at
    /// height 1).
    public let time: UInt64
    /// The commit certificate of the previous block (nil at height 1).
    public let previous: CommitCertificate?
    /// Set only by a byzantine proposer: the application rejects such a block.
    public let invalid: Bool
    public let nonce: UInt64

    public func encode(to e: inout CanonicalEncoder) {
        e.u64(height); e.u32(round); e.u16(proposer); e.u64(time)
        e.optional(previous) { $0.value($1) }
        e.bool(invalid); e.u64(nonce)
    }

    public init(height: Height, round: Round, proposer: UInt16, time: UInt64, previous: CommitCertificate?,
                invalid: Bool, nonce: UInt64) {
        self.height = height; self.round = round; self.proposer = proposer; self.time = time
        self.previous = previous; self.invalid = invalid; self.nonce = nonce
    }

    public init(from d: inout CanonicalDecoder) throws {
        height = try d.u64(); round = try d.u32(); proposer = try d.u16(); time = try d.u64()
        previous = try d.optional { try $0.value(CommitCertificate.self) }
        invalid = try d.bool(); nonce = try d.u64()
    }

    public var value: ProposalValue {
        let bytes = canonicalBytes
        return ProposalValue(id: TestMAC.digest(bytes), time: time, bytes: bytes)
    }
}

/// Validity rules of the simulated application (deterministic, same at every node).
public struct SimApplication: Sendable {
    public let chainID: String
    public let genesisTime: UInt64
    let verifier: TestVerifier

    /// `previous` is the block this node decided at height - 1 and the validator set of
    /// that height (nil at height 1).
    public func isValid(_ value: ProposalValue, height: Height,
                        previous: (decision: Decision, validators: ValidatorSet)?) -> Bool {
        guard let block = try? SimBlock(canonicalBytes: value.bytes), TestMAC.digest(value.bytes) == value.id,
              block.height == height, !block.invalid, block.time == value.time else { return false }
        guard let previous else { return block.previous == nil && block.time == genesisTime }
        guard let cert = block.previous, cert.height == height - 1, cert.blockID == previous.decision.value.id,
              (try? cert.verify(chainID: chainID, validators: previous.validators, verifier: verifier)) != nil
        else { return false }
        return block.time == cert.medianTime(validators: previous.validators) && block.time > previous.decision.value.time
    }

    public func makeValue(height: Height, round: Round, proposer: UInt16, previous: (decision: Decision, validators: ValidatorSet)?,
                          nonce: UInt64, invalid: Bool = false) -> ProposalValue {
        let time = previous.map { $0.decision.certificate.medianTime(validators: $0.validators) } ?? genesisTime
        return SimBlock(height: height, round: round, proposer: proposer, time: time,
                        previous: previous?.decision.certificate, invalid: invalid, nonce: nonce).value
    }
}
