import Foundation
import Testing
import QuarryConsensus
import QuarryCore
@testable import QuarryNode

@Suite struct ConsensusFilesTests {
    func tempPath(_ name: String) throws -> (dir: String, path: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-node-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return (dir, dir + "/" + name)
    }

    func start(_ h: UInt64) throws -> HeightStart {
        HeightStart(height: h, validators: try ValidatorSet(validators: [Validator(publicKey: [1, 2, 3], power: 1)]),
                    previousBlockTime: 1_000 * h)
    }

    @Test func walAppendsReopensAndTruncatesATornTail() throws {
        let (dir, path) = try tempPath("wal")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let wal = try FileWAL(path: path)
            #expect(wal.recovered.inputs.isEmpty)
            try wal.rotate(start: start(5))
            try wal.append(.tick(10))
            try wal.append(.tick(20))
            #expect(wal.hasUnsyncedRecords)
            try wal.sync()
        }
        let reopened = try FileWAL(path: path)
        #expect(reopened.recovered.inputs == [.start(try start(5)), .tick(10), .tick(20)])
        #expect(reopened.recovered.tailProblem == nil)
        try reopened.append(.tick(30))
        try reopened.sync()

        // Tear the last record half-way: reopening drops it and keeps the rest.
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        let full = bytes.count
        bytes.removeLast(5)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let torn = try FileWAL(path: path)
        #expect(torn.recovered.inputs == [.start(try start(5)), .tick(10), .tick(20)])
        #expect(torn.recovered.tailProblem == .truncatedPayload)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
        #expect(size == full - WALFormat.encodeRecord(.tick(30)).count, "the torn tail is cut from the file")
        // Appends after the truncation land right after the intact records.
        try torn.append(.tick(40))
        try torn.sync()
        #expect(try FileWAL(path: path).recovered.inputs.last == .tick(40))
        #expect(WALFormat.replayInputs(try FileWAL(path: path).recovered.inputs, height: 5).count == 4)
        #expect(WALFormat.replayInputs(try FileWAL(path: path).recovered.inputs, height: 6).isEmpty)
    }

    @Test func walRotationKeepsOneHeight() throws {
        let (dir, path) = try tempPath("wal")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wal = try FileWAL(path: path)
        try wal.rotate(start: start(1))
        try wal.append(.tick(1))
        try wal.rotate(start: start(2))
        try wal.append(.tick(2))
        try wal.sync()
        #expect(try FileWAL(path: path).recovered.inputs == [.start(try start(2)), .tick(2)])
    }

    @Test func walRefusesAForeignFile() throws {
        let (dir, path) = try tempPath("wal")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("definitely not a wal".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: NodeFileError.self) { _ = try FileWAL(path: path) }
    }

    @Test func signedStateRoundTripsAndDamageIsAnError() throws {
        let (dir, path) = try tempPath("signed")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = SignedStateFile(path: path)
        #expect(try file.load() == SignedState())
        let state = SignedState(records: [SignedRecord(height: 7, round: 2, step: .prevote, blockID: nil, validRound: nil, timestamp: 99, signature: [UInt8](repeating: 5, count: 64))])
        try file.save(state)
        #expect(try file.load() == state)
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 1] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(throws: NodeFileError.self) { _ = try file.load() }
    }
}
