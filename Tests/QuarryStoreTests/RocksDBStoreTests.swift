import Foundation
import QuarryCore
import QuarryStore
import Testing

@Suite("RocksDBStore")
struct RocksDBStoreTests {
    @Test func reopenKeepsSyncedAndUnsyncedWritesAndColumns() throws {
        try withTemporaryDirectory { path in
            let store = try RocksDBStore(path: path, columns: ["blocks", "state"])
            #expect(store.columns == ["blocks", "default", "state"])
            var batch = WriteBatch()
            batch.put(bytes("h1"), bytes("block one"), column: "blocks")
            batch.put(bytes("acct"), bytes("100"), column: "state")
            try store.write(batch, sync: true)
            var second = WriteBatch()
            second.put(bytes("h2"), bytes("block two"), column: "blocks")
            try store.write(second, sync: false)
            store.close()
            #expect(store.isClosed)

            // Reopen asking for no column: the existing ones are listed and opened.
            let reopened = try RocksDBStore(path: path)
            defer { reopened.close() }
            #expect(reopened.columns == ["blocks", "default", "state"])
            #expect(try reopened.get(bytes("h1"), column: "blocks") == bytes("block one"))
            #expect(try reopened.get(bytes("h2"), column: "blocks") == bytes("block two"))
            #expect(try reopened.get(bytes("acct"), column: "state") == bytes("100"))
            #expect(try reopened.get(bytes("acct"), column: "blocks") == nil)
        }
    }

    @Test func reopenWithAnExtraColumnCreatesIt() throws {
        try withTemporaryDirectory { path in
            try RocksDBStore(path: path, columns: ["a"]).close()
            let store = try RocksDBStore(path: path, columns: ["b"])
            defer { store.close() }
            #expect(store.columns == ["a", "b", "default"])
        }
    }

