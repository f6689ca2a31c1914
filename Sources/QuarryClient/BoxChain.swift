import Foundation
import QuarryCore
import QuarryCrypto
import QuarryLedger

/// The box operator's SM3 hash chain for one season (docs/spec/economics.md section 4),
/// kept so that nothing secret is ever written to disk by the client (ADR 0101):
///
/// - the seed is derived from the operator's private key, the chain id and the nonce of
///   the `openSeason` transaction: `seed = SM3("QUARRY/BOX-SEED/V1" || string chainID ||
///   u64 openNonce || private key (32 bytes))`. The key is already protected by the
///   keystore; the nonce makes every season's seed different (each nonce is used once);
/// - the chain is `h_0 = seed`, `h_{i+1} = SM3(h_i)`; the commitment is `h_length`;
/// - a small public index file, `<dir>/<commitment hex>.json`, records the chain id, the
///   operator address, the nonce and the length, so that `draw-result` finds the chain of
///   a season from the commitment the ledger shows. It holds no secret; if it is lost, the
///   nonce and length given by hand rebuild the same chain.
/// The pre-image to reveal next is the chain element just below the season's chain tip.
public struct BoxChain: Sendable, Equatable {
    public static let seedDomain: [UInt8] = Array("QUARRY/BOX-SEED/V1".utf8)
    public static let lengthDefault = 10_000
    public static let lengthMax = 1_000_000

    public let chainID: String
    public let openNonce: UInt64
    public let length: Int
    public let commitment: Hash256

    public init(key: SigningKey, chainID: String, openNonce: UInt64, length: Int) throws(ClientError) {
        guard (1...BoxChain.lengthMax).contains(length) else {
            throw .invalidArgument("chain length", "must be 1 to \(BoxChain.lengthMax)")
        }
        self.chainID = chainID
        self.openNonce = openNonce
        self.length = length
        self.commitment = BoxChain.elements(seed: BoxChain.seed(key: key, chainID: chainID, openNonce: openNonce), length: length)[length]
    }

    public static func seed(key: SigningKey, chainID: String, openNonce: UInt64) -> Hash256 {
        var e = CanonicalEncoder(capacity: 96)
        e.fixed(seedDomain)
        e.string(chainID)
        e.u64(openNonce)
        e.fixed(key.rawRepresentation)
        return SM3.hash(e.bytes)
    }

    static func elements(seed: Hash256, length: Int) -> [Hash256] { BlindBox.hashChain(seed: seed, length: length) }

    /// The pre-image whose SM3 is `tip` (the season's current chain tip), derived again from
    /// the key. Throws when `tip` is not on this chain or the chain is used up.
    public func preimage(below tip: Hash256, key: SigningKey) throws(ClientError) -> Hash256 {
        let chain = BoxChain.elements(seed: BoxChain.seed(key: key, chainID: chainID, openNonce: openNonce), length: length)
        guard chain[length] == commitment else {
            throw .invalidArgument("box chain", "the key does not derive this season's commitment (wrong --from key?)")
        }
        guard let i = chain.lastIndex(of: tip) else {
            throw .invalidArgument("box chain", "the season's chain tip \(tip.hex) is not on this chain")
        }
        guard i > 0 else { throw .invalidArgument("box chain", "every one of the \(length) pre-images is revealed; open a new season") }
        return chain[i - 1]
    }

    /// The pre-image to reveal after `revealed` results have been revealed.
    public func preimage(afterRevealing revealed: UInt64, key: SigningKey) throws(ClientError) -> Hash256 {
        guard revealed < UInt64(length) else { throw .invalidArgument("box chain", "every one of the \(length) pre-images is revealed") }
        let chain = BoxChain.elements(seed: BoxChain.seed(key: key, chainID: chainID, openNonce: openNonce), length: length)
        return chain[length - 1 - Int(revealed)]
    }

    // MARK: the index file

    struct IndexFile: Codable {
        var version: Int
        var chainId: String
        var operatorAddress: String
        var openNonce: UInt64
        var length: Int
        var commitment: String
    }

    public static func indexURL(directory: URL, commitment: Hash256) -> URL {
        directory.appendingPathComponent("\(commitment.hex).json")
    }

    /// Writes the index file (creating the directory, mode 0700). An identical existing
    /// file is left alone; a different one is an error.
    public func saveIndex(directory: URL, operatorAddress: Address) throws(ClientError) {
        let file = IndexFile(version: 1, chainId: chainID, operatorAddress: operatorAddress.text, openNonce: openNonce,
                             length: length, commitment: commitment.hex)
        let url = BoxChain.indexURL(directory: directory, commitment: commitment)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try encoder.encode(file)
            if let existing = FileManager.default.contents(atPath: url.path) {
                guard existing == data else { throw ClientError.invalidArgument("box chain index", "\(url.path) exists and differs") }
                return
            }
            try data.write(to: url, options: .atomic)
        } catch let e as ClientError {
            throw e
        } catch {
            throw .invalidArgument("box chain index", "cannot write \(url.path): \(error.localizedDescription)")
        }
    }

    /// Reads the index of the chain whose commitment is `commitment` and checks it against `key`.
    public static func load(directory: URL, commitment: Hash256, key: SigningKey) throws(ClientError) -> BoxChain {
        let url = indexURL(directory: directory, commitment: commitment)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw .invalidArgument("box chain index", "no index for commitment \(commitment.hex) in \(directory.path); give --open-nonce and --chain-length of the open-season transaction")
        }
        let file: IndexFile
        do { file = try JSONDecoder().decode(IndexFile.self, from: data) } catch {
            throw .invalidArgument("box chain index", "\(url.path) is not a box chain index")
        }
        guard file.version == 1 else { throw .invalidArgument("box chain index", "\(url.path) has unsupported version \(file.version)") }
        let chain = try BoxChain(key: key, chainID: file.chainId, openNonce: file.openNonce, length: file.length)
        guard chain.commitment == commitment else {
            throw .invalidArgument("box chain", "the key does not derive commitment \(commitment.hex) (wrong --from key?)")
        }
        return chain
    }
}
