import Foundation
import Testing
import QuarryCore
@testable import QuarryCrypto

@Suite struct SecretBoxTests {
    let fast = SecretBox.ScryptParameters(logN: 10, r: 8, p: 1)

    @Test func sealOpenRoundTrip() throws {
        let secret: [UInt8] = (0..<32).map { UInt8($0) }
        let sealed = try SecretBox.seal(secret, passphrase: "pw", associatedData: [1, 2], parameters: fast)
        #expect(sealed.ciphertext != secret)
        #expect(try SecretBox.open(sealed, passphrase: "pw", associatedData: [1, 2]) == secret)
    }

    @Test func wrongPassphraseOrAnyTamperingFails() throws {
        let secret: [UInt8] = Array(repeating: 7, count: 32)
        let sealed = try SecretBox.seal(secret, passphrase: "pw", associatedData: [1, 2], parameters: fast)
        #expect(throws: SecretBoxError.wrongPassphraseOrTampered) {
            _ = try SecretBox.open(sealed, passphrase: "pW", associatedData: [1, 2])
        }
        #expect(throws: SecretBoxError.wrongPassphraseOrTampered) {
            _ = try SecretBox.open(sealed, passphrase: "pw", associatedData: [1, 3])
        }
        for field in 0..<4 {
            var t = sealed
            switch field {
            case 0: t.ciphertext[0] ^= 1
            case 1: t.tag[15] ^= 0x80
            case 2: t.nonce[0] ^= 1
            default: t.salt[0] ^= 1
            }
            #expect(throws: SecretBoxError.wrongPassphraseOrTampered) {
                _ = try SecretBox.open(t, passphrase: "pw", associatedData: [1, 2])
            }
        }
    }

    @Test func hostileParametersAreRefused() throws {
        var sealed = try SecretBox.seal([1], passphrase: "pw", associatedData: [], parameters: fast)
        sealed.parameters.logN = 40
        #expect(throws: SecretBoxError.parametersOutOfRange) {
            _ = try SecretBox.open(sealed, passphrase: "pw", associatedData: [])
        }
        sealed.parameters = fast
        sealed.tag = [1]
        #expect(throws: SecretBoxError.malformed) { _ = try SecretBox.open(sealed, passphrase: "pw", associatedData: []) }
    }
}

@Suite struct KeystoreTests {
    func tempStore() -> (Keystore, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-keystore-\(UUID().uuidString)")
        return (Keystore(directory: dir), dir)
    }

    @Test(arguments: SignatureScheme.allCases)
    func encryptedKeysRoundTrip(scheme: SignatureScheme) throws {
        let (store, dir) = tempStore()
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = SigningKey(scheme: scheme)
        let info = try store.save(key, name: "k", passphrase: "secret", parameters: .init(logN: 10))
        #expect(info.encrypted)
        #expect(info.address == key.address)
        let loaded = try store.load(name: "k", passphrase: "secret")
        #expect(loaded.publicKeyBytes == key.publicKeyBytes)
        #expect(throws: SecretBoxError.wrongPassphraseOrTampered) { _ = try store.load(name: "k", passphrase: "nope") }
        #expect(throws: KeystoreError.passphraseRequired("k")) { _ = try store.load(name: "k", passphrase: nil) }
        let text = try String(contentsOf: dir.appendingPathComponent("k.json"), encoding: .utf8)
        #expect(!text.contains(Hex.encode(key.rawRepresentation)))
    }

    @Test func editedHeaderNoLongerOpens() throws {
        let (store, dir) = tempStore()
        defer { try? FileManager.default.removeItem(at: dir) }
        try store.save(SigningKey(scheme: .sm2), name: "a", passphrase: "pw", parameters: .init(logN: 10))
        try store.save(SigningKey(scheme: .sm2), name: "b", passphrase: "pw", parameters: .init(logN: 10))
        // Splice b's public key and address into a's file: the header no longer matches the ciphertext.
        let url = dir.appendingPathComponent("a.json")
        var a = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let b = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("b.json"))) as! [String: Any]
        a["publicKey"] = b["publicKey"]
        a["address"] = b["address"]
        try JSONSerialization.data(withJSONObject: a).write(to: url)
        #expect(throws: SecretBoxError.wrongPassphraseOrTampered) { _ = try store.load(name: "a", passphrase: "pw") }
    }

    @Test func plaintextKeysAndListing() throws {
        let (store, dir) = tempStore()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try store.list().isEmpty)
        try store.save(SigningKey(scheme: .secp256k1), name: "z-dev", passphrase: nil)
        try store.save(SigningKey(scheme: .sm2), name: "a-val", passphrase: "pw", parameters: .init(logN: 10))
        let names = try store.list().map(\.name)
        #expect(names == ["a-val", "z-dev"])
        #expect(try store.info(name: "z-dev").encrypted == false)
        _ = try store.load(name: "z-dev", passphrase: nil)
        #expect(throws: KeystoreError.exists("z-dev")) { try store.save(SigningKey(scheme: .sm2), name: "z-dev", passphrase: nil) }
    }

    @Test(arguments: ["", ".hidden", "a/b", "../x", String(repeating: "n", count: 65), "sp ace", "é"])
    func badNamesAreRefused(name: String) {
        #expect(throws: KeystoreError.invalidName(name)) { try Keystore.validate(name: name) }
    }

    @Test func garbageFilesAreReportedNotCrashed() throws {
        let (store, dir) = tempStore()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data("{not json".utf8).write(to: dir.appendingPathComponent("junk.json"))
        #expect(throws: KeystoreError.self) { _ = try store.info(name: "junk") }
        #expect(throws: KeystoreError.notFound("absent")) { _ = try store.info(name: "absent") }
    }
}
