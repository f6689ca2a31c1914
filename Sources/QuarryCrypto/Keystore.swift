import Foundation
import QuarryCore

/// A directory of key files, one JSON file per named key (`<name>.json`, mode 0600, in a
/// directory of mode 0700). Private keys are sealed with `SecretBox` (scrypt +
/// AES-256-GCM) under a passphrase; the public part (name, scheme, address, public key)
/// stays readable without it, and is bound to the ciphertext as associated data, so a
/// file whose header was edited no longer opens. Plain-text keys exist only when asked
/// for explicitly, for throwaway development networks, and are labelled as such.
/// The file format is specified in `docs/spec/keystore.md`.
public struct Keystore: Sendable {
    public let directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    /// What can be read from a key file without its passphrase.
    public struct KeyInfo: Sendable, Equatable {
        public let name: String
        public let scheme: SignatureScheme
        public let address: Address
        public let publicKey: PublicKeyBytes
        public let encrypted: Bool
    }

    /// Key names: 1 to 64 characters from `A-Z a-z 0-9 . _ -`, not starting with a dot.
    public static func validate(name: String) throws(KeystoreError) {
        let ok = !name.isEmpty && name.count <= 64 && !name.hasPrefix(".")
            && name.unicodeScalars.allSatisfy { c in
                (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "." || c == "_" || c == "-"
            }
        guard ok else { throw .invalidName(name) }
    }

    private func fileURL(_ name: String) -> URL { directory.appendingPathComponent("\(name).json") }

    /// Stores `key` under `name`. With a passphrase the private key is encrypted; with
    /// `nil` it is written in plain text and marked insecure. Never overwrites a key.
    @discardableResult
    public func save(_ key: SigningKey, name: String, passphrase: String?,
                     parameters: SecretBox.ScryptParameters = .init()) throws -> KeyInfo {
        try Keystore.validate(name: name)
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true,
                               attributes: [.posixPermissions: 0o700])
        let url = fileURL(name)
        guard !fm.fileExists(atPath: url.path) else { throw KeystoreError.exists(name) }
        let publicKey = key.publicKeyBytes
        var file = KeyFile(version: 1, name: name, scheme: publicKey.scheme.name, address: key.address.text,
                           publicKey: Hex.encode(publicKey.bytes), crypto: nil, insecurePlaintextPrivateKey: nil,
                           warning: nil)
        if let passphrase {
            let sealed = try SecretBox.seal(key.rawRepresentation, passphrase: passphrase,
                                            associatedData: file.associatedData, parameters: parameters)
            file.crypto = .init(kdf: "scrypt", logN: sealed.parameters.logN, r: sealed.parameters.r,
                                p: sealed.parameters.p, salt: Hex.encode(sealed.salt), cipher: "aes-256-gcm",
                                nonce: Hex.encode(sealed.nonce), ciphertext: Hex.encode(sealed.ciphertext),
                                tag: Hex.encode(sealed.tag))
        } else {
            file.insecurePlaintextPrivateKey = Hex.encode(key.rawRepresentation)
            file.warning = "UNSAFE: this private key is stored in plain text; use it only on a throwaway development network"
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(file)
        // Create with 0600 before writing the secret, never world-readable in between.
        guard fm.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw KeystoreError.io("cannot create \(url.path)")
        }
        let handle = try FileHandle(forWritingTo: url)
        try handle.write(contentsOf: data)
        try handle.synchronize()
        try handle.close()
        return try info(name: name)
    }

