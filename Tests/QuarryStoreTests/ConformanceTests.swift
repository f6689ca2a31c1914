import Foundation
import QuarryCore
import QuarryStore
import Testing

/// The same seeded random operations against `InMemoryStore` (the reference) and
/// `RocksDBStore`; every read must agree. Keys are short and drawn from bytes at the edges
/// of bytewise order (0x00, 0x7f, 0x80, 0xff, ...), the empty key included, so prefixes,
/// bounds and ordering get exercised; the RocksDB side is also flushed and reopened now
/// and then so reads cross memtables, SST files and recovery.
@Suite("KeyValueStore conformance")
struct ConformanceTests {
    static let columns = ["default", "a", "b"]
    static let alphabet: [UInt8] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff]

    static func randomKey(_ rng: inout SplitMix64) -> [UInt8] {
        (0..<Int.random(in: 0...3, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
    }

    static func randomValue(_ rng: inout SplitMix64) -> [UInt8] {
        (0..<Int.random(in: 0...6, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    @Test(arguments: [1 as UInt64, 2, 3, 0xdead_beef])
    func rocksDBMatchesInMemoryStore(seed: UInt64) throws {
        try withTemporaryDirectory { path in
            var rng = SplitMix64(seed: seed)
            let reference = InMemoryStore()
            var rocks = try RocksDBStore(path: path, columns: Self.columns)
            defer { rocks.close() }
            var reads = 0
            for step in 0..<600 {
                let column = Self.columns.randomElement(using: &rng)!
                let context = Comment(rawValue: "seed \(seed), step \(step)")
                switch Int.random(in: 0..<100, using: &rng) {
                case 0..<45:  // a batch of puts and deletes over all columns
                    var batch = WriteBatch()
                    for _ in 0..<Int.random(in: 1...6, using: &rng) {
                        let c = Self.columns.randomElement(using: &rng)!
                        if Int.random(in: 0..<3, using: &rng) == 0 {
                            batch.delete(Self.randomKey(&rng), column: c)
                        } else {
                            batch.put(Self.randomKey(&rng), Self.randomValue(&rng), column: c)
                        }
                    }
                    let sync = Bool.random(using: &rng)
                    try reference.write(batch, sync: sync)
                    try rocks.write(batch, sync: sync)
                case 45..<60:  // point read
                    let key = Self.randomKey(&rng)
                    #expect(try rocks.get(key, column: column) == reference.get(key, column: column), context)
                    reads += 1
                case 60..<78:  // bounded range (possibly empty or reversed), possibly cut short
                    let start = Self.randomKey(&rng)
                    let end: [UInt8]? = Bool.random(using: &rng) ? Self.randomKey(&rng) : nil
                    let limit = Bool.random(using: &rng) ? Int.max : Int.random(in: 0...5, using: &rng)
                    let expected = try entries(limit: limit) {
                        try reference.scan(column: column, from: start, to: end, $0)
                    }
                    let actual = try entries(limit: limit) { try rocks.scan(column: column, from: start, to: end, $0) }
                    #expect(actual == expected, context)
                    let all = try entries { try reference.scan(column: column, from: start, to: end, $0) }
                    let reversed = try entries { try rocks.scanReverse(column: column, from: start, to: end, $0) }
                    #expect(reversed == all.reversed(), context)
                    reads += 1
                case 78..<92:  // prefix scan
                    let prefix = Self.randomKey(&rng)
                    let expected = try entries { try reference.scan(column: column, prefix: prefix, $0) }
                    let actual = try entries { try rocks.scan(column: column, prefix: prefix, $0) }
                    #expect(actual == expected, context)
                    reads += 1
                case 92..<97:
                    try rocks.flush()
                default:
                    rocks.close()
                    rocks = try RocksDBStore(path: path, columns: Self.columns)
                }
            }
            // Finally every column in full.
            for column in Self.columns {
                let expected = try entries { try reference.scan(column: column, from: [], to: nil, $0) }
                let actual = try entries { try rocks.scan(column: column, from: [], to: nil, $0) }
                #expect(actual == expected, "seed \(seed), column \(column)")
                #expect(actual.count == reference.count(column: column))
            }
            #expect(reads > 100)
        }
    }
}
