import NIOCore
import QuarryCore
import QuarryCrypto
import Testing
@testable import QuarryNetwork

/// Keys shared by the tests of this target: three members and one outsider.
enum TestKeys {
    static let members: [SM2PrivateKey] = (0..<3).map { _ in SM2PrivateKey() }
    static let outsider = SM2PrivateKey()
    static let membership = Membership(members.map(\.publicKey))
    static let chainID = "quarry-test-1"

    static func config(_ identity: NodeIdentity, chainID: String = chainID, payloadMax: Int = 1 << 16)
        -> ConnectionStateMachine.Configuration {
        .init(identity: identity, membership: membership, chainID: chainID, framePayloadBytesMax: payloadMax)
    }

    static func machine(_ role: ConnectionStateMachine.Role, _ identity: NodeIdentity,
                        chainID: String = chainID, expected: NodeID? = nil, payloadMax: Int = 1 << 16)
        -> ConnectionStateMachine {
        var nonce = [UInt8](repeating: 0, count: 32)
        for i in nonce.indices { nonce[i] = .random(in: 0...255) }
        return ConnectionStateMachine(role: role, configuration: config(identity, chainID: chainID, payloadMax: payloadMax),
                                      ephemeral: X25519PrivateKey(), nonce: nonce, expectedPeer: expected)
    }
}

/// Moves bytes between two state machines until neither has anything to say.
struct Pair {
    var initiator: ConnectionStateMachine
    var responder: ConnectionStateMachine
    var initiatorEvents: [ConnectionStateMachine.Action] = []
    var responderEvents: [ConnectionStateMachine.Action] = []
    /// Everything the initiator wrote, frame group by frame group.
    var initiatorWrites: [[UInt8]] = []

    mutating func run() {
        var toResponder = writes(initiator.start(), into: &initiatorEvents)
        initiatorWrites += toResponder
        var toInitiator: [[UInt8]] = []
        var rounds = 0
        while (!toResponder.isEmpty || !toInitiator.isEmpty) && rounds < 10 {
            rounds += 1
            for bytes in toResponder {
                var b = ByteBuffer(bytes: bytes)
                toInitiator += writes(responder.receive(&b), into: &responderEvents)
            }
            toResponder = []
            for bytes in toInitiator {
                var b = ByteBuffer(bytes: bytes)
                let w = writes(initiator.receive(&b), into: &initiatorEvents)
                initiatorWrites += w
                toResponder += w
            }
            toInitiator = []
        }
    }

    private func writes(_ actions: [ConnectionStateMachine.Action], into events: inout [ConnectionStateMachine.Action]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        for a in actions {
            if case .write(let bytes) = a { out.append(bytes) } else { events.append(a) }
        }
        return out
    }
}

func closeCode(_ events: [ConnectionStateMachine.Action]) -> String? {
    for e in events { if case .close(let error) = e { return error.code } }
    return nil
}

func establishedPeer(_ events: [ConnectionStateMachine.Action]) -> NodeID? {
    for e in events { if case .established(let p) = e { return p.id } }
    return nil
}

@Suite struct HandshakeTests {
    let a = NodeIdentity(privateKey: TestKeys.members[0])
    let b = NodeIdentity(privateKey: TestKeys.members[1])

    @Test func nodeIDIsTheAddressDigestOfTheNodeKey() throws {
        let key = TestKeys.members[0].publicKey
        let id = NodeID(publicKey: key)
        let address = Address(publicKey: try PublicKeyBytes(scheme: .sm2, bytes: key.rawRepresentation))
        #expect(id.bytes == Array(address.bytes[1...]))
        #expect(try NodeID(hex: id.hex) == id)
        #expect(throws: P2PError.self) { try NodeID(hex: "abcd") }
        #expect(TestKeys.membership.contains(id))
        #expect(!TestKeys.membership.contains(NodeID(publicKey: TestKeys.outsider.publicKey)))
    }

