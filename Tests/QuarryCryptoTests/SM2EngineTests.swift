import COpenSSL
import Foundation
import Testing
import QuarryCore
@testable import QuarryCrypto

/// The fast SM2 verification engine against OpenSSL (docs/adr/0012). The differential
/// cases come from `SM2EngineComparison` (the same generator as `quarry-bench sm2-soak`).
@Suite struct SM2EngineDifferentialTests {
    /// 10,000 cases per run in four shards (Swift Testing runs them in parallel). The seed
    /// changes every run, so CI covers new cases each time; a failure prints the seed and
    /// the case index, and `quarry-bench sm2-soak --seed S --first I --cases 1` replays it.
    static let seed: UInt64 = {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }()
    static let casesPerShard: UInt64 = 2_500

    @Test(arguments: 0..<4)
    func enginesAgreeOnRandomCases(shard: Int) {
        let first = UInt64(shard) * Self.casesPerShard
        let report = SM2EngineComparison.run(seed: Self.seed, indices: first..<(first + Self.casesPerShard))
        #expect(report.cases == Int(Self.casesPerShard))
        #expect(report.passed, "seed \(Self.seed): \(report)")
        // Not vacuous: every kind was drawn, and many comparisons were valid for both.
        #expect(report.kinds.count == SM2EngineComparison.kinds.count, "\(report.kinds)")
        #expect(report.bothValid > Int(Self.casesPerShard) / 8, "\(report)")
    }

    /// A fixed seed too, so one set of cases is the same in every run.
    @Test func enginesAgreeOnAFixedSeed() {
        let report = SM2EngineComparison.run(seed: 20_261_202, indices: 0..<400)
        #expect(report.passed, "\(report)")
    }

    /// The harness itself must catch a wrong answer: a report with a disagreement fails.
    @Test func harnessReportsDisagreements() {
        let context = SM2EngineComparison.Context(seed: 1)
        var report = SM2EngineComparison.Report()
        context.record(&report, "planted", openSSL: true, fast: false, expected: nil)
        context.record(&report, "planted", openSSL: false, fast: false, expected: true)
        #expect(report.disagreementCount == 1 && report.unexpectedCount == 1 && !report.passed)
    }
}

