import ArgumentParser
import Foundation

@main
struct Quarry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quarry",
        abstract: "Quarry: a permissioned blockchain node for a data-rights ledger.",
        discussion: """
            Keys and node data live in a home directory: --home DIR, else $QUARRY_HOME, \
            else ~/.quarry. Run 'quarry help SUBCOMMAND' for details of each command.
            """,
        version: "0.1.0",
        subcommands: [KeysCommand.self, TxCommand.self, QueryCommand.self, CryptoCommand.self, ScheduleCommand.self,
                      InitCommand.self, TestnetCommand.self, NodeCommand.self, DevnetCommand.self])
}

/// Options shared by every command that touches the home directory.
struct HomeOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Home directory for keys and node data (default: $QUARRY_HOME or ~/.quarry).", valueName: "dir"))
    var home: String?

    var homeURL: URL {
        if let home { return URL(fileURLWithPath: (home as NSString).expandingTildeInPath) }
        if let env = ProcessInfo.processInfo.environment["QUARRY_HOME"], !env.isEmpty {
            return URL(fileURLWithPath: (env as NSString).expandingTildeInPath)
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".quarry")
    }

    var keysURL: URL { homeURL.appendingPathComponent("keys") }
}

/// Turns a library error into a clear one-line message and a non-zero exit.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

func decodeHex(_ text: String, what: String) throws -> [UInt8] {
    do { return try QuarryHex.decode(text) } catch { throw ValidationError("\(what): \(error)") }
}
