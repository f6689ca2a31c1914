import QuarryCore

/// Why a connection was refused or closed, or why an operation on the transport failed.
/// Every error caused by a peer's bytes is one of these; none of them crashes the node.
public struct P2PError: QuarryError, Equatable {
    /// A stable identifier, listed in `docs/spec/p2p.md` (section "Errors").
    public let code: String
    /// A human explanation for logs.
    public let message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    public static func == (a: P2PError, b: P2PError) -> Bool { a.code == b.code }
}

extension P2PError {
    static func malformed(_ m: String) -> P2PError { P2PError("p2p.malformed_frame", m) }
    static func oversized(_ n: Int, limit: Int) -> P2PError {
        P2PError("p2p.frame_too_large", "frame of \(n) bytes exceeds the limit of \(limit) bytes")
    }
    static let authentication = P2PError("p2p.authentication_failed", "a frame failed AEAD authentication")
}
