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

/// The node's `SignatureChecker`: a block's signatures over all cores.
public struct ParallelSignatureChecker: SignatureChecker, Sendable {
    public let workers: Int

    public init(workers: Int = ParallelVerification.cores) {
        precondition(workers >= 1, "at least one worker")
        self.workers = workers
    }

    public func check(_ items: [SignatureCheckItem]) -> [Bool] {
        ParallelVerification.map(count: items.count, workers: workers) { i in
            SignatureVerification.isValid(signature: items[i].signature, message: items[i].message, publicKey: items[i].publicKey)
        }
    }
}
