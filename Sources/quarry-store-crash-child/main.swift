// quarry-store-crash-child: the victim of QuarryStoreTests' crash test.
//
//   quarry-store-crash-child DIR KEYS_PER_BATCH BATCHES_MAX
//
// Opens a RocksDBStore at DIR and writes synced batches 0, 1, 2, ... Batch n puts
// KEYS_PER_BATCH keys in column "crash" (key = u64be(n) || u32be(i), value = u64be(n) ||
// 56 filler bytes) and one marker in column "default" (key = "batch/" || u64be(n), value =
// u32be(KEYS_PER_BATCH)). After `write(sync: true)` returns it prints "ack n" on stdout
// (unbuffered). The parent SIGKILLs it at some moment and checks what survived. A new run
// on the same directory continues after the last stored batch.
import QuarryCore
import QuarryStore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func fail(_ message: String) -> Never {
    let line = Array("quarry-store-crash-child: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(2)
}

func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.bigEndian) { Array($0) }
}

let arguments = CommandLine.arguments
guard arguments.count == 4, let keysPerBatch = Int(arguments[2]), let batchesMax = Int(arguments[3]),
      keysPerBatch > 0, batchesMax > 0 else {
    fail("usage: quarry-store-crash-child DIR KEYS_PER_BATCH BATCHES_MAX")
}

let store: RocksDBStore
do {
    store = try RocksDBStore(path: arguments[1], columns: ["crash"])
} catch {
    fail("\(error)")
}

// Resume after the last batch a previous (killed) run stored.
var first: UInt64 = 0
do {
    try store.scanReverse(column: RocksDBStore.defaultColumn, from: Array("batch/".utf8),
                          to: prefixSuccessor(Array("batch/".utf8))) { key, _ in
        first = key.dropFirst(6).reduce(0) { $0 << 8 | UInt64($1) } + 1
        return false
    }
} catch {
    fail("reading the last batch: \(error)")
}

let filler = [UInt8](repeating: 0xa5, count: 56)
for n in first..<first + UInt64(batchesMax) {
    var batch = WriteBatch()
    for i in 0..<UInt32(keysPerBatch) {
        batch.put(bigEndian(n) + bigEndian(i), bigEndian(n) + filler, column: "crash")
    }
    batch.put(Array("batch/".utf8) + bigEndian(n), bigEndian(UInt32(keysPerBatch)),
              column: RocksDBStore.defaultColumn)
    do {
        try store.write(batch, sync: true)
    } catch {
        fail("batch \(n): \(error)")
    }
    let line = Array("ack \(n)\n".utf8)
    let written = line.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    if written != line.count { fail("stdout write failed") }
}
store.close()
