import CSecp256k1
import Foundation
import QuarryCore
import QuarryCrypto

/// Cryptography figures, each next to a reference measured in the same run:
/// - SM2 sign/verify against `openssl speed -seconds 2 sm2` (OpenSSL's own SM2 through
///   EVP_DigestSign/Verify on a 20-byte input, no Quarry code involved), and the fast SM2
///   verification engine against the OpenSSL engine measured in the same run, with a kept
///   key (its table built), through the ledger's key cache, and with no cache at all;
/// - SM3 at 64 B, 1 KiB, 64 KiB against `openssl speed -seconds 2 -bytes N -evp sm3`;
/// - secp256k1 verify against a direct libsecp256k1 loop in this process (parsed key and
///   signature reused, so it is the library's bare cost; Quarry adds range and low-S checks).
/// Both sides run on the same machine in the same minute, and both are divided by user
/// CPU time (as `openssl speed` does by default); the ratio is what carries over.
/// The machine is shared, so Quarry and reference are measured alternately, `rounds`
/// times each, and the best figure of each side is kept.
enum CryptoBench {
    static let seconds = 2.0
    static let rounds = 2

    /// Alternates `quarry` and `reference` measurements and keeps the best of each.
    static func best(_ quarry: () throws -> [Double], _ reference: () -> [Double?]) rethrows -> (quarry: [Double], reference: [Double?]) {
        var q: [Double] = [], r: [Double?] = []
        for _ in 0..<rounds {
            let qs = try quarry(), rs = reference()
            q = q.isEmpty ? qs : zip(q, qs).map { max($0, $1) }
            r = r.isEmpty ? rs : zip(r, rs).map { a, b in
                switch (a, b) {
                case let (x?, y?): return max(x, y)
                default: return a ?? b
                }
            }
        }
        return (q, r)
    }

    static func run() throws {
        print("(each line: Quarry figure | reference figure | ratio Quarry/reference)")
        try sm2()
        try sm3()
        try secp256k1()
    }

    // MARK: - Measurement

    /// CPU seconds of the calling thread (user + system; system time is negligible in
    /// these loops). `openssl speed` divides by its user CPU time (unless given
    /// -elapsed), which keeps both sides comparable on a machine shared with other work.
    static func threadUserSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Operations per CPU second of `body`, run in batches for about `seconds`.
    static func rate(_ body: () throws -> Void) rethrows -> Double {
        let start = threadUserSeconds()
        var count = 0
        var batch = 16
        while true {
            for _ in 0..<batch { try body() }
            count += batch
            let elapsed = threadUserSeconds() - start
            if elapsed >= seconds { return Double(count) / elapsed }
            batch = min(batch * 2, 4096)
        }
    }

    static func line(_ name: String, _ quarry: Double, _ reference: Double?, unit: String, referenceName: String) {
        let q = format(quarry)
        if let reference, reference > 0 {
            print("\(name.padding(toLength: 42, withPad: " ", startingAt: 0)) \(q.leftPad(12)) \(unit) | \(referenceName) \(format(reference)) \(unit) | ratio \(String(format: "%.2f", quarry / reference))")
        } else {
            print("\(name.padding(toLength: 42, withPad: " ", startingAt: 0)) \(q.leftPad(12)) \(unit) | \(referenceName) unavailable")
        }
    }

    static func format(_ x: Double) -> String { x >= 100 ? String(format: "%.0f", x) : String(format: "%.2f", x) }

