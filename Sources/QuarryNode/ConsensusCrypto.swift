import QuarryConsensus
import QuarryCore
import QuarryCrypto

/// The production consensus signer: SM2 with the standard distinguishing ID, over the
/// domain-tagged canonical bytes the core hands it. Validator public keys in consensus are
/// the 65-byte uncompressed SM2 points of the genesis.
public struct SM2ConsensusSigner: ConsensusSigner {
    private let key: SM2PrivateKey
    public let publicKey: [UInt8]

    public init(key: SM2PrivateKey) {
        self.key = key
        self.publicKey = key.publicKey.rawRepresentation
    }

    public func sign(_ message: [UInt8]) throws -> [UInt8] {
        try key.signature(for: message).rawRepresentation
    }
}

/// The production consensus verifier: SM2 through QuarryCrypto's shared verification path
/// (strict range checks, bounded cache of parsed keys). Any malformed key or signature is
/// simply invalid.
public struct SM2ConsensusVerifier: SignatureVerifier {
    public init() {}

    public func isValid(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard let key = try? PublicKeyBytes(scheme: .sm2, bytes: publicKey) else { return false }
        return SignatureVerification.isValid(signature: signature, message: message, publicKey: key)
    }
}
