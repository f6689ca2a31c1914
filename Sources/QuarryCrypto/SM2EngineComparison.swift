import COpenSSL
import QuarryCore

/// Differential comparison of the two SM2 verification engines (docs/adr/0012,
/// docs/spec/crypto.md 3.7): generates cases from a seed, gives each to both engines and
/// records every disagreement. Any disagreement is a bug. The CI tests run at least 10,000
/// cases per run; `quarry-bench sm2-soak` runs a million or more.
///
/// Case `i` of seed `s` is the same on every machine (SplitMix64 from `s` and `i`), so a
/// failure is reproduced by its seed and index alone. The cases are built with OpenSSL's
/// arithmetic (BIGNUM, EC_POINT), never with the fast engine's.
///
/// Every case also has the outcome its construction implies (a correctly signed message is
/// valid, a flipped bit is not, ...). When both engines agree with each other but not with
/// that, the case is reported as unexpected: the generator, or both engines, are wrong.
public enum SM2EngineComparison {
    /// What a run found. Counts per kind of case are kept in a sorted array (no dictionary
    /// order in the output).
    public struct Report: Sendable, CustomStringConvertible {
        public var cases = 0
        /// Engine-against-engine comparisons (a case makes several: key acceptance, one-shot
        /// verification, verification through a kept key, the point arithmetic).
        public var comparisons = 0
        /// Comparisons in which both engines said "valid".
        public var bothValid = 0
        public var disagreementCount = 0
        public var unexpectedCount = 0
        /// The first few disagreements and unexpected outcomes, described in hex.
        public var disagreements: [String] = []
        public var unexpected: [String] = []
        /// (kind, cases of that kind), sorted by kind.
        public var kinds: [(kind: String, cases: Int)] = []

        static let keptDescriptions = 16

        public init() {}

        public var passed: Bool { disagreementCount == 0 && unexpectedCount == 0 }

        mutating func count(kind: String) {
            cases += 1
            if let i = kinds.firstIndex(where: { $0.kind == kind }) {
                kinds[i].cases += 1
            } else {
                kinds.append((kind, 1))
                kinds.sort { $0.kind < $1.kind }
            }
        }

        public mutating func merge(_ other: Report) {
            cases += other.cases
            comparisons += other.comparisons
            bothValid += other.bothValid
            disagreementCount += other.disagreementCount
            unexpectedCount += other.unexpectedCount
            disagreements += other.disagreements.prefix(max(0, Report.keptDescriptions - disagreements.count))
            unexpected += other.unexpected.prefix(max(0, Report.keptDescriptions - unexpected.count))
            for (kind, n) in other.kinds {
                if let i = kinds.firstIndex(where: { $0.kind == kind }) { kinds[i].cases += n } else { kinds.append((kind, n)) }
            }
            kinds.sort { $0.kind < $1.kind }
        }

        public var description: String {
            var lines = ["\(cases) cases, \(comparisons) comparisons (\(bothValid) valid for both engines), "
                         + "\(disagreementCount) disagreements, \(unexpectedCount) unexpected outcomes"]
            lines += disagreements.map { "DISAGREEMENT \($0)" }
            lines += unexpected.map { "UNEXPECTED \($0)" }
            lines.append("kinds: " + kinds.map { "\($0.kind)=\($0.cases)" }.joined(separator: " "))
            return lines.joined(separator: "\n")
        }
    }

    /// Runs cases `indices` of `seed`. Thread-safe: shards may run in parallel and be merged.
    public static func run(seed: UInt64, indices: Range<UInt64>) -> Report {
        let context = Context(seed: seed)
        var report = Report()
        for index in indices {
            var rng = SplitMix64(seed: seed ^ (index &* 0xD1B5_4A32_D192_ED03) ^ 0x5EED)
            context.runCase(index: index, rng: &rng, into: &report)
        }
        return report
    }

