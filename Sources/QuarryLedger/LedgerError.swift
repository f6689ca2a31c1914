import QuarryCore

/// Why a transaction was rejected. Every rejection leaves the state exactly as it was (the
/// sender's nonce included). `code` is stable and listed in `docs/spec/transactions.md`.
public struct TransactionError: QuarryError, Equatable {
    public let code: String
    public let message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

/// Why a whole block cannot be executed (the block is invalid and must not be committed).
public enum BlockError: QuarryError, Equatable {
    case wrongHeight(expected: UInt64, got: UInt64)
    case timeBeforeGenesis(time: UInt64, genesis: UInt64)
    case timeWentBackwards(previous: UInt64, got: UInt64)
    case systemTransactionsMismatch(expected: Int, got: Int, firstDifference: Int)
    case tooManyTransactions(count: Int, limit: Int)
    case blockTooLarge(bytes: Int, limit: Int)

    public var code: String {
        switch self {
        case .wrongHeight: return "block.wrong_height"
        case .timeBeforeGenesis: return "block.time_before_genesis"
        case .timeWentBackwards: return "block.time_went_backwards"
        case .systemTransactionsMismatch: return "block.system_transactions_mismatch"
        case .tooManyTransactions: return "block.too_many_transactions"
        case .blockTooLarge: return "block.too_large"
        }
    }

    public var description: String {
        switch self {
        case .wrongHeight(let e, let g): return "block height \(g) does not follow the ledger's height (expected \(e))"
        case .timeBeforeGenesis(let t, let g): return "block time \(t) s is before the genesis time \(g) s"
        case .timeWentBackwards(let p, let g): return "block time \(g) s is before the previous block's \(p) s"
        case .systemTransactionsMismatch(let e, let g, let i):
            return "the block's system transactions differ from the recomputed ones (expected \(e), got \(g), first difference at index \(i))"
        case .tooManyTransactions(let c, let l): return "block has \(c) transactions, the limit is \(l)"
        case .blockTooLarge(let b, let l): return "block transactions take \(b) bytes, the limit is \(l)"
        }
    }
}

extension TransactionError {
    // Envelope
    static func decode(_ e: Error) -> TransactionError { .init("tx.decode", "transaction does not decode: \(e)") }
    static func tooLarge(_ n: Int) -> TransactionError { .init("tx.too_large", "transaction is \(n) bytes, the limit is \(Limits.transactionBytesMax)") }
    static func wrongChain(_ got: String, _ want: String) -> TransactionError { .init("tx.wrong_chain", "transaction is for chain '\(got)', this is '\(want)'") }
    static let badSignature = TransactionError("tx.bad_signature", "the signature does not verify against the signer's public key")
    static func nonce(expected: UInt64, got: UInt64) -> TransactionError {
        .init(got < expected ? "tx.nonce_replayed" : "tx.nonce_gap", "nonce \(got) given, the sender's next nonce is \(expected)")
    }
    static func unauthorized(_ role: String) -> TransactionError { .init("tx.unauthorized", "only the \(role) may send this transaction") }
    static let zeroAmount = TransactionError("tx.zero_amount", "the amount must be positive")
    static func insufficientBalance(_ have: UInt64, _ need: UInt64) -> TransactionError {
        .init("balance.insufficient", "balance is \(have) grains, \(need) needed")
    }
    static func invalidField(_ field: String, _ reason: String) -> TransactionError { .init("tx.invalid_field", "\(field): \(reason)") }
}
