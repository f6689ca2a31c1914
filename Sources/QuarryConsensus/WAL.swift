import QuarryCore

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4 and
/// RocksDB. crc32c("123456789") = 0xE3069283.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    public static func checksum<C: Collection>(_ bytes: C, initial: UInt32 = 0) -> UInt32 where C.Element == UInt8 {
        var c = ~initial
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return ~c
    }
}

/// The consensus write-ahead log's byte format (docs/spec/wal.md). Pure functions over
/// bytes: the file I/O belongs to the driver.
///
/// File: the 8-byte magic `QRYWAL01`, then records. Record: payload length (u32 BE),
/// CRC-32C of (length bytes || payload) (u32 BE), payload = the canonical encoding of one
/// `ConsensusInput`.
public enum WALFormat {
    public static let magic: [UInt8] = Array("QRYWAL01".utf8)
    public static let recordHeaderSize = 8
    /// Largest payload: a proposal with the largest value plus framing.
    public static let payloadMax = ConsensusLimits.valueBytesMax + 64 * 1024

    public static func encodeRecord(_ input: ConsensusInput) -> [UInt8] {
        encodeRecord(payload: input.canonicalBytes)
    }

    public static func encodeRecord(payload: [UInt8]) -> [UInt8] {
        precondition(payload.count <= payloadMax, "WAL record too large")
        var e = CanonicalEncoder(capacity: payload.count + recordHeaderSize)
        e.u32(UInt32(payload.count))
        let lengthBytes = e.bytes
        e.u32(CRC32C.checksum(payload, initial: CRC32C.checksum(lengthBytes)))
        e.fixed(payload)
        return e.bytes
    }

    /// Why a scan stopped before the end of the bytes.
    public enum TailProblem: Hashable, Sendable {
        case truncatedHeader
        case truncatedPayload
        case lengthOverLimit
        case checksumMismatch
        case undecodablePayload
    }

    public struct ScanResult: Sendable {
        /// Inputs of every intact record, in order.
        public var inputs: [ConsensusInput]
        /// Bytes up to the end of the last intact record: truncate the file here.
        public var validLength: Int
        /// Set when bytes after `validLength` were dropped.
        public var tailProblem: TailProblem?
    }

    public enum FileError: QuarryError, Equatable {
        case badMagic
        public var code: String { "wal.bad_magic" }
        public var description: String { "the file does not start with the WAL magic QRYWAL01" }
    }

    /// Reads records until the first one that is incomplete or corrupt; everything from
    /// there on is a torn tail (never trusted). An empty file or a file holding a prefix
    /// of the magic is an empty log.
    public static func scan(_ bytes: [UInt8]) throws(FileError) -> ScanResult {
        if bytes.count < magic.count {
            guard bytes.elementsEqual(magic.prefix(bytes.count)) else { throw .badMagic }
            return ScanResult(inputs: [], validLength: 0, tailProblem: bytes.isEmpty ? nil : .truncatedHeader)
        }
        guard bytes.prefix(magic.count).elementsEqual(magic) else { throw .badMagic }
        var offset = magic.count
        var inputs = [ConsensusInput]()
        var problem: TailProblem? = nil
        while offset < bytes.count {
            guard bytes.count - offset >= recordHeaderSize else { problem = .truncatedHeader; break }
            let length = Int(readU32(bytes, offset))
            let crc = readU32(bytes, offset + 4)
            guard length <= payloadMax else { problem = .lengthOverLimit; break }
            let start = offset + recordHeaderSize
            guard bytes.count - start >= length else { problem = .truncatedPayload; break }
            let payload = bytes[start..<(start + length)]
            let expected = CRC32C.checksum(payload, initial: CRC32C.checksum(bytes[offset..<(offset + 4)]))
            guard crc == expected else { problem = .checksumMismatch; break }
            guard let input = try? ConsensusInput(canonicalBytes: Array(payload)) else { problem = .undecodablePayload; break }
            inputs.append(input)
            offset = start + length
        }
        return ScanResult(inputs: inputs, validLength: problem == nil ? bytes.count : offset, tailProblem: problem)
    }

    private static func readU32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) << 24 | UInt32(b[o + 1]) << 16 | UInt32(b[o + 2]) << 8 | UInt32(b[o + 3])
    }

    /// Inputs to replay after a restart: those from the last `start` of `height` on.
    /// Returns an empty array when the log holds no start of that height (a lost WAL).
    public static func replayInputs(_ inputs: [ConsensusInput], height: Height) -> [ConsensusInput] {
        guard let i = inputs.lastIndex(where: {
            if case .start(let s) = $0 { return s.height == height }
            return false
        }) else { return [] }
        return Array(inputs[i...])
    }
}