    /// The kinds of cases, each drawn with equal probability (valid signatures appear under
    /// several names so that about a quarter of all cases are valid).
    static let kinds: [String] = [
        "valid", "valid-custom-id", "valid-empty-message", "valid-long-message", "constructed-valid", "constructed-edge-scalars",
        "x1-at-least-n", "x1-below-p-minus-n", "cancel-to-infinity", "combination",
        "flipped-message-bit", "wrong-id", "wrong-key", "negated-key", "flipped-signature-bit", "flipped-key-bit",
        "random-r", "random-s", "r-zero", "r-n", "s-n", "s-n-minus-1", "r-plus-s-n", "r-near-0", "r-near-n", "s-near-0",
        "s-near-n", "r-above-n", "s-above-n", "off-curve-key", "infinity-key", "compressed-key", "hybrid-key",
        "coordinate-above-p", "wrong-lengths", "id-too-long", "random-bytes", "digest-random", "digest-range",
    ]

    // MARK: - Case generation

    /// The keys every case draws from, and OpenSSL's curve arithmetic for building cases.
    final class Context {
        struct PoolKey {
            let secret: SM2PrivateKey
            /// The same public key parsed by each engine and kept, so the fast one builds and
            /// uses its table (the path `VerificationKeyCache` takes).
            let keptOpenSSL: SM2PublicKey
            let keptFast: SM2PublicKey
            var raw: [UInt8] { secret.publicKey.rawRepresentation }
        }

        let pool: [PoolKey]
        let curve = ReferenceCurve()

        init(seed: UInt64) {
            var rng = SplitMix64(seed: seed ^ 0x4B45_5950_4F4F_4C00)
            var keys: [PoolKey] = []
            // Private keys 1 and 2 make P = G and P = 2G, which meet the generator's table.
            let fixed = [ReferenceCurve.scalar(1), ReferenceCurve.scalar(2)]
            for i in 0..<12 {
                let d = i < fixed.count ? fixed[i] : Context.randomScalar(&rng)
                guard let secret = try? SM2PrivateKey(rawRepresentation: d) else { continue }
                let raw = secret.publicKey.rawRepresentation
                keys.append(PoolKey(secret: secret, keptOpenSSL: try! SM2PublicKey(rawRepresentation: raw, engine: .openSSL),
                                    keptFast: try! SM2PublicKey(rawRepresentation: raw, engine: .fast)))
            }
            pool = keys
        }

        static func randomBytes(_ count: Int, _ rng: inout SplitMix64) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(count + 8)
            while out.count < count {
                let v = rng.next()
                for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
            }
            return Array(out.prefix(count))
        }

        /// A uniform-ish scalar in [1, n-2] (a valid private key).
        static func randomScalar(_ rng: inout SplitMix64) -> [UInt8] {
            while true {
                let x = randomBytes(32, &rng)
                if Scalar.isInRange(x, below: SM2.nMinus1) { return x }
            }
        }

        /// Scalars a careless implementation gets wrong: 1, 2, 3, n-1, n-2, n-3, small ones,
        /// ones near 2^255 and 2^256, and random ones; always in [1, n-1].
        func edgeScalar(_ rng: inout SplitMix64) -> [UInt8] {
            let choice = rng.next() % 10
            let value: [UInt8]
            switch choice {
            case 0: value = ReferenceCurve.scalar(1 + rng.next() % 3)
            case 1: value = ReferenceCurve.subtract(SM2.n, ReferenceCurve.scalar(1 + rng.next() % 3))
            case 2: value = ReferenceCurve.scalar(rng.next() >> (rng.next() % 64))
            case 3: value = [0x80] + [UInt8](repeating: 0, count: 31)
            case 4: value = [0x7f] + [UInt8](repeating: 0xff, count: 31)
            case 5: value = ReferenceCurve.subtract(SM2.n, ReferenceCurve.scalar(rng.next()))
            case 6: value = [UInt8](repeating: 0, count: 16) + Context.randomBytes(16, &rng)
            default: value = Context.randomScalar(&rng)
            }
            return Scalar.isInRange(value, below: SM2.n) ? value : ReferenceCurve.scalar(1)
        }

        func randomID(_ rng: inout SplitMix64) -> [UInt8] {
            switch rng.next() % 8 {
            case 0: return []
            case 1: return Context.randomBytes(Int(1 + rng.next() % 40), &rng)
            case 2: return rng.next() % 16 == 0 ? [UInt8](repeating: 0x41, count: SM2.maximumIDBytes) : Array("ALICE123@YAHOO.COM".utf8)
            default: return SM2.defaultID
            }
        }

