import ArgumentParser
import Foundation
import QuarryCore
import QuarryCrypto

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create, list, show and use the keys in the keystore (<home>/keys).",
        discussion: """
            Private keys are encrypted with a passphrase (scrypt + AES-256-GCM). For scripts and \
            services give it with --passphrase-file FILE or the QUARRY_PASSPHRASE environment \
            variable; otherwise it is asked for on the terminal.
            """,
        subcommands: [NewKey.self, ListKeys.self, ShowKey.self, SignMessage.self, VerifySignature.self])
}

/// Where a passphrase comes from, in order: --passphrase-file, $QUARRY_PASSPHRASE, the terminal.
struct PassphraseOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Read the passphrase from the first line of this file.", valueName: "file"))
    var passphraseFile: String?

    func passphrase(confirm: Bool) throws -> String {
        if let passphraseFile {
            guard let text = try? String(contentsOfFile: passphraseFile, encoding: .utf8) else {
                throw CLIError("cannot read passphrase file '\(passphraseFile)'")
            }
            let line = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
            guard !line.isEmpty else { throw CLIError("passphrase file '\(passphraseFile)' is empty") }
            return line
        }
        if let env = ProcessInfo.processInfo.environment["QUARRY_PASSPHRASE"], !env.isEmpty { return env }
        guard isatty(STDIN_FILENO) == 1 else {
            throw CLIError("no passphrase: give --passphrase-file FILE or set QUARRY_PASSPHRASE")
        }
        let first = try readHidden("Passphrase: ")
        guard !first.isEmpty else { throw CLIError("empty passphrase") }
        if confirm {
            guard try readHidden("Repeat passphrase: ") == first else { throw CLIError("the passphrases differ") }
        }
        return first
    }

    private func readHidden(_ prompt: String) throws -> String {
        FileHandle.standardError.write(Data(prompt.utf8))
        var old = termios()
        tcgetattr(STDIN_FILENO, &old)
        var silent = old
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent)
        defer {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &old)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        guard let line = readLine(strippingNewline: true) else { throw CLIError("no passphrase entered") }
        return line
    }
}

struct NewKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new", abstract: "Generate a new key and store it under NAME.")

    @OptionGroup var home: HomeOptions
    @OptionGroup var secret: PassphraseOptions
    @Argument(help: "Name of the key (A-Z a-z 0-9 . _ -).") var name: String
    @Option(help: "Signature scheme: sm2 (default) or secp256k1.") var scheme: String = "sm2"
    @Flag(help: "Store the private key UNENCRYPTED. Only for throwaway development networks.")
    var insecurePlaintext = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        guard let s = SignatureScheme(name: scheme) else {
            throw ValidationError("--scheme must be sm2 or secp256k1, not '\(scheme)'")
        }
        try Keystore.validate(name: name)
        let passphrase = insecurePlaintext ? nil : try secret.passphrase(confirm: true)
        let info = try Keystore(directory: home.keysURL).save(SigningKey(scheme: s), name: name, passphrase: passphrase)
        printKey(info, json: json)
        if insecurePlaintext {
            FileHandle.standardError.write(Data("warning: the private key is stored UNENCRYPTED\n".utf8))
        }
    }
}

struct ListKeys: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the keys in the keystore.")
    @OptionGroup var home: HomeOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        let keys = try Keystore(directory: home.keysURL).list()
        if json {
            print(jsonText(keys.map(keyJSON)))
        } else if keys.isEmpty {
            print("no keys in \(home.keysURL.path)")
        } else {
            for k in keys {
                print("\(k.name)\t\(k.scheme)\t\(k.address.text)\(k.encrypted ? "" : "\tUNENCRYPTED")")
            }
        }
    }
}

struct ShowKey: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a key's address, scheme and public key.")
    @OptionGroup var home: HomeOptions
    @Argument(help: "Name of the key.") var name: String
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        printKey(try Keystore(directory: home.keysURL).info(name: name), json: json)
    }
}

