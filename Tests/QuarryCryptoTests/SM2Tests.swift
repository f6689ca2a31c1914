import Testing
import COpenSSL
import QuarryCore
@testable import QuarryCrypto

/// GB/T 32918.5-2017 Annex A (also GM/T 0003.5-2012 A.2): signature example on the
/// recommended curve sm2p256v1, message "message digest", ID "1234567812345678".
enum GBT32918Example {
    static let privateKey = bytes("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
    static let publicKey = bytes("04" + "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
                                      + "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
    static let message = Array("message digest".utf8)
    static let z = "b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3"
    static let e = "f0b43e94ba45acca ace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640".replacingSpaces()
    static let k = bytes("59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21")
    static let r = "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3"
    static let s = "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa"
}

extension String {
    func replacingSpaces() -> String { String(filter { $0 != " " }) }
}

/// Verifies with OpenSSL's own SM2 digest-verify path (OpenSSL computes Z from the ID),
/// independently of Quarry's Z computation: a fresh EVP_MD_CTX and EVP_PKEY_CTX per call.
func opensslDigestVerify(_ key: SM2PublicKey, der: [UInt8], message: [UInt8], id: [UInt8]) -> Bool {
    guard let pctx = EVP_PKEY_CTX_new_from_pkey(nil, key.key.pointer, nil), let mctx = EVP_MD_CTX_new() else { return false }
    defer { EVP_MD_CTX_free(mctx); EVP_PKEY_CTX_free(pctx) }
    guard id.withUnsafeBufferPointer({ EVP_PKEY_CTX_set1_id(pctx, $0.baseAddress, Int32($0.count)) }) == 1 else { return false }
    EVP_MD_CTX_set_pkey_ctx(mctx, pctx)
    guard EVP_DigestVerifyInit(mctx, nil, EVP_sm3(), nil, key.key.pointer) == 1 else { return false }
    let rc = der.withUnsafeBufferPointer { sig in
        message.withUnsafeBufferPointer { EVP_DigestVerify(mctx, sig.baseAddress, sig.count, $0.baseAddress, $0.count) }
    }
    ERR_clear_error()
    return rc == 1
}

@Suite struct SM2Tests {
    @Test func curveConstantsMatchOpenSSL() {
        let group = SM2.group.pointer
        let p = OpenSSLNumber(), a = OpenSSLNumber(), b = OpenSSLNumber(), order = OpenSSLNumber()
        #expect(EC_GROUP_get_curve(group, p.pointer, a.pointer, b.pointer, nil) == 1)
        #expect(EC_GROUP_get_order(group, order.pointer, nil) == 1)
        #expect(p.bytes() == SM2.p)
        #expect(a.bytes() == SM2.a)
        #expect(b.bytes() == SM2.b)
        #expect(order.bytes() == SM2.n)
        let generator = SM2.publicPoint(privateScalar: add([UInt8](repeating: 0, count: 32), 1))
        #expect(generator == [4] + SM2.gx + SM2.gy)
    }

    @Test func standardExampleKeyAndUserValue() throws {
        let key = try SM2PrivateKey(rawRepresentation: GBT32918Example.privateKey)
        #expect(key.publicKey.rawRepresentation == GBT32918Example.publicKey)
        let z = try SM2.userValue(publicKey: key.publicKey)
        #expect(z.hex == GBT32918Example.z)
        #expect(SM2.messageDigest(z: z, message: GBT32918Example.message).hex == GBT32918Example.e)
    }

    @Test func standardExampleSignatureWithFixedNonce() throws {
        let key = try SM2PrivateKey(rawRepresentation: GBT32918Example.privateKey)
        let sig = try key.signatureWithFixedNonce(GBT32918Example.k, for: GBT32918Example.message)
        #expect(hexOf(sig.rawRepresentation) == GBT32918Example.r + GBT32918Example.s)
    }

    @Test(arguments: SM2VerificationEngine.allCases)
    func standardExampleSignatureVerifies(engine: SM2VerificationEngine) throws {
        let publicKey = try SM2PublicKey(rawRepresentation: GBT32918Example.publicKey, engine: engine)
        let sig = try SM2Signature(rawRepresentation: bytes(GBT32918Example.r + GBT32918Example.s))
        #expect(publicKey.isValidSignature(sig, for: GBT32918Example.message, engine: engine))
        #expect(!publicKey.isValidSignature(sig, for: Array("message digesT".utf8), engine: engine))
        #expect(!publicKey.isValidSignature(sig, for: GBT32918Example.message, id: Array("1234567812345679".utf8), engine: engine))
        #expect(publicKey.isValidSignature(sig, for: GBT32918Example.message))  // the process-wide engine
        #expect(opensslDigestVerify(publicKey, der: sig.derRepresentation, message: GBT32918Example.message, id: SM2.defaultID))
        let generic = try PublicKeyBytes(scheme: .sm2, bytes: GBT32918Example.publicKey)
        #expect(SignatureVerification.isValid(signature: sig.rawRepresentation, message: GBT32918Example.message, publicKey: generic))
    }

    @Test(arguments: SM2VerificationEngine.allCases)
    func signAndVerifyRoundTrip(engine: SM2VerificationEngine) throws {
        let key = SM2PrivateKey()
        for length in [0, 1, 32, 1000] {
            let message = (0..<length).map { UInt8(truncatingIfNeeded: $0) }
            let sig = try key.signature(for: message)
            #expect(key.publicKey.isValidSignature(sig, for: message, engine: engine))
            // OpenSSL's own SM2 digest-verify agrees, so Quarry's Z is the standard one.
            #expect(opensslDigestVerify(key.publicKey, der: sig.derRepresentation, message: message, id: SM2.defaultID))
            #expect(!opensslDigestVerify(key.publicKey, der: sig.derRepresentation, message: message, id: []))
        }
        // Random nonces: two signatures of one message differ, both valid.
        let a = try key.signature(for: [1, 2, 3]), b = try key.signature(for: [1, 2, 3])
        #expect(a != b)
        #expect(key.publicKey.isValidSignature(b, for: [1, 2, 3], engine: engine))
    }

    @Test(arguments: SM2VerificationEngine.allCases)
    func customIdentifier(engine: SM2VerificationEngine) throws {
        let key = SM2PrivateKey()
        let id = Array("ALICE123@YAHOO.COM".utf8)
        let sig = try key.signature(for: [9, 9], id: id)
        #expect(key.publicKey.isValidSignature(sig, for: [9, 9], id: id, engine: engine))
        #expect(!key.publicKey.isValidSignature(sig, for: [9, 9], engine: engine))
        #expect(opensslDigestVerify(key.publicKey, der: sig.derRepresentation, message: [9, 9], id: id))
        let empty = try key.signature(for: [9, 9], id: [])
        #expect(key.publicKey.isValidSignature(empty, for: [9, 9], id: [], engine: engine))
        #expect(opensslDigestVerify(key.publicKey, der: empty.derRepresentation, message: [9, 9], id: []))
        let tooLong = [UInt8](repeating: 0x41, count: SM2.maximumIDBytes + 1)
        #expect(throws: CryptoError.identifierTooLong(bytes: SM2.maximumIDBytes + 1)) { try key.signature(for: [1], id: tooLong) }
        #expect(!key.publicKey.isValidSignature(empty, for: [9, 9], id: tooLong, engine: engine))
        let longest = [UInt8](repeating: 0x41, count: SM2.maximumIDBytes)
        let long = try key.signature(for: [1], id: longest)
        #expect(key.publicKey.isValidSignature(long, for: [1], id: longest, engine: engine))
    }

    @Test func keyEncodingsRoundTrip() throws {
        let key = SM2PrivateKey()
        #expect(try SM2PrivateKey(rawRepresentation: key.rawRepresentation).publicKey == key.publicKey)
        let der = key.derRepresentation
        #expect(try SM2PrivateKey(derRepresentation: der).rawRepresentation == key.rawRepresentation)
        let pem = key.pemRepresentation
        #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(try SM2PrivateKey(pemRepresentation: pem).rawRepresentation == key.rawRepresentation)

        let pub = key.publicKey
        #expect(try SM2PublicKey(rawRepresentation: pub.rawRepresentation) == pub)
        #expect(try SM2PublicKey(derRepresentation: pub.derRepresentation) == pub)
        #expect(pub.pemRepresentation.hasPrefix("-----BEGIN PUBLIC KEY-----"))
        #expect(try SM2PublicKey(pemRepresentation: pub.pemRepresentation) == pub)
        // SubjectPublicKeyInfo names id-ecPublicKey and the SM2 curve OID 1.2.156.10197.1.301.
        let spki = pub.derRepresentation
        #expect(spki.count == 91)
        #expect(hexOf(Array(spki[2..<26])) == "301306072a8648ce3d020106082a811ccf5501822d034200")
        #expect(Array(spki.suffix(65)) == pub.rawRepresentation)
    }

    @Test func signatureEncodingsRoundTrip() throws {
        let sig = try SM2PrivateKey().signature(for: [7])
        #expect(try SM2Signature(derRepresentation: sig.derRepresentation) == sig)
        #expect(try SM2Signature(rawRepresentation: sig.rawRepresentation) == sig)
        // Small values get minimal DER: r = 1, s = 0x80 needs a zero pad.
        let small = try SM2Signature(rawRepresentation: add([UInt8](repeating: 0, count: 32), 1) + add([UInt8](repeating: 0, count: 32), 0x80))
        #expect(small.derRepresentation == [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80])
        #expect(try SM2Signature(derRepresentation: small.derRepresentation) == small)
    }
}
