import Foundation
import Testing
import QuarryCore
@testable import QuarryCrypto

/// Interoperability with the `openssl` command-line tool (OpenSSL's encoders, PEM reader
/// and EVP_DigestSign/Verify route with an explicit distinguishing ID): keys and
/// signatures Quarry writes are read and checked by the tool, and the tool's signature is
/// checked by Quarry. One shell process for the whole exchange.
@Suite struct OpenSSLCommandLineTests {
    @Test func keysAndSignaturesRoundTripThroughTheTool() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("quarry-openssl-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func file(_ name: String) -> URL { directory.appendingPathComponent(name) }

        let key = SM2PrivateKey()
        let message = Array("mileage claim 42".utf8)
        let signature = try key.signature(for: message)
        try Data(key.pemRepresentation.utf8).write(to: file("key.pem"))
        try Data(key.publicKey.pemRepresentation.utf8).write(to: file("pub.pem"))
        try Data(key.publicKey.derRepresentation).write(to: file("pub.der"))
        try Data(message).write(to: file("msg"))
        try Data(signature.derRepresentation).write(to: file("quarry.sig"))
        try Data(message + [0]).write(to: file("other"))

        let script = """
            set -u
            command -v openssl >/dev/null 2>&1 || { echo no-openssl-tool; exit 0; }
            cd "$1"
            id=distid:1234567812345678
            openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -digest sm3 -in msg -sigfile quarry.sig -pkeyopt $id >/dev/null 2>&1 && echo verify-quarry=ok || echo verify-quarry=fail
            openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -digest sm3 -in other -sigfile quarry.sig -pkeyopt $id >/dev/null 2>&1 && echo verify-tampered=ok || echo verify-tampered=fail
            openssl pkey -pubin -inform DER -in pub.der -outform PEM 2>/dev/null | cmp -s - pub.pem && echo der-equals-pem=ok || echo der-equals-pem=fail
            openssl pkey -in key.pem -pubout 2>/dev/null | cmp -s - pub.pem && echo derived-public=ok || echo derived-public=fail
            openssl pkeyutl -sign -inkey key.pem -rawin -digest sm3 -in msg -out tool.sig -pkeyopt $id 2>/dev/null && echo sign=ok || echo sign=fail
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script, "sh", directory.path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(!text.contains("no-openssl-tool"), "the openssl command-line tool is missing; run scripts/ensure-deps.sh")
        #expect(text.contains("verify-quarry=ok"), "\(text)")
        #expect(text.contains("verify-tampered=fail"), "\(text)")
        #expect(text.contains("der-equals-pem=ok"), "\(text)")
        #expect(text.contains("derived-public=ok"), "\(text)")
        #expect(text.contains("sign=ok"), "\(text)")

        let toolSignature = try SM2Signature(derRepresentation: Array(try Data(contentsOf: file("tool.sig"))))
        for engine in SM2VerificationEngine.allCases {
            #expect(key.publicKey.isValidSignature(toolSignature, for: message, engine: engine), "\(engine)")
            #expect(!key.publicKey.isValidSignature(toolSignature, for: message + [0], engine: engine), "\(engine)")
        }
    }
}
