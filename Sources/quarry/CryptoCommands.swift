import ArgumentParser
import Foundation
import QuarryCore
import QuarryCrypto

typealias QuarryHex = QuarryCore.Hex

struct CryptoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crypto",
        abstract: "Stand-alone cryptographic tools (SM3).",
        subcommands: [SM3Command.self])
}

struct SM3Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sm3",
        abstract: "Print the SM3 digest of text, hex bytes or a file, as lowercase hex.",
        discussion: "Give exactly one of --text, --hex or FILE ('-' reads standard input).")

    @Option(help: "Hash the UTF-8 bytes of this text.") var text: String?
    @Option(help: ArgumentHelp("Hash these bytes, given as hex.", valueName: "hex")) var hex: String?
    @Argument(help: "Hash this file's contents ('-' for standard input).") var file: String?

    func validate() throws {
        let given = [text != nil, hex != nil, file != nil].filter { $0 }.count
        guard given == 1 else { throw ValidationError("give exactly one of --text, --hex or FILE") }
    }

    func run() throws {
        if let text {
            print(SM3.hash(Array(text.utf8)).hex)
        } else if let hex {
            print(SM3.hash(try decodeHex(hex, what: "--hex")).hex)
        } else if let file {
            let handle: FileHandle
            if file == "-" {
                handle = .standardInput
            } else {
                guard FileManager.default.isReadableFile(atPath: file) else { throw CLIError("cannot read file '\(file)'") }
                handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: file))
            }
            var hasher = SM3()
            while let chunk = try handle.read(upToCount: 1 << 16), !chunk.isEmpty {
                hasher.update(Array(chunk))
            }
            print(hasher.finalize().hex)
        }
    }
}