    /// The example of docs/spec/p2p.md section 3.1.
    @Test func helloEncodingMatchesTheSpecExample() throws {
        let hello = Hello(version: 1, role: .initiator, chainID: "quarry-test-1",
                          ephemeralPublicKey: [UInt8](repeating: 0x11, count: 32), nonce: [UInt8](repeating: 0x22, count: 32))
        let body = hello.encoded()
        let frame = Wire.lengthPrefix(body.count) + body
        #expect(Hex.encode(frame) == "00000055" + "51525950" + "0001" + "01" + "0d" + "7175617272792d746573742d31"
                + String(repeating: "11", count: 32) + String(repeating: "22", count: 32))
        #expect(try Hello.decode(body) == hello)
    }

    @Test func peerAddressesParseAndPrint() throws {
        let id = NodeID(publicKey: TestKeys.members[0].publicKey)
        let a = try PeerAddress(parsing: "127.0.0.1:26656")
        #expect(a == PeerAddress(host: "127.0.0.1", port: 26656))
        let b = try PeerAddress(parsing: "\(id.hex)@node-1.example:7000")
        #expect(b == PeerAddress(host: "node-1.example", port: 7000, nodeID: id))
        let c = try PeerAddress(parsing: "[::1]:9")
        #expect(c.host == "::1" && c.port == 9)
        for p in [a, b, c] { #expect(try PeerAddress(parsing: p.description) == p) }
        for bad in ["", "host", "host:", ":80", "host:0", "host:70000", "a:b:1", "zz@host:1", "[::1]9", "h:1x"] {
            #expect(throws: P2PError.self, "\(bad)") { try PeerAddress(parsing: bad) }
        }
    }

    @Test func membersAuthenticateAndExchangeFramesBothWays() throws {
        var pair = Pair(initiator: TestKeys.machine(.initiator, a, expected: b.id),
                        responder: TestKeys.machine(.responder, b))
        pair.run()
        #expect(establishedPeer(pair.initiatorEvents) == b.id)
        #expect(establishedPeer(pair.responderEvents) == a.id)
        #expect(pair.initiator.isEstablished && pair.responder.isEstablished)

        for (i, channel) in [P2PChannel.consensus, .transactions, .blockSync].enumerated() {
            let payload = [UInt8](repeating: UInt8(i), count: 100 * i)
            var frame = ByteBuffer(bytes: try pair.initiator.seal(channel: channel, payload: payload))
            #expect(pair.responder.receive(&frame) == [.deliver(channel, payload)])
            var back = ByteBuffer(bytes: try pair.responder.seal(channel: channel, payload: payload + [1]))
            #expect(pair.initiator.receive(&back) == [.deliver(channel, payload + [1])])
        }
        // Several frames in one read, and one frame split across reads.
        let f1 = try pair.initiator.seal(channel: .consensus, payload: [1])
        let f2 = try pair.initiator.seal(channel: .consensus, payload: [2, 2])
        let joined = f1 + f2
        var part1 = ByteBuffer(bytes: joined[0..<7])
        var part2 = ByteBuffer(bytes: joined[7...])
        #expect(pair.responder.receive(&part1) == [])
        #expect(pair.responder.receive(&part2) == [.deliver(.consensus, [1]), .deliver(.consensus, [2, 2])])
        // Pings are answered by the transport and not delivered.
        var ping = ByteBuffer(bytes: try pair.initiator.seal(channel: .control, payload: ControlMessage.ping(9).encoded()))
        let replies = pair.responder.receive(&ping)
        guard case .reply(let pong)? = replies.first else { Issue.record("no pong"); return }
        var pongBuffer = ByteBuffer(bytes: pong)
        #expect(pair.initiator.receive(&pongBuffer) == [.pong(9)])
    }

    @Test func refusesANodeOutsideTheMembership() {
        let outsider = NodeIdentity(privateKey: TestKeys.outsider)
        var pair = Pair(initiator: TestKeys.machine(.initiator, outsider), responder: TestKeys.machine(.responder, b))
        pair.run()
        #expect(closeCode(pair.responderEvents) == "p2p.unknown_node")
        #expect(establishedPeer(pair.responderEvents) == nil)
        // And an outsider answering a dial is refused by the initiator.
        var reverse = Pair(initiator: TestKeys.machine(.initiator, a), responder: TestKeys.machine(.responder, outsider))
        reverse.run()
        #expect(closeCode(reverse.initiatorEvents) == "p2p.unknown_node")
        #expect(establishedPeer(reverse.initiatorEvents) == nil)
    }

    @Test func refusesAnImpostorPresentingAMembersKey() {
        // Signs with the outsider's key but presents member b's public key.
        let impostor = NodeIdentity(impostor: TestKeys.outsider, claiming: TestKeys.members[1].publicKey)
        var pair = Pair(initiator: TestKeys.machine(.initiator, impostor), responder: TestKeys.machine(.responder, a))
        pair.run()
        #expect(closeCode(pair.responderEvents) == "p2p.bad_signature")
        var reverse = Pair(initiator: TestKeys.machine(.initiator, a), responder: TestKeys.machine(.responder, impostor))
        reverse.run()
        #expect(closeCode(reverse.initiatorEvents) == "p2p.bad_signature")
    }

    @Test func refusesSelfConnectionWrongChainAndUnexpectedPeer() {
        var selfPair = Pair(initiator: TestKeys.machine(.initiator, a), responder: TestKeys.machine(.responder, a))
        selfPair.run()
        #expect(closeCode(selfPair.initiatorEvents) == "p2p.self_connection")

        var chain = Pair(initiator: TestKeys.machine(.initiator, a, chainID: "other-chain"),
                         responder: TestKeys.machine(.responder, b))
        chain.run()
        #expect(closeCode(chain.responderEvents) == "p2p.chain_mismatch")

        let c = NodeIdentity(privateKey: TestKeys.members[2])
        var unexpected = Pair(initiator: TestKeys.machine(.initiator, a, expected: c.id),
                              responder: TestKeys.machine(.responder, b))
        unexpected.run()
        #expect(closeCode(unexpected.initiatorEvents) == "p2p.unexpected_peer")
    }

    @Test func refusesAnotherVersionAndBadMagic() throws {
        var responder = TestKeys.machine(.responder, b)
        var hello = Hello(version: 2, role: .initiator, chainID: TestKeys.chainID,
                          ephemeralPublicKey: X25519PrivateKey().publicKeyBytes, nonce: [UInt8](repeating: 1, count: 32))
        var body = hello.encoded()
        var frame = ByteBuffer(bytes: Wire.lengthPrefix(body.count) + body)
        #expect(closeCode(responder.receive(&frame)) == "p2p.version_mismatch")

        var responder2 = TestKeys.machine(.responder, b)
        hello.version = 1
        body = hello.encoded()
        body[0] = UInt8(ascii: "X")
        frame = ByteBuffer(bytes: Wire.lengthPrefix(body.count) + body)
        #expect(closeCode(responder2.receive(&frame)) == "p2p.bad_magic")

        var responder3 = TestKeys.machine(.responder, b)
        body = hello.encoded() + [0]
        frame = ByteBuffer(bytes: Wire.lengthPrefix(body.count) + body)
        #expect(closeCode(responder3.receive(&frame)) == "p2p.malformed_frame")

        var responder4 = TestKeys.machine(.responder, b)
        hello.role = .responder
        body = hello.encoded()
        frame = ByteBuffer(bytes: Wire.lengthPrefix(body.count) + body)
        #expect(closeCode(responder4.receive(&frame)) == "p2p.bad_role")
    }

    @Test func aReplayedHandshakeFails() {
        // Record an initiator's side of a complete, successful session.
        var recorded = Pair(initiator: TestKeys.machine(.initiator, a), responder: TestKeys.machine(.responder, b))
        recorded.run()
        #expect(recorded.responder.isEstablished)
        #expect(recorded.initiatorWrites.count == 2)  // hello, then auth

        // Replay it to a fresh responder: its new ephemeral key changes the handshake keys.
        var fresh = TestKeys.machine(.responder, b)
        var hello = ByteBuffer(bytes: recorded.initiatorWrites[0])
        let answer = fresh.receive(&hello)
        #expect(answer.count == 1)  // its own hello and auth
        var auth = ByteBuffer(bytes: recorded.initiatorWrites[1])
        let actions = fresh.receive(&auth)
        #expect(closeCode(actions) == "p2p.authentication_failed")
        #expect(!fresh.isEstablished)
    }

    @Test func oversizedMalformedAndForgedFramesClose() throws {
        func established() -> Pair {
            var pair = Pair(initiator: TestKeys.machine(.initiator, a, payloadMax: 1000),
                            responder: TestKeys.machine(.responder, b, payloadMax: 1000))
            pair.run()
            return pair
        }
        // A length over the limit closes at once, before the body arrives.
        var p1 = established()
        var big = ByteBuffer(bytes: Wire.lengthPrefix(1000 + 17 + 1))
        #expect(closeCode(p1.responder.receive(&big)) == "p2p.frame_too_large")
        #expect(p1.responder.isClosed)
        #expect(throws: P2PError.self) { try p1.initiator.seal(channel: .consensus, payload: [UInt8](repeating: 0, count: 1001)) }
        // The largest allowed payload passes.
        var p2 = established()
        let max = [UInt8](repeating: 3, count: 1000)
        var ok = ByteBuffer(bytes: try p2.initiator.seal(channel: .blockSync, payload: max))
        #expect(p2.responder.receive(&ok) == [.deliver(.blockSync, max)])
        // Too short to hold a channel byte and a tag.
        var short = ByteBuffer(bytes: Wire.lengthPrefix(3) + [1, 2, 3])
        #expect(closeCode(p2.responder.receive(&short)) == "p2p.malformed_frame")
        // A flipped bit fails authentication.
        var p3 = established()
        var forged = try p3.initiator.seal(channel: .consensus, payload: [1, 2, 3])
        forged[6] ^= 0x40
        var forgedBuffer = ByteBuffer(bytes: forged)
        #expect(closeCode(p3.responder.receive(&forgedBuffer)) == "p2p.authentication_failed")
        // A replayed (valid, earlier) frame fails: the counter moved on.
        var p4 = established()
        let frame = try p4.initiator.seal(channel: .consensus, payload: [7])
        var once = ByteBuffer(bytes: frame)
        #expect(p4.responder.receive(&once) == [.deliver(.consensus, [7])])
        var twice = ByteBuffer(bytes: frame)
        #expect(closeCode(p4.responder.receive(&twice)) == "p2p.authentication_failed")
        // An authenticated frame on an unknown channel is malformed.
        var p5 = established()
        var unknown = ByteBuffer(bytes: try sealRaw(&p5.initiator, plaintext: [9, 1, 2]))
        #expect(closeCode(p5.responder.receive(&unknown)) == "p2p.malformed_frame")
        // Garbage in place of the hello.
        var r = TestKeys.machine(.responder, b)
        var garbage = ByteBuffer(bytes: Wire.lengthPrefix(5) + [1, 2, 3, 4, 5])
        #expect(closeCode(r.receive(&garbage)) == "p2p.bad_magic")
        var r2 = TestKeys.machine(.responder, b)
        var hugeHello = ByteBuffer(bytes: Wire.lengthPrefix(5000))
        #expect(closeCode(r2.receive(&hugeHello)) == "p2p.frame_too_large")
    }

    /// Seals a frame whose first plaintext byte is not a known channel: channel byte 9 is
    /// written through `.consensus` with the channel byte swapped before sealing.
    private func sealRaw(_ machine: inout ConnectionStateMachine, plaintext: [UInt8]) throws -> [UInt8] {
        try machine.sealForTesting(plaintext: plaintext)
    }
}