@Suite struct SM2FastEngineTests {
    @Test func standardExampleThroughBothEngines() throws {
        let sig = try SM2Signature(rawRepresentation: bytes(GBT32918Example.r + GBT32918Example.s))
        for engine in SM2VerificationEngine.allCases {
            let key = try SM2PublicKey(rawRepresentation: GBT32918Example.publicKey, engine: engine)
            for _ in 0..<3 {  // the third fast verification goes through the key's table
                #expect(key.isValidSignature(sig, for: GBT32918Example.message, engine: engine), "\(engine)")
                #expect(!key.isValidSignature(sig, for: Array("message digesT".utf8), engine: engine), "\(engine)")
                #expect(!key.isValidSignature(sig, for: GBT32918Example.message, id: Array("1234567812345679".utf8), engine: engine))
            }
            // The digest of the example, e, directly.
            #expect(key.isValid(rawSignature: sig.rawRepresentation, digest: bytes(GBT32918Example.e), engine: engine))
            #expect(SM2.isValidSignature(sig.rawRepresentation, for: GBT32918Example.message,
                                         publicKey: GBT32918Example.publicKey, engine: engine))
        }
        let fast = try SM2PublicKey(rawRepresentation: GBT32918Example.publicKey, engine: .fast)
        _ = fast.isValidSignature(sig, for: GBT32918Example.message, engine: .fast)
        _ = fast.isValidSignature(sig, for: GBT32918Example.message, engine: .fast)
        #expect(fast.storage.hasTable)
    }

    @Test func pointArithmeticKnownAnswers() throws {
        let g = [4] + SM2.gx + SM2.gy
        let point = try #require(SM2Fast.decode(g))
        let zero = ReferenceCurve.scalar(0), one = ReferenceCurve.scalar(1)
        let table = SM2Fast.Table(point: point)
        for t in [nil, table] {
            #expect(SM2Fast.combination(k: one, m: zero, point: point, table: t) == g)
            #expect(SM2Fast.combination(k: zero, m: one, point: point, table: t) == g)
            // (n-1)G = -G, nG = infinity, G + (n-1)G = infinity, 2G from either side.
            let minusG = [4] + SM2.gx + ReferenceCurve.subtract(SM2.p, SM2.gy)
            #expect(SM2Fast.combination(k: ReferenceCurve.subtract(SM2.n, one), m: zero, point: point, table: t) == minusG)
            #expect(SM2Fast.combination(k: SM2.n, m: zero, point: point, table: t) == nil)
            #expect(SM2Fast.combination(k: one, m: ReferenceCurve.subtract(SM2.n, one), point: point, table: t) == nil)
            let twoG = ReferenceCurve().combination(k: ReferenceCurve.scalar(2), m: zero, point: g)
            #expect(SM2Fast.combination(k: one, m: one, point: point, table: t) == twoG)
            #expect(SM2Fast.combination(k: ReferenceCurve.scalar(2), m: zero, point: point, table: t) == twoG)
        }
        // The example's public key is d*G.
        #expect(SM2Fast.combination(k: GBT32918Example.privateKey, m: zero, point: point, table: nil) == GBT32918Example.publicKey)
    }

    @Test func decodingMatchesOpenSSLOnEdgeKeys() throws {
        let good = SM2PrivateKey().publicKey.rawRepresentation
        let edge: [[UInt8]] = [
            good, [4] + SM2.gx + SM2.gy, [4] + SM2.gx + ReferenceCurve.subtract(SM2.p, SM2.gy),
            [4] + [UInt8](repeating: 0, count: 64), [4] + SM2.p + SM2.gy, [4] + SM2.gx + SM2.p,
            [4] + ReferenceCurve.subtract(SM2.p, ReferenceCurve.scalar(1)) + SM2.gy,
            [4] + Array(good[1..<33]) + ReferenceCurve.addModP(Array(good[33...]), 1),
            [0], [], Array(good.dropLast()), good + [0], [2] + Array(good[1..<33]), [6] + Array(good[1...]),
        ]
        for raw in edge {
            let openSSL = (try? SM2PublicKey(rawRepresentation: raw, engine: .openSSL)) != nil
            let fast = (try? SM2PublicKey(rawRepresentation: raw, engine: .fast)) != nil
            #expect(openSSL == fast, "\(Hex.encode(raw))")
        }
        // The same error for an off-curve point from both engines.
        let offCurve = [4] + Array(good[1..<33]) + ReferenceCurve.addModP(Array(good[33...]), 1)
        for engine in SM2VerificationEngine.allCases {
            #expect(throws: SM2.notOnCurve) { try SM2PublicKey(rawRepresentation: offCurve, engine: engine) }
        }
        // Points of x = 0 and small x, if on the curve, are decoded by both.
        let curve = ReferenceCurve()
        for x in 0..<40 {
            guard let p = curve.point(withX: ReferenceCurve.scalar(UInt64(x)), odd: x % 2 == 0) else { continue }
            #expect((try? SM2PublicKey(rawRepresentation: p, engine: .fast)) != nil, "x = \(x)")
        }
    }

    /// Arbitrary bytes as key, message, ID and signature: both engines give the same answer
    /// (almost always "invalid"), including when only some of the parts are random.
    @Test func fuzzArbitraryBytes() throws {
        var generator = SystemRandomNumberGenerator()
        let seed = generator.next()
        var rng = SplitMix64(seed: seed)
        let signer = SM2PrivateKey()
        let message = Array("fuzz".utf8)
        let good = try signer.signature(for: message).rawRepresentation
        let goodKey = signer.publicKey.rawRepresentation
        func random(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
        func length(_ typical: Int) -> Int { rng.next() % 3 == 0 ? Int(rng.next() % 100) : typical }
        var disagreements: [String] = []
        var valid = 0
        for i in 0..<1_500 {
            var key = rng.next() % 2 == 0 ? goodKey : [4] + random(64)
            var sig = rng.next() % 2 == 0 ? good : random(64)
            var msg = rng.next() % 2 == 0 ? message : random(Int(rng.next() % 64))
            let id = rng.next() % 4 == 0 ? random(Int(rng.next() % 24)) : SM2.defaultID
            switch rng.next() % 4 {
            case 0: key = random(length(65))
            case 1: sig = random(length(64))
            case 2: if !msg.isEmpty { msg[Int(rng.next() % UInt64(msg.count))] ^= UInt8(1 + rng.next() % 255) }
            default: break
            }
            let a = SM2.isValidSignature(sig, for: msg, publicKey: key, id: id, engine: .openSSL)
            let b = SM2.isValidSignature(sig, for: msg, publicKey: key, id: id, engine: .fast)
            if a { valid += 1 }
            if a != b {
                disagreements.append("seed \(seed) #\(i) key=\(Hex.encode(key)) sig=\(Hex.encode(sig)) msg=\(Hex.encode(msg)) id=\(Hex.encode(id)): OpenSSL \(a) fast \(b)")
            }
            // The digest-level equation on 64 random bytes and a random e.
            let pk = try SM2PublicKey(rawRepresentation: goodKey, engine: .openSSL)
            let e = random(32), raw = random(64)
            if pk.isValid(rawSignature: raw, digest: e, engine: .openSSL) != pk.isValid(rawSignature: raw, digest: e, engine: .fast) {
                disagreements.append("seed \(seed) #\(i) digest e=\(Hex.encode(e)) r||s=\(Hex.encode(raw))")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
        #expect(valid > 0, "the fuzz never produced a valid input, so it proves little")
    }

    @Test func everyKeyFormIsMadeByItsOwnEngine() throws {
        let raw = SM2PrivateKey().publicKey.rawRepresentation
        let message: [UInt8] = [1, 2, 3]
        let signer = try SM2PrivateKey(rawRepresentation: GBT32918Example.privateKey)
        let sig = try signer.signature(for: message)
        // A key made under the fast engine imports into OpenSSL only when OpenSSL is asked.
        let fastKey = try SM2PublicKey(rawRepresentation: signer.publicKey.rawRepresentation, engine: .fast)
        #expect(fastKey.isValidSignature(sig, for: message, engine: .openSSL))
        #expect(fastKey.isValidSignature(sig, for: message, engine: .fast))
        #expect(fastKey.derRepresentation == signer.publicKey.derRepresentation)
        // And one made under OpenSSL decodes for the fast engine on first use.
        let openSSLKey = try SM2PublicKey(rawRepresentation: raw, engine: .openSSL)
        #expect(!openSSLKey.isValidSignature(sig, for: message, engine: .fast))
    }

    @Test func concurrentFastVerificationBuildsOneTable() throws {
        let signer = SM2PrivateKey()
        let key = try SM2PublicKey(rawRepresentation: signer.publicKey.rawRepresentation, engine: .fast)
        let messages = (0..<8).map { [UInt8($0)] }
        let signatures = try messages.map { try signer.signature(for: $0) }
        let lock = Lock()
        nonisolated(unsafe) var wrong = 0
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            let m = i % messages.count
            let ok = key.isValidSignature(signatures[m], for: messages[m], engine: .fast)
            let bad = key.isValidSignature(signatures[m], for: messages[(m + 1) % messages.count], engine: .fast)
            if !ok || bad { lock.withLock { wrong += 1 } }
        }
        #expect(wrong == 0)
        #expect(key.storage.hasTable)
    }
}

/// The process-wide engine setting. Serialized: it changes global state (both engines give
/// the same answers, so other tests running meanwhile are not affected in their results).
@Suite(.serialized) struct SM2EngineSettingTests {
    @Test func defaultIsTheFastEngine() {
        #expect(SM2.defaultVerificationEngine == .fast)
        #expect(SM2VerificationEngine(rawValue: "fast") == .fast)
        #expect(SM2VerificationEngine(rawValue: "openssl") == .openSSL)
    }

    @Test func ledgerVerificationFollowsTheSetting() throws {
        let before = SM2.verificationEngine
        defer { SM2.verificationEngine = before }
        for engine in SM2VerificationEngine.allCases {
            SM2.verificationEngine = engine
            let key = SigningKey(scheme: .sm2)  // a new key, so the shared cache makes a new entry now
            let message: [UInt8] = [7, 7]
            let sig = try key.sign(message)
            for _ in 0..<3 {
                #expect(SignatureVerification.isValid(signature: sig, message: message, publicKey: key.publicKeyBytes))
                #expect(!SignatureVerification.isValid(signature: sig, message: message + [0], publicKey: key.publicKeyBytes))
            }
            // Under the fast engine the cached key has built its table; under OpenSSL it has not.
            let cached = try #require(VerificationKeyCache.shared.sm2(key.publicKeyBytes.bytes))
            #expect(cached.storage.hasTable == (engine == .fast), "\(engine)")
        }
    }
}
