import CSM2Fast
import QuarryCore

/// Which code checks SM2 signatures and public keys (docs/adr/0012). Both accept exactly
/// the same inputs (docs/spec/crypto.md 3.2 and 3.5); signing is always OpenSSL's.
public enum SM2VerificationEngine: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Quarry's verification-only arithmetic for sm2p256v1 (the `CSM2Fast` target): about
    /// 5x OpenSSL for a key seen for the first time, about 10x for a key kept with its
    /// precomputed table (docs/performance.md).
    case fast
    /// OpenSSL 3.0's generic elliptic-curve code through `EVP_PKEY_verify`.
    case openSSL = "openssl"

    public var description: String { rawValue }
}

extension SM2 {
    /// The engine used when none is named: ``SM2VerificationEngine/fast``.
    public static let defaultVerificationEngine = SM2VerificationEngine.fast

    /// The process-wide engine behind every SM2 verification and public-key check that
    /// does not name one: `SignatureVerification` (ledger, mempool, consensus votes),
    /// `SM2PublicKey(rawRepresentation:)`, P2P handshakes. A node sets it once at start-up
    /// from `config.toml` (`crypto.sm2_engine`); changing it later is safe (keys made under
    /// one engine work under the other) but is not meant for normal operation.
    public static var verificationEngine: SM2VerificationEngine {
        get { engineSetting.withLock { $0 } }
        set { engineSetting.withLock { $0 = newValue } }
    }

    private static let engineSetting = LockedValue(defaultVerificationEngine)

    /// One verification from bytes with a named engine and nothing cached: the key is
    /// checked and decoded by `engine`, Z and e are computed, the signature is checked.
    /// Any malformed input (key, signature, too long an ID) is simply invalid. This is the
    /// operation the differential tests and the soak compare between the engines.
    public static func isValidSignature(_ signature: [UInt8], for message: [UInt8], publicKey: [UInt8],
                                        id: [UInt8] = defaultID, engine: SM2VerificationEngine) -> Bool {
        guard let sig = try? SM2Signature(rawRepresentation: signature),
              let key = try? SM2PublicKey(rawRepresentation: publicKey, engine: engine) else { return false }
        return key.isValidSignature(sig, for: message, id: id, engine: engine)
    }
}

/// A value behind a lock (QuarryCore's `Lock`).
final class LockedValue<Value: Sendable>: @unchecked Sendable {
    private let lock = Lock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T { lock.withLock { body(&value) } }
}

/// Swift access to the `CSM2Fast` C target.
enum SM2Fast {
    /// The point of a 65-byte `04 || X || Y` key that already passed
    /// `SM2.validateEncoding`, or nil if it is not on the curve.
    static func decode(_ raw: [UInt8]) -> quarry_sm2fast_point? {
        precondition(raw.count == 65, "SM2 public key must be 65 bytes")
        var point = quarry_sm2fast_point()
        let ok = raw.withUnsafeBufferPointer { quarry_sm2fast_point_decode(&point, $0.baseAddress! + 1) }
        return ok == 1 ? point : nil
    }

    /// The verification equation (the engine checks r, s and t itself).
    static func verify(point: quarry_sm2fast_point, digest e: [UInt8], signature raw: [UInt8]) -> Bool {
        precondition(e.count == 32 && raw.count == 64, "e must be 32 bytes and r || s 64 bytes")
        var point = point
        return e.withUnsafeBufferPointer { e in
            raw.withUnsafeBufferPointer { sig in
                quarry_sm2fast_verify(&point, e.baseAddress, sig.baseAddress, sig.baseAddress! + 32)
            }
        } == 1
    }

    /// The per-key precomputation (2 KiB of C memory), immutable once built.
    final class Table: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<quarry_sm2fast_table>

        init(point: quarry_sm2fast_point) {
            pointer = .allocate(capacity: 1)
            var point = point
            quarry_sm2fast_table_build(pointer, &point)
        }

        deinit { pointer.deallocate() }

