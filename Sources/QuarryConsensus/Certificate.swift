import QuarryCore

/// One precommit inside a commit certificate.
public struct CommitSignature: Hashable, Sendable, CanonicalCodable {
    public let validator: UInt16
    public let timestamp: UInt64
    public let signature: [UInt8]

    public init(validator: UInt16, timestamp: UInt64, signature: [UInt8]) {
        self.validator = validator
        self.timestamp = timestamp
        self.signature = signature
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.u16(validator)
        e.u64(timestamp)
        e.bytes(signature)
    }

    public init(from d: inout CanonicalDecoder) throws {
        validator = try d.u16()
        timestamp = try d.u64()
        signature = try d.bytes(limit: ConsensusLimits.signatureBytesMax, field: "commit.signature")
    }
}

/// Proof that a block is final: precommits for `blockID` at (height, round) from validators
/// holding more than 2/3 of the voting power, sorted by validator index, no repeats.
public struct CommitCertificate: Hashable, Sendable, CanonicalCodable {
    public let height: Height
    public let round: Round
    public let blockID: Hash256
    public let signatures: [CommitSignature]

    public init(height: Height, round: Round, blockID: Hash256, signatures: [CommitSignature]) {
        self.height = height
        self.round = round
        self.blockID = blockID
        self.signatures = signatures
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.u64(height)
        e.u32(round)
        e.value(blockID)
        e.sequence(signatures) { $0.value($1) }
    }

    public init(from d: inout CanonicalDecoder) throws {
        height = try d.u64()
        round = try d.u32()
        blockID = try d.value(Hash256.self)
        signatures = try d.sequence(limit: ConsensusLimits.validatorsMax, field: "commit.signatures",
                                    minimumElementSize: 11) { try $0.value(CommitSignature.self) }
    }

    /// Checks the certificate against the validator set of its height. Throws on anything
    /// wrong; returns the voting power that signed.
    @discardableResult
    public func verify(chainID: String, validators: ValidatorSet, verifier: any SignatureVerifier,
                       quorumInclusive: Bool = false) throws(ConsensusError) -> UInt64 {
        var power: UInt64 = 0
        var previous = -1
        for s in signatures {
            let i = Int(s.validator)
            guard i > previous else { throw .invalidCertificate("signatures not sorted by validator or repeated") }
            previous = i
            guard i < validators.count else { throw .invalidCertificate("unknown validator \(i)") }
            let bytes = voteSignBytes(chainID: chainID, type: .precommit, height: height, round: round,
                                      blockID: blockID, timestamp: s.timestamp)
            guard verifier.isValid(signature: s.signature, message: bytes, publicKey: validators.validators[i].publicKey) else {
                throw .invalidCertificate("signature of validator \(i) does not verify")
            }
            power += validators.validators[i].power
        }
        let enough = quorumInclusive ? power * 3 >= validators.totalPower * 2 : validators.isQuorum(power)
        guard enough else {
            throw .invalidCertificate("signed power \(power) of \(validators.totalPower) is not more than 2/3")
        }
        return power
    }

    /// BFT time of the *next* block: the voting-power-weighted median of the precommit
    /// timestamps: sort by (timestamp, validator), take the first timestamp at which the
    /// running power sum times 2 exceeds the signed power. Call only after `verify`.
    public func medianTime(validators: ValidatorSet) -> UInt64 {
        var pairs = [(UInt64, UInt64)]()
        pairs.reserveCapacity(signatures.count)
        var total: UInt64 = 0
        for s in signatures where Int(s.validator) < validators.count {
            let p = validators.validators[Int(s.validator)].power
            pairs.append((s.timestamp, p))
            total += p
        }
        pairs.sort { $0.0 < $1.0 }  // equal timestamps: order irrelevant to the result
        var running: UInt64 = 0
        for (t, p) in pairs {
            running += p
            if running * 2 > total { return t }
        }
        return pairs.last?.0 ?? 0
    }
}