        func randomMessage(_ rng: inout SplitMix64, maximum: Int = 96) -> [UInt8] {
            Context.randomBytes(Int(rng.next() % UInt64(maximum + 1)), &rng)
        }

        /// A signature by `key` made with OpenSSL's arithmetic and a nonce from `rng`.
        func sign(_ key: SM2PrivateKey, _ message: [UInt8], id: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
            while true {
                let k = Context.randomScalar(&rng)
                if let sig = try? key.signatureWithFixedNonce(k, for: message, id: id) { return sig.rawRepresentation }
            }
        }

        // MARK: Running one case

        func runCase(index: UInt64, rng: inout SplitMix64, into report: inout Report) {
            let kind = SM2EngineComparison.kinds[Int(rng.next() % UInt64(SM2EngineComparison.kinds.count))]
            report.count(kind: kind)
            let label = "case \(index) kind \(kind)"
            let keyIndex = Int(rng.next() % UInt64(pool.count))
            let signer = pool[keyIndex]
            let id = kind == "valid-custom-id" ? Array("vehicle-gateway-7".utf8) : (rng.next() % 4 == 0 ? randomID(&rng) : SM2.defaultID)
            var message = kind == "valid-empty-message" ? [] : randomMessage(&rng, maximum: kind == "valid-long-message" ? 4096 : 96)
            if kind == "flipped-message-bit" && message.isEmpty { message = [0] }

            switch kind {
            case "constructed-valid", "constructed-edge-scalars", "x1-at-least-n", "x1-below-p-minus-n", "cancel-to-infinity":
                constructed(kind: kind, label: label, signer: signer, rng: &rng, into: &report)
                return
            case "combination":
                combination(label: label, signer: signer, rng: &rng, into: &report)
                return
            case "digest-random", "digest-range":
                digestLevel(kind: kind, label: label, signer: signer, rng: &rng, into: &report)
                return
            default:
                break
            }

            let good = sign(signer.secret, message, id: id, &rng)
            var key = signer.raw
            var signature = good
            var verifyMessage = message
            var verifyID = id
            var expected = false
            let r = Array(good[0..<32]), s = Array(good[32..<64])
            let n = SM2.n
            switch kind {
            case "valid", "valid-custom-id", "valid-empty-message", "valid-long-message":
                expected = true
            case "flipped-message-bit":
                let bit = Int(rng.next() % UInt64(message.count * 8))
                verifyMessage[bit / 8] ^= UInt8(1 << (bit % 8))
            case "wrong-id":
                verifyID = id == SM2.defaultID ? Array("1234567812345679".utf8) : SM2.defaultID
            case "wrong-key":
                key = pool[(keyIndex + 1 + Int(rng.next() % UInt64(pool.count - 1))) % pool.count].raw
            case "negated-key":
                key = [4] + Array(key[1..<33]) + ReferenceCurve.subtract(SM2.p, Array(key[33..<65]))
            case "flipped-signature-bit":
                let bit = Int(rng.next() % 512)
                signature[bit / 8] ^= UInt8(1 << (bit % 8))
            case "flipped-key-bit":
                let bit = Int(rng.next() % 520)
                key[bit / 8] ^= UInt8(1 << (bit % 8))
            case "random-r": signature = Context.randomBytes(32, &rng) + s
            case "random-s": signature = r + Context.randomBytes(32, &rng)
            case "r-zero": signature = ReferenceCurve.scalar(0) + s
            case "r-n": signature = n + s
            case "s-n": signature = r + n
            case "s-n-minus-1": signature = r + ReferenceCurve.subtract(n, ReferenceCurve.scalar(1))
            case "r-plus-s-n": signature = ReferenceCurve.subtract(n, s) + s
            case "r-near-0": signature = ReferenceCurve.scalar(1 + rng.next() % 3) + s
            case "r-near-n": signature = ReferenceCurve.subtract(n, ReferenceCurve.scalar(1 + rng.next() % 3)) + s
            case "s-near-0": signature = r + ReferenceCurve.scalar(1 + rng.next() % 3)
            case "s-near-n": signature = r + ReferenceCurve.subtract(n, ReferenceCurve.scalar(2 + rng.next() % 2))
            case "r-above-n": signature = ReferenceCurve.add(n, ReferenceCurve.scalar(rng.next() % 1000)) + s
            case "s-above-n": signature = r + [UInt8](repeating: 0xff, count: 32)
            case "off-curve-key":
                key = rng.next() % 2 == 0
                    ? [4] + Array(key[1..<33]) + ReferenceCurve.addModP(Array(key[33..<65]), 1 + rng.next() % 5)
                    : [4] + Context.randomBytes(64, &rng)
            case "infinity-key":
                switch rng.next() % 3 {
                case 0: key = [0]
                case 1: key = [4] + [UInt8](repeating: 0, count: 64)
                default: key = [0] + [UInt8](repeating: 0, count: 64)
                }
            case "compressed-key": key = [0x02 | (key[64] & 1)] + Array(key[1..<33])
            case "hybrid-key": key = [0x06 | (key[64] & 1)] + Array(key[1...])
            case "coordinate-above-p":
                key = rng.next() % 2 == 0 ? [4] + SM2.p + Array(key[33...]) : [4] + Array(key[1..<33]) + ReferenceCurve.add(SM2.p, ReferenceCurve.scalar(1))
            case "wrong-lengths":
                // Any length but the right one (64-byte r || s, 65-byte key).
                let length = Int(rng.next() % 99)
                if rng.next() % 2 == 0 {
                    signature = Array((good + good).prefix(length < 64 ? length : length + 1))
                } else {
                    key = Array((key + key).prefix(length < 65 ? length : length + 1))
                }
            case "id-too-long":
                verifyID = [UInt8](repeating: 0x42, count: SM2.maximumIDBytes + 1)
            case "random-bytes":
                key = rng.next() % 4 == 0 ? Context.randomBytes(Int(rng.next() % 80), &rng) : [4] + Context.randomBytes(64, &rng)
                signature = Context.randomBytes(rng.next() % 4 == 0 ? Int(rng.next() % 80) : 64, &rng)
                verifyMessage = randomMessage(&rng)
            default:
                preconditionFailure("unknown case kind \(kind)")
            }
            // A valid signature stays valid only where the case says so; "s-near-n" and the
            // like are invalid with overwhelming probability (they replace a random value).
            compareMessageLevel(label: label, key: key, signature: signature, message: verifyMessage, id: verifyID,
                                expected: expected, kept: key == signer.raw ? signer : nil, into: &report)
        }

