import CRocksDB

/// The tunables of a `RocksDBStore`. The defaults suit a validator node on a small machine;
/// docs/spec/storage.md and docs/adr/0020-rocksdb-c-api.md explain each choice.
/// Every column family is opened with the same options and shares one block cache.
public struct RocksDBOptions: Sendable, Equatable {
    /// A compression algorithm for SST blocks. Debian's librocksdb links all of these.
    public enum Compression: Int32, Sendable, Equatable {
        case none = 0, snappy = 1, zlib = 2, lz4 = 4, zstd = 7
    }

    /// Create the database directory and files when they do not exist.
    public var createIfMissing = true
    /// Upper bound of the LRU cache of uncompressed blocks, shared by all columns.
    public var blockCacheBytes = 64 << 20
    /// Upper bound of SST files kept open (file descriptors); -1 means unlimited.
    public var maxOpenFiles: Int32 = 512
    /// Compression of SST levels above the bottom one (fast).
    public var compression: Compression = .lz4
    /// Compression of the bottommost level, where most data rests (dense).
    public var bottommostCompression: Compression = .zstd
    /// Size of one memtable per column before it is flushed.
    public var writeBufferBytes = 32 << 20
    /// Upper bound of the write-ahead log before column families are flushed to free it.
    public var maxTotalWALBytes: UInt64 = 256 << 20
    /// Background flush and compaction threads.
    public var backgroundJobs: Int32 = 2
    /// Bits per key of the Bloom filter on each SST (0 disables it); speeds up point reads
    /// of absent keys.
    public var bloomBitsPerKey = 10
    /// Partitioned index and filters (ADR 0048): each SST file's index and Bloom filter are
    /// cut into blocks of about `metadataBlockBytes`, found through a small top-level index
    /// that stays pinned in the block cache. A point read then loads one index partition
    /// and one filter partition of a few KiB, instead of the whole index and filter of a
    /// large file after those were evicted from the cache. False: one index block and one
    /// filter block per file (RocksDB's default, Quarry's before ADR 0048).
    public var partitionedIndexAndFilters = true
    /// Target size of one index or filter partition.
    public var metadataBlockBytes: UInt64 = 4096
    /// Check every file's checksums eagerly (open fails rather than serves damaged data).
    public var paranoidChecks = true
    /// RocksDB's informational LOG files: how many to keep and how large each may grow.
    public var infoLogFilesKept = 4
    public var infoLogFileBytes = 8 << 20

    public init() {}

    /// Builds a `rocksdb_options_t` the caller must destroy. The block cache and filter
    /// policy are owned by the table factory once set; their wrappers are freed here.
    func makeCOptions() -> OpaquePointer {
        let options = rocksdb_options_create()!
        rocksdb_options_set_create_if_missing(options, createIfMissing ? 1 : 0)
        rocksdb_options_set_create_missing_column_families(options, 1)
        rocksdb_options_set_paranoid_checks(options, paranoidChecks ? 1 : 0)
        rocksdb_options_set_max_open_files(options, maxOpenFiles)
        rocksdb_options_set_compression(options, compression.rawValue)
        rocksdb_options_set_bottommost_compression(options, bottommostCompression.rawValue)
        rocksdb_options_set_write_buffer_size(options, writeBufferBytes)
        rocksdb_options_set_max_total_wal_size(options, maxTotalWALBytes)
        rocksdb_options_set_max_background_jobs(options, backgroundJobs)
        rocksdb_options_set_keep_log_file_num(options, infoLogFilesKept)
        rocksdb_options_set_max_log_file_size(options, infoLogFileBytes)
        // Point-in-time recovery (2): after a crash, replay the write-ahead log up to the
        // first damaged record and stop there. A torn tail of an unsynced write is dropped;
        // every synced write before it is recovered.
        rocksdb_options_set_wal_recovery_mode(options, 2)

        let table = rocksdb_block_based_options_create()!
        let cache = rocksdb_cache_create_lru(blockCacheBytes)!
        rocksdb_block_based_options_set_block_cache(table, cache)
        rocksdb_cache_destroy(cache)  // the table options hold their own reference
        if bloomBitsPerKey > 0 {
            let filter = rocksdb_filterpolicy_create_bloom_full(Double(bloomBitsPerKey))
            // Ownership passes to the table options; they free it.
            rocksdb_block_based_options_set_filter_policy(table, filter)
        }
        rocksdb_block_based_options_set_cache_index_and_filter_blocks(table, 1)
        // Index and filter blocks go to the cache's high-priority pool, so a scan streaming
        // data blocks through the cache evicts them last.
        rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(table, 1)
        rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(table, 1)
        if partitionedIndexAndFilters {
            // Format version 5 (RocksDB 7.8's default, >= 3 as partitioned indexes need),
            // set explicitly so the file format does not change with the library's default.
            rocksdb_block_based_options_set_format_version(table, 5)
            rocksdb_block_based_options_set_index_type(table, Int32(rocksdb_block_based_table_index_type_two_level_index_search))
            if bloomBitsPerKey > 0 { rocksdb_block_based_options_set_partition_filters(table, 1) }
            rocksdb_block_based_options_set_metadata_block_size(table, metadataBlockBytes)
            rocksdb_block_based_options_set_pin_top_level_index_and_filter(table, 1)
        }
        rocksdb_options_set_block_based_table_factory(options, table)
        rocksdb_block_based_options_destroy(table)
        return options
    }
}