    @Test func unknownColumnIsAnErrorAndABadBatchWritesNothing() throws {
        try withTemporaryDirectory { path in
            let store = try RocksDBStore(path: path, columns: ["known"])
            defer { store.close() }
            #expect(throws: StoreError.unknownColumn("nope")) {
                try store.get(bytes("k"), column: "nope")
            }
            #expect(throws: StoreError.unknownColumn("nope")) {
                try store.scan(column: "nope", from: [], to: nil) { _, _ in true }
            }
            var batch = WriteBatch()
            batch.put(bytes("k1"), bytes("v1"), column: "known")
            batch.put(bytes("k2"), bytes("v2"), column: "nope")
            do {
                try store.write(batch, sync: true)
                Issue.record("a batch naming an unknown column was written")
            } catch let error as StoreError {
                #expect(error.code == "store.unknown_column")
                #expect(error.description.contains("nope"))
            }
            #expect(try store.get(bytes("k1"), column: "known") == nil)
        }
    }

    @Test func invalidColumnNamesAreRejected() throws {
        try withTemporaryDirectory { path in
            for name in ["", "a\u{0}b", String(repeating: "x", count: 256)] {
                #expect(throws: StoreError.self) { try RocksDBStore(path: path, columns: [name]) }
            }
        }
    }

    @Test func everyUseAfterCloseThrowsClosed() throws {
        try withTemporaryDirectory { path in
            let store = try RocksDBStore(path: path)
            store.close()
            store.close()  // idempotent
            #expect(throws: StoreError.closed) { try store.get([1], column: "default") }
            #expect(throws: StoreError.closed) { try store.write(WriteBatch(), sync: true) }
            #expect(throws: StoreError.closed) {
                try store.scan(column: "default", from: [], to: nil) { _, _ in true }
            }
            #expect(throws: StoreError.closed) { try store.snapshot() }
            #expect(throws: StoreError.closed) { try store.flush() }
        }
    }

    @Test func batchesApplyInOrderAndAtomicallyAcrossColumns() throws {
        try withTemporaryDirectory { path in
            let store = try RocksDBStore(path: path, columns: ["a", "b"])
            defer { store.close() }
            var setup = WriteBatch()
            setup.put(bytes("old"), bytes("1"), column: "a")
            try store.write(setup, sync: true)

            var batch = WriteBatch()
            batch.put(bytes("x"), bytes("1"), column: "a")
            batch.put(bytes("y"), bytes("2"), column: "b")
            batch.delete(bytes("old"), column: "a")
            batch.put(bytes("z"), bytes("first"), column: "b")
            batch.put(bytes("z"), bytes("second"), column: "b")  // later operation wins
            batch.put(bytes("gone"), bytes("v"), column: "a")
            batch.delete(bytes("gone"), column: "a")
            try store.write(batch, sync: true)

            #expect(try store.get(bytes("x"), column: "a") == bytes("1"))
            #expect(try store.get(bytes("y"), column: "b") == bytes("2"))
            #expect(try store.get(bytes("old"), column: "a") == nil)
            #expect(try store.get(bytes("z"), column: "b") == bytes("second"))
            #expect(try store.get(bytes("gone"), column: "a") == nil)
            // An empty batch is fine, synced or not.
            try store.write(WriteBatch(), sync: true)
            try store.write(WriteBatch(), sync: false)
        }
    }

    @Test func deletesHideKeysInMemtableAndOnDisk() throws {
        try withTemporaryDirectory { path in
            let store = try RocksDBStore(path: path)
            defer { store.close() }
            var batch = WriteBatch()
            for i in 0..<10 as Range<UInt8> { batch.put([i], [i, i], column: "default") }
            try store.write(batch, sync: false)
            try store.flush()  // the puts now sit in an SST file
            var deletes = WriteBatch()
            deletes.delete([3], column: "default")
            deletes.delete([7], column: "default")
            deletes.delete([200], column: "default")  // absent: a no-op
            try store.write(deletes, sync: true)
            #expect(try store.get([3], column: "default") == nil)
            #expect(try store.get([4], column: "default") == [4, 4])
            let expected: [[UInt8]] = [[0], [1], [2], [4], [5], [6], [8], [9]]
            #expect(try keys { try store.scan(column: "default", from: [], to: nil, $0) } == expected)
            try store.flush()  // the tombstones too
            #expect(try keys { try store.scan(column: "default", from: [], to: nil, $0) } == expected)
            #expect(try keys { try store.scanReverse(column: "default", from: [], to: nil, $0) }
                    == expected.reversed())
        }
    }

    @Test func emptyValuesAndEmptyKeysAreNotAbsence() throws {
        try withTemporaryDirectory { path in
            let store = try RocksDBStore(path: path)
            defer { store.close() }
            var batch = WriteBatch()
            batch.put([], bytes("value of the empty key"), column: "default")
            batch.put(bytes("k"), [], column: "default")
            try store.write(batch, sync: true)
            #expect(try store.get([], column: "default") == bytes("value of the empty key"))
            #expect(try store.get(bytes("k"), column: "default") == [])
            #expect(try store.get(bytes("other"), column: "default") == nil)
            try store.flush()
            #expect(try store.get(bytes("k"), column: "default") == [])
            #expect(try store.get([], column: "default") == bytes("value of the empty key"))
        }
    }

    /// Keys chosen around the edges of bytewise order: the empty key, 0x00, 0xff runs.
    static let edgeKeys: [[UInt8]] = [
        [], [0x00], [0x00, 0x00], [0x00, 0xff], [0x01], [0x01, 0xff], [0x01, 0xff, 0xff], [0x02],
        [0x7f], [0x80], [0xfe, 0xff], [0xff], [0xff, 0x00], [0xff, 0xff], [0xff, 0xff, 0xff],
    ]

    @Test(arguments: [false, true])
    func scansHonourBoundsAndPrefixesInBytewiseOrder(flushed: Bool) throws {
        try withTemporaryDirectory { path in
            let store = try RocksDBStore(path: path)
            defer { store.close() }
            var batch = WriteBatch()
            for key in Self.edgeKeys.shuffled() { batch.put(key, key + [0xaa], column: "default") }
            try store.write(batch, sync: true)
            if flushed { try store.flush() }
            func forward(_ start: [UInt8], _ end: [UInt8]?) throws -> [[UInt8]] {
                try keys { try store.scan(column: "default", from: start, to: end, $0) }
            }
            func reverse(_ start: [UInt8], _ end: [UInt8]?) throws -> [[UInt8]] {
                try keys { try store.scanReverse(column: "default", from: start, to: end, $0) }
            }
            func prefix(_ p: [UInt8]) throws -> [[UInt8]] {
                try keys { try store.scan(column: "default", prefix: p, $0) }
            }
            // The table above is already in ascending bytewise order.
            #expect(try forward([], nil) == Self.edgeKeys)
            #expect(try reverse([], nil) == Self.edgeKeys.reversed())
            #expect(try forward([0x01], [0x02]) == [[0x01], [0x01, 0xff], [0x01, 0xff, 0xff]])
            #expect(try reverse([0x01], [0x02]) == [[0x01, 0xff, 0xff], [0x01, 0xff], [0x01]])
            #expect(try forward([0x00, 0x01], [0x01, 0xff]) == [[0x00, 0xff], [0x01]])
            #expect(try forward([0xff], nil) == [[0xff], [0xff, 0x00], [0xff, 0xff], [0xff, 0xff, 0xff]])
            #expect(try forward([0xff, 0xff, 0xff, 0x00], nil) == [])
            #expect(try forward([], [0x00]) == [[]])
            #expect(try forward([], []) == [])
            #expect(try forward([0x02], [0x02]) == [])
            #expect(try forward([0x03], [0x02]) == [])  // start after end: nothing
            #expect(try reverse([0x03], [0x02]) == [])
            #expect(try prefix([0x01]) == [[0x01], [0x01, 0xff], [0x01, 0xff, 0xff]])
            #expect(try prefix([0xff]) == [[0xff], [0xff, 0x00], [0xff, 0xff], [0xff, 0xff, 0xff]])
            #expect(try prefix([0xff, 0xff]) == [[0xff, 0xff], [0xff, 0xff, 0xff]])
            #expect(try prefix([0x00]) == [[0x00], [0x00, 0x00], [0x00, 0xff]])
            #expect(try prefix([]) == Self.edgeKeys)
            #expect(try prefix([0x03]) == [])
            // Values travel with their keys; a false return stops the scan.
            let firstTwo = try entries(limit: 2) { try store.scan(column: "default", from: [0x00], to: nil, $0) }
            #expect(firstTwo == [Entry(key: [0x00], value: [0x00, 0xaa]),
                                 Entry(key: [0x00, 0x00], value: [0x00, 0x00, 0xaa])])
            let lastOne = try entries(limit: 1) { try store.scanReverse(column: "default", from: [], to: nil, $0) }
            #expect(lastOne == [Entry(key: [0xff, 0xff, 0xff], value: [0xff, 0xff, 0xff, 0xaa])])
        }
    }

    @Test func scanCallbackErrorsPropagateAndTheStoreStaysUsable() throws {
        struct Stop: Error {}
        try withTemporaryDirectory { path in
            let store = try RocksDBStore(path: path)
            defer { store.close() }
            var batch = WriteBatch()
            batch.put([1], [1], column: "default")
            try store.write(batch, sync: false)
            #expect(throws: Stop.self) {
                try store.scan(column: "default", from: [], to: nil) { _, _ in throw Stop() }
            }
            // Reading the store from inside a scan callback works (shared lock is re-entrant).
            var inner: [[UInt8]?] = []
            try store.scan(column: "default", from: [], to: nil) { k, _ in
                inner.append(try store.get(k, column: "default"))
                return true
            }
            #expect(inner == [[1]])
        }
    }

    @Test func aScanDoesNotSeeWritesMadeDuringIt() throws {
        try withTemporaryDirectory { path in
            let store = try RocksDBStore(path: path)
            defer { store.close() }
            var batch = WriteBatch()
            for i in 0..<5 as Range<UInt8> { batch.put([i * 2], [i], column: "default") }
            try store.write(batch, sync: false)
            var visited: [[UInt8]] = []
            try store.scan(column: "default", from: [], to: nil) { key, _ in
                visited.append(key)
                var insert = WriteBatch()
                insert.put([key[0] + 1], [0xee], column: "default")  // just after the current key
                insert.delete([8], column: "default")                 // the last key
                try store.write(insert, sync: false)
                return true
            }
            #expect(visited == [[0], [2], [4], [6], [8]])
            #expect(try keys { try store.scan(column: "default", from: [], to: nil, $0) }
                    == [[0], [1], [2], [3], [4], [5], [6], [7], [9]])
        }
    }

    @Test func snapshotsIsolateLaterWrites() throws {
        try withTemporaryDirectory { path in
            let store = try RocksDBStore(path: path, columns: ["a"])
            defer { store.close() }
            var batch = WriteBatch()
            batch.put(bytes("k1"), bytes("v1"), column: "a")
            batch.put(bytes("k2"), bytes("v2"), column: "a")
            try store.write(batch, sync: true)

            let snapshot = try store.snapshot()
            var later = WriteBatch()
            later.put(bytes("k1"), bytes("changed"), column: "a")
            later.delete(bytes("k2"), column: "a")
            later.put(bytes("k3"), bytes("new"), column: "a")
            later.put(bytes("d"), bytes("new"), column: "default")
            try store.write(later, sync: true)
            try store.flush()  // older versions must survive a flush while pinned

            #expect(try snapshot.get(bytes("k1"), column: "a") == bytes("v1"))
            #expect(try snapshot.get(bytes("k2"), column: "a") == bytes("v2"))
            #expect(try snapshot.get(bytes("k3"), column: "a") == nil)
            #expect(try snapshot.get(bytes("d"), column: "default") == nil)
            #expect(try keys { try snapshot.scan(column: "a", prefix: bytes("k"), $0) }
                    == [bytes("k1"), bytes("k2")])
            #expect(try keys { try snapshot.scanReverse(column: "a", from: [], to: nil, $0) }
                    == [bytes("k2"), bytes("k1")])
            #expect(throws: StoreError.unknownColumn("zz")) { try snapshot.get([1], column: "zz") }
            // The live store sees the new state.
            #expect(try store.get(bytes("k1"), column: "a") == bytes("changed"))
            #expect(try keys { try store.scan(column: "a", prefix: bytes("k"), $0) }
                    == [bytes("k1"), bytes("k3")])

            snapshot.release()
            snapshot.release()  // idempotent
            #expect(throws: StoreError.snapshotReleased) { try snapshot.get(bytes("k1"), column: "a") }
        }
    }

    @Test func closingTheStoreReleasesItsSnapshots() throws {
        try withTemporaryDirectory { path in
            let store = try RocksDBStore(path: path)
            let snapshot = try store.snapshot()
            #expect(try snapshot.get([1], column: "default") == nil)
            store.close()
            #expect(throws: StoreError.closed) { try snapshot.get([1], column: "default") }
            snapshot.release()  // harmless after close
        }
    }

    @Test func aSecondOpenOfTheSameDirectoryIsLocked() throws {
        try withTemporaryDirectory { path in
            let first = try RocksDBStore(path: path)
            do {
                let second = try RocksDBStore(path: path)
                second.close()
                Issue.record("a second store opened a locked database")
            } catch let error as StoreError {
                guard case .locked(let lockedPath, _) = error else {
                    Issue.record("expected store.locked, got \(error.code): \(error)")
                    return
                }
                #expect(lockedPath == path)
                #expect(error.code == "store.locked")
                #expect(error.description.contains(path))
            }
            // Once the first store closes, the directory opens again.
            first.close()
            try RocksDBStore(path: path).close()
        }
    }

    /// SST files written with whole-file index/filters read correctly with partitioned ones
    /// and back (ADR 0048): present keys, absent keys (filters) and scans, after a flush and
    /// a reopen each way.
    @Test func indexLayoutsReadEachOthersFiles() throws {
        try withTemporaryDirectory { path in
            var whole = RocksDBOptions()
            whole.partitionedIndexAndFilters = false
            let partitioned = RocksDBOptions()
            #expect(partitioned.partitionedIndexAndFilters)
            func fill(_ options: RocksDBOptions, from start: UInt32) throws {
                let store = try RocksDBStore(path: path, options: options)
                defer { store.close() }
                var batch = WriteBatch()
                for i in start..<(start + 20_000) { batch.put(bigEndian(i * 2), bigEndian(i &* 7), column: "default") }
                try store.write(batch, sync: true)
                try store.flush()
            }
            func check(_ options: RocksDBOptions, upTo end: UInt32) throws {
                let store = try RocksDBStore(path: path, options: options)
                defer { store.close() }
                // RocksDB records the table options it opened with in its newest OPTIONS file.
                let optionFiles = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasPrefix("OPTIONS-") }
                let newest = try #require(optionFiles.max { Int($0.dropFirst(8)) ?? 0 < Int($1.dropFirst(8)) ?? 0 })
                let recorded = try String(contentsOfFile: path + "/" + newest, encoding: .utf8)
                if options.partitionedIndexAndFilters {
                    #expect(recorded.contains("index_type=kTwoLevelIndexSearch"))
                    #expect(recorded.contains("partition_filters=true"))
                } else {
                    #expect(recorded.contains("index_type=kBinarySearch"))
                    #expect(recorded.contains("partition_filters=false"))
                }
                for i in stride(from: 0 as UInt32, to: end, by: 97) {
                    #expect(try store.get(bigEndian(i * 2), column: "default") == bigEndian(i &* 7))
                    #expect(try store.get(bigEndian(i * 2 + 1), column: "default") == nil)
                }
                var count: UInt32 = 0
                try store.scan(column: "default", from: [], to: nil) { key, _ in
                    #expect(key == bigEndian(count * 2))
                    count += 1
                    return true
                }
                #expect(count == end)
            }
            try fill(whole, from: 0)
            try check(partitioned, upTo: 20_000)
            try fill(partitioned, from: 20_000)
            try check(whole, upTo: 40_000)
            try check(partitioned, upTo: 40_000)
        }
    }

    @Test func openFailuresAreTypedErrors() throws {
        try withTemporaryDirectory { path in
            var options = RocksDBOptions()
            options.createIfMissing = false
            do {
                _ = try RocksDBStore(path: path + "/missing", options: options)
                Issue.record("opened a missing database without create_if_missing")
            } catch let error as StoreError {
                #expect(error.code == "store.open_failed")
            }
            // A regular file where the directory should be.
            let file = path + "/file"
            #expect(FileManager.default.createFile(atPath: file, contents: Data([1, 2, 3])))
            do {
                _ = try RocksDBStore(path: file)
                Issue.record("opened a database inside a regular file")
            } catch let error as StoreError {
                #expect(error.code == "store.open_failed")
            }
        }
    }

    @Test func damagedTableFilesReportCorruption() throws {
        try withTemporaryDirectory { path in
            var options = RocksDBOptions()
            options.compression = .none
            options.bottommostCompression = .none
            options.bloomBitsPerKey = 0
            let store = try RocksDBStore(path: path, options: options)
            var batch = WriteBatch()
            for i in 0..<2_000 as Range<UInt32> {
                batch.put(bigEndian(i), [UInt8](repeating: 0x5a, count: 100), column: "default")
            }
            try store.write(batch, sync: true)
            try store.flush()
            store.close()

            let tables = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".sst") }
            #expect(tables.count == 1)
            for table in tables {
                // Flip bytes inside the first data blocks (the footer and index sit at the end).
                let handle = try #require(FileHandle(forUpdatingAtPath: path + "/" + table))
                try handle.seek(toOffset: 1_000)
                try handle.write(contentsOf: Data(repeating: 0x00, count: 4_000))
                try handle.close()
            }
            do {
                let reopened = try RocksDBStore(path: path, options: options)
                defer { reopened.close() }
                try reopened.scan(column: "default", from: [], to: nil) { _, _ in true }
                Issue.record("read damaged data without an error")
            } catch let error as StoreError {
                #expect(error.code == "store.corruption", "\(error)")
            }
        }
    }

    @Test func concurrentReadersAndWritersThenClose() throws {
        try withTemporaryDirectory { path in
            let store = try RocksDBStore(path: path)
            let threads = 4, batches = 50
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                for n in 0..<batches {
                    var batch = WriteBatch()
                    for i in 0..<10 { batch.put([UInt8(t), UInt8(n), UInt8(i)], [UInt8(n)], column: "default") }
                    #expect(throws: Never.self) { try store.write(batch, sync: false) }
                    let read = try? store.get([UInt8(t), UInt8(n), 9], column: "default")
                    #expect(read == [UInt8(n)])
                }
            }
            var count = 0
            try store.scan(column: "default", from: [], to: nil) { _, _ in count += 1; return true }
            #expect(count == threads * batches * 10)
            store.close()
        }
    }

    @Test func errorCodesAreStable() {
        let all: [(StoreError, String)] = [
            (.openFailed(path: "p", message: "m"), "store.open_failed"),
            (.locked(path: "p", message: "m"), "store.locked"),
            (.io(message: "m"), "store.io"),
            (.corruption(message: "m"), "store.corruption"),
            (.unknownColumn("c"), "store.unknown_column"),
            (.closed, "store.closed"),
            (.snapshotReleased, "store.snapshot_released"),
            (.invalidArgument(message: "m"), "store.invalid_argument"),
            (.other(message: "m"), "store.rocksdb"),
        ]
        for (error, code) in all {
            #expect(error.code == code)
            #expect(!error.description.isEmpty)
        }
    }
}
