import QuarryCore
import QuarryConsensus

enum Payload: Sendable {
    case consensus([UInt8])
    case commit(CommitCertificate, ProposalValue)
    /// "I am at this height": a peer that has decided it answers with the commit.
    case status(Height)
}

enum EventKind: Sendable {
    case deliver(from: Int, to: Int, Payload)
    case timer(node: Int, generation: UInt64)
    case gossip(node: Int)
    case crash(node: Int)
    case restart(node: Int)
    case partition
    case heal
}

struct Event: Sendable {
    let time: UInt64
    let seq: UInt64
    let kind: EventKind
    func before(_ o: Event) -> Bool { time != o.time ? time < o.time : seq < o.seq }
}

/// Binary min-heap ordered by (time, insertion sequence): deterministic.
struct EventQueue: Sendable {
    private var heap: [Event] = []
    var count: Int { heap.count }

    mutating func push(_ e: Event) {
        heap.append(e)
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard heap[i].before(heap[p]) else { break }
            heap.swapAt(i, p)
            i = p
        }
    }

    mutating func pop() -> Event? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count && heap[l].before(heap[m]) { m = l }
            if r < heap.count && heap[r].before(heap[m]) { m = r }
            if m == i { break }
            heap.swapAt(i, m)
            i = m
        }
        return top
    }
}

/// A simulated disk for one node: the WAL (synced prefix + unsynced tail), the saved
/// last-signed record (always synced) and the block store (synced on each decision).
struct SimDisk: Sendable {
    var walSynced: [UInt8] = WALFormat.magic
    var walUnsynced: [UInt8] = []
    var signed: SignedState? = nil
    var blocks: [Decision] = []

    mutating func syncWAL() {
        walSynced.append(contentsOf: walUnsynced)
        walUnsynced = []
    }
}

struct SimNode: Sendable {
    let endpoint: Int
    let validator: Int
    let signer: TestSigner
    let behaviour: Behaviour
    var core: ConsensusCore
    var disk = SimDisk()
    var alive = true
    var skew: UInt64 = 0
    var timerGeneration: UInt64 = 0
    var timerAt: UInt64? = nil
    var lastTick: UInt64 = 0
    var gossipCount: UInt64 = 0
    var lastCatchUp: [UInt64]
    /// Latest proposals this node received (height, round, id): a double voter votes for
    /// them in its conflicting votes.
    var seenProposals: [(Height, Round, Hash256)] = []

    var honest: Bool { behaviour.isEmpty }
    var decidedHeight: Height { UInt64(disk.blocks.count) }
}

enum TraceEvent: Sendable {
    case sent(height: Height, round: Round, step: Step, id: Hash256?)
    case decided(height: Height, round: Round, id: Hash256)
    case crashed(walKept: Int, walLost: Bool)
    case restarted(height: Height, replayed: Int)
    case partition(String)
    case heal
    case rejected(String)
}

struct TraceEntry: Sendable {
    let time: UInt64
    let node: Int
    let event: TraceEvent

    var rendered: String {
        let head = "t=\(time) n\(node) "
        func short(_ h: Hash256?) -> String { h.map { String($0.hex.prefix(8)) } ?? "nil" }
        switch event {
        case .sent(let h, let r, let s, let id): return head + "signs \(s) h=\(h) r=\(r) \(short(id))"
        case .decided(let h, let r, let id): return head + "decides h=\(h) r=\(r) \(short(id))"
        case .crashed(let kept, let lost): return head + "crashes (unsynced WAL bytes kept: \(kept)\(lost ? ", WAL lost" : ""))"
        case .restarted(let h, let n): return head + "restarts at h=\(h), replayed \(n) inputs"
        case .partition(let d): return head + "network: \(d)"
        case .heal: return head + "network heals"
        case .rejected(let why): return head + "rejects input: \(why)"
        }
    }
}