        /// Key acceptance, one-shot verification, and verification through the kept keys.
        func compareMessageLevel(label: String, key: [UInt8], signature: [UInt8], message: [UInt8], id: [UInt8],
                                 expected: Bool, kept: PoolKey?, into report: inout Report) {
            let describe = "\(label) key=\(Hex.encode(key)) id=\(short(id)) message=\(short(message)) signature=\(Hex.encode(signature))"
            let keyOpenSSL = try? SM2PublicKey(rawRepresentation: key, engine: .openSSL)
            let keyFast = try? SM2PublicKey(rawRepresentation: key, engine: .fast)
            record(&report, describe + " (key accepted)", openSSL: keyOpenSSL != nil, fast: keyFast != nil, expected: nil)
            let sig = try? SM2Signature(rawRepresentation: signature)
            let oneShotOpenSSL = sig.flatMap { s in keyOpenSSL.map { $0.isValidSignature(s, for: message, id: id, engine: .openSSL) } } ?? false
            let oneShotFast = sig.flatMap { s in keyFast.map { $0.isValidSignature(s, for: message, id: id, engine: .fast) } } ?? false
            record(&report, describe + " (one-shot)", openSSL: oneShotOpenSSL, fast: oneShotFast, expected: expected)
            // The one-shot API must say the same as the steps above.
            let api = SM2.isValidSignature(signature, for: message, publicKey: key, id: id, engine: .fast)
            record(&report, describe + " (SM2.isValidSignature, fast against its steps)", openSSL: oneShotFast, fast: api, expected: nil)
            // A second verification through the same fast key builds and uses its table.
            if let sig, let keyFast {
                let again = keyFast.isValidSignature(sig, for: message, id: id, engine: .fast)
                record(&report, describe + " (fast table of a new key)", openSSL: oneShotOpenSSL, fast: again, expected: expected)
                if id.count <= SM2.maximumIDBytes {  // otherwise Z fails before the engine runs
                    record(&report, describe + " (fast table built)", openSSL: true, fast: keyFast.storage.hasTable, expected: nil)
                }
            }
            if let kept, let sig {
                let keptOpenSSL = kept.keptOpenSSL.isValidSignature(sig, for: message, id: id, engine: .openSSL)
                let keptFast = kept.keptFast.isValidSignature(sig, for: message, id: id, engine: .fast)
                record(&report, describe + " (kept key)", openSSL: keptOpenSSL, fast: keptFast, expected: expected)
            }
        }

