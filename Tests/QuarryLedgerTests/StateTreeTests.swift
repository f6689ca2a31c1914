import Testing
import QuarryCore
import QuarryCrypto
@testable import QuarryLedger

@Suite struct StateTreeTests {
    /// Applies key/value changes (nil deletes) to a tree in `store` and commits.
    func apply(_ store: InMemoryStore, _ changes: [([UInt8], [UInt8]?)]) throws -> Hash256 {
        var batch = WriteBatch()
        let root = try StateTree.update(store: store, changes: changes.map {
            StateTree.Change(keyHash: SM3.hash($0.0).bytes, valueHash: $0.1.map { SM3.hash($0).bytes })
        }, batch: &batch)
        try store.write(batch, sync: false)
        #expect(try StateTree.root(in: store) == root)
        return root
    }

    @Test func emptyTreeHasZeroRoot() throws {
        let store = InMemoryStore()
        #expect(try StateTree.root(in: store) == .zero)
        let proof = try StateTree.proof(store: store, key: [1])
        #expect(proof.verify(root: .zero, key: [1], value: nil))
        #expect(!proof.verify(root: .zero, key: [1], value: [2]))
    }

    @Test func singleLeafRootIsLeafHash() throws {
        let store = InMemoryStore()
        let root = try apply(store, [([7], [8])])
        #expect(root.bytes == StateTree.leafHash(keyHash: SM3.hash([7]).bytes, valueHash: SM3.hash([8]).bytes))
        #expect(try apply(store, [([7], nil)]) == .zero)
        #expect(store.count(column: StateTree.column) == 1) // only the root reference
    }

    /// The root depends only on the final contents, not on the order or batching of updates,
    /// and deleting everything leaves no nodes behind.
    @Test func rootIsHistoryIndependent() throws {
        var rng = SplitMix64(seed: 42)
        let incremental = InMemoryStore()
        var model: [[UInt8]: [UInt8]] = [:]
        for round in 0..<60 {
            var changes: [([UInt8], [UInt8]?)] = []
            var seen = Set<[UInt8]>()
            for _ in 0..<Int(rng.next() % 40) {
                let key = [UInt8(rng.next() % 200)]
                guard seen.insert(key).inserted else { continue }
                let value: [UInt8]? = rng.next() % 3 == 0 ? nil : rng.bytes(3)
                changes.append((key, value))
                model[key] = value
            }
            let root = try apply(incremental, changes)
            let fresh = InMemoryStore()
            let sorted = model.keys.sorted { $0.lexicographicallyPrecedes($1) }
            let freshRoot = try apply(fresh, sorted.map { ($0, model[$0]) })
            #expect(root == freshRoot, "round \(round)")
            #expect(incremental.count(column: StateTree.column) == fresh.count(column: StateTree.column), "round \(round): stale nodes")
        }
        let deleteAll = try apply(incremental, model.keys.map { ($0, nil) })
        #expect(deleteAll == .zero)
        #expect(incremental.count(column: StateTree.column) == 1)
    }

    @Test func proofsOfInclusionAndExclusion() throws {
        let store = InMemoryStore()
        var entries: [([UInt8], [UInt8]?)] = []
        for i in 0..<300 { entries.append((Array("key-\(i)".utf8), Array("value-\(i)".utf8))) }
        let root = try apply(store, entries)
        for i in stride(from: 0, to: 300, by: 7) {
            let key = Array("key-\(i)".utf8), value = Array("value-\(i)".utf8)
            let proof = try StateTree.proof(store: store, key: key)
            #expect(proof.verify(root: root, key: key, value: value))
            #expect(!proof.verify(root: root, key: key, value: value + [0]), "modified value")
            #expect(!proof.verify(root: root, key: key, value: nil), "present key claimed absent")
            #expect(try StateProof(canonicalBytes: proof.canonicalBytes) == proof)
            // A tampered sibling fails.
            if !proof.siblings.isEmpty {
                var siblings = proof.siblings
                var b = siblings[0].bytes; b[0] ^= 1
                siblings[0] = Hash256(unchecked: b)
                #expect(!StateProof(siblings: siblings, terminal: proof.terminal).verify(root: root, key: key, value: value))
            }
        }
        for i in 300..<340 {
            let key = Array("key-\(i)".utf8)
            let proof = try StateTree.proof(store: store, key: key)
            #expect(proof.verify(root: root, key: key, value: nil))
            #expect(!proof.verify(root: root, key: key, value: [1]))
            // A proof for a missing key does not prove any other key absent or present wrongly.
            #expect(!proof.verify(root: root, key: Array("key-0".utf8), value: nil))
        }
    }
}
