/// An error that reaches an operator or a client: a stable machine-readable code and a
/// human message. Every error raised by bad input from outside conforms to it.
public protocol QuarryError: Error, CustomStringConvertible, Sendable {
    /// A stable identifier such as `encoding.trailing_bytes`, documented in `docs/spec/`.
    var code: String { get }
}