        /// Hex, shortened for long values (the case index and seed reproduce them exactly).
        func short(_ bytes: [UInt8]) -> String {
            bytes.count <= 64 ? Hex.encode(bytes) : Hex.encode(Array(bytes.prefix(32))) + "...(\(bytes.count) bytes)"
        }

        /// Compares two answers; `expected` (when known) is what the construction implies.
        func record(_ report: inout Report, _ describe: @autoclosure () -> String, openSSL: Bool, fast: Bool, expected: Bool?) {
            report.comparisons += 1
            if openSSL != fast {
                report.disagreementCount += 1
                if report.disagreements.count < Report.keptDescriptions {
                    report.disagreements.append("\(describe()): OpenSSL \(openSSL), fast \(fast)")
                }
            } else {
                if openSSL { report.bothValid += 1 }
                if let expected, expected != openSSL {
                    report.unexpectedCount += 1
                    if report.unexpected.count < Report.keptDescriptions {
                        report.unexpected.append("\(describe()): both engines \(openSSL), construction implies \(expected)")
                    }
                }
            }
        }

        /// Digest-level cases built backwards: choose s, t and the point R = s*G + t*P, then
        /// r = t - s and e = r - x(R) (mod n), which makes (e, r, s) valid for P by
        /// construction, whatever s and t are. Special points R: x(R) >= n (only x1 mod n
        /// matches), x(R) < p - n (x1 and x1 + n are both below p), R = infinity.
        func constructed(kind: String, label: String, signer: PoolKey, rng: inout SplitMix64, into report: inout Report) {
            let s = kind == "constructed-edge-scalars" ? edgeScalar(&rng) : Context.randomScalar(&rng)
            let t = kind == "constructed-edge-scalars" ? edgeScalar(&rng) : Context.randomScalar(&rng)
            var keyRaw = signer.raw
            var point: [UInt8]?
            switch kind {
            case "x1-at-least-n", "x1-below-p-minus-n":
                // R with the chosen x; then P = t^-1 (R - s*G).
                let x = kind == "x1-at-least-n" ? curve.xAtLeastN(&rng) : curve.xBelowPMinusN(&rng)
                guard let chosen = curve.point(withX: x, odd: rng.next() % 2 == 0) else { return }
                let u = ReferenceCurve.inverseModN(t)
                guard let p = curve.combination(k: ReferenceCurve.negateModN(ReferenceCurve.mulModN(u, s)), m: u, point: chosen) else { return }
                keyRaw = p
                point = chosen
            case "cancel-to-infinity":
                // P = G (private key 1) and t = -s: s*G + t*G = infinity. Or P random, t chosen
                // so that s + t*d = 0 (mod n).
                if rng.next() % 2 == 0 {
                    keyRaw = pool[0].raw
                    let tCancel = ReferenceCurve.negateModN(s)
                    compareDigestLevel(label: label, key: keyRaw, e: Context.randomBytes(32, &rng),
                                       signature: ReferenceCurve.subModN(tCancel, s) + s, expected: false, kept: pool[0], into: &report)
                } else {
                    let d = signer.secret.rawRepresentation
                    let tCancel = ReferenceCurve.negateModN(ReferenceCurve.mulModN(s, ReferenceCurve.inverseModN(d)))
                    compareDigestLevel(label: label, key: keyRaw, e: Context.randomBytes(32, &rng),
                                       signature: ReferenceCurve.subModN(tCancel, s) + s, expected: false, kept: signer, into: &report)
                }
                return
            default:
                point = curve.combination(k: s, m: t, point: keyRaw)
            }
            guard let rPoint = point else {
                // s*G + t*P is infinity (negligible for random scalars): invalid for both.
                compareDigestLevel(label: label, key: keyRaw, e: Context.randomBytes(32, &rng), signature: ReferenceCurve.subModN(t, s) + s,
                                   expected: false, kept: nil, into: &report)
                return
            }
            let r = ReferenceCurve.subModN(t, s)
            let x1 = Array(rPoint[1..<33])
            let e = ReferenceCurve.subModN(r, ReferenceCurve.reduceModN(x1))
            let validShape = !Scalar.isZero(r)
            let kept = keyRaw == signer.raw ? signer : nil
            compareDigestLevel(label: label, key: keyRaw, e: e, signature: r + s, expected: validShape, kept: kept, into: &report)
            // The same with e + 1: must fail.
            compareDigestLevel(label: label + " (e + 1)", key: keyRaw, e: ReferenceCurve.addModN(e, ReferenceCurve.scalar(1)),
                               signature: r + s, expected: false, kept: kept, into: &report)
        }

