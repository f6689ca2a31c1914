import COpenSSL
import QuarryCore

/// Owns an OpenSSL `EVP_PKEY` and frees it when the last reference goes.
final class OwnedPKey: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { EVP_PKEY_free(pointer) }
}

/// An X25519 (RFC 7748) private key, used once per handshake for forward secrecy.
public struct X25519PrivateKey: Sendable {
    public static let keySize = 32
    private let key: OwnedPKey

    /// A fresh key from OpenSSL's CSPRNG.
    public init() {
        guard let ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nil) else {
            fatalError("EVP_PKEY_CTX_new_id(X25519) failed: out of memory")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        var pkey: OpaquePointer? = nil
        guard EVP_PKEY_keygen_init(ctx) == 1, EVP_PKEY_keygen(ctx, &pkey) == 1, let pkey else {
            fatalError("X25519 key generation failed")
        }
        key = OwnedPKey(pkey)
    }

    /// A key from its 32 raw bytes (clamping is applied by the algorithm, as RFC 7748 says).
    public init(rawRepresentation raw: [UInt8]) throws(P2PError) {
        guard raw.count == Self.keySize else {
            throw P2PError("p2p.bad_key", "X25519 private key must be 32 bytes, got \(raw.count)")
        }
        guard let pkey = raw.withUnsafeBufferPointer({
            EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nil, $0.baseAddress, $0.count)
        }) else { throw P2PError("p2p.bad_key", "OpenSSL rejected the X25519 private key") }
        key = OwnedPKey(pkey)
    }

    public var rawRepresentation: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.keySize)
        var len = Self.keySize
        let ok = out.withUnsafeMutableBufferPointer { EVP_PKEY_get_raw_private_key(key.pointer, $0.baseAddress, &len) }
        precondition(ok == 1 && len == Self.keySize, "EVP_PKEY_get_raw_private_key failed")
        return out
    }

    /// The public key u-coordinate, 32 bytes little-endian as in RFC 7748.
    public var publicKeyBytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.keySize)
        var len = Self.keySize
        let ok = out.withUnsafeMutableBufferPointer { EVP_PKEY_get_raw_public_key(key.pointer, $0.baseAddress, &len) }
        precondition(ok == 1 && len == Self.keySize, "EVP_PKEY_get_raw_public_key failed")
        return out
    }

    /// X25519(self, peer). Throws if the peer's value is malformed or yields the all-zero
    /// secret (a small-order point), which RFC 7748 section 6.1 says to reject.
    public func sharedSecret(with peerPublicKey: [UInt8]) throws(P2PError) -> [UInt8] {
        guard peerPublicKey.count == Self.keySize else {
            throw P2PError("p2p.bad_key", "X25519 public key must be 32 bytes, got \(peerPublicKey.count)")
        }
        guard let peer = peerPublicKey.withUnsafeBufferPointer({
            EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nil, $0.baseAddress, $0.count)
        }) else { throw P2PError("p2p.bad_key", "OpenSSL rejected the X25519 public key") }
        defer { EVP_PKEY_free(peer) }
        guard let ctx = EVP_PKEY_CTX_new(key.pointer, nil) else { fatalError("EVP_PKEY_CTX_new failed") }
        defer { EVP_PKEY_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: Self.keySize)
        var len = Self.keySize
        let ok = EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, peer) == 1
            && out.withUnsafeMutableBufferPointer({ EVP_PKEY_derive(ctx, $0.baseAddress, &len) }) == 1
        ERR_clear_error()
        guard ok, len == Self.keySize, out.contains(where: { $0 != 0 }) else {
            throw P2PError("p2p.bad_key", "X25519 exchange produced no usable secret (small-order point)")
        }
        return out
    }
}
