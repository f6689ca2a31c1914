import Foundation
import Testing
import QuarryCore
@testable import QuarryCrypto

/// Interoperability with independent implementations, run in one `python3` process per
/// test: `gmssl` (pure-Python SM2/SM3) and `coincurve` (libsecp256k1 bindings). Install
/// them with scripts/ensure-deps.sh. A missing interpreter or module FAILS these tests.
///
/// Each test sends a JSON batch on stdin; the script checks Quarry's outputs and returns
/// its own for Quarry to check.
enum Python {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func run(_ script: String, input: [String: Any]) throws -> [String: Any] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        do { try process.run() } catch {
            throw Failure(description: "cannot start python3 (\(error)); run scripts/ensure-deps.sh")
        }
        let payload = try JSONSerialization.data(withJSONObject: input)
        // Read stdout/stderr on other threads while writing stdin, so no pipe fills up.
        nonisolated(unsafe) var out = Data(), err = Data()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { out = stdout.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { err = stderr.fileHandleForReading.readDataToEndOfFile() }
        stdin.fileHandleForWriting.write(payload)
        try stdin.fileHandleForWriting.close()
        process.waitUntilExit()
        group.wait()
        let errText = String(decoding: err, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            if process.terminationStatus == 127 {
                throw Failure(description: "python3 not found on PATH; run scripts/ensure-deps.sh. stderr: \(errText)")
            }
            if errText.contains("ModuleNotFoundError") || errText.contains("No module named") {
                throw Failure(description: "python3 lacks gmssl or coincurve; run scripts/ensure-deps.sh. stderr: \(errText)")
            }
            throw Failure(description: "python3 exited with \(process.terminationStatus): \(errText)")
        }
        guard let result = try JSONSerialization.jsonObject(with: out) as? [String: Any] else {
            throw Failure(description: "python3 printed no JSON object: \(String(decoding: out, as: UTF8.self))")
        }
        return result
    }
}

private let sm2Script = #"""
import json, secrets, sys
from gmssl import sm2, sm3, func

req = json.load(sys.stdin)
table = sm2.default_ecc_table
n = int(table['n'], 16)

def signer(private_hex, public_hex_xy):
    c = sm2.CryptSM2(private_key=private_hex, public_key='')
    c.public_key = public_hex_xy  # after construction: the constructor's lstrip("04") corrupts keys
    return c

# 1. Quarry's signatures, checked by gmssl (and tampered copies, which must fail).
verified = []
for case in req['quarry']:
    c = signer(None, case['pub'][2:])
    msg = bytes.fromhex(case['msg'])
    ok = bool(c.verify_with_sm3(case['sig'], msg))
    bad = bool(c.verify_with_sm3(case['sig'], msg + b'\x00'))
    verified.append([ok, bad])

# 2. gmssl's own keys and signatures for Quarry to check.
produced = []
for i in range(req['count']):
    d = secrets.randbelow(n - 2) + 1
    d_hex = '%064x' % d
    probe = sm2.CryptSM2(private_key=d_hex, public_key='')
    pub = probe._kg(d, table['g'])
    pub = pub.rjust(128, '0')
    c = signer(d_hex, pub)
    msg = secrets.token_bytes(i * 7)
    sig = None
    while sig is None:
        sig = c.sign_with_sm3(msg, '%064x' % (secrets.randbelow(n - 1) + 1))
    produced.append({'private': d_hex, 'pub': '04' + pub, 'msg': msg.hex(), 'sig': sig})

# 3. gmssl's SM3 over the given inputs (an independent SM3 implementation).
hashes = [sm3.sm3_hash(func.bytes_to_list(bytes.fromhex(m))) for m in req['sm3']]

# 4. The GB/T 32918.5 example signature, checked by gmssl.
ex = req['example']
example_ok = bool(signer(None, ex['pub'][2:]).verify_with_sm3(ex['sig'], bytes.fromhex(ex['msg'])))

json.dump({'verified': verified, 'produced': produced, 'sm3': hashes, 'example': example_ok}, sys.stdout)
"""#

private let secp256k1Script = #"""
import json, secrets, sys
import coincurve

req = json.load(sys.stdin)

def compact_to_der(sig):
    def integer(v):
        v = v.lstrip(b'\x00') or b'\x00'
        if v[0] & 0x80: v = b'\x00' + v
        return b'\x02' + bytes([len(v)]) + v
    body = integer(sig[:32]) + integer(sig[32:])
    return b'\x30' + bytes([len(body)]) + body

identity = lambda m: m

# 1. Quarry's signatures (compact r||s and Quarry's DER), checked by libsecp256k1 via coincurve.
verified = []
for case in req['quarry']:
    pub = coincurve.PublicKey(bytes.fromhex(case['pub']))
    digest = bytes.fromhex(case['digest'])
    sig = bytes.fromhex(case['sig'])
    der = bytes.fromhex(case['der'])
    ok = pub.verify(compact_to_der(sig), digest, hasher=identity)
    ok_der = pub.verify(der, digest, hasher=identity)
    bad = pub.verify(der, bytes([digest[0] ^ 1]) + digest[1:], hasher=identity)
    # RFC 6979 is deterministic: the same key and digest give the same signature.
    same = coincurve.PrivateKey(bytes.fromhex(case['private'])).sign(digest, hasher=identity) == der
    verified.append([ok, ok_der, bad, same])