        func compareDigestLevel(label: String, key: [UInt8], e: [UInt8], signature: [UInt8], expected: Bool?, kept: PoolKey?,
                                into report: inout Report) {
            let describe = "\(label) key=\(Hex.encode(key)) e=\(Hex.encode(e)) r||s=\(Hex.encode(signature))"
            guard let keyOpenSSL = try? SM2PublicKey(rawRepresentation: key, engine: .openSSL),
                  let keyFast = try? SM2PublicKey(rawRepresentation: key, engine: .fast) else {
                let a = (try? SM2PublicKey(rawRepresentation: key, engine: .openSSL)) != nil
                let b = (try? SM2PublicKey(rawRepresentation: key, engine: .fast)) != nil
                record(&report, describe + " (key accepted)", openSSL: a, fast: b, expected: nil)
                return
            }
            let answerOpenSSL = keyOpenSSL.isValid(rawSignature: signature, digest: e, engine: .openSSL)
            record(&report, describe + " (digest, one-shot)", openSSL: answerOpenSSL,
                   fast: keyFast.isValid(rawSignature: signature, digest: e, engine: .fast), expected: expected)
            // The second call goes through the key's new table.
            record(&report, describe + " (digest, fast table of a new key)", openSSL: answerOpenSSL,
                   fast: keyFast.isValid(rawSignature: signature, digest: e, engine: .fast), expected: expected)
            if let kept {
                record(&report, describe + " (digest, kept key)",
                       openSSL: kept.keptOpenSSL.isValid(rawSignature: signature, digest: e, engine: .openSSL),
                       fast: kept.keptFast.isValid(rawSignature: signature, digest: e, engine: .fast), expected: expected)
            }
        }

        /// Random e and r || s at the digest level, including values outside [1, n-1], so
        /// each engine's own range checks are compared (OpenSSL's are inside EVP_PKEY_verify).
        func digestLevel(kind: String, label: String, signer: PoolKey, rng: inout SplitMix64, into report: inout Report) {
            let e = Context.randomBytes(32, &rng)
            var signature = Context.randomBytes(64, &rng)
            if kind == "digest-range" {
                let specials: [[UInt8]] = [ReferenceCurve.scalar(0), SM2.n, ReferenceCurve.add(SM2.n, ReferenceCurve.scalar(1)),
                                           [UInt8](repeating: 0xff, count: 32), ReferenceCurve.scalar(1),
                                           ReferenceCurve.subtract(SM2.n, ReferenceCurve.scalar(1))]
                let pick = { (rng: inout SplitMix64) in specials[Int(rng.next() % UInt64(specials.count))] }
                switch rng.next() % 3 {
                case 0: signature = pick(&rng) + signature[32...]
                case 1: signature = Array(signature[..<32]) + pick(&rng)
                default:
                    let s = Context.randomScalar(&rng)
                    signature = ReferenceCurve.subtract(SM2.n, s) + s  // r + s = n
                }
            }
            compareDigestLevel(label: label, key: signer.raw, e: e, signature: signature, expected: nil, kept: signer, into: &report)
        }

