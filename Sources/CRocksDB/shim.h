// Thin shim over RocksDB's C API.
#ifndef QUARRY_CROCKSDB_SHIM_H
#define QUARRY_CROCKSDB_SHIM_H
#include <rocksdb/c.h>
#endif
