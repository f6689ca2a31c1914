import Foundation
import QuarryCore
import QuarryStore
import Testing

/// Kills a real writer process with SIGKILL in the middle of a stream of synced batches,
/// several times over the same database, and checks after each kill that every
/// acknowledged batch survived whole and that no batch survived in part.
@Suite("Crash safety")
struct CrashTests {
    static let childName = "quarry-store-crash-child"
    static let keysPerBatch = 200
    static let rounds = 5

    /// The child executable: `QUARRY_STORE_CRASH_CHILD` if set, else next to the running test
    /// binary (SwiftPM puts every product of a build in one directory, and the test target
    /// depends on the child so it is built with the tests).
    static func childPath() throws -> String {
        if let path = ProcessInfo.processInfo.environment["QUARRY_STORE_CRASH_CHILD"] { return path }
        var directories: [URL] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            directories.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
        }
        if let exe = Bundle.main.executableURL { directories.append(exe.deletingLastPathComponent()) }
        for bundle in Bundle.allBundles { directories.append(bundle.bundleURL.deletingLastPathComponent()) }
        for directory in directories {
            let candidate = directory.appendingPathComponent(childName).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw ChildMissing(searched: directories.map(\.path))
    }

    struct ChildMissing: Error, CustomStringConvertible {
        var searched: [String]
        var description: String {
            "\(CrashTests.childName) not found in \(searched); build it (`swift build --build-tests`) "
                + "or set QUARRY_STORE_CRASH_CHILD to its path"
        }
    }

    /// One round: start the child, read its acknowledgements, SIGKILL it after `killAfter`
    /// of them plus `extraMicroseconds`, drain what it printed before dying. Returns the
    /// acknowledged batch numbers.
    static func runAndKill(child: String, path: String, killAfter: Int,
                           extraMicroseconds: UInt32) throws -> [UInt64] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: child)
        process.arguments = [path, String(keysPerBatch), "1000000"]
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let pid = process.processIdentifier
        // A watchdog so a stuck child cannot hang the test run; the checks below then fail.
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
        defer { watchdog.cancel() }

        var acks: [UInt64] = []
        var pending = Data()
        var killed = false
        let reader = stdout.fileHandleForReading
        while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }  // EOF: the child is gone
            pending.append(chunk)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...newline)
                guard line.hasPrefix("ack "), let n = UInt64(line.dropFirst(4)) else {
                    throw Failure("unexpected output from the child: \(line)")
                }
                acks.append(n)
            }
            if !killed && acks.count >= killAfter {
                usleep(extraMicroseconds)
                kill(pid, SIGKILL)
                killed = true
            }
        }
        process.waitUntilExit()
        let errors = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard killed, process.terminationReason == .uncaughtSignal, process.terminationStatus == SIGKILL else {
            throw Failure("the child ended on its own (status \(process.terminationStatus)) "
                          + "after \(acks.count) acks: \(errors)")
        }
        return acks
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Reads the database and returns how many batches it holds (batches 0..<count), after
    /// checking that each is whole and none is partial or out of sequence.
    static func verify(path: String) throws -> UInt64 {
        let store = try RocksDBStore(path: path, columns: ["crash"])
        defer { store.close() }
        var keysPerBatchFound: [UInt64: Int] = [:]
        try store.scan(column: "crash", from: [], to: nil) { key, value in
            #expect(key.count == 12 && value.count == 64)
            let n = key.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
            #expect(Array(value.prefix(8)) == bigEndian(n), "value of a key of batch \(n)")
            keysPerBatchFound[n, default: 0] += 1
            return true
        }
        var markers: [UInt64] = []
        try store.scan(column: "default", prefix: bytes("batch/")) { key, value in
            markers.append(key.dropFirst(6).reduce(0) { $0 << 8 | UInt64($1) })
            #expect(value == bigEndian(UInt32(keysPerBatch)))
            return true
        }
        let count = UInt64(markers.count)
        // Batches present are exactly 0..<count: a later one implies every earlier one.
        #expect(markers == Array(0..<count), "markers are not a gap-free sequence from 0")
        let keysWithoutMarker = Set(keysPerBatchFound.keys).subtracting(markers).sorted()
        let markersWithoutKeys = Set(markers).subtracting(keysPerBatchFound.keys).sorted()
        #expect(keysWithoutMarker.isEmpty && markersWithoutKeys.isEmpty,
                "partial batches: keys without marker \(keysWithoutMarker), marker without keys \(markersWithoutKeys)")
        for (n, found) in keysPerBatchFound where found != keysPerBatch {
            Issue.record("batch \(n) is partial: \(found) of \(keysPerBatch) keys")
        }
        return count
    }

    @Test(.timeLimit(.minutes(3)))
    func acknowledgedBatchesSurviveSIGKILLWholeAndNoneIsPartial() throws {
        let child = try Self.childPath()
        try withTemporaryDirectory { directory in
            let path = directory + "/db"
            var rng = SystemRandomNumberGenerator()
            var lastAcknowledged: UInt64? = nil
            for round in 0..<Self.rounds {
                let killAfter = Int.random(in: 1...25, using: &rng)
                let extra = UInt32.random(in: 0..<3_000, using: &rng)
                let acks = try Self.runAndKill(child: child, path: path, killAfter: killAfter,
                                               extraMicroseconds: extra)
                let context = Comment(rawValue: "round \(round), killed after \(killAfter) acks + \(extra) us")
                // The child resumes after the batches already stored, so acks continue the sequence.
                let firstExpected = lastAcknowledged.map { $0 + 1 } ?? 0
                #expect(acks.first == firstExpected, context)
                #expect(acks == Array(acks.indices.map { firstExpected + UInt64($0) }), context)
                let stored = try Self.verify(path: path)
                if let last = acks.last {
                    #expect(stored >= last + 1, "acknowledged batch \(last) missing; \(context)")
                    // At most the batch in flight at the kill can be there unacknowledged.
                    #expect(stored <= last + 2, context)
                }
                print("crash round \(round): \(acks.count) acks (last \(acks.last.map(String.init) ?? "none")), \(stored) batches stored, killed after \(killAfter) acks + \(extra) us")
                lastAcknowledged = stored == 0 ? nil : stored - 1
            }
        }
    }
}
