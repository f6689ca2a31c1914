import ArgumentParser
import Foundation
import QuarryClient
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryNode
import QuarryRPC

// Shared pieces of `quarry tx`, `quarry query` and `quarry devnet`: flags, value parsing,
// output, and the mapping of errors to exit codes (docs/cli.md).

/// Exit codes of the client commands. ArgumentParser itself exits 64 for a usage error
/// (unknown flag, missing or malformed value) and 0 for --help.
enum ClientExit: Int32 {
    /// The node or the ledger refused: a JSON-RPC error, or a transaction that failed.
    case refused = 1
    /// The node could not be reached, or its answer was not what the spec promises.
    case unreachable = 2
    /// A local problem: a key, a file, or a value that cannot make a valid transaction.
    case local = 3
    /// A wait ran out: the outcome is unknown and may still happen.
    case unknownOutcome = 4
}

/// A failure already worded for the user, with its exit code.
struct ClientFailure: Error, CustomStringConvertible {
    let exit: ClientExit
    let description: String
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

extension WaitMode: ExpressibleByArgument {}

/// `--rpc`, `--home`, `--output`, `--timeout`: what every command that talks to a node takes.
struct ClientOptions: ParsableArguments {
    @OptionGroup var home: HomeOptions

    @Option(help: ArgumentHelp("""
        The node's JSON-RPC address, http://HOST:PORT (default: the [rpc] listen address of \
        <home>/config.toml when that file exists, else http://127.0.0.1:26657).
        """, valueName: "url"))
    var rpc: String?

    @Option(help: "Output format: text (for people) or json (the node's JSON, for scripts).")
    var output: OutputFormat = .text

    @Option(help: ArgumentHelp("Seconds to wait for each answer from the node (a committed wait gets at least 60).", valueName: "seconds"))
    var timeout: UInt64 = 10

    @Option(help: ArgumentHelp("Keystore directory for --from and for key names given instead of addresses (default: <home>/keys).", valueName: "dir"))
    var keys: String?

    func validate() throws {
        guard (1...3_600).contains(timeout) else { throw ValidationError("--timeout must be 1 to 3600 seconds") }
        if let rpc {
            do { _ = try RPCEndpoint(parsing: rpc) } catch { throw ValidationError("--rpc: \(error.description)") }
        }
    }

    /// The endpoint: `--rpc`, else the home's config.toml, else the local default.
    func endpoint() throws -> RPCEndpoint {
        if let rpc { return try RPCEndpoint(parsing: rpc) }
        let config = home.homeURL.appendingPathComponent("config.toml")
        if let text = try? String(contentsOf: config, encoding: .utf8) {
            let parsed: NodeConfig
            do { parsed = try NodeConfig(toml: text) } catch {
                throw ClientFailure(exit: .local, description: "\(config.path): \(error) (or give --rpc)")
            }
            var endpoint = try RPCEndpoint(parsing: parsed.rpcListen)
            // A server bound to every interface is reached through loopback.
            if endpoint.host == "0.0.0.0" || endpoint.host == "::" { endpoint = RPCEndpoint(host: "127.0.0.1", port: endpoint.port) }
            return endpoint
        }
        return RPCEndpoint(host: "127.0.0.1", port: 26_657)
    }

    func client() throws -> QuarryClient {
        QuarryClient(endpoint: try endpoint(), timeoutMilliseconds: Int64(timeout) * 1_000)
    }
}

/// Runs a client command body and turns its errors into a message on stderr and an exit code.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as ClientFailure {
        printError(e.description)
        throw ExitCode(e.exit.rawValue)
    } catch let e as ClientError {
        printError(e.description)
        throw ExitCode(exitCode(for: e).rawValue)
    } catch let e as KeystoreError {
        printError(e.description)
        throw ExitCode(ClientExit.local.rawValue)
    } catch let e as CLIError {
        printError(e.description)
        throw ExitCode(ClientExit.local.rawValue)
    } catch let e as ValidationError {
        throw e
    } catch let e as ExitCode {
        throw e
    } catch let e as CleanExit {
        throw e
    } catch {
        // Anything else (a file that cannot be written, a key that cannot sign) is local.
        printError("\(error)")
        throw ExitCode(ClientExit.local.rawValue)
    }
}