        /// k*G + m*P by the fast engine's point arithmetic (plain and with the table) against
        /// OpenSSL's EC_POINT_mul, for any 32-byte k and m (0, n and above included).
        func combination(label: String, signer: PoolKey, rng: inout SplitMix64, into report: inout Report) {
            func scalar(_ rng: inout SplitMix64) -> [UInt8] {
                switch rng.next() % 6 {
                case 0: return ReferenceCurve.scalar(rng.next() % 4)
                case 1: return SM2.n
                case 2: return [UInt8](repeating: 0xff, count: 32)
                case 3: return edgeScalar(&rng)
                default: return Context.randomBytes(32, &rng)
                }
            }
            let k = scalar(&rng), m = scalar(&rng)
            let reference = curve.combination(k: k, m: m, point: signer.raw)
            let point = SM2Fast.decode(signer.raw)!
            let plain = SM2Fast.combination(k: k, m: m, point: point, table: nil)
            let table = SM2Fast.combination(k: k, m: m, point: point, table: SM2Fast.Table(point: point))
            let describe = "\(label) k=\(Hex.encode(k)) m=\(Hex.encode(m)) P=\(Hex.encode(signer.raw))"
            record(&report, describe + " (k*G + m*P, wNAF)", openSSL: true, fast: plain == reference, expected: nil)
            record(&report, describe + " (k*G + m*P, table)", openSSL: true, fast: table == reference, expected: nil)
        }
    }
}

/// OpenSSL's arithmetic on sm2p256v1 and modulo n, for building test cases independently of
/// the fast engine. Values are 32-byte big-endian arrays.
struct ReferenceCurve {
    let group = SM2.group

