import NIOCore
import QuarryCore
import QuarryCrypto

/// The peer at the other end of an authenticated connection.
public struct PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    public let id: NodeID
    public let publicKey: SM2PublicKey
    public var description: String { id.hex }
}

/// The handshake and framing of one connection as a pure state machine (no socket, no
/// clock, no randomness: the ephemeral key and nonce are passed in). The NIO handler feeds it
/// bytes and carries out the actions it returns.
struct ConnectionStateMachine {
    enum Role: Sendable { case initiator, responder }

    enum Action: Equatable {
        /// Write these bytes (complete frames) to the socket.
        case write([UInt8])
        /// A pong: write it if the socket keeps up, else it may be dropped (a peer flooding
        /// pings without reading must not grow our buffers).
        case reply([UInt8])
        /// The handshake succeeded; application frames may flow.
        case established(PeerIdentity)
        /// An authenticated application frame arrived.
        case deliver(P2PChannel, [UInt8])
        /// A pong arrived for the ping with this token.
        case pong(UInt64)
        /// Close the connection for this reason (after writing any preceding `.write`).
        case close(P2PError)
    }

    struct Configuration: Sendable {
        var identity: NodeIdentity
        var membership: Membership
        var chainID: String
        /// Largest application payload in one frame.
        var framePayloadBytesMax: Int
    }

    private enum State {
        case idle
        case awaitingHello
        case awaitingResponderAuth(Keys)
        case awaitingInitiatorAuth(Keys)
        case established(PeerIdentity)
        case closed
    }

    private struct Keys {
        var transcriptHash: [UInt8]
        var handshakeSend: ChaChaPoly
        var handshakeReceive: ChaChaPoly
        var dataSendKey: [UInt8]
        var dataReceiveKey: [UInt8]
    }

    let role: Role
    let configuration: Configuration
    /// When dialing a configured address whose node id is known, the only acceptable peer.
    let expectedPeer: NodeID?
    private let ephemeral: X25519PrivateKey
    private let ourHelloFrame: [UInt8]
    private var peerHelloFrame: [UInt8] = []
    private var state: State = .idle
    private var pending: ByteBuffer
    private var sendCipher: ChaChaPoly?
    private var receiveCipher: ChaChaPoly?
    private var sendCounter: UInt64 = 0
    private var receiveCounter: UInt64 = 0

    init(role: Role, configuration: Configuration, ephemeral: X25519PrivateKey, nonce: [UInt8],
         expectedPeer: NodeID? = nil) {
        precondition(nonce.count == Wire.nonceSize, "handshake nonce must be 32 bytes")
        precondition(configuration.chainID.utf8.count <= Wire.chainIDBytesMax, "chain id too long")
        self.role = role
        self.configuration = configuration
        self.expectedPeer = expectedPeer
        self.ephemeral = ephemeral
        let hello = Hello(version: Wire.version, role: role == .initiator ? .initiator : .responder,
                          chainID: configuration.chainID, ephemeralPublicKey: ephemeral.publicKeyBytes,
                          nonce: nonce)
        let body = hello.encoded()
        ourHelloFrame = Wire.lengthPrefix(body.count) + body
        pending = ByteBufferAllocator().buffer(capacity: 0)
    }

    var isEstablished: Bool { if case .established = state { true } else { false } }
    var isClosed: Bool { if case .closed = state { true } else { false } }
    var peer: PeerIdentity? { if case .established(let p) = state { p } else { nil } }

    /// The sealed frame length limit: payload + channel byte + tag.
    private var dataFrameBytesMax: Int { configuration.framePayloadBytesMax + 1 + ChaChaPoly.tagSize }

    /// Called once the connection is up. The initiator speaks first.
    mutating func start() -> [Action] {
        guard case .idle = state else { return [] }
        state = .awaitingHello
        return role == .initiator ? [.write(ourHelloFrame)] : []
    }

