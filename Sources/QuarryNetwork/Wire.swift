import QuarryCore

/// A logical channel inside a connection. The byte is the first plaintext byte of a frame.
public enum P2PChannel: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Transport-internal: ping, pong, close notice. Never delivered to the application.
    case control = 0
    /// Proposals, votes, commit certificates.
    case consensus = 1
    /// Transaction gossip.
    case transactions = 2
    /// Block and certificate requests and responses.
    case blockSync = 3

    public var description: String {
        switch self {
        case .control: "control"
        case .consensus: "consensus"
        case .transactions: "transactions"
        case .blockSync: "block-sync"
        }
    }
}

/// Constants of protocol version 1 (see docs/spec/p2p.md).
enum Wire {
    static let magic: [UInt8] = Array("QRYP".utf8)
    static let version: UInt16 = 1
    static let chainIDBytesMax = 64
    static let nonceSize = 32
    static let handshakeFrameBytesMax = 1024
    static let lengthPrefixSize = 4

    static let transcriptLabel = Array("quarry-p2p/1 transcript".utf8)
    static let initiatorAuthLabel = Array("quarry-p2p/1 auth initiator".utf8)
    static let responderAuthLabel = Array("quarry-p2p/1 auth responder".utf8)
    static let handshakeI2RLabel = Array("quarry-p2p/1 handshake i2r".utf8)
    static let handshakeR2ILabel = Array("quarry-p2p/1 handshake r2i".utf8)
    static let dataI2RLabel = Array("quarry-p2p/1 data i2r".utf8)
    static let dataR2ILabel = Array("quarry-p2p/1 data r2i".utf8)

    static func lengthPrefix(_ n: Int) -> [UInt8] {
        let v = UInt32(n)
        return [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)]
    }
}

/// The first handshake message each side sends, in the clear.
struct Hello: Equatable {
    enum Role: UInt8 { case initiator = 1, responder = 2 }
    var version: UInt16
    var role: Role
    var chainID: String
    var ephemeralPublicKey: [UInt8]
    var nonce: [UInt8]

    func encoded() -> [UInt8] {
        var e = CanonicalEncoder()
        e.fixed(Wire.magic)
        e.u16(version)
        e.u8(role.rawValue)
        e.string(chainID)
        e.fixed(ephemeralPublicKey)
        e.fixed(nonce)
        return e.bytes
    }

    /// Decodes a hello. A different version is reported as such (not as malformed) so that
    /// the log says what is wrong; the rest of the message is not read then.
    static func decode(_ bytes: [UInt8]) throws(P2PError) -> Hello {
        do {
            var d = CanonicalDecoder(bytes)
            guard try d.fixed(4) == Wire.magic else { throw P2PError("p2p.bad_magic", "not a Quarry P2P hello") }
            let version = try d.u16()
            guard version == Wire.version else {
                throw P2PError("p2p.version_mismatch", "peer speaks version \(version), this node \(Wire.version)")
            }
            guard let role = Role(rawValue: try d.u8()) else { throw P2PError.malformed("hello has an unknown role") }
            let chainID = try d.string(limit: Wire.chainIDBytesMax, field: "hello.chain_id")
            let eph = try d.fixed(X25519PrivateKey.keySize)
            let nonce = try d.fixed(Wire.nonceSize)
            try d.finish()
            return Hello(version: version, role: role, chainID: chainID, ephemeralPublicKey: eph, nonce: nonce)
        } catch let e as P2PError {
            throw e
        } catch {
            throw P2PError.malformed("hello: \(error)")
        }
    }
}