        func verify(digest e: [UInt8], signature raw: [UInt8]) -> Bool {
            precondition(e.count == 32 && raw.count == 64, "e must be 32 bytes and r || s 64 bytes")
            return e.withUnsafeBufferPointer { e in
                raw.withUnsafeBufferPointer { sig in
                    quarry_sm2fast_verify_table(pointer, e.baseAddress, sig.baseAddress, sig.baseAddress! + 32)
                }
            } == 1
        }
    }

    /// Test support: k*G + m*P by the engine's own point arithmetic (comb, wNAF, or the
    /// table), as `04 || X || Y`, or nil for the point at infinity.
    static func combination(k: [UInt8], m: [UInt8], point: quarry_sm2fast_point, table: Table?) -> [UInt8]? {
        precondition(k.count == 32 && m.count == 32, "scalars must be 32 bytes")
        var point = point
        var out = [UInt8](repeating: 0, count: 64)
        let ok = out.withUnsafeMutableBufferPointer { out in
            quarry_sm2fast_combination(out.baseAddress, k, m, &point, table?.pointer)
        }
        return ok == 1 ? [4] + out : nil
    }
}

/// What an `SM2PublicKey` keeps for each engine, made on first use. Shared by all copies of
/// the key; thread-safe. Each engine's form is made from the raw bytes by that engine's own
/// code, so a key checked by one engine is never trusted blindly by the other: if the other
/// refuses it (which the differential tests show never happens), it verifies nothing.
final class SM2KeyStorage: @unchecked Sendable {
    /// Fast verifications of one key before its table is built: a key seen once (a new
    /// account, a one-off check) does not pay for a table; a kept key does from its second
    /// use on (the table costs about one and a half plain verifications and makes each later
    /// one about twice as fast).
    static let tableAfterVerifications = 2

    let raw: [UInt8]
    private let lock = Lock()
    private var openSSL: OpenSSLKey?
    private var openSSLTried = false
    private var fastPoint: quarry_sm2fast_point?
    private var fastTried = false
    private var table: SM2Fast.Table?
    private var fastVerifications = 0

    init(raw: [UInt8], openSSLKey: OpenSSLKey) {
        self.raw = raw
        openSSL = openSSLKey
        openSSLTried = true
    }

    init(raw: [UInt8], fastPoint: quarry_sm2fast_point) {
        self.raw = raw
        self.fastPoint = fastPoint
        fastTried = true
    }

    /// OpenSSL's key, imported (and checked by OpenSSL) on first use; nil if OpenSSL refuses it.
    func openSSLKey() -> OpenSSLKey? {
        lock.withLock {
            if !openSSLTried {
                openSSLTried = true
                if (try? SM2.validatePublicPoint(raw)) != nil {
                    openSSL = SM2.importKey(publicKey: raw, privateScalar: nil)
                }
            }
            return openSSL
        }
    }

    /// Whether the key has its fast table (tests).
    var hasTable: Bool { lock.withLock { table != nil } }

    func fastVerify(digest e: [UInt8], signature sig: [UInt8]) -> Bool {
        enum Plan { case table(SM2Fast.Table), build(quarry_sm2fast_point), point(quarry_sm2fast_point), refused }
        let plan: Plan = lock.withLock {
            if let table { return .table(table) }
            if !fastTried {
                fastTried = true
                fastPoint = SM2Fast.decode(raw)  // raw passed SM2.validateEncoding in every init
            }
            guard let point = fastPoint else { return .refused }
            fastVerifications += 1
            return fastVerifications >= SM2KeyStorage.tableAfterVerifications ? .build(point) : .point(point)
        }
        switch plan {
        case .refused:
            return false
        case .point(let point):
            return SM2Fast.verify(point: point, digest: e, signature: sig)
        case .table(let table):
            return table.verify(digest: e, signature: sig)
        case .build(let point):
            // Built outside the lock; if another thread installed one meanwhile, use that.
            let built = SM2Fast.Table(point: point)
            let table = lock.withLock {
                if self.table == nil { self.table = built }
                return self.table!
            }
            return table.verify(digest: e, signature: sig)
        }
    }
}
