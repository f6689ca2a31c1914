import QuarryCore

/// Why a key, a signature or an encoding of one was refused, or why signing failed.
/// Every refusal of outside input is one of these; nothing crashes on bad bytes.
public enum CryptoError: QuarryError, Equatable {
    /// Input of the wrong size (`what` names it: "SM2 private key", "signature", ...).
    case wrongLength(what: String, expected: String, actual: Int)
    /// A private key outside the scheme's allowed range.
    case privateKeyOutOfRange(scheme: SignatureScheme)
    /// Bytes that are not a point of the curve, the point at infinity, or a non-canonical
    /// point encoding (wrong prefix byte).
    case invalidPublicKey(scheme: SignatureScheme, reason: String)
    /// A signature component outside [1, n-1], r + s = n (SM2), or high S (secp256k1).
    case signatureOutOfRange(scheme: SignatureScheme, reason: String)
    /// DER or PEM that is malformed, not minimal, of the wrong type, or for another curve.
    case invalidEncoding(what: String, reason: String)
    /// The SM2 distinguishing ID is too long: its bit length must fit in 16 bits.
    case identifierTooLong(bytes: Int)
    /// The underlying library failed where it should not (out of memory, missing algorithm).
    case libraryFailure(String)

    public var code: String {
        switch self {
        case .wrongLength: return "crypto.wrong_length"
        case .privateKeyOutOfRange: return "crypto.private_key_out_of_range"
        case .invalidPublicKey: return "crypto.invalid_public_key"
        case .signatureOutOfRange: return "crypto.signature_out_of_range"
        case .invalidEncoding: return "crypto.invalid_encoding"
        case .identifierTooLong: return "crypto.identifier_too_long"
        case .libraryFailure: return "crypto.library_failure"
        }
    }

    public var description: String {
        switch self {
        case .wrongLength(let what, let expected, let actual):
            return "\(what) must be \(expected) bytes, got \(actual)"
        case .privateKeyOutOfRange(let scheme):
            return scheme == .sm2 ? "SM2 private key must be in [1, n-2]"
                                  : "secp256k1 private key must be in [1, n-1]"
        case .invalidPublicKey(let scheme, let reason):
            return "invalid \(scheme) public key: \(reason)"
        case .signatureOutOfRange(let scheme, let reason):
            return "invalid \(scheme) signature: \(reason)"
        case .invalidEncoding(let what, let reason):
            return "invalid \(what) encoding: \(reason)"
        case .identifierTooLong(let n):
            return "SM2 distinguishing ID must be at most \(SM2.maximumIDBytes) bytes, got \(n)"
        case .libraryFailure(let message):
            return "cryptographic library failure: \(message)"
        }
    }
}
