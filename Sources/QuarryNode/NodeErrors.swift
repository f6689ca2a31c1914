import QuarryCore

/// The node is stopping and takes no new work (a transaction submitted during shutdown).
public struct NodeShuttingDown: QuarryError, Equatable {
    public init() {}
    public var code: String { "node.shutting_down" }
    public var description: String { "the node is shutting down and accepts no new transactions" }
}
