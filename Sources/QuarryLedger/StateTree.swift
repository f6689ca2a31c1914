import QuarryCore
import QuarryCrypto

/// The state commitment: a binary Merkle tree over `SM3(key)` in which every leaf sits at the
/// shallowest depth where its key's path is no longer shared with another key (a sparse
/// Merkle tree with single-leaf subtrees collapsed). With hashed keys the expected depth
/// is about log2(N) + 1.3, so an update costs about that many SM3 calls.
/// Specified in `docs/spec/state.md`.
///
/// - empty subtree: 32 zero bytes;
/// - leaf: `SM3(0x00 || SM3(key) || SM3(value))`;
/// - internal node: `SM3(0x01 || left || right)`.
///
/// Nodes live in the column `StateTree.column`, keyed by their position
/// (`u16 depth || the first depth bits of the path, packed, remaining bits zero`).
public enum StateTree {
    public static let column = "ledger.tree"
    /// Key of the root reference (kind byte and hash) in `column`.
    static let rootKey: [UInt8] = [0xFF]

    public static func leafHash(keyHash: [UInt8], valueHash: [UInt8]) -> [UInt8] {
        var buffer = [UInt8]()
        buffer.reserveCapacity(65)
        buffer.append(0)
        buffer.append(contentsOf: keyHash)
        buffer.append(contentsOf: valueHash)
        return SM3.hash(buffer).bytes
    }

    public static func internalHash(left: [UInt8], right: [UInt8]) -> [UInt8] {
        var buffer = [UInt8]()
        buffer.reserveCapacity(65)
        buffer.append(1)
        buffer.append(contentsOf: left)
        buffer.append(contentsOf: right)
        return SM3.hash(buffer).bytes
    }

    static let emptyHash = [UInt8](repeating: 0, count: 32)

    @inline(__always)
    static func bit(_ hash: [UInt8], _ index: Int) -> Int {
        Int(hash[index >> 3] >> (7 - UInt8(index & 7))) & 1
    }

    /// The storage key of the node at `depth` on the path of `keyHash`.
    static func positionKey(depth: Int, keyHash: [UInt8]) -> [UInt8] {
        var key: [UInt8] = [UInt8(depth >> 8), UInt8(depth & 0xff)]
        let fullBytes = depth / 8
        key.append(contentsOf: keyHash[0..<fullBytes])
        let rest = depth % 8
        if rest > 0 {
            key.append(keyHash[fullBytes] & ~(UInt8(0xff) >> UInt8(rest)))
        }
        return key
    }

    /// A reference to a subtree as its parent records it.
    struct Ref: Equatable {
        enum Kind: UInt8 { case empty = 0, leaf = 1, inner = 2 }
        var kind: Kind
        var hash: [UInt8]
        /// For a leaf loaded or built in this pass: its key and value hashes.
        var leaf: (key: [UInt8], value: [UInt8])?

        static let empty = Ref(kind: .empty, hash: StateTree.emptyHash, leaf: nil)

        static func == (a: Ref, b: Ref) -> Bool { a.kind == b.kind && a.hash == b.hash }

        func encode(into out: inout [UInt8]) {
            out.append(kind.rawValue)
            out.append(contentsOf: hash)
        }

        static func decode(_ bytes: ArraySlice<UInt8>) -> Ref {
            precondition(bytes.count == 33, "corrupt state tree reference")
            guard let kind = Kind(rawValue: bytes[bytes.startIndex]) else { preconditionFailure("corrupt state tree reference kind") }
            return Ref(kind: kind, hash: Array(bytes.dropFirst()), leaf: nil)
        }
    }

    /// One change: `valueHash` nil deletes the key.
    public struct Change: Sendable {
        public let keyHash: [UInt8]
        public let valueHash: [UInt8]?
        public init(keyHash: [UInt8], valueHash: [UInt8]?) {
            self.keyHash = keyHash
            self.valueHash = valueHash
        }
    }

    /// Reads the root reference from the store (empty tree when absent).
    static func loadRoot(_ store: KeyValueStore) throws -> Ref {
        guard let raw = try store.get(rootKey, column: column) else { return .empty }
        return Ref.decode(raw[...])
    }

    /// The current state root.
    public static func root(in store: KeyValueStore) throws -> Hash256 {
        Hash256(unchecked: try loadRoot(store).hash)
    }