    static func scalar(_ v: UInt64) -> [UInt8] {
        [UInt8](repeating: 0, count: 24) + (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64($0))) }
    }

    /// a + b as 32 bytes (mod 2^256).
    static func add(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var carry = 0
        for i in stride(from: 31, through: 0, by: -1) {
            let t = Int(a[i]) + Int(b[i]) + carry
            out[i] = UInt8(t & 0xff)
            carry = t >> 8
        }
        return out
    }

    /// a - b as 32 bytes (mod 2^256).
    static func subtract(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var borrow = 0
        for i in stride(from: 31, through: 0, by: -1) {
            var t = Int(a[i]) - Int(b[i]) - borrow
            borrow = t < 0 ? 1 : 0
            if t < 0 { t += 256 }
            out[i] = UInt8(t)
        }
        return out
    }

    private static func modular(_ modulus: [UInt8], _ body: (OpaquePointer, OpaquePointer, OpaquePointer) -> Int32) -> [UInt8] {
        let result = OpenSSLNumber(), m = OpenSSLNumber(bytes: modulus), ctx = OpenSSLNumberContext()
        precondition(body(result.pointer, m.pointer, ctx.pointer) == 1, "BIGNUM arithmetic failed: \(OpenSSL.lastError())")
        return result.bytes()
    }

    static func addModN(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        let x = OpenSSLNumber(bytes: a), y = OpenSSLNumber(bytes: b)
        return modular(SM2.n) { BN_mod_add($0, x.pointer, y.pointer, $1, $2) }
    }

    static func subModN(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        let x = OpenSSLNumber(bytes: a), y = OpenSSLNumber(bytes: b)
        return modular(SM2.n) { BN_mod_sub($0, x.pointer, y.pointer, $1, $2) }
    }

    static func mulModN(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        let x = OpenSSLNumber(bytes: a), y = OpenSSLNumber(bytes: b)
        return modular(SM2.n) { BN_mod_mul($0, x.pointer, y.pointer, $1, $2) }
    }

    static func negateModN(_ a: [UInt8]) -> [UInt8] { subModN(scalar(0), a) }
    static func reduceModN(_ a: [UInt8]) -> [UInt8] { addModN(a, scalar(0)) }

    static func inverseModN(_ a: [UInt8]) -> [UInt8] {
        let x = OpenSSLNumber(bytes: a)
        return modular(SM2.n) { BN_mod_inverse($0, x.pointer, $1, $2) != nil ? 1 : 0 }
    }

    /// (a + small) mod p.
    static func addModP(_ a: [UInt8], _ small: UInt64) -> [UInt8] {
        let x = OpenSSLNumber(bytes: a), y = OpenSSLNumber(bytes: scalar(small))
        return modular(SM2.p) { BN_mod_add($0, x.pointer, y.pointer, $1, $2) }
    }

    /// k*G + m*P (P as `04 || X || Y`) as `04 || X || Y`, or nil for infinity.
    func combination(k: [UInt8], m: [UInt8], point raw: [UInt8]) -> [UInt8]? {
        let ctx = OpenSSLNumberContext()
        let p = OpenSSLPoint(group: group), out = OpenSSLPoint(group: group)
        let parsed = raw.withUnsafeBufferPointer { EC_POINT_oct2point(group.pointer, p.pointer, $0.baseAddress, $0.count, ctx.pointer) }
        precondition(parsed == 1, "reference point does not parse: \(OpenSSL.lastError())")
        let kk = OpenSSLNumber(bytes: k), mm = OpenSSLNumber(bytes: m)
        precondition(EC_POINT_mul(group.pointer, out.pointer, kk.pointer, p.pointer, mm.pointer, ctx.pointer) == 1,
                     "EC_POINT_mul: \(OpenSSL.lastError())")
        return encode(out, ctx)
    }

    private func encode(_ point: OpenSSLPoint, _ ctx: OpenSSLNumberContext) -> [UInt8]? {
        if EC_POINT_is_at_infinity(group.pointer, point.pointer) == 1 { return nil }
        var out = [UInt8](repeating: 0, count: 65)
        let written = out.withUnsafeMutableBufferPointer {
            EC_POINT_point2oct(group.pointer, point.pointer, POINT_CONVERSION_UNCOMPRESSED, $0.baseAddress, 65, ctx.pointer)
        }
        precondition(written == 65, "EC_POINT_point2oct wrote \(written) bytes")
        return out
    }

    /// The curve point with this x and y parity, or nil if x is not the x of a point.
    func point(withX x: [UInt8], odd: Bool) -> [UInt8]? {
        let ctx = OpenSSLNumberContext()
        let point = OpenSSLPoint(group: group)
        let xx = OpenSSLNumber(bytes: x)
        guard EC_POINT_set_compressed_coordinates(group.pointer, point.pointer, xx.pointer, odd ? 1 : 0, ctx.pointer) == 1 else {
            OpenSSL.clearErrors()
            return nil
        }
        return encode(point, ctx)
    }

    /// An x in [n, p) (a range of about 2^128 values) that is the x of a point.
    func xAtLeastN(_ rng: inout SplitMix64) -> [UInt8] {
        let gap = ReferenceCurve.subtract(SM2.p, SM2.n)  // p - n < 2^128
        while true {
            var offset = [UInt8](repeating: 0, count: 16) + SM2EngineComparison.Context.randomBytes(16, &rng)
            if Scalar.compare(offset, gap) >= 0 { offset = ReferenceCurve.subtract(offset, gap) }
            let x = ReferenceCurve.add(SM2.n, offset)
            if Scalar.compare(x, SM2.p) < 0, point(withX: x, odd: false) != nil { return x }
        }
    }

    /// An x below p - n (so x + n is below p too) that is the x of a point.
    func xBelowPMinusN(_ rng: inout SplitMix64) -> [UInt8] {
        while true {
            let x = [UInt8](repeating: 0, count: 17) + SM2EngineComparison.Context.randomBytes(15, &rng)
            if point(withX: x, odd: false) != nil { return x }
        }
    }
}
