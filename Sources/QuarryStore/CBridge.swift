import CRocksDB

/// Calls `body` with a C view (pointer, length) of `bytes`, valid only inside `body`.
/// An empty array may have no storage (nil base address); RocksDB then gets a pointer to
/// a local byte and length 0, never nil.
@inline(__always)
func withCBytes<R>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>, Int) throws -> R) rethrows -> R {
    try bytes.withUnsafeBufferPointer { buffer in
        guard let base = buffer.baseAddress, buffer.count > 0 else {
            var byte: CChar = 0
            return try withUnsafePointer(to: &byte) { try body($0, 0) }
        }
        return try base.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
            try body($0, buffer.count)
        }
    }
}

/// Copies `length` bytes at a C pointer into an array.
@inline(__always)
func copyBytes(_ pointer: UnsafePointer<CChar>?, _ length: Int) -> [UInt8] {
    guard let pointer, length > 0 else { return [] }
    return UnsafeRawBufferPointer(start: pointer, count: length).withMemoryRebound(to: UInt8.self) {
        Array($0)
    }
}

/// Runs a C call that may set an error string; frees the string with `rocksdb_free` and
/// turns it into a `StoreError` via `classify`.
@inline(__always)
func checked<R>(_ classify: (String) -> StoreError = StoreError.classify,
                _ call: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> R) throws -> R {
    var error: UnsafeMutablePointer<CChar>? = nil
    let result = call(&error)
    if let error {
        let message = String(cString: error)
        rocksdb_free(error)
        throw classify(message)
    }
    return result
}
