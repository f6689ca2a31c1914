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

    public static func internalHash(left: [UInt8], right: [UInt8], using hasher: SM3Hasher? = nil) -> [UInt8] {
        // Hot loops (the tree update) pass a reused digest context; the bytes hashed are the same.
        if let hasher { return hasher.hash(tag: 1, left, right) }
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
        Position(depth: depth, path: Path(keyHash)).storageKey
    }

    /// A 256-bit path as four big-endian words: cheap to compare, hash and mask.
    struct Path: Hashable, Comparable {
        var w: (UInt64, UInt64, UInt64, UInt64)

        init<C: Collection>(_ bytes: C) where C.Element == UInt8 {
            precondition(bytes.count == 32, "paths are 32 bytes")
            var a: UInt64 = 0, b: UInt64 = 0, c: UInt64 = 0, d: UInt64 = 0
            var i = 0
            for byte in bytes {
                switch i >> 3 {
                case 0: a = a << 8 | UInt64(byte)
                case 1: b = b << 8 | UInt64(byte)
                case 2: c = c << 8 | UInt64(byte)
                default: d = d << 8 | UInt64(byte)
                }
                i += 1
            }
            w = (a, b, c, d)
        }

        init(_ w: (UInt64, UInt64, UInt64, UInt64)) { self.w = w }

        var bytes: [UInt8] {
            var out = [UInt8]()
            append(to: &out)
            return out
        }

        func append(to out: inout [UInt8]) {
            out.reserveCapacity(out.count + 32)
            for i in 0..<4 {
                let word = self.word(i)
                var shift: UInt64 = 56
                while true {
                    out.append(UInt8(truncatingIfNeeded: word >> shift))
                    if shift == 0 { break }
                    shift -= 8
                }
            }
        }

        func word(_ i: Int) -> UInt64 {
            switch i {
            case 0: return w.0
            case 1: return w.1
            case 2: return w.2
            default: return w.3
            }
        }

        @inline(__always) func bit(_ index: Int) -> Int { Int(truncatingIfNeeded: (word(index >> 6) >> UInt64(63 - (index & 63))) & 1) }

        /// The first `depth` bits, the rest zero.
        func masked(_ depth: Int) -> Path {
            func m(_ word: UInt64, _ i: Int) -> UInt64 {
                let bits = depth - 64 * i
                if bits <= 0 { return 0 }
                if bits >= 64 { return word }
                return word & ~(UInt64.max >> UInt64(bits))
            }
            return Path((m(w.0, 0), m(w.1, 1), m(w.2, 2), m(w.3, 3)))
        }

        func settingBit(_ index: Int, to value: Int) -> Path {
            let mask = UInt64(1) << UInt64(63 - (index & 63))
            func set(_ word: UInt64, _ i: Int) -> UInt64 {
                guard i == index >> 6 else { return word }
                return value == 1 ? word | mask : word & ~mask
            }
            return Path((set(w.0, 0), set(w.1, 1), set(w.2, 2), set(w.3, 3)))
        }

        static func == (a: Path, b: Path) -> Bool { a.w == b.w }
        static func < (a: Path, b: Path) -> Bool { a.w < b.w }
        func hash(into h: inout Hasher) { h.combine(w.0); h.combine(w.1); h.combine(w.2); h.combine(w.3) }
    }

    /// Where a node sits: its depth and the first `depth` bits of its path.
    struct Position: Hashable, Comparable {
        let depth: Int
        let prefix: Path

        init(depth: Int, path: Path) {
            self.depth = depth
            self.prefix = path.masked(depth)
        }

        /// `u16 depth || ceil(depth / 8) bytes of the prefix`.
        var storageKey: [UInt8] {
            var key: [UInt8] = [UInt8(depth >> 8), UInt8(depth & 0xff)]
            key.append(contentsOf: prefix.bytes[0..<((depth + 7) / 8)])
            return key
        }

        init?(storageKey key: [UInt8]) {
            guard key.count >= 2 else { return nil }
            let depth = Int(key[0]) << 8 | Int(key[1])
            guard depth <= 256, key.count == 2 + (depth + 7) / 8 else { return nil }
            var full = Array(key[2...])
            full.append(contentsOf: [UInt8](repeating: 0, count: 32 - full.count))
            self.init(depth: depth, path: Path(full))
        }

        static func < (a: Position, b: Position) -> Bool { (a.depth, a.prefix) < (b.depth, b.prefix) }
    }

    /// A reference to a subtree as its parent records it.
    struct Ref: Equatable {
        enum Kind: UInt8 { case empty = 0, leaf = 1, inner = 2 }
        var kind: Kind
        var hash: [UInt8]
        /// For a leaf loaded or built in this pass: its key and value hashes.
        var leaf: (key: Path, value: [UInt8])?

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

    static let rootPosition = Position(depth: 0xFFFF, path: Path((0, 0, 0, 0)))

    /// Reads the root reference from the store (empty tree when absent).
    static func loadRoot(_ store: KeyValueStore, cache: StateTreeCache? = nil) throws -> Ref {
        let raw = try cache.map { try $0.get(rootPosition, store: store) } ?? store.get(rootKey, column: column)
        guard let raw else { return .empty }
        return Ref.decode(raw[...])
    }

    /// The current state root.
    public static func root(in store: KeyValueStore) throws -> Hash256 {
        Hash256(unchecked: try loadRoot(store).hash)
    }

    /// Applies `changes` (any order, at most one per key) to the tree in `store` and adds the
    /// node writes to `batch`. Returns the new root. Reads only; the caller writes `batch`.
    public static func update(store: KeyValueStore, cache: StateTreeCache? = nil, changes: [Change],
                              batch: inout WriteBatch) throws -> Hash256 {
        var sorted = changes.map { (Path($0.keyHash), $0.valueHash) }
        sorted.sort { $0.0 < $1.0 }
        for i in sorted.indices.dropFirst() {
            precondition(sorted[i - 1].0 != sorted[i].0, "duplicate key in state tree update")
        }
        var updater = Updater(store: store, cache: cache)
        updater.writes.reserveCapacity(sorted.count * 4)
        let oldRoot = try loadRoot(store, cache: cache)
        let newRoot = try updater.apply(oldRoot, depth: 0, sorted[...])
        // Writes in position order: the batch is a deterministic function of the changes.
        for position in updater.writes.keys.sorted() {
            if let value = updater.writes[position]! {
                batch.put(position.storageKey, value, column: column)
            } else {
                batch.delete(position.storageKey, column: column)
            }
        }
        var rootBytes = [UInt8]()
        newRoot.encode(into: &rootBytes)
        batch.put(rootKey, rootBytes, column: column)
        return Hash256(unchecked: newRoot.hash)
    }

    typealias Entry = (Path, [UInt8]?)

    private struct Updater {
        let store: KeyValueStore
        let cache: StateTreeCache?
        /// One reused digest context for the pass's node hashes.
        let hasher = SM3Hasher()
        /// Position -> node bytes (nil: delete).
        var writes: [Position: [UInt8]?] = [:]

        init(store: KeyValueStore, cache: StateTreeCache?) { self.store = store; self.cache = cache }

        /// Reads a committed node. Positions are read before this pass writes them (the pass
        /// goes top-down and subtrees are disjoint), so pending writes need not be consulted.
        func readNode(_ position: Position) throws -> [UInt8] {
            let raw = try cache.map { try $0.get(position, store: store) } ?? store.get(position.storageKey, column: StateTree.column)
            guard let raw else { preconditionFailure("state tree node missing at depth \(position.depth)") }
            return raw
        }

        mutating func apply(_ ref: Ref, depth: Int, _ changes: ArraySlice<Entry>) throws -> Ref {
            guard let first = changes.first else { return ref }
            let position = Position(depth: depth, path: first.0)
            switch ref.kind {
            case .empty:
                let entries = changes.compactMap { c in c.1.map { (c.0, $0) } }
                return try build(depth: depth, entries[...])
            case .leaf:
                let raw = try readNode(position)
                precondition(raw.count == 65 && raw[0] == 1, "corrupt state tree leaf")
                let leafKey = Path(raw[1..<33]), leafValue = Array(raw[33..<65])
                var entries: [(Path, [UInt8])] = []
                entries.reserveCapacity(changes.count + 1)
                var placed = false
                for c in changes {
                    if !placed && leafKey < c.0 {
                        entries.append((leafKey, leafValue)); placed = true
                    }
                    if c.0 == leafKey { placed = true }
                    if let v = c.1 { entries.append((c.0, v)) }
                }
                if !placed { entries.append((leafKey, leafValue)) }
                let result = try build(depth: depth, entries[...])
                if result.kind == .empty { writes[position] = .some(nil) }
                return result
            case .inner:
                let raw = try readNode(position)
                precondition(raw.count == 67 && raw[0] == 2, "corrupt state tree node")
                let left = Ref.decode(raw[1..<34]), right = Ref.decode(raw[34..<67])
                let split = changes.firstIndex { $0.0.bit(depth) == 1 } ?? changes.endIndex
                let newLeft = try apply(left, depth: depth + 1, changes[..<split])
                let newRight = try apply(right, depth: depth + 1, changes[split...])
                if newLeft == left && newRight == right { return ref }
                return try combine(depth: depth, position: position, newLeft, newRight)
            }
        }

        /// Builds the canonical subtree at `depth` holding exactly `entries` (sorted, distinct),
        /// where nothing is stored yet at or below this position.
        mutating func build(depth: Int, _ entries: ArraySlice<(Path, [UInt8])>) throws -> Ref {
            guard let first = entries.first else { return .empty }
            let position = Position(depth: depth, path: first.0)
            if entries.count == 1 {
                var node: [UInt8] = [1]
                node.reserveCapacity(65)
                first.0.append(to: &node)
                node.append(contentsOf: first.1)
                writes[position] = .some(node)
                var hashInput = node
                hashInput[0] = 0
                return Ref(kind: .leaf, hash: hasher.hash(hashInput), leaf: (first.0, first.1))
            }
            precondition(depth < 256, "two distinct state keys share a 256-bit hash")
            let split = entries.firstIndex { $0.0.bit(depth) == 1 } ?? entries.endIndex
            let left = try build(depth: depth + 1, entries[..<split])
            let right = try build(depth: depth + 1, entries[split...])
            return try combine(depth: depth, position: position, left, right)
        }

        /// The node at `position` with children `left` and `right`, collapsing a single leaf
        /// upwards so that every leaf sits as high as possible.
        mutating func combine(depth: Int, position: Position, _ left: Ref, _ right: Ref) throws -> Ref {
            switch (left.kind, right.kind) {
            case (.empty, .empty):
                writes[position] = .some(nil)
                return .empty
            case (.empty, .leaf), (.leaf, .empty):
                let single = left.kind == .leaf ? left : right
                let childPosition = Position(depth: depth + 1, path: position.prefix.settingBit(depth, to: left.kind == .empty ? 1 : 0))
                let leaf: (key: Path, value: [UInt8])
                if let known = single.leaf {
                    leaf = known
                } else {
                    let raw = try readNode(childPosition)
                    precondition(raw.count == 65 && raw[0] == 1, "corrupt state tree leaf")
                    leaf = (Path(raw[1..<33]), Array(raw[33..<65]))
                }
                writes[childPosition] = .some(nil)
                var node: [UInt8] = [1]
                node.reserveCapacity(65)
                leaf.key.append(to: &node)
                node.append(contentsOf: leaf.value)
                writes[position] = .some(node)
                return Ref(kind: .leaf, hash: single.hash, leaf: leaf)
            default:
                var node: [UInt8] = [2]
                node.reserveCapacity(67)
                left.encode(into: &node)
                right.encode(into: &node)
                writes[position] = .some(node)
                return Ref(kind: .inner, hash: StateTree.internalHash(left: left.hash, right: right.hash, using: hasher), leaf: nil)
            }
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

/// An in-memory copy of committed state-tree nodes, so that an update reads RocksDB only
/// for nodes it has not seen. It only ever holds what the store holds: nodes enter when read
/// from the store and change only through `apply(_:)` with a committed write batch. At most
/// `capacity` nodes are kept (new nodes are not added beyond it; existing ones stay coherent).
public final class StateTreeCache {
    private var nodes: [StateTree.Position: [UInt8]] = [:]
    public let capacity: Int

    public init(capacity: Int) { self.capacity = capacity }

    public var count: Int { nodes.count }

    func get(_ position: StateTree.Position, store: KeyValueStore) throws -> [UInt8]? {
        if let v = nodes[position] { return v }
        let key = position == StateTree.rootPosition ? StateTree.rootKey : position.storageKey
        guard let v = try store.get(key, column: StateTree.column) else { return nil }
        if nodes.count < capacity { nodes[position] = v }
        return v
    }

    /// Loads committed nodes from the store, in key order, until the cache is full, so that
    /// updates after a restart do not read nodes from disk one by one. Returns how many
    /// nodes it holds afterwards. It only copies what the store holds: state roots do not
    /// depend on it.
    @discardableResult
    public func preload(from store: KeyValueStore) throws -> Int {
        try store.scan(column: StateTree.column, from: [], to: nil) { key, value in
            guard nodes.count < capacity else { return false }
            if key == StateTree.rootKey {
                nodes[StateTree.rootPosition] = value
            } else {
                guard let p = StateTree.Position(storageKey: key) else { preconditionFailure("malformed state tree key") }
                nodes[p] = value
            }
            return true
        }
        return nodes.count
    }

    /// Mirrors the state-tree writes of a batch that has just been committed to the store.
    public func apply(_ batch: WriteBatch) {
        func position(_ key: [UInt8]) -> StateTree.Position {
            if key == StateTree.rootKey { return StateTree.rootPosition }
            guard let p = StateTree.Position(storageKey: key) else { preconditionFailure("malformed state tree key") }
            return p
        }
        for op in batch.operations {
            switch op {
            case .put(let column, let key, let value) where column == StateTree.column:
                let p = position(key)
                if nodes[p] != nil || nodes.count < capacity { nodes[p] = value }
            case .delete(let column, let key) where column == StateTree.column:
                nodes[position(key)] = nil
            default: break
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
