import Foundation
import QuarryCore
import QuarryStore

/// A fresh directory under the system temporary directory, unique per call (tests run in
/// parallel and RocksDB locks its directory). Removed when `body` returns or throws.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("quarry-store-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url.path)
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator, so a failing sequence of
/// random operations can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.bigEndian) { Array($0) }
}


/// The (key, value) pairs a scan visits, in order; stops after `limit` pairs.
func entries(limit: Int = .max,
             _ scan: (([UInt8], [UInt8]) throws -> Bool) throws -> Void) rethrows -> [Entry] {
    var result: [Entry] = []
    if limit <= 0 { return result }
    try scan { k, v in
        result.append(Entry(key: k, value: v))
        return result.count < limit
    }
    return result
}

struct Entry: Equatable, CustomStringConvertible {
    var key: [UInt8]
    var value: [UInt8]
    var description: String { "\(Hex.encode(key))=\(Hex.encode(value))" }
}

/// Keys of a scan, in visiting order.
func keys(_ scan: (([UInt8], [UInt8]) throws -> Bool) throws -> Void) rethrows -> [[UInt8]] {
    try entries(scan).map(\.key)
}
