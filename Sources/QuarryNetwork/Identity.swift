import QuarryCore
import QuarryCrypto

/// A node's identity on the P2P network: 20 bytes, the same digest as the node key's
/// address, `SM3(0x01 || publicKey)[0..<20]` where `publicKey` is the 65-byte `04||X||Y`.
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let size = 20
    public let bytes: [UInt8]

    public init(publicKey: SM2PublicKey) {
        let digest = SM3.hash([SignatureScheme.sm2.rawValue] + publicKey.rawRepresentation)
        bytes = Array(digest.bytes[0..<Self.size])
    }

    /// From 40 lowercase or uppercase hex digits.
    public init(hex: String) throws(P2PError) {
        guard let raw = try? Hex.decode(hex), raw.count == Self.size else {
            throw P2PError("p2p.bad_node_id", "a node id is 40 hex digits, got \"\(hex.prefix(64))\"")
        }
        bytes = raw
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    public static func < (a: NodeID, b: NodeID) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

/// The key a node proves it holds during the handshake.
public struct NodeIdentity: Sendable {
    public let privateKey: SM2PrivateKey
    /// The public key this node presents; normally `privateKey.publicKey`.
    public let publicKey: SM2PublicKey
    public let id: NodeID

    public init(privateKey: SM2PrivateKey) {
        self.privateKey = privateKey
        self.publicKey = privateKey.publicKey
        self.id = NodeID(publicKey: privateKey.publicKey)
    }

    /// An identity that presents `claimedPublicKey` while signing with another key: only
    /// for tests showing that an impostor is refused.
    init(impostor privateKey: SM2PrivateKey, claiming claimedPublicKey: SM2PublicKey) {
        self.privateKey = privateKey
        self.publicKey = claimedPublicKey
        self.id = NodeID(publicKey: claimedPublicKey)
    }
}

/// The nodes allowed to connect: validators and the read-only nodes they admitted, as named
/// in the network definition. Anyone else is refused during the handshake.
public struct Membership: Sendable {
    private var keys: [NodeID: SM2PublicKey]

    public init(_ publicKeys: [SM2PublicKey]) {
        var keys: [NodeID: SM2PublicKey] = [:]
        for key in publicKeys { keys[NodeID(publicKey: key)] = key }
        self.keys = keys
    }

    /// The member ids in ascending order.
    public var ids: [NodeID] { keys.keys.sorted() }
    public var count: Int { keys.count }

    public func contains(_ id: NodeID) -> Bool { keys[id] != nil }

    /// True when `key` is exactly the key registered for its id.
    public func contains(_ key: SM2PublicKey) -> Bool { keys[NodeID(publicKey: key)] == key }

    public func publicKey(for id: NodeID) -> SM2PublicKey? { keys[id] }
}
