#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import QuarryCore
import QuarryCrypto
import QuarryLedger

/// Signature checks spread over the machine's cores: a block's transactions (through the
/// ledger's `SignatureChecker`) and a batch of mempool admissions. Every item is checked
/// exactly once, by one thread, and the answers come back in order; each answer is what
/// `SignatureVerification.isValid` returns for the item, so the result never depends on
/// how the work was split (ADR 0012).
public enum ParallelVerification {
    /// Cores online (at least 1).
    public static let cores: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    /// Fewer items than this are checked on the calling thread: handing work to another
    /// thread costs more than verifying a couple of signatures.
    public static let minimumParallelItems = 4

    /// `check(i)` for every i in 0..<count, once each, on up to `workers` threads (the
    /// calling thread among them); results in index order. `check` must be thread-safe.
    public static func map(count: Int, workers: Int = cores, _ check: @Sendable (Int) -> Bool) -> [Bool] {
        guard workers > 1, count >= minimumParallelItems else { return (0..<count).map(check) }
        var results = [Bool](repeating: false, count: count)
        results.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let out = buffer  // each index is written by exactly one chunk
            // A few chunks per worker, so a worker that drew slow items (or lost its core to
            // another process) does not hold up the rest. Chunk c covers [c*count/k, (c+1)*count/k).
            let chunks = min(count, workers * 4)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                for i in (count * chunk / chunks)..<(count * (chunk + 1) / chunks) { out[i] = check(i) }
            }
        }
        return results
    }
}

/// The node's `SignatureChecker`: a block's signatures over all cores. A signature the
/// node's mempool already verified (found in `verified`) is not verified again, so a
/// transaction that reached the node before its block costs one verification per node.
public struct ParallelSignatureChecker: SignatureChecker, Sendable {
    public let workers: Int
    public let verified: VerifiedSignatures?

    public init(workers: Int = ParallelVerification.cores, verified: VerifiedSignatures? = .shared) {
        precondition(workers >= 1, "at least one worker")
        self.workers = workers
        self.verified = verified
    }

    public func check(_ items: [SignatureCheckItem]) -> [Bool] {
        let verified = self.verified
        return ParallelVerification.map(count: items.count, workers: workers) { i in
            let item = items[i]
            if let verified, verified.contains(signature: item.signature, message: item.message, publicKey: item.publicKey) {
                return true
            }
            return SignatureVerification.isValid(signature: item.signature, message: item.message, publicKey: item.publicKey)
        }
    }
}

/// A bounded memory of signatures that verified: the SM3 digest of (scheme, key, signature,
/// message), each length-prefixed. A digest here means `SignatureVerification.isValid`
/// returned true for exactly those bytes, so answering true from it is the answer the
/// check would give (a false answer is never remembered). The mempool's verifier adds to it
/// and the block checker reads it. The oldest digests are forgotten first. Thread-safe.
public final class VerifiedSignatures: @unchecked Sendable {
    /// The node's memory, shared by its mempool and its block checker: room for a full
    /// mempool (`MempoolConfig.totalMax`, 50,000) and two full blocks.
    public static let shared = VerifiedSignatures(capacity: 60_000)

    public let capacity: Int
    private let lock = Lock()
    private var digests: Set<Hash256> = []
    private var order: [Hash256] = []
    private var next = 0

    public init(capacity: Int) {
        precondition(capacity > 0, "capacity must be positive")
        self.capacity = capacity
    }

    static func digest(signature: [UInt8], message: [UInt8], publicKey: PublicKeyBytes) -> Hash256 {
        func length(_ b: [UInt8]) -> [UInt8] { withUnsafeBytes(of: UInt32(b.count).bigEndian) { Array($0) } }
        return SM3.hash(parts: [Array("QUARRY/VERIFIED/V1".utf8), [publicKey.scheme.rawValue], length(publicKey.bytes), publicKey.bytes,
                                length(signature), signature, length(message), message])
    }

    public func insert(signature: [UInt8], message: [UInt8], publicKey: PublicKeyBytes) {
        let d = VerifiedSignatures.digest(signature: signature, message: message, publicKey: publicKey)
        lock.withLock {
            guard !digests.contains(d) else { return }
            if order.count < capacity {
                order.append(d)
            } else {
                digests.remove(order[next])
                order[next] = d
                next = (next + 1) % capacity
            }
            digests.insert(d)
        }
    }

    public func contains(signature: [UInt8], message: [UInt8], publicKey: PublicKeyBytes) -> Bool {
        let d = VerifiedSignatures.digest(signature: signature, message: message, publicKey: publicKey)
        return lock.withLock { digests.contains(d) }
    }

    public var count: Int { lock.withLock { digests.count } }
}
