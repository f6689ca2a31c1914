import CRocksDB

/// RocksDB's per-thread performance counters (its "perf context"), for benchmarks and
/// diagnostics only: nothing in the node's state depends on them.
///
/// The counters count what the *calling thread* did inside RocksDB (block reads, time spent
/// loading index and filter blocks, ...) since the last `reset()`. Create, reset and read a
/// context on the thread whose reads you measure; `enable()` sets that thread's perf level.
public final class RocksDBPerfContext {
    /// The counters Quarry's benchmarks read (a subset of RocksDB's `PerfContext`).
    public enum Metric: CaseIterable, Sendable {
        /// Block reads served by the block cache.
        case blockCacheHits
        /// Blocks read from SST files (cache misses), their bytes and time.
        case blockReads, blockReadBytes, blockReadNanos
        /// Time point reads spent in SST files (after the memtables).
        case getFromFilesNanos
        /// Time spent loading index and filter blocks into the cache.
        case readIndexBlockNanos, readFilterBlockNanos
        /// Write path: write-ahead log, memtable insert, and stalls imposed by RocksDB.
        case writeWALNanos, writeMemtableNanos, writeDelayNanos

        var cValue: Int32 {
            switch self {
            case .blockCacheHits: return Int32(rocksdb_block_cache_hit_count)
            case .blockReads: return Int32(rocksdb_block_read_count)
            case .blockReadBytes: return Int32(rocksdb_block_read_byte)
            case .blockReadNanos: return Int32(rocksdb_block_read_time)
            case .getFromFilesNanos: return Int32(rocksdb_get_from_output_files_time)
            case .readIndexBlockNanos: return Int32(rocksdb_read_index_block_nanos)
            case .readFilterBlockNanos: return Int32(rocksdb_read_filter_block_nanos)
            case .writeWALNanos: return Int32(rocksdb_write_wal_time)
            case .writeMemtableNanos: return Int32(rocksdb_write_memtable_time)
            case .writeDelayNanos: return Int32(rocksdb_write_delay_time)
            }
        }
    }

    private let context: OpaquePointer

    public init() {
        context = rocksdb_perfcontext_create()!
    }

    deinit { rocksdb_perfcontext_destroy(context) }

    /// Sets the calling thread's perf level to count and time everything except mutexes
    /// (RocksDB's `kEnableTimeExceptForMutex`). Timing costs a clock read per measured step.
    public static func enable() { rocksdb_set_perf_level(3) }

    /// Turns the calling thread's counters off again (RocksDB's default).
    public static func disable() { rocksdb_set_perf_level(1) }

    public func reset() { rocksdb_perfcontext_reset(context) }

    public func value(_ metric: Metric) -> UInt64 { rocksdb_perfcontext_metric(context, metric.cValue) }
}