    /// Feeds received bytes; returns what to do, in order. After a `.close` nothing more is read.
    mutating func receive(_ bytes: inout ByteBuffer) -> [Action] {
        if case .closed = state { return [] }
        if case .idle = state { _ = start() }
        pending.writeBuffer(&bytes)
        var actions: [Action] = []
        while true {
            if case .closed = state { break }
            guard pending.readableBytes >= Wire.lengthPrefixSize,
                  let length = pending.getInteger(at: pending.readerIndex, as: UInt32.self) else { break }
            let limit = isEstablished ? dataFrameBytesMax : Wire.handshakeFrameBytesMax
            if Int(length) > limit {
                fail(.oversized(Int(length), limit: limit), into: &actions)
                break
            }
            guard pending.readableBytes >= Wire.lengthPrefixSize + Int(length) else { break }
            if isEstablished {
                let frame = pending.readSlice(length: Wire.lengthPrefixSize + Int(length))!
                let error = frame.withUnsafeReadableBytes { handleDataFrame($0, into: &actions) }
                if let error { fail(error, into: &actions) }
                continue
            }
            let frame = pending.readBytes(length: Wire.lengthPrefixSize + Int(length))!
            do {
                try handleFrame(frame, into: &actions)
            } catch {
                fail(error, into: &actions)
            }
        }
        pending.discardReadBytes()
        return actions
    }