# 2. coincurve's keys and signatures for Quarry to check.
produced = []
for i in range(req['count']):
    key = coincurve.PrivateKey()
    digest = secrets.token_bytes(32)
    der = key.sign(digest, hasher=identity)
    compact = key.sign_recoverable(digest, hasher=identity)[:64]
    produced.append({'private': key.secret.hex(), 'pub': key.public_key.format(compressed=True).hex(),
                     'pubUncompressed': key.public_key.format(compressed=False).hex(),
                     'digest': digest.hex(), 'der': der.hex(), 'sig': compact.hex()})

json.dump({'verified': verified, 'produced': produced}, sys.stdout)
"""#

@Suite struct InteropTests {
    @Test func sm2AndSM3AgainstGmssl() throws {
        var quarry: [[String: String]] = []
        for i in 0..<8 {
            let key = SM2PrivateKey()
            let message = (0..<(i * 13)).map { UInt8(truncatingIfNeeded: $0 &* 101 &+ i) }
            let sig = try key.signature(for: message)
            quarry.append(["pub": hexOf(key.publicKey.rawRepresentation), "msg": hexOf(message), "sig": hexOf(sig.rawRepresentation)])
        }
        let sm3Inputs: [[UInt8]] = [[], Array("abc".utf8), [UInt8](repeating: 0x61, count: 55), [UInt8](repeating: 0x62, count: 56),
                                    [UInt8](repeating: 0x63, count: 64), (0..<1000).map { UInt8(truncatingIfNeeded: $0) }]
        let example = ["pub": hexOf(GBT32918Example.publicKey), "msg": hexOf(GBT32918Example.message),
                       "sig": GBT32918Example.r + GBT32918Example.s]
        let result = try Python.run(sm2Script, input: ["quarry": quarry, "count": 8, "sm3": sm3Inputs.map(hexOf), "example": example])

        let verified = try #require(result["verified"] as? [[Bool]])
        #expect(verified.count == quarry.count)
        for (i, pair) in verified.enumerated() {
            #expect(pair == [true, false], "Quarry SM2 signature \(i): gmssl says valid=\(pair[0]), tampered valid=\(pair[1])")
        }
        #expect(result["example"] as? Bool == true)

        let produced = try #require(result["produced"] as? [[String: String]])
        #expect(produced.count == 8)
        for case_ in produced {
            let pubRaw = bytes(case_["pub"]!), message = bytes(case_["msg"]!)
            let key = try SM2PublicKey(rawRepresentation: pubRaw)
            // gmssl derives the same public key from the private scalar as Quarry does.
            #expect(try SM2PrivateKey(rawRepresentation: bytes(case_["private"]!)).publicKey == key)
            let sig = try SM2Signature(rawRepresentation: bytes(case_["sig"]!))
            for engine in SM2VerificationEngine.allCases {
                let parsed = try SM2PublicKey(rawRepresentation: pubRaw, engine: engine)
                #expect(parsed.isValidSignature(sig, for: message, engine: engine), "gmssl signature for message \(case_["msg"]!), \(engine)")
                #expect(!parsed.isValidSignature(sig, for: message + [0], engine: engine))
            }
            #expect(SignatureVerification.isValid(signature: sig.rawRepresentation, message: message,
                                                  publicKey: try PublicKeyBytes(scheme: .sm2, bytes: pubRaw)))
        }

        let hashes = try #require(result["sm3"] as? [String])
        #expect(hashes == sm3Inputs.map { SM3.hash($0).hex })
    }

    @Test func secp256k1AgainstCoincurve() throws {
        var quarry: [[String: String]] = []
        for i in 0..<16 {
            let key = Secp256k1PrivateKey()
            let digest = SM3.hash([UInt8(i), 1, 2, 3])
            let sig = try key.signature(forDigest: digest)
            quarry.append(["private": hexOf(key.rawRepresentation), "pub": hexOf(key.publicKey.rawRepresentation),
                           "digest": digest.hex, "sig": hexOf(sig.rawRepresentation), "der": hexOf(sig.derRepresentation)])
        }
        let result = try Python.run(secp256k1Script, input: ["quarry": quarry, "count": 16])

        let verified = try #require(result["verified"] as? [[Bool]])
        #expect(verified.count == quarry.count)
        for (i, row) in verified.enumerated() {
            #expect(row == [true, true, false, true], "case \(i): [valid, valid DER, tampered valid, same RFC 6979 signature] = \(row)")
        }
        let produced = try #require(result["produced"] as? [[String: String]])
        #expect(produced.count == 16)
        for case_ in produced {
            let key = try Secp256k1PublicKey(rawRepresentation: bytes(case_["pub"]!))
            #expect(try Secp256k1PublicKey(rawRepresentation: bytes(case_["pubUncompressed"]!)) == key)
            #expect(try Secp256k1PrivateKey(rawRepresentation: bytes(case_["private"]!)).publicKey == key)
            let digest = try Hash256(bytes: bytes(case_["digest"]!))
            let compact = try Secp256k1Signature(rawRepresentation: bytes(case_["sig"]!))
            let der = try Secp256k1Signature(derRepresentation: bytes(case_["der"]!))
            #expect(compact == der)
            #expect(key.isValidSignature(compact, forDigest: digest))
            #expect(!key.isValidSignature(compact, forDigest: SM3.hash(digest.bytes)))
            // And Quarry's own signature with the same key is byte-identical (RFC 6979).
            let mine = try Secp256k1PrivateKey(rawRepresentation: bytes(case_["private"]!)).signature(forDigest: digest)
            #expect(mine == compact)
        }
    }
}
