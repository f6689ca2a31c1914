import Foundation
import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryNode
import QuarryStore

// What serving JSON-RPC reads from RocksDB snapshots costs (ADR 0076), next to the block
// commit each snapshot follows, measured in the same run on the same store:
// - taking a snapshot and opening a view on it (what the runtime adds to every commit),
//   against a synced 2,000-key write batch (a block's commit);
// - point reads of account records through a snapshot against the live store;
// - state proofs through a snapshot (what account_get with proof: true adds).
enum RPCBench {
    static let accounts = 200_000
    static let snapshots = 20_000
    static let commits = 50
    static let reads = 200_000
    static let proofs = 5_000

    static func key(_ i: Int) -> [UInt8] {
        StateKey.account(Address(scheme: .sm2, digest20: Array(SM3.hash(StateKey.be64(UInt64(i))).bytes.prefix(20))))
    }

    static func run() throws {
        let path = try StoreBench.temporaryDirectory("rpc")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try RocksDBStore(path: path, columns: Ledger.columns + ["bench"])
        defer { store.close() }
        // A state of `accounts` accounts with its state tree, written in batches.
        var account = Account()
        account.balanceGrains = 123_456_789
        let value = account.canonicalBytes
        let valueHash = SM3.hash(value).bytes
        var written = 0
        while written < accounts {
            var batch = WriteBatch()
            var changes: [StateTree.Change] = []
            for i in written..<min(accounts, written + 20_000) {
                let k = key(i)
                batch.put(k, value, column: Ledger.stateColumn)
                changes.append(.init(keyHash: SM3.hash(k).bytes, valueHash: valueHash))
            }
            _ = try StateTree.update(store: store, changes: changes, batch: &batch)
            try store.write(batch, sync: false)
            written = min(accounts, written + 20_000)
        }
        try store.flush()
        let root = try StateTree.root(in: store)
        print("state: \(accounts) accounts, root \(root.hex.prefix(16))")

        // Snapshot + view (one read of a state record, as CommittedView's opening does).
        var sink = 0
        let snapshotSeconds = try StoreBench.seconds {
            for i in 0..<snapshots {
                let reader = SnapshotReader(try store.snapshot())
                sink &+= try reader.get(key(i % accounts), column: Ledger.stateColumn)?.count ?? 0
            }
        }
        // A block's commit: a synced batch of 2,000 keys.
        let filler = [UInt8](repeating: 7, count: 100)
        let commitSeconds = try StoreBench.seconds {
            for c in 0..<commits {
                var batch = WriteBatch()
                for j in 0..<2_000 { batch.put(StateKey.be64(UInt64(c * 2_000 + j)), filler, column: "bench") }
                try store.write(batch, sync: true)
            }
        }
        let snapshotMicroseconds = snapshotSeconds / Double(snapshots) * 1e6
        let commitMicroseconds = commitSeconds / Double(commits) * 1e6
        print(String(format: "snapshot + view: %.1f us; synced 2,000-key block commit: %.0f us; snapshot/commit %.4f",
                     snapshotMicroseconds, commitMicroseconds, snapshotMicroseconds / commitMicroseconds))

        // Reads: the live store against one snapshot.
        let order = (0..<reads).map { ($0 &* 7_919) % accounts }
        let liveSeconds = try StoreBench.seconds {
            for i in order { sink &+= try store.get(key(i), column: Ledger.stateColumn)?.count ?? 0 }
        }
        let reader = SnapshotReader(try store.snapshot())
        let snapshotReadSeconds = try StoreBench.seconds {
            for i in order { sink &+= try reader.get(key(i), column: Ledger.stateColumn)?.count ?? 0 }
        }
        print(String(format: "account reads: live %.0f/s, snapshot %.0f/s, snapshot/live %.2f",
                     Double(reads) / liveSeconds, Double(reads) / snapshotReadSeconds, liveSeconds / snapshotReadSeconds))

        // Proofs through the snapshot, each verified once outside the timing.
        var proven: [(Int, StateProof)] = []
        let proofSeconds = try StoreBench.seconds {
            for n in 0..<proofs {
                let i = (n &* 104_729) % accounts
                proven.append((i, try StateTree.proof(store: reader, key: key(i))))
            }
        }
        let depth = proven.reduce(0) { $0 + $1.1.siblings.count } / proofs
        precondition(proven.allSatisfy { $0.1.verify(root: root, key: key($0.0), value: value) }, "a proof does not verify")
        print(String(format: "state proofs: %.1f us each (mean depth %d), %.1f account reads' worth",
                     proofSeconds / Double(proofs) * 1e6, depth,
                     (proofSeconds / Double(proofs)) / (snapshotReadSeconds / Double(reads))))
        if sink == 42 { print("") }
    }
}