    /// Seals one application (or control) frame. Only valid once established.
    mutating func seal(channel: P2PChannel, payload: [UInt8]) throws(P2PError) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: payload.count + 21)
        try seal(channel: channel, payload: payload, into: &buffer)
        return buffer.readBytes(length: buffer.readableBytes)!
    }

    /// Appends one sealed frame (length prefix included) to `buffer`.
    mutating func seal(channel: P2PChannel, payload: [UInt8], into buffer: inout ByteBuffer) throws(P2PError) {
        guard isEstablished else {
            throw P2PError("p2p.not_established", "the connection is not established")
        }
        guard payload.count <= configuration.framePayloadBytesMax else {
            throw P2PError.oversized(payload.count, limit: configuration.framePayloadBytesMax)
        }
        try sealFrame(header: channel.rawValue, payload: payload, into: &buffer)
    }

    /// Seals arbitrary plaintext (first byte a channel): tests use it to forge frames.
    mutating func sealForTesting(plaintext: [UInt8]) throws(P2PError) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: plaintext.count + 20)
        try sealFrame(header: plaintext[0], payload: Array(plaintext[1...]), into: &buffer)
        return buffer.readBytes(length: buffer.readableBytes)!
    }

    private mutating func sealFrame(header: UInt8, payload: [UInt8], into buffer: inout ByteBuffer) throws(P2PError) {
        guard let cipher = sendCipher else { throw P2PError("p2p.not_established", "the connection is not established") }
        guard sendCounter < UInt64.max else { throw P2PError("p2p.counter_exhausted", "send counter exhausted") }
        let bodyCount = 1 + payload.count + ChaChaPoly.tagSize
        var prefix = UInt32(bodyCount).bigEndian
        buffer.writeInteger(UInt32(bodyCount))
        let counter = sendCounter
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: bodyCount) { out in
            withUnsafeBytes(of: &prefix) { aad in
                payload.withUnsafeBytes { p in
                    cipher.sealFrame(header: header, payload: p, counter: counter, aad: aad,
                                     into: UnsafeMutableRawBufferPointer(rebasing: out[0..<bodyCount]))
                }
            }
            return bodyCount
        }
        sendCounter += 1
    }

    /// A close notice for the peer (sealed on the control channel), if established.
    mutating func closeNotice(_ reason: P2PError) -> [UInt8]? {
        guard isEstablished else { return nil }
        return try? seal(channel: .control, payload: ControlMessage.close(reason.code).encoded())
    }

    mutating func markClosed() { state = .closed }

    // MARK: - Frames

    private mutating func fail(_ error: P2PError, into actions: inout [Action]) {
        state = .closed
        actions.append(.close(error))
    }

    private mutating func handleFrame(_ frame: [UInt8], into actions: inout [Action]) throws(P2PError) {
        switch state {
        case .idle, .closed:
            return
        case .awaitingHello:
            try handleHello(frame, into: &actions)
        case .awaitingResponderAuth(let keys):
            let peer = try openAuth(frame, keys: keys, label: Wire.responderAuthLabel)
            let auth = try sealAuth(keys: keys, label: Wire.initiatorAuthLabel)
            establish(peer, keys: keys)
            actions.append(.write(auth))
            actions.append(.established(peer))
        case .awaitingInitiatorAuth(let keys):
            let peer = try openAuth(frame, keys: keys, label: Wire.initiatorAuthLabel)
            establish(peer, keys: keys)
            actions.append(.established(peer))
        case .established:
            if let error = frame.withUnsafeBytes({ handleDataFrame($0, into: &actions) }) { throw error }
        }
    }

    private mutating func handleHello(_ frame: [UInt8], into actions: inout [Action]) throws(P2PError) {
        let hello = try Hello.decode(Array(frame[Wire.lengthPrefixSize...]))
        let expectedRole: Hello.Role = role == .initiator ? .responder : .initiator
        guard hello.role == expectedRole else {
            throw P2PError("p2p.bad_role", "peer hello claims the role of \(hello.role), expected \(expectedRole)")
        }
        guard hello.chainID == configuration.chainID else {
            throw P2PError("p2p.chain_mismatch",
                           "peer is on chain \"\(hello.chainID)\", this node on \"\(configuration.chainID)\"")
        }
        peerHelloFrame = frame
        let shared = try ephemeral.sharedSecret(with: hello.ephemeralPublicKey)
        let initiatorHello = role == .initiator ? ourHelloFrame : peerHelloFrame
        let responderHello = role == .initiator ? peerHelloFrame : ourHelloFrame
        let th = SM3.hash(parts: [Wire.transcriptLabel, initiatorHello, responderHello]).bytes
        func key(_ label: [UInt8]) -> [UInt8] {
            HKDFSM3.derive(secret: shared, salt: th, info: label, count: ChaChaPoly.keySize)
        }
        let hsI2R = key(Wire.handshakeI2RLabel), hsR2I = key(Wire.handshakeR2ILabel)
        let dataI2R = key(Wire.dataI2RLabel), dataR2I = key(Wire.dataR2ILabel)
        let keys: Keys
        if role == .initiator {
            keys = Keys(transcriptHash: th,
                        handshakeSend: ChaChaPoly(key: hsI2R, encrypting: true),
                        handshakeReceive: ChaChaPoly(key: hsR2I, encrypting: false),
                        dataSendKey: dataI2R, dataReceiveKey: dataR2I)
            state = .awaitingResponderAuth(keys)
        } else {
            keys = Keys(transcriptHash: th,
                        handshakeSend: ChaChaPoly(key: hsR2I, encrypting: true),
                        handshakeReceive: ChaChaPoly(key: hsI2R, encrypting: false),
                        dataSendKey: dataR2I, dataReceiveKey: dataI2R)
            let auth = try sealAuth(keys: keys, label: Wire.responderAuthLabel)
            actions.append(.write(ourHelloFrame + auth))
            state = .awaitingInitiatorAuth(keys)
        }
    }

    /// Auth plaintext: static SM2 public key (65 bytes) || SM2 signature r||s (64 bytes) over
    /// label || transcript hash, sealed with the handshake key of this direction, counter 0.
    private func sealAuth(keys: Keys, label: [UInt8]) throws(P2PError) -> [UInt8] {
        let signature: SM2Signature
        do {
            signature = try configuration.identity.privateKey.signature(for: label + keys.transcriptHash)
        } catch {
            throw P2PError("p2p.signing_failed", "could not sign the handshake: \(error)")
        }
        let plaintext = configuration.identity.publicKey.rawRepresentation + signature.rawRepresentation
        let prefix = Wire.lengthPrefix(plaintext.count + ChaChaPoly.tagSize)
        return prefix + keys.handshakeSend.seal(plaintext, counter: 0, aad: prefix)
    }

    private func openAuth(_ frame: [UInt8], keys: Keys, label: [UInt8]) throws(P2PError) -> PeerIdentity {
        let prefix = Array(frame[0..<Wire.lengthPrefixSize])
        guard let plaintext = keys.handshakeReceive.open(Array(frame[Wire.lengthPrefixSize...]),
                                                         counter: 0, aad: prefix) else {
            throw P2PError("p2p.authentication_failed",
                           "handshake auth message failed decryption (replayed or tampered handshake)")
        }
        guard plaintext.count == SM2.publicKeySize + SM2.signatureSize else {
            throw P2PError.malformed("handshake auth message has \(plaintext.count) bytes, expected 129")
        }
        let keyBytes = Array(plaintext[0..<SM2.publicKeySize])
        guard let publicKey = try? SM2PublicKey(rawRepresentation: keyBytes),
              let signature = try? SM2Signature(rawRepresentation: Array(plaintext[SM2.publicKeySize...])) else {
            throw P2PError.malformed("handshake auth message has an invalid key or signature encoding")
        }
        let id = NodeID(publicKey: publicKey)
        if publicKey == configuration.identity.publicKey || id == configuration.identity.id {
            throw P2PError("p2p.self_connection", "the peer is this node itself")
        }
        guard configuration.membership.contains(publicKey) else {
            throw P2PError("p2p.unknown_node", "node \(id.hex) is not a member of this network")
        }
        if let expectedPeer, expectedPeer != id {
            throw P2PError("p2p.unexpected_peer", "dialed \(expectedPeer.hex) but \(id.hex) answered")
        }
        guard publicKey.isValidSignature(signature, for: label + keys.transcriptHash) else {
            throw P2PError("p2p.bad_signature", "node \(id.hex) did not prove it holds its node key")
        }
        return PeerIdentity(id: id, publicKey: publicKey)
    }

    private mutating func establish(_ peer: PeerIdentity, keys: Keys) {
        sendCipher = ChaChaPoly(key: keys.dataSendKey, encrypting: true)
        receiveCipher = ChaChaPoly(key: keys.dataReceiveKey, encrypting: false)
        state = .established(peer)
    }

    /// Handles one complete data frame (length prefix included); returns why to close, if so.
    private mutating func handleDataFrame(_ frame: UnsafeRawBufferPointer,
                                          into actions: inout [Action]) -> P2PError? {
        guard frame.count >= Wire.lengthPrefixSize + 1 + ChaChaPoly.tagSize else {
            return P2PError.malformed("data frame of \(frame.count - Wire.lengthPrefixSize) bytes is shorter than 17")
        }
        guard let cipher = receiveCipher else { preconditionFailure("established without keys") }
        guard let (header, payload) = cipher.openFrame(
            UnsafeRawBufferPointer(rebasing: frame[Wire.lengthPrefixSize...]), counter: receiveCounter,
            aad: UnsafeRawBufferPointer(rebasing: frame[0..<Wire.lengthPrefixSize])) else {
            return P2PError.authentication
        }
        receiveCounter += 1
        guard let channel = P2PChannel(rawValue: header) else {
            return P2PError.malformed("unknown channel \(header)")
        }
        if channel != .control {
            actions.append(.deliver(channel, payload))
            return nil
        }
        do {
            switch try ControlMessage.decode(payload) {
            case .ping(let token):
                actions.append(.reply(try seal(channel: .control, payload: ControlMessage.pong(token).encoded())))
            case .pong(let token):
                actions.append(.pong(token))
            case .close(let code):
                state = .closed
                if code == "p2p.duplicate_connection" {
                    actions.append(.close(P2PError(code, "the peer keeps another connection with this node")))
                } else {
                    actions.append(.close(P2PError("p2p.peer_closed", "the peer closed the connection: \(code)")))
                }
            }
        } catch {
            return error
        }
        return nil
    }
}

/// Messages on the control channel.
enum ControlMessage: Equatable {
    case ping(UInt64)
    case pong(UInt64)
    /// The sender is about to close; the string is its reason code (at most 128 bytes).
    case close(String)

    func encoded() -> [UInt8] {
        var e = CanonicalEncoder()
        switch self {
        case .ping(let t): e.u8(1); e.u64(t)
        case .pong(let t): e.u8(2); e.u64(t)
        case .close(let code): e.u8(3); e.string(String(code.utf8.prefix(128))!)
        }
        return e.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(P2PError) -> ControlMessage {
        do {
            var d = CanonicalDecoder(bytes)
            let message: ControlMessage
            switch try d.u8() {
            case 1: message = .ping(try d.u64())
            case 2: message = .pong(try d.u64())
            case 3: message = .close(try d.string(limit: 128, field: "control.close.code"))
            case let tag: throw P2PError.malformed("unknown control message \(tag)")
            }
            try d.finish()
            return message
        } catch let e as P2PError {
            throw e
        } catch {
            throw P2PError.malformed("control message: \(error)")
        }
    }
}
