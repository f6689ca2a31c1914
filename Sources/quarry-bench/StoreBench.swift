import CRocksDB
import Foundation
import QuarryCore
import QuarryStore

// The storage benchmark: RocksDBStore (the Swift wrapper) against two references measured
// in the same run on the same disk: the same operations written directly against RocksDB's
// C API with the same options (the ratio is the wrapper's overhead), and RocksDB's own
// `db_bench` (Debian package rocksdb-tools) when it is installed.
//
// Keys are 16 bytes (a scrambled u64 then the index, both big-endian: random order on
// disk), values 100 bytes, as db_bench's defaults.
enum StoreBench {
    static let keyBytes = 16
    static let valueBytes = 100
    static let batchKeys = 1_000
    static let syncedBatches = 100
    static let plainBatches = 300
    static let singleSyncedWrites = 2_000
    static let pointReads = 200_000
    static let scans = 20_000
    static let scanLength = 100

    static func key(_ i: Int) -> [UInt8] {
        let scrambled = UInt64(i) &* 0x9e37_79b9_7f4a_7c15
        return withUnsafeBytes(of: scrambled.bigEndian) { Array($0) }
            + withUnsafeBytes(of: UInt64(i).bigEndian) { Array($0) }
    }

    static let value = [UInt8](repeating: 0x61, count: valueBytes)

    struct Figures {
        var syncedBatchKeysPerSecond = 0.0
        var plainBatchKeysPerSecond = 0.0
        var singleSyncedPerSecond = 0.0
        var pointReadsPerSecond = 0.0
        var scansPerSecond = 0.0

