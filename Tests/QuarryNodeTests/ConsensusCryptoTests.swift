import Testing
import QuarryConsensus
import QuarryCore
import QuarryCrypto
@testable import QuarryNode

@Suite struct ConsensusCryptoTests {
    @Test func sm2SignerAndVerifierAgreeAndRejectForgeries() throws {
        let a = SM2ConsensusSigner(key: SM2PrivateKey())
        let b = SM2ConsensusSigner(key: SM2PrivateKey())
        let verifier = SM2ConsensusVerifier()
        let message = voteSignBytes(chainID: "quarry-test", type: .precommit, height: 5, round: 1,
                                    blockID: SM3.hash([1]), timestamp: 1_000)
        let sig = try a.sign(message)
        #expect(sig.count == 64)
        #expect(verifier.isValid(signature: sig, message: message, publicKey: a.publicKey))
        #expect(!verifier.isValid(signature: sig, message: message, publicKey: b.publicKey))
        #expect(!verifier.isValid(signature: sig, message: message + [0], publicKey: a.publicKey))
        #expect(!verifier.isValid(signature: Array(sig.dropLast()), message: message, publicKey: a.publicKey))
        #expect(!verifier.isValid(signature: sig, message: message, publicKey: [4, 1, 2]))
    }

    @Test func certificatesVerifyWithRealSM2() throws {
        let signers = (0..<4).map { _ in SM2ConsensusSigner(key: SM2PrivateKey()) }
        let set = try QuarryConsensus.ValidatorSet(validators: signers.map { Validator(publicKey: $0.publicKey, power: 10) })
        let blockID = SM3.hash([42])
        func commitSig(_ i: Int) throws -> CommitSignature {
            let index = set.index(of: signers[i].publicKey)!
            let bytes = voteSignBytes(chainID: "quarry-test", type: .precommit, height: 3, round: 0, blockID: blockID,
                                      timestamp: 1_000 + UInt64(i))
            return CommitSignature(validator: UInt16(index), timestamp: 1_000 + UInt64(i), signature: try signers[i].sign(bytes))
        }
        let three = CommitCertificate(height: 3, round: 0, blockID: blockID, signatures: try (0..<3).map(commitSig).sorted { $0.validator < $1.validator })
        _ = try three.verify(chainID: "quarry-test", validators: set, verifier: SM2ConsensusVerifier())
        let two = CommitCertificate(height: 3, round: 0, blockID: blockID, signatures: try (0..<2).map(commitSig).sorted { $0.validator < $1.validator })
        #expect(throws: ConsensusError.self) {
            _ = try two.verify(chainID: "quarry-test", validators: set, verifier: SM2ConsensusVerifier())
        }
    }
}
