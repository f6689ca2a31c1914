import QuarryCore

/// A subscription topic the node publishes to (for example `newBlocks`), with the fields a
/// subscriber may filter on and the schema of what each notification carries.
public struct RPCTopic: Sendable {
    public let name: String
    public let summary: String
    /// Fields of the optional `filter` object of `subscribe`; all should be optional.
    public let filter: [RPCParamSpec]
    /// JSON Schema of each notification's `result`.
    public let payloadSchema: JSONValue

    public init(name: String, summary: String, filter: [RPCParamSpec] = [], payloadSchema: JSONValue) {
        self.name = name
        self.summary = summary
        self.filter = filter
        self.payloadSchema = payloadSchema
    }
}

/// Something that receives notification frames: a WebSocket connection. `deliver` may be
/// called from any thread and must not block.
protocol RPCSubscriber: AnyObject, Sendable {
    func deliver(_ frame: [UInt8])
}

/// Subscriptions of all connections, and the publishing side the node calls.
public final class RPCSubscriptionHub: Sendable {
    static let unsubscribeParams = [RPCParamSpec("subscription", .string(lengthMax: 64),
                                                 summary: "The id returned by subscribe.")]

    private struct Entry {
        let id: String
        let topic: String
        let subscriber: any RPCSubscriber
        let filter: RPCParams
    }

    private let lock = Lock()
    private let perConnectionMax: Int
    private let totalMax: Int
    nonisolated(unsafe) private var topics: [String: RPCTopic] = [:]
    nonisolated(unsafe) private var entries: [String: Entry] = [:]  // by subscription id
    nonisolated(unsafe) private var nextNumber: UInt64 = 1

    init(perConnectionMax: Int, totalMax: Int) {
        self.perConnectionMax = perConnectionMax
        self.totalMax = totalMax
    }

    /// Adds a topic; a second topic of the same name is a programming error.
    public func register(_ topic: RPCTopic) {
        lock.withLock {
            precondition(topics[topic.name] == nil, "topic \(topic.name) registered twice")
            topics[topic.name] = topic
        }
    }

    /// Registered topics sorted by name.
    public var allTopics: [RPCTopic] { lock.withLock { topics.values.sorted { $0.name < $1.name } } }

    /// Number of live subscriptions (all connections).
    public var count: Int { lock.withLock { entries.count } }

    static let subscribeParams = [
        RPCParamSpec("topic", .string(lengthMax: 64), summary: "The topic to follow (see x-quarry-topics)."),
        RPCParamSpec("filter", .object, required: false,
                     summary: "Topic-specific filter fields; all given fields must match."),
    ]

    func subscribe(_ subscriber: any RPCSubscriber, params: RPCParams) throws(RPCError) -> String {
        let topicName = try params.string("topic")
        guard let topic = lock.withLock({ topics[topicName] }) else {
            let known = allTopics.map { "\"\($0.name)\"" }.joined(separator: ", ")
            throw .invalidParams("unknown topic \"\(topicName)\" (topics: \(known.isEmpty ? "none" : known))")
        }
        let filter = try RPCParams.validate(method: "subscribe(\(topicName))", raw: params.value("filter"),
                                            specs: topic.filter, what: "filter field")
        let outcome: Result<String, RPCError> = lock.withLock {
            let mine = entries.values.reduce(0) { $0 + ($1.subscriber === subscriber ? 1 : 0) }
            guard mine < perConnectionMax else {
                return .failure(.limitExceeded(code: "rpc.too_many_subscriptions",
                                               "this connection already has \(mine) subscriptions", limit: perConnectionMax))
            }
            guard entries.count < totalMax else {
                return .failure(.limitExceeded(code: "rpc.too_many_subscriptions",
                                               "the server already has \(entries.count) subscriptions", limit: totalMax))
            }
            let id = Hex.encode(withUnsafeBytes(of: nextNumber.bigEndian) { Array($0) })
            nextNumber += 1
            entries[id] = Entry(id: id, topic: topicName, subscriber: subscriber, filter: filter)
            return .success(id)
        }
        return try outcome.get()
    }

    func unsubscribe(_ subscriber: any RPCSubscriber, id: String) throws(RPCError) {
        let found: Bool = lock.withLock {
            guard let e = entries[id], e.subscriber === subscriber else { return false }
            entries[e.id] = nil
            return true
        }
        guard found else {
            throw .notFound(code: "rpc.subscription_not_found", "no subscription \"\(id)\" on this connection")
        }
    }

    /// Drops every subscription of a closed connection.
    func removeAll(of subscriber: any RPCSubscriber) {
        lock.withLock { entries = entries.filter { $0.value.subscriber !== subscriber } }
    }

    /// Sends `payload` to every subscription of `topic` whose filter `matching` accepts, and
    /// returns how many were sent. `matching` sees the subscription's validated filter (no
    /// fields when the subscriber gave none) and runs outside the hub's lock. Never blocks:
    /// a slow subscriber is dealt with by its connection (see docs/spec/json-rpc.md).
    @discardableResult
    public func publish(topic: String, matching: (RPCParams) -> Bool = { _ in true }, payload: JSONValue) -> Int {
        let targets: [Entry] = lock.withLock {
            precondition(topics[topic] != nil, "publish to unregistered topic \(topic)")
            return entries.values.filter { $0.topic == topic }.sorted { $0.id < $1.id }
        }
        var delivered = 0
        var payloadBytes: [UInt8]? = nil
        for e in targets where matching(e.filter) {
            if payloadBytes == nil { payloadBytes = payload.encoded }
            var frame = Array(#"{"jsonrpc":"2.0","method":"subscription","params":{"subscription":"#.utf8)
            JSONValue.writeString(e.id, to: &frame)
            frame.append(contentsOf: #","topic":"#.utf8)
            JSONValue.writeString(topic, to: &frame)
            frame.append(contentsOf: #","result":"#.utf8)
            frame.append(contentsOf: payloadBytes!)
            frame.append(contentsOf: "}}".utf8)
            e.subscriber.deliver(frame)
            delivered += 1
        }
        return delivered
    }
}
