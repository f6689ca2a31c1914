import COpenSSL
import QuarryCore

/// OpenSSL's SM3 implementation, fetched once: an implicit fetch (`EVP_sm3()`) on every
/// hash costs a lock and a method-store lookup, a large share of hashing 64 bytes.
/// An `EVP_MD` is immutable and may be shared by threads.
final class SM3Algorithm: @unchecked Sendable {
    static let shared = SM3Algorithm()
    let pointer: OpaquePointer
    private init() {
        guard let md = EVP_MD_fetch(nil, "SM3", nil) else { preconditionFailure("OpenSSL lacks SM3") }
        pointer = md
    }
    deinit { EVP_MD_free(pointer) }
}

/// SM3 (GB/T 32905), the hash used for every digest in Quarry, computed by OpenSSL's EVP.
public struct SM3: ~Copyable {
    public static let digestSize = 32
    private let context: OpaquePointer

    /// Starts a streaming hash.
    public init() {
        guard let ctx = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed: out of memory") }
        guard EVP_DigestInit_ex(ctx, SM3Algorithm.shared.pointer, nil) == 1 else { fatalError("OpenSSL lacks SM3") }
        context = ctx
    }

    deinit { EVP_MD_CTX_free(context) }

    public mutating func update<C: ContiguousBytes>(_ data: C) {
        data.withUnsafeBytes { buf in
            _ = EVP_DigestUpdate(context, buf.baseAddress, buf.count)
        }
    }

    /// Finishes the hash. The value cannot be used afterwards.
    public consuming func finalize() -> Hash256 {
        var out = [UInt8](repeating: 0, count: SM3.digestSize)
        var len: UInt32 = 0
        _ = out.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(context, $0.baseAddress, &len) }
        return Hash256(unchecked: out)
    }

    /// One-shot SM3 of `data`.
    public static func hash<C: ContiguousBytes>(_ data: C) -> Hash256 {
        let md = SM3Algorithm.shared.pointer
        let out = data.withUnsafeBytes { buf in
            [UInt8](unsafeUninitializedCapacity: digestSize) { o, initialized in
                var len: UInt32 = 0
                let ok = EVP_Digest(buf.baseAddress, buf.count, o.baseAddress, &len, md, nil)
                precondition(ok == 1 && len == UInt32(digestSize), "EVP_Digest(SM3) failed")
                initialized = digestSize
            }
        }
        return Hash256(unchecked: out)
    }

    /// SM3 of the concatenation of `parts`, without building it.
    public static func hash(parts: [[UInt8]]) -> Hash256 {
        var h = SM3()
        for p in parts { h.update(p) }
        return h.finalize()
    }
}

/// Contiguous byte storage SM3 can read without copying.
public protocol ContiguousBytes {
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}
extension Array: ContiguousBytes where Element == UInt8 {}
extension ArraySlice: ContiguousBytes where Element == UInt8 {}
extension UnsafeRawBufferPointer: ContiguousBytes {
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try body(self) }
}

/// One-shot SM3 hashes through one reused OpenSSL digest context, for hot loops (the state
/// tree hashes tens of thousands of 65-byte inputs per block). `SM3.hash` allocates, sets up
/// and frees a context per call; reusing one saves that. The results are exactly
/// `SM3.hash`'s. Not thread-safe: one owner at a time.
public final class SM3Hasher {
    private let context: OpaquePointer
    private let md: OpaquePointer

    public init() {
        guard let ctx = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed: out of memory") }
        context = ctx
        md = SM3Algorithm.shared.pointer
    }

    deinit { EVP_MD_CTX_free(context) }

    /// SM3 of `data`.
    public func hash<C: ContiguousBytes>(_ data: C) -> [UInt8] {
        precondition(EVP_DigestInit_ex(context, md, nil) == 1, "EVP_DigestInit_ex(SM3) failed")
        data.withUnsafeBytes { buf in _ = EVP_DigestUpdate(context, buf.baseAddress, buf.count) }
        return finish()
    }

    /// SM3 of `tag || a || b` without concatenating them (tree nodes: a tag byte and two
    /// 32-byte hashes).
    public func hash(tag: UInt8, _ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        precondition(EVP_DigestInit_ex(context, md, nil) == 1, "EVP_DigestInit_ex(SM3) failed")
        var t = tag
        _ = EVP_DigestUpdate(context, &t, 1)
        a.withUnsafeBytes { buf in _ = EVP_DigestUpdate(context, buf.baseAddress, buf.count) }
        b.withUnsafeBytes { buf in _ = EVP_DigestUpdate(context, buf.baseAddress, buf.count) }
        return finish()
    }

    private func finish() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: SM3.digestSize) { o, initialized in
            var len: UInt32 = 0
            let ok = EVP_DigestFinal_ex(context, o.baseAddress, &len)
            precondition(ok == 1 && len == UInt32(SM3.digestSize), "EVP_DigestFinal_ex(SM3) failed")
            initialized = SM3.digestSize
        }
    }
}