func exitCode(for e: ClientError) -> ClientExit {
    switch e {
    case .remote(let r) where r.code == RPCError.timeoutCode: return .unknownOutcome
    case .remote, .httpStatus: return .refused
    case .timedOut: return .unknownOutcome
    case .unreachable, .transport, .malformedResponse, .invalidEndpoint: return .unreachable
    case .invalidArgument: return .local
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
}

func printNote(_ message: String) {
    FileHandle.standardError.write(Data("\(message)\n".utf8))
}

// MARK: values from flags

/// Parses a ValidationError-worthy value for flag `flag`.
enum Parse {
    static func hash(_ text: String, flag: String) throws -> Hash256 {
        guard let bytes = try? Hex.decode(text), bytes.count == 32 else {
            throw ValidationError("\(flag) must be 32 bytes of hex (64 hex digits), got '\(text)'")
        }
        return Hash256(unchecked: bytes)
    }

    static func address(_ text: String, flag: String) throws -> Address {
        do { return try Address(text: text) } catch {
            throw ValidationError("\(flag) must be an address (quarry1...): \(error.description)")
        }
    }

    static func hex(_ text: String, flag: String) throws -> [UInt8] {
        do { return try Hex.decode(text) } catch { throw ValidationError("\(flag): \(error)") }
    }

    /// An amount of stones: `N` or `Ngrains` (grains), or `X[.Y]stone` / `X[.Y]stones`
    /// (up to 8 decimals). Exact integer arithmetic; below 2^64 grains.
    static func grains(_ text: String, flag: String) throws -> UInt64 {
        let t = text.lowercased().replacingOccurrences(of: " ", with: "")
        let bad = ValidationError("\(flag) must be an amount such as 150000000, 150000000grains or 1.5stones, got '\(text)'")
        func digits(_ s: Substring) -> Bool { !s.isEmpty && s.allSatisfy { $0.isASCII && $0.isNumber } }
        if t.hasSuffix("stones") || t.hasSuffix("stone") {
            let number = t.dropLast(t.hasSuffix("stones") ? 6 : 5)
            let parts = number.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count <= 2, digits(parts[0]), parts.count == 1 || (digits(parts[1]) && parts[1].count <= 8) else {
                throw parts.count == 2 && parts[1].count > 8
                    ? ValidationError("\(flag): at most 8 decimals (1 grain = 0.00000001 stone), got '\(text)'") : bad
            }
            guard let whole = UInt64(parts[0]) else { throw bad }
            let fraction = parts.count == 2 ? UInt64(parts[1] + String(repeating: "0", count: 8 - parts[1].count))! : 0
            let (scaled, o1) = whole.multipliedReportingOverflow(by: Grains.perStone)
            let (total, o2) = scaled.addingReportingOverflow(fraction)
            guard !o1, !o2 else { throw ValidationError("\(flag) is too large, got '\(text)'") }
            return total
        }
        let number = t.hasSuffix("grains") ? t.dropLast(6) : (t.hasSuffix("grain") ? t.dropLast(5) : Substring(t))
        guard digits(number), let v = UInt64(number) else { throw bad }
        return v
    }

    /// A comma-separated list of exactly `count` unsigned integers.
    static func integers(_ text: String, count: Int, flag: String) throws -> [UInt64] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == count, let values = Optional(parts.compactMap { UInt64($0) }), values.count == count else {
            throw ValidationError("\(flag) must be \(count) comma-separated whole numbers (SSR,S,A,B), got '\(text)'")
        }
        return values
    }

    static func sm2PublicKey(_ text: String, flag: String) throws -> PublicKeyBytes {
        let bytes = try hex(text, flag: flag)
        guard bytes.count == 65, (try? SM2PublicKey(rawRepresentation: bytes)) != nil else {
            throw ValidationError("\(flag) must be an SM2 public key: 65 bytes of hex (04 || X || Y) on the curve")
        }
        return try PublicKeyBytes(scheme: .sm2, bytes: bytes)
    }

    static func file(_ path: String, flag: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: (path as NSString).expandingTildeInPath) else {
            throw ValidationError("\(flag): cannot read '\(path)'")
        }
        return Array(data)
    }
}