    /// Applies `changes` (any order, at most one per key) to the tree in `store` and adds the
    /// node writes to `batch`. Returns the new root. Reads only; the caller writes `batch`.
    public static func update(store: KeyValueStore, changes: [Change], batch: inout WriteBatch) throws -> Hash256 {
        let sorted = changes.sorted { $0.keyHash.lexicographicallyPrecedes($1.keyHash) }
        for i in sorted.indices.dropFirst() {
            precondition(sorted[i - 1].keyHash != sorted[i].keyHash, "duplicate key in state tree update")
        }
        var updater = Updater(store: store)
        let oldRoot = try loadRoot(store)
        let newRoot = try updater.apply(oldRoot, depth: 0, sorted[...])
        // Writes in key order: the batch is a deterministic function of the changes.
        for key in updater.writes.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            if let value = updater.writes[key]! { batch.put(key, value, column: column) } else { batch.delete(key, column: column) }
        }
        var rootBytes = [UInt8]()
        newRoot.encode(into: &rootBytes)
        batch.put(rootKey, rootBytes, column: column)
        return Hash256(unchecked: newRoot.hash)
    }

    private struct Updater {
        let store: KeyValueStore
        /// Position key -> node bytes (nil: delete).
        var writes: [[UInt8]: [UInt8]?] = [:]

        init(store: KeyValueStore) { self.store = store }

        func readNode(_ key: [UInt8]) throws -> [UInt8] {
            if let pending = writes[key] {
                guard let pending else { preconditionFailure("state tree node read after delete") }
                return pending
            }
            guard let raw = try store.get(key, column: StateTree.column) else {
                preconditionFailure("state tree node missing at \(Hex.encode(key))")
            }
            return raw
        }

        mutating func apply(_ ref: Ref, depth: Int, _ changes: ArraySlice<Change>) throws -> Ref {
            guard let first = changes.first else { return ref }
            let position = positionKey(depth: depth, keyHash: first.keyHash)
            switch ref.kind {
            case .empty:
                let entries = changes.compactMap { c in c.valueHash.map { (c.keyHash, $0) } }
                return try build(depth: depth, entries[...])
            case .leaf:
                let raw = try readNode(position)
                precondition(raw.count == 65 && raw[0] == 1, "corrupt state tree leaf")
                let leafKey = Array(raw[1..<33]), leafValue = Array(raw[33..<65])
                var entries: [([UInt8], [UInt8])] = []
                entries.reserveCapacity(changes.count + 1)
                var placed = false
                for c in changes {
                    if !placed && leafKey.lexicographicallyPrecedes(c.keyHash) {
                        entries.append((leafKey, leafValue)); placed = true
                    }
                    if c.keyHash == leafKey { placed = true }
                    if let v = c.valueHash { entries.append((c.keyHash, v)) }
                }
                if !placed { entries.append((leafKey, leafValue)) }
                let result = try build(depth: depth, entries[...])
                if result.kind == .empty { writes[position] = .some(nil) }
                return result
            case .inner:
                let raw = try readNode(position)
                precondition(raw.count == 67 && raw[0] == 2, "corrupt state tree node")
                let left = Ref.decode(raw[1..<34]), right = Ref.decode(raw[34..<67])
                let split = changes.firstIndex { bit($0.keyHash, depth) == 1 } ?? changes.endIndex
                let newLeft = try apply(left, depth: depth + 1, changes[..<split])
                let newRight = try apply(right, depth: depth + 1, changes[split...])
                if newLeft == left && newRight == right { return ref }
                return try combine(depth: depth, position: position, newLeft, newRight, pathKey: first.keyHash)
            }
        }

        /// Builds the canonical subtree at `depth` holding exactly `entries` (sorted, distinct),
        /// where nothing is stored yet at or below this position.
        mutating func build(depth: Int, _ entries: ArraySlice<([UInt8], [UInt8])>) throws -> Ref {
            guard let first = entries.first else { return .empty }
            let position = positionKey(depth: depth, keyHash: first.0)
            if entries.count == 1 {
                writes[position] = .some([1] + first.0 + first.1)
                return Ref(kind: .leaf, hash: leafHash(keyHash: first.0, valueHash: first.1), leaf: (first.0, first.1))
            }
            precondition(depth < 256, "two distinct state keys share a 256-bit hash")
            let split = entries.firstIndex { bit($0.0, depth) == 1 } ?? entries.endIndex
            let left = try build(depth: depth + 1, entries[..<split])
            let right = try build(depth: depth + 1, entries[split...])
            return try combine(depth: depth, position: position, left, right, pathKey: first.0)
        }

        /// The node at `position` with children `left` and `right`, collapsing a single leaf
        /// upwards so that every leaf sits as high as possible.
        mutating func combine(depth: Int, position: [UInt8], _ left: Ref, _ right: Ref, pathKey: [UInt8]) throws -> Ref {
            switch (left.kind, right.kind) {
            case (.empty, .empty):
                writes[position] = .some(nil)
                return .empty
            case (.empty, .leaf), (.leaf, .empty):
                let single = left.kind == .leaf ? left : right
                let leaf = try single.leaf ?? loadLeaf(depth: depth + 1, pathKey: pathKey, right: left.kind == .empty)
                writes[positionKey(depth: depth + 1, keyHash: leaf.key)] = .some(nil)
                writes[position] = .some([1] + leaf.key + leaf.value)
                return Ref(kind: .leaf, hash: single.hash, leaf: leaf)
            default:
                var node: [UInt8] = [2]
                node.reserveCapacity(67)
                left.encode(into: &node)
                right.encode(into: &node)
                writes[position] = .some(node)
                return Ref(kind: .inner, hash: internalHash(left: left.hash, right: right.hash), leaf: nil)
            }
        }

        /// Loads an unchanged leaf that is the only child of the node at `depth - 1`.
        func loadLeaf(depth: Int, pathKey: [UInt8], right: Bool) throws -> (key: [UInt8], value: [UInt8]) {
            var path = pathKey
            let byte = (depth - 1) / 8, mask = UInt8(0x80) >> UInt8((depth - 1) % 8)
            if right { path[byte] |= mask } else { path[byte] &= ~mask }
            let raw = try readNode(positionKey(depth: depth, keyHash: path))
            precondition(raw.count == 65 && raw[0] == 1, "corrupt state tree leaf")
            return (Array(raw[1..<33]), Array(raw[33..<65]))
        }
    }

    // MARK: Proofs

    /// Walks from the root towards `SM3(key)` and returns the proof for `key` (inclusion when
    /// the key is present, non-inclusion otherwise).
    public static func proof(store: KeyValueStore, key: [UInt8]) throws -> StateProof {
        let keyHash = SM3.hash(key).bytes
        var ref = try loadRoot(store)
        var siblings: [Hash256] = []
        var depth = 0
        while true {
            switch ref.kind {
            case .empty:
                return StateProof(siblings: siblings, terminal: .empty)
            case .leaf:
                guard let raw = try store.get(positionKey(depth: depth, keyHash: keyHash), column: column),
                      raw.count == 65, raw[0] == 1 else { preconditionFailure("state tree leaf missing") }
                return StateProof(siblings: siblings,
                                  terminal: .leaf(keyHash: Hash256(unchecked: Array(raw[1..<33])),
                                                  valueHash: Hash256(unchecked: Array(raw[33..<65]))))
            case .inner:
                guard let raw = try store.get(positionKey(depth: depth, keyHash: keyHash), column: column),
                      raw.count == 67, raw[0] == 2 else { preconditionFailure("state tree node missing") }
                let left = Ref.decode(raw[1..<34]), right = Ref.decode(raw[34..<67])
                if bit(keyHash, depth) == 0 {
                    siblings.append(Hash256(unchecked: right.hash)); ref = left
                } else {
                    siblings.append(Hash256(unchecked: left.hash)); ref = right
                }
                depth += 1
            }
        }
    }
}

