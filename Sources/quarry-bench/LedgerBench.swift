import Foundation

enum LedgerBench {
    static func run() throws {
        print("the ledger benchmark is not written yet")
    }
}
