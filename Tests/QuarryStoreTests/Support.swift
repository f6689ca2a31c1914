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