/// A Merkle proof that a state key has a given value, or has none, under a state root.
/// Encoding (canonical): `varint n`, `n` sibling hashes from the root downwards, then a
/// terminal: `0x00` (empty subtree) or `0x01 || keyHash || valueHash` (a leaf).
public struct StateProof: Sendable, Equatable, CanonicalCodable {
    public enum Terminal: Sendable, Equatable {
        case empty
        case leaf(keyHash: Hash256, valueHash: Hash256)
    }

    public let siblings: [Hash256]
    public let terminal: Terminal

    public init(siblings: [Hash256], terminal: Terminal) {
        self.siblings = siblings
        self.terminal = terminal
    }

    public func encode(to e: inout CanonicalEncoder) {
        e.sequence(siblings) { e, h in e.value(h) }
        switch terminal {
        case .empty: e.u8(0)
        case .leaf(let k, let v): e.u8(1); e.value(k); e.value(v)
        }
    }

    public init(from d: inout CanonicalDecoder) throws {
        siblings = try d.sequence(limit: 256, field: "proof.siblings", minimumElementSize: 32) { d in try d.value(Hash256.self) }
        switch try d.u8() {
        case 0: terminal = .empty
        case 1: terminal = .leaf(keyHash: try d.value(Hash256.self), valueHash: try d.value(Hash256.self))
        case let t: throw CanonicalError.unknownTag(type: "StateProof.Terminal", tag: t)
        }
    }

    /// Checks the proof for `key` against `root`: with `value` non-nil, that the key holds
    /// exactly that value; with nil, that the key is absent.
    public func verify(root: Hash256, key: [UInt8], value: [UInt8]?) -> Bool {
        guard siblings.count <= 256 else { return false }
        let keyHash = SM3.hash(key).bytes
        var hash: [UInt8]
        switch terminal {
        case .empty:
            guard value == nil else { return false }
            hash = StateTree.emptyHash
        case .leaf(let leafKey, let leafValue):
            if let value {
                guard leafKey.bytes == keyHash, leafValue.bytes == SM3.hash(value).bytes else { return false }
            } else {
                // Another key occupies the position: it must share the path so far.
                guard leafKey.bytes != keyHash else { return false }
                for i in 0..<siblings.count where StateTree.bit(leafKey.bytes, i) != StateTree.bit(keyHash, i) { return false }
            }
            hash = StateTree.leafHash(keyHash: leafKey.bytes, valueHash: leafValue.bytes)
        }
        for depth in stride(from: siblings.count - 1, through: 0, by: -1) {
            let sibling = siblings[depth].bytes
            hash = StateTree.bit(keyHash, depth) == 0
                ? StateTree.internalHash(left: hash, right: sibling)
                : StateTree.internalHash(left: sibling, right: hash)
        }
        return hash == root.bytes
    }
}