/// `123450000 grains` shown with its value in stones: `1.2345 stones`.
func stonesText(_ grains: UInt64) -> String {
    let whole = grains / Grains.perStone
    let fraction = grains % Grains.perStone
    guard fraction > 0 else { return "\(whole) stone\(whole == 1 ? "" : "s")" }
    var f = String(fraction)
    f = String(repeating: "0", count: 8 - f.count) + f
    while f.hasSuffix("0") { f.removeLast() }
    return "\(whole).\(f) stones"
}

// MARK: output

enum Render {
    /// Indented JSON (two spaces), members in the node's order.
    static func prettyJSON(_ v: JSONValue, indent: String = "") -> String {
        let inner = indent + "  "
        switch v {
        case .array(let items):
            if items.isEmpty { return "[]" }
            return "[\n" + items.map { inner + prettyJSON($0, indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .object(let members):
            if members.isEmpty { return "{}" }
            return "{\n" + members.map { inner + JSONValue.string($0.0).description + ": " + prettyJSON($0.1, indent: inner) }
                .joined(separator: ",\n") + "\n\(indent)}"
        default:
            return v.description
        }
    }

    /// A readable outline: `name: value` lines, nested objects indented, lists with `-`,
    /// amounts of grains followed by their value in stones.
    static func text(_ v: JSONValue, indent: String = "") -> String {
        switch v {
        case .object(let members):
            if members.isEmpty { return indent + "(none)" }
            return members.map { name, value in line(name, value, indent: indent) }.joined(separator: "\n")
        case .array(let items):
            if items.isEmpty { return indent + "(none)" }
            return items.map { item in
                switch item {
                case .object, .array:
                    let body = text(item, indent: indent + "  ")
                    return indent + "- " + body.dropFirst(indent.count + 2)
                default:
                    return indent + "- " + scalar(item, name: "")
                }
            }.joined(separator: "\n")
        default:
            return indent + scalar(v, name: "")
        }
    }

    private static func line(_ name: String, _ value: JSONValue, indent: String) -> String {
        switch value {
        case .object(let m) where !m.isEmpty:
            return "\(indent)\(name):\n" + text(value, indent: indent + "  ")
        case .array(let a) where !a.isEmpty:
            if a.allSatisfy({ if case .object = $0 { return false }; if case .array = $0 { return false }; return true }) && a.count <= 8 {
                return "\(indent)\(name): " + a.map { scalar($0, name: name) }.joined(separator: ", ")
            }
            return "\(indent)\(name):\n" + text(value, indent: indent + "  ")
        default:
            return "\(indent)\(name): \(scalar(value, name: name))"
        }
    }

    private static func scalar(_ v: JSONValue, name: String) -> String {
        switch v {
        case .string(let s):
            if name.hasSuffix("Grains") || name.hasSuffix("grains") || name == "amount", let g = UInt64(s) {
                return "\(s) (\(stonesText(g)))"
            }
            return s
        case .null: return "-"
        case .object: return "(none)"
        case .array: return "(none)"
        default: return v.description
        }
    }

    static func emit(_ v: JSONValue, format: OutputFormat) {
        switch format {
        case .json: print(prettyJSON(v))
        case .text: print(text(v))
        }
    }
}