struct SignMessage: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign a message with a stored key and print the 64-byte r||s signature in hex.",
        discussion: "SM2 signs the message itself with the Z value of --id; secp256k1 signs SM3(message).")

    @OptionGroup var home: HomeOptions
    @OptionGroup var secret: PassphraseOptions
    @Argument(help: "Name of the key.") var name: String
    @Option(help: ArgumentHelp("The message, as hex.", valueName: "hex")) var messageHex: String
    @Option(help: "SM2 distinguishing ID (default 1234567812345678).") var id: String?

    func run() throws {
        let message = try decodeHex(messageHex, what: "--message-hex")
        let store = Keystore(directory: home.keysURL)
        let info = try store.info(name: name)
        let key = try store.load(name: name, passphrase: info.encrypted ? secret.passphrase(confirm: false) : nil)
        switch key {
        case .sm2(let k):
            let sig = try k.signature(for: message, id: id.map { Array($0.utf8) } ?? SM2.defaultID)
            print(QuarryHex.encode(sig.rawRepresentation))
        case .secp256k1(let k):
            guard id == nil else { throw ValidationError("--id applies to SM2 keys only") }
            print(QuarryHex.encode(try k.signature(forDigest: SM3.hash(message)).rawRepresentation))
        }
    }
}

struct VerifySignature: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a signature. Exits 0 when it is valid, 1 when it is not.")

    @Option(help: "Signature scheme: sm2 or secp256k1.") var scheme: String
    @Option(help: ArgumentHelp("Public key, hex (SM2: 65-byte 04||X||Y; secp256k1: 33 or 65 bytes).", valueName: "hex"))
    var publicKey: String
    @Option(help: ArgumentHelp("The message, as hex.", valueName: "hex")) var messageHex: String
    @Option(help: ArgumentHelp("The 64-byte r||s signature, as hex.", valueName: "hex")) var signature: String
    @Option(help: "SM2 distinguishing ID (default 1234567812345678).") var id: String?

    func run() throws {
        guard let s = SignatureScheme(name: scheme) else {
            throw ValidationError("--scheme must be sm2 or secp256k1, not '\(scheme)'")
        }
        let key = try decodeHex(publicKey, what: "--public-key")
        let message = try decodeHex(messageHex, what: "--message-hex")
        let sig = try decodeHex(signature, what: "--signature")
        let verdict: Result<Bool, any Error> = Result {
            switch s {
            case .sm2:
                let pk = try SM2PublicKey(rawRepresentation: key)
                let sg = try SM2Signature(rawRepresentation: sig)
                return pk.isValidSignature(sg, for: message, id: id.map { Array($0.utf8) } ?? SM2.defaultID)
            case .secp256k1:
                guard id == nil else { throw ValidationError("--id applies to SM2 keys only") }
                let pk = try Secp256k1PublicKey(rawRepresentation: key)
                let sg = try Secp256k1Signature(rawRepresentation: sig)
                return pk.isValidSignature(sg, forDigest: SM3.hash(message))
            }
        }
        switch verdict {
        case .success(true):
            print("valid")
        case .success(false):
            print("invalid: the signature does not match this key and message")
            throw ExitCode(1)
        case .failure(let e as ValidationError):
            throw e
        case .failure(let e):
            print("invalid: \(e)")
            throw ExitCode(1)
        }
    }
}

func keyJSON(_ k: Keystore.KeyInfo) -> [String: Any] {
    ["name": k.name, "scheme": k.scheme.name, "address": k.address.text,
     "publicKey": QuarryHex.encode(k.publicKey.bytes), "encrypted": k.encrypted]
}

func jsonText(_ object: Any) -> String {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    return String(decoding: data, as: UTF8.self)
}

func printKey(_ k: Keystore.KeyInfo, json: Bool) {
    if json {
        print(jsonText(keyJSON(k)))
    } else {
        print("name:       \(k.name)")
        print("scheme:     \(k.scheme)")
        print("address:    \(k.address.text)")
        print("public key: \(QuarryHex.encode(k.publicKey.bytes))")
        print("encrypted:  \(k.encrypted ? "yes" : "NO (plain text, development only)")")
    }
}