        func best(_ other: Figures) -> Figures {
            Figures(syncedBatchKeysPerSecond: max(syncedBatchKeysPerSecond, other.syncedBatchKeysPerSecond),
                    plainBatchKeysPerSecond: max(plainBatchKeysPerSecond, other.plainBatchKeysPerSecond),
                    singleSyncedPerSecond: max(singleSyncedPerSecond, other.singleSyncedPerSecond),
                    pointReadsPerSecond: max(pointReadsPerSecond, other.pointReadsPerSecond),
                    scansPerSecond: max(scansPerSecond, other.scansPerSecond))
        }
    }

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    static func temporaryDirectory(_ name: String) throws -> String {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("quarry-bench-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    // MARK: RocksDBStore

    static func measureStore(keys: [[UInt8]], readOrder: [Int]) throws -> Figures {
        let path = try temporaryDirectory("store")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try RocksDBStore(path: path, columns: ["bench"])
        defer { store.close() }
        var figures = Figures()
        var next = 0
        func writeBatches(_ count: Int, sync: Bool) throws -> Double {
            try seconds {
                for _ in 0..<count {
                    var batch = WriteBatch()
                    for _ in 0..<batchKeys {
                        batch.put(keys[next], value, column: "bench")
                        next += 1
                    }
                    try store.write(batch, sync: sync)
                }
            }
        }
        figures.syncedBatchKeysPerSecond = Double(syncedBatches * batchKeys) / (try writeBatches(syncedBatches, sync: true))
        figures.plainBatchKeysPerSecond = Double(plainBatches * batchKeys) / (try writeBatches(plainBatches, sync: false))
        let single = try seconds {
            for _ in 0..<singleSyncedWrites {
                var batch = WriteBatch()
                batch.put(keys[next], value, column: "bench")
                next += 1
                try store.write(batch, sync: true)
            }
        }
        figures.singleSyncedPerSecond = Double(singleSyncedWrites) / single
        var found = 0
        let reads = try seconds {
            for i in readOrder.prefix(pointReads) {
                if try store.get(keys[i], column: "bench") != nil { found += 1 }
            }
        }
        precondition(found == pointReads, "point reads missed keys: \(found)")
        figures.pointReadsPerSecond = Double(pointReads) / reads
        var visited = 0
        let scanned = try seconds {
            for i in readOrder.prefix(scans) {
                var n = 0
                try store.scan(column: "bench", from: keys[i], to: nil) { _, _ in
                    n += 1
                    return n < scanLength
                }
                visited += n
            }
        }
        precondition(visited > scans * scanLength / 2, "scans visited too few keys: \(visited)")
        figures.scansPerSecond = Double(scans) / scanned
        return figures
    }

    // MARK: The same operations on the raw C API

    /// Options equal to `RocksDBOptions()`'s defaults (see RocksDBOptions.makeCOptions).
    static func rawOptions() -> OpaquePointer {
        let defaults = RocksDBOptions()
        let options = rocksdb_options_create()!
        rocksdb_options_set_create_if_missing(options, 1)
        rocksdb_options_set_create_missing_column_families(options, 1)
        rocksdb_options_set_paranoid_checks(options, 1)
        rocksdb_options_set_max_open_files(options, defaults.maxOpenFiles)
        rocksdb_options_set_compression(options, defaults.compression.rawValue)
        rocksdb_options_set_bottommost_compression(options, defaults.bottommostCompression.rawValue)
        rocksdb_options_set_write_buffer_size(options, defaults.writeBufferBytes)
        rocksdb_options_set_max_total_wal_size(options, defaults.maxTotalWALBytes)
        rocksdb_options_set_max_background_jobs(options, defaults.backgroundJobs)
        rocksdb_options_set_wal_recovery_mode(options, 2)
        let table = rocksdb_block_based_options_create()!
        let cache = rocksdb_cache_create_lru(defaults.blockCacheBytes)!
        rocksdb_block_based_options_set_block_cache(table, cache)
        rocksdb_cache_destroy(cache)
        rocksdb_block_based_options_set_filter_policy(
            table, rocksdb_filterpolicy_create_bloom_full(Double(defaults.bloomBitsPerKey)))
        rocksdb_block_based_options_set_cache_index_and_filter_blocks(table, 1)
        rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(table, 1)
        rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(table, 1)
        if defaults.partitionedIndexAndFilters {
            rocksdb_block_based_options_set_format_version(table, 5)
            rocksdb_block_based_options_set_index_type(table, Int32(rocksdb_block_based_table_index_type_two_level_index_search))
            rocksdb_block_based_options_set_partition_filters(table, 1)
            rocksdb_block_based_options_set_metadata_block_size(table, defaults.metadataBlockBytes)
            rocksdb_block_based_options_set_pin_top_level_index_and_filter(table, 1)
        }
        rocksdb_options_set_block_based_table_factory(options, table)
        rocksdb_block_based_options_destroy(table)
        return options
    }

    static func check(_ error: UnsafeMutablePointer<CChar>?) {
        if let error { fatalError("RocksDB: \(String(cString: error))") }
    }

    static func measureRaw(keys: [[UInt8]], readOrder: [Int]) throws -> Figures {
        let path = try temporaryDirectory("raw")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let options = rawOptions()
        defer { rocksdb_options_destroy(options) }
        var error: UnsafeMutablePointer<CChar>? = nil
        let names: [UnsafePointer<CChar>?] = [UnsafePointer(strdup("default")), UnsafePointer(strdup("bench"))]
        defer { for n in names { free(UnsafeMutablePointer(mutating: n)) } }
        var handles: [OpaquePointer?] = [nil, nil]
        let db = rocksdb_open_column_families(options, path, 2, names, [options, options], &handles, &error)!
        check(error)
        let cf = handles[1]!
        defer {
            for h in handles { rocksdb_column_family_handle_destroy(h) }
            rocksdb_close(db)
        }
        let synced = rocksdb_writeoptions_create()!, plain = rocksdb_writeoptions_create()!
        rocksdb_writeoptions_set_sync(synced, 1)
        let readOptions = rocksdb_readoptions_create()!
        defer {
            rocksdb_writeoptions_destroy(synced); rocksdb_writeoptions_destroy(plain)
            rocksdb_readoptions_destroy(readOptions)
        }
        // Keys laid out flat, as C code would hold them.
        let flat: [CChar] = keys.flatMap { $0.map { CChar(bitPattern: $0) } }
        let valueC = value.map { CChar(bitPattern: $0) }
        var figures = Figures()
        var next = 0
        flat.withUnsafeBufferPointer { flatKeys in
            valueC.withUnsafeBufferPointer { v in
                let k = { (i: Int) in flatKeys.baseAddress! + i * keyBytes }
                func writeBatches(_ count: Int, _ writeOptions: OpaquePointer) -> Double {
                    seconds {
                        for _ in 0..<count {
                            let batch = rocksdb_writebatch_create()!
                            for _ in 0..<batchKeys {
                                rocksdb_writebatch_put_cf(batch, cf, k(next), keyBytes, v.baseAddress, valueBytes)
                                next += 1
                            }
                            rocksdb_write(db, writeOptions, batch, &error)
                            check(error)
                            rocksdb_writebatch_destroy(batch)
                        }
                    }
                }
                figures.syncedBatchKeysPerSecond = Double(syncedBatches * batchKeys) / writeBatches(syncedBatches, synced)
                figures.plainBatchKeysPerSecond = Double(plainBatches * batchKeys) / writeBatches(plainBatches, plain)
                figures.singleSyncedPerSecond = Double(singleSyncedWrites) / seconds {
                    for _ in 0..<singleSyncedWrites {
                        rocksdb_put_cf(db, synced, cf, k(next), keyBytes, v.baseAddress, valueBytes, &error)
                        check(error)
                        next += 1
                    }
                }
                var found = 0
                figures.pointReadsPerSecond = Double(pointReads) / seconds {
                    for i in readOrder.prefix(pointReads) {
                        if let slice = rocksdb_get_pinned_cf(db, readOptions, cf, k(i), keyBytes, &error) {
                            var length = 0
                            _ = rocksdb_pinnableslice_value(slice, &length)
                            found += length == valueBytes ? 1 : 0
                            rocksdb_pinnableslice_destroy(slice)
                        }
                        check(error)
                    }
                }
                precondition(found == pointReads, "raw point reads missed keys: \(found)")
                var visited = 0
                figures.scansPerSecond = Double(scans) / seconds {
                    for i in readOrder.prefix(scans) {
                        let iterator = rocksdb_create_iterator_cf(db, readOptions, cf)!
                        rocksdb_iter_seek(iterator, k(i), keyBytes)
                        var n = 0
                        while n < scanLength && rocksdb_iter_valid(iterator) != 0 {
                            var kl = 0, vl = 0
                            _ = rocksdb_iter_key(iterator, &kl)
                            _ = rocksdb_iter_value(iterator, &vl)
                            n += 1
                            rocksdb_iter_next(iterator)
                        }
                        visited += n
                        rocksdb_iter_destroy(iterator)
                    }
                }
                precondition(visited > scans * scanLength / 2, "raw scans visited too few keys")
            }
        }
        return figures
    }

    // MARK: db_bench

    static func findDBBench() -> String? {
        for candidate in ["/usr/bin/db_bench", "/usr/bin/rocksdb_db_bench", "/usr/local/bin/db_bench"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return nil
    }

    /// Runs db_bench and returns ops/sec per benchmark name.
    static func dbBench(_ tool: String, _ arguments: [String]) throws -> [String: Double] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        var result: [String: Double] = [:]
        // "fillrandom   :      12.345 micros/op 81004 ops/sec 1.234 seconds ..."
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count > 5, parts[1] == ":", parts[3] == "micros/op", parts[5] == "ops/sec",
                  let ops = Double(parts[4]) else { continue }
            result[String(parts[0])] = ops
        }
        return result
    }

    static func measureDBBench(_ tool: String) throws -> Figures {
        let common = ["--key_size=\(keyBytes)", "--value_size=\(valueBytes)", "--compression_type=lz4",
                      "--cache_size=\(RocksDBOptions().blockCacheBytes)", "--bloom_bits=10",
                      "--write_buffer_size=\(RocksDBOptions().writeBufferBytes)", "--threads=1",
                      "--histogram=0", "--statistics=0"]
        var figures = Figures()
        func run(_ extra: [String]) throws -> [String: Double] {
            let path = try temporaryDirectory("db_bench")
            defer { try? FileManager.default.removeItem(atPath: path) }
            return try dbBench(tool, ["--db=\(path)"] + common + extra)
        }
        figures.syncedBatchKeysPerSecond = try run(
            ["--benchmarks=fillrandom", "--num=\(syncedBatches * batchKeys)", "--batch_size=\(batchKeys)", "--sync=1"]
        )["fillrandom"] ?? 0
        figures.plainBatchKeysPerSecond = try run(
            ["--benchmarks=fillrandom", "--num=\(plainBatches * batchKeys)", "--batch_size=\(batchKeys)", "--sync=0"]
        )["fillrandom"] ?? 0
        figures.singleSyncedPerSecond = try run(
            ["--benchmarks=fillrandom", "--num=\(singleSyncedWrites)", "--batch_size=1", "--sync=1"]
        )["fillrandom"] ?? 0
        let total = (syncedBatches + plainBatches) * batchKeys + singleSyncedWrites
        let reads = try run(["--benchmarks=fillrandom,readrandom,seekrandom", "--num=\(total)",
                             "--batch_size=\(batchKeys)", "--reads=\(pointReads)",
                             "--seek_nexts=\(scanLength)"])
        figures.pointReadsPerSecond = reads["readrandom"] ?? 0
        // seekrandom runs `reads` seeks; db_bench counts one op per seek.
        figures.scansPerSecond = reads["seekrandom"] ?? 0
        return figures
    }

    // MARK: Report

    static func run() throws {
        let total = (syncedBatches + plainBatches) * batchKeys + singleSyncedWrites
        let keys = (0..<total).map(key)
        // Read the keys written by the batches, in a fixed pseudo-random order.
        var order = Array(0..<(syncedBatches + plainBatches) * batchKeys)
        var state: UInt64 = 42
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            order.swapAt(i, Int((state >> 33) % UInt64(i + 1)))
        }
        let readOrder = order + order

        print("keys \(keyBytes) B, values \(valueBytes) B, batches of \(batchKeys) keys; "
              + "temporary databases under \(FileManager.default.temporaryDirectory.path)")
        // Two alternating rounds, best of each: the machine is shared and the first
        // database to be created pays for cold caches.
        var raw = try measureRaw(keys: keys, readOrder: readOrder)
        var store = try measureStore(keys: keys, readOrder: readOrder)
        raw = raw.best(try measureRaw(keys: keys, readOrder: readOrder))
        store = store.best(try measureStore(keys: keys, readOrder: readOrder))
        let tool = findDBBench()
        let reference = try tool.map(measureDBBench)

        func fmt(_ x: Double) -> String {
            x >= 100 ? String(Int(x.rounded())) : String(format: "%.1f", x)
        }
        func pad(_ s: String, _ width: Int) -> String {
            s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
        }
        print("best of 2 rounds each for RocksDBStore and the raw loop; db_bench once")
        print(pad("operation", 34) + pad("RocksDBStore", 14) + pad("raw C API", 12) + pad("store/raw", 11)
              + pad("db_bench", 11))
        let rows: [(String, KeyPath<Figures, Double>, Double)] = [
            ("synced batches of 1000, keys/s", \.syncedBatchKeysPerSecond, 1),
            ("synced batches of 1000, batches/s", \.syncedBatchKeysPerSecond, Double(batchKeys)),
            ("unsynced batches of 1000, keys/s", \.plainBatchKeysPerSecond, 1),
            ("single-key synced writes/s", \.singleSyncedPerSecond, 1),
            ("point reads/s", \.pointReadsPerSecond, 1),
            ("range scans of \(scanLength) keys/s", \.scansPerSecond, 1),
        ]
        for (name, path, divisor) in rows {
            let s = store[keyPath: path] / divisor, r = raw[keyPath: path] / divisor
            let d = reference.map { fmt($0[keyPath: path] / divisor) } ?? "-"
            print(pad(name, 34) + pad(fmt(s), 14) + pad(fmt(r), 12) + pad(String(format: "%.2f", s / r), 11)
                  + pad(d, 11))
        }
        if tool == nil {
            print("db_bench not found (install Debian's rocksdb-tools for it); the raw C API loop is the reference")
        } else {
            print("db_bench: fillrandom --batch_size=\(batchKeys) --sync=1/0, fillrandom --batch_size=1 --sync=1, "
                  + "readrandom, seekrandom --seek_nexts=\(scanLength); its own defaults otherwise")
        }
    }
}