    /// Runs `openssl speed -mr ARGS` and returns its `+F...` result lines split on ':'.
    static func opensslSpeed(_ arguments: [String]) -> [[String]] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl", "speed", "-mr", "-seconds", String(Int(seconds))] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return [] }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n")
            .filter { $0.hasPrefix("+F") }
            .map { $0.split(separator: ":").map(String.init) }
    }

    // MARK: - SM2

    static func sm2() throws {
        let key = SM2PrivateKey()
        let message = [UInt8](repeating: 0x5a, count: 20)  // openssl speed signs 20 bytes
        let signature = try key.signature(for: message)
        let raw = key.publicKey.rawRepresentation
        let ledgerKey = try PublicKeyBytes(scheme: .sm2, bytes: raw)
        // One kept key per engine, each parsed by its own engine; the fast one builds its
        // table on its second verification (before the timed loop ends its first batch).
        let kept = try SM2VerificationEngine.allCases.map { try SM2PublicKey(rawRepresentation: raw, engine: $0) }
        for (engine, k) in zip(SM2VerificationEngine.allCases, kept) {
            precondition(k.isValidSignature(signature, for: message, engine: engine))
        }
        let before = SM2.verificationEngine
        defer { SM2.verificationEngine = before }
        func perEngine(_ body: @escaping (SM2VerificationEngine, Int) throws -> Void) rethrows -> [Double] {
            try SM2VerificationEngine.allCases.enumerated().map { i, engine in try rate { try body(engine, i) } }
        }

        let (q, r) = try best({
            var rates = [try rate { _ = try key.signature(for: message) }]
            // Kept key (an SM2PublicKey held by the caller).
            rates += perEngine { engine, i in precondition(kept[i].isValidSignature(signature, for: message, engine: engine)) }
            // Ledger path: SignatureVerification with the process-wide engine (key cache hit).
            rates += perEngine { engine, _ in
                SM2.verificationEngine = engine
                precondition(SignatureVerification.isValid(signature: signature.rawRepresentation, message: message, publicKey: ledgerKey))
            }
            // No cache: the key is checked, decoded and its Z computed every time.
            rates += try perEngine { engine, _ in
                let fresh = try SM2PublicKey(rawRepresentation: raw, engine: engine)
                precondition(fresh.isValidSignature(signature, for: message, engine: engine))
            }
            SM2.verificationEngine = before
            return rates
        }, {
            // `+F7:0:256:CurveSM2:sign/s:verify/s`
            let reference = opensslSpeed(["sm2"]).first { $0.count >= 6 && $0[3] == "CurveSM2" }
            return [reference.flatMap { Double($0[4]) }, reference.flatMap { Double($0[5]) }]
        })
        // q: sign, kept (fast, openssl), ledger (fast, openssl), fresh (fast, openssl)
        let fast = 0, openSSL = 1
        precondition(SM2VerificationEngine.allCases == [.fast, .openSSL])
        let speed = "openssl speed sm2"
        line("SM2 sign (20-byte message)", q[0], r[0], unit: "/s", referenceName: speed)
        line("SM2 verify, OpenSSL engine, kept key", q[1 + openSSL], r[1], unit: "/s", referenceName: speed)
        line("SM2 verify, OpenSSL engine, ledger path", q[3 + openSSL], r[1], unit: "/s", referenceName: speed)
        line("SM2 verify, OpenSSL engine, no key cache", q[5 + openSSL], r[1], unit: "/s", referenceName: speed)
        line("SM2 verify, fast engine, kept key", q[1 + fast], q[1 + openSSL], unit: "/s", referenceName: "OpenSSL engine")
        line("SM2 verify, fast engine, ledger path", q[3 + fast], q[3 + openSSL], unit: "/s", referenceName: "OpenSSL engine")
        line("SM2 verify, fast engine, no key cache", q[5 + fast], q[5 + openSSL], unit: "/s", referenceName: "OpenSSL engine")
        line("SM2 verify, fast engine, ledger path", q[3 + fast], r[1], unit: "/s", referenceName: speed)
        line("SM2 verify, fast engine, no key cache", q[5 + fast], r[1], unit: "/s", referenceName: speed)
    }

    // MARK: - SM3

    static func sm3() throws {
        for size in [64, 1024, 65536] {
            let input = (0..<size).map { UInt8(truncatingIfNeeded: $0) }
            var sink: UInt8 = 0
            let (q, r) = best({ [rate { sink ^= SM3.hash(input).bytes[0] } * Double(size) / 1e6] }, {
                // `+F:25:sm3:bytes-per-second`
                let reference = opensslSpeed(["-bytes", String(size), "-evp", "sm3"]).first { $0.count >= 4 && $0[2] == "sm3" }
                return [reference.flatMap { Double($0[3]) }.map { $0 / 1e6 }]
            })
            let name = size >= 1024 ? "SM3 \(size / 1024) KiB" : "SM3 \(size) B"
            line(name, q[0], r[0], unit: "MB/s", referenceName: "openssl speed -evp sm3")
            if sink == 0xff { print("") }  // keep the hashes observable
        }
    }

    // MARK: - secp256k1

    static func secp256k1() throws {
        let key = Secp256k1PrivateKey()
        let digest = SM3.hash([1, 2, 3])
        let signature = try key.signature(forDigest: digest)
        let publicKey = key.publicKey
        let ledgerKey = try PublicKeyBytes(scheme: .secp256k1, bytes: publicKey.rawRepresentation)
        let message: [UInt8] = [1, 2, 3]
        let ledgerSignature = try SigningKey.secp256k1(key).sign(message)


        // Reference: libsecp256k1 called directly, key and signature parsed once.
        guard let ctx = secp256k1_context_create(QUARRY_SECP256K1_CONTEXT_NONE) else { return }
        defer { secp256k1_context_destroy(ctx) }
        var parsedKey = secp256k1_pubkey()
        var parsedSignature = secp256k1_ecdsa_signature()
        let keyBytes = publicKey.rawRepresentation, sigBytes = signature.rawRepresentation, digestBytes = digest.bytes
        precondition(secp256k1_ec_pubkey_parse(ctx, &parsedKey, keyBytes, keyBytes.count) == 1)
        precondition(secp256k1_ecdsa_signature_parse_compact(ctx, &parsedSignature, sigBytes) == 1)
        let secret = key.rawRepresentation
        var out = secp256k1_ecdsa_signature()
        let (q, r) = try best({
            [rate { precondition(publicKey.isValidSignature(signature, forDigest: digest)) },
             rate { precondition(SignatureVerification.isValid(signature: ledgerSignature, message: message, publicKey: ledgerKey)) },
             try rate { _ = try key.signature(forDigest: digest) },
             try rate {
                let fresh = try Secp256k1PublicKey(rawRepresentation: ledgerKey.bytes)
                precondition(fresh.isValidSignature(signature, forDigest: digest))
             }]
        }, {
            [rate { precondition(secp256k1_ecdsa_verify(ctx, &parsedSignature, digestBytes, &parsedKey) == 1) },
             rate { precondition(secp256k1_ecdsa_sign(ctx, &out, digestBytes, secret, nil, nil) == 1) }]
        })
        line("secp256k1 verify (Secp256k1PublicKey)", q[0], r[0], unit: "/s", referenceName: "direct libsecp256k1")
        line("secp256k1 verify, ledger path (cached)", q[1], r[0], unit: "/s", referenceName: "direct libsecp256k1")
        line("secp256k1 verify, key parsed every time", q[3], r[0], unit: "/s", referenceName: "direct libsecp256k1")
        line("secp256k1 sign", q[2], r[1], unit: "/s", referenceName: "direct libsecp256k1")
    }
}

private extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
