import QuarryCore
import QuarryCrypto
import QuarryLedger
import QuarryRPC

/// A submitted transaction and what the node said about it.
public struct Submission: Sendable {
    public let transaction: SignedTransaction
    public let status: TransactionStatus
    public var hash: Hash256 { transaction.hash }

    public init(transaction: SignedTransaction, status: TransactionStatus) {
        self.transaction = transaction
        self.status = status
    }
}

/// Sends transactions from one account: fills the chain id from `node_status` and the
/// nonce from `account_get`, signs, submits with a wait mode, and keeps the next nonce
/// locally so that many transactions can be in flight (ADR 0100).
///
/// Nonce rules (docs/spec/transactions.md section 2): a committed success uses the nonce; a
/// transaction the ledger refuses uses nothing, so the next one reuses its nonce; a
/// transaction the mempool admitted but that is not committed yet is assumed to succeed.
/// Concurrent calls are served one after the other, in the order they arrive, so
/// transactions from one account never race for a nonce; with `wait: .checked` each
/// returns as soon as the mempool admits it, so many can still be in flight.
///
/// When the node says the nonce is wrong (already used, or taken by another waiting
/// transaction of this account), the sender re-reads the account and tries again, a
/// bounded number of times.
public actor Sender {
    public let client: QuarryClient
    public let key: SigningKey
    public nonisolated let address: Address
    private var chainID: String?
    private var nextNonce: UInt64?
    /// Submissions run one at a time (a nonce is settled before the next is chosen); the
    /// others wait here in arrival order.
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// How many nonces past the committed one a retry may try: the mempool's window.
    public static let nonceAttemptsMax = 64

    public init(client: QuarryClient, key: SigningKey, chainID: String? = nil) {
        self.client = client
        self.key = key
        self.address = key.address
        self.chainID = chainID
    }

    /// Forgets the local nonce; the next submission reads it from the node.
    public func resynchronise() { nextNonce = nil }

    /// The nonce the next transaction will carry (read from the node if not known).
    public func nonce() async throws(ClientError) -> UInt64 {
        if let nextNonce { return nextNonce }
        let n = try await client.account(address).nonce
        nextNonce = n
        return n
    }

    public func signer() async throws(ClientError) -> TransactionSigner {
        if chainID == nil { chainID = try await client.status().chainID }
        return try TransactionSigner(chainID: chainID!, key: key)
    }

    /// Signs `payload` with the next nonce, submits it and waits per `wait`.
    public func submit(_ payload: Payload, wait: WaitMode) async throws(ClientError) -> Submission {
        try await submit(wait: wait) { _ in payload }
    }

    /// Like `submit(_:wait:)` for a payload that depends on the nonce it is sent with (an
    /// `openSeason` whose hash chain is labelled by it): `build` is called again whenever
    /// the nonce changes.
    public func submit(wait: WaitMode, build: @Sendable (UInt64) throws(ClientError) -> Payload) async throws(ClientError) -> Submission {
        await acquire()
        defer { release() }
        return try await submitAlone(wait: wait, build: build)
    }

    private func acquire() async {
        if busy {
            await withCheckedContinuation { waiting.append($0) }
        } else {
            busy = true
        }
    }

    private func release() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }

    private func submitAlone(wait: WaitMode, build: @Sendable (UInt64) throws(ClientError) -> Payload) async throws(ClientError) -> Submission {
        let signer = try await signer()
        var fresh = nextNonce == nil
        var nonce = try await self.nonce()
        var attempts = 0
        while true {
            attempts += 1
            let tx = try signer.sign(build(nonce), nonce: nonce)
            do {
                let status = try await client.submit(tx, wait: wait)
                switch status.status {
                case .committed where status.failure == nil, .pending:
                    nextNonce = nonce + 1
                case .committed, .rejected:
                    // Refused: nothing changed, the nonce is still free (unless the node
                    // says the nonce itself was the problem, handled below).
                    if let f = status.failure, Sender.isNonceProblem(f.code), attempts < Sender.nonceAttemptsMax {
                        (nonce, fresh) = try await retryNonce(after: f.code, nonce: nonce, fresh: fresh)
                        continue
                    }
                    nextNonce = nonce
                case .unknown:
                    nextNonce = nil
                }
                return Submission(transaction: tx, status: status)
            } catch {
                if let code = error.remote?.dataCode, Sender.isNonceProblem(code), attempts < Sender.nonceAttemptsMax {
                    (nonce, fresh) = try await retryNonce(after: code, nonce: nonce, fresh: fresh)
                    continue
                }
                // A timeout or a broken connection leaves the outcome unknown: re-read the
                // nonce next time rather than guess.
                nextNonce = nil
                throw error
            }
        }
    }

    /// The nonce to try after the node refused `nonce` with `code`.
    private func retryNonce(after code: String, nonce: UInt64, fresh: Bool) async throws(ClientError) -> (UInt64, Bool) {
        if code == "mempool.nonce_taken" {
            // Another waiting transaction of this account holds it: take the next one.
            return (nonce + 1, fresh)
        }
        // Too low, replayed, or a gap: the local idea of the nonce is stale.
        let committed = try await client.account(address).nonce
        if committed == nonce && fresh {
            throw .remote(RemoteError(code: RPCError.applicationErrorCode, message: "Application error",
                                      data: ["code": .string(code), "reason": .string("the node refuses nonce \(nonce), which is the account's committed nonce")]))
        }
        nextNonce = committed
        return (committed, true)
    }

    static func isNonceProblem(_ code: String) -> Bool {
        ["mempool.nonce_too_low", "mempool.nonce_taken", "mempool.nonce_gap_too_large", "tx.nonce_replayed", "tx.nonce_gap"].contains(code)
    }
}