    /// Names and public parts of every key, sorted by name.
    public func list() throws -> [KeyInfo] {
        let fm = FileManager.default
        guard fm.fileExists(atPath: directory.path) else { return [] }
        return try fm.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }
            .sorted()
            .map { try info(name: String($0.dropLast(5))) }
    }

    public func info(name: String) throws -> KeyInfo {
        try readFile(name).info()
    }

    /// Loads the private key. A passphrase is required for an encrypted file.
    public func load(name: String, passphrase: String?) throws -> SigningKey {
        let file = try readFile(name)
        let info = try file.info()
        let raw: [UInt8]
        if let c = file.crypto {
            guard let passphrase else { throw KeystoreError.passphraseRequired(name) }
            guard c.kdf == "scrypt", c.cipher == "aes-256-gcm" else { throw KeystoreError.malformed(name, "unsupported kdf or cipher") }
            let sealed = SecretBox.Sealed(parameters: .init(logN: c.logN, r: c.r, p: c.p),
                                          salt: try Hex.decode(c.salt), nonce: try Hex.decode(c.nonce),
                                          ciphertext: try Hex.decode(c.ciphertext), tag: try Hex.decode(c.tag))
            raw = try SecretBox.open(sealed, passphrase: passphrase, associatedData: file.associatedData)
        } else if let plain = file.insecurePlaintextPrivateKey {
            raw = try Hex.decode(plain)
        } else {
            throw KeystoreError.malformed(name, "neither an encrypted nor a plain-text private key")
        }
        let key = try SigningKey(scheme: info.scheme, rawRepresentation: raw)
        guard key.publicKeyBytes == info.publicKey else {
            throw KeystoreError.malformed(name, "the private key does not match the recorded public key")
        }
        return key
    }

    private func readFile(_ name: String) throws -> KeyFile {
        try Keystore.validate(name: name)
        let url = fileURL(name)
        guard FileManager.default.fileExists(atPath: url.path) else { throw KeystoreError.notFound(name) }
        let data = try Data(contentsOf: url)
        guard data.count <= 64 * 1024 else { throw KeystoreError.malformed(name, "file larger than 64 KiB") }
        do {
            return try JSONDecoder().decode(KeyFile.self, from: data)
        } catch {
            throw KeystoreError.malformed(name, "not a Quarry key file (\(error))")
        }
    }
}

/// The on-disk JSON layout (see docs/spec/keystore.md).
struct KeyFile: Codable {
    struct Crypto: Codable {
        var kdf: String
        var logN: UInt8
        var r: UInt32
        var p: UInt32
        var salt: String
        var cipher: String
        var nonce: String
        var ciphertext: String
        var tag: String
    }

    var version: Int
    var name: String
    var scheme: String
    var address: String
    var publicKey: String
    var crypto: Crypto?
    var insecurePlaintextPrivateKey: String?
    var warning: String?

    /// The header bound to the ciphertext: "quarry-keystore-v1" then name, scheme and
    /// public key in canonical encoding.
    var associatedData: [UInt8] {
        var e = CanonicalEncoder()
        e.string("quarry-keystore-v1")
        e.string(name)
        e.string(scheme)
        e.string(publicKey)
        return e.bytes
    }

    func info() throws -> Keystore.KeyInfo {
        guard version == 1 else { throw KeystoreError.malformed(name, "unsupported version \(version)") }
        guard let s = SignatureScheme(name: scheme) else { throw KeystoreError.malformed(name, "unknown scheme \(scheme)") }
        let pk = try PublicKeyBytes(scheme: s, bytes: Hex.decode(publicKey))
        let address = try Address(text: self.address)
        guard address == Address(publicKey: pk) else {
            throw KeystoreError.malformed(name, "the address does not match the public key")
        }
        return .init(name: name, scheme: s, address: address, publicKey: pk, encrypted: crypto != nil)
    }
}

public enum KeystoreError: QuarryError, Equatable {
    case invalidName(String)
    case exists(String)
    case notFound(String)
    case passphraseRequired(String)
    case malformed(String, String)
    case io(String)

    public var code: String {
        switch self {
        case .invalidName: return "keystore.invalid_name"
        case .exists: return "keystore.exists"
        case .notFound: return "keystore.not_found"
        case .passphraseRequired: return "keystore.passphrase_required"
        case .malformed: return "keystore.malformed"
        case .io: return "keystore.io"
        }
    }

    public var description: String {
        switch self {
        case .invalidName(let n):
            return "invalid key name '\(n)': use 1-64 characters from A-Z a-z 0-9 . _ - (not starting with '.')"
        case .exists(let n): return "a key named '\(n)' already exists; choose another name"
        case .notFound(let n): return "no key named '\(n)' in the keystore"
        case .passphraseRequired(let n): return "key '\(n)' is encrypted: give its passphrase"
        case .malformed(let n, let why): return "key file '\(n)' is unusable: \(why)"
        case .io(let why): return "keystore: \(why)"
        }
    }
}
