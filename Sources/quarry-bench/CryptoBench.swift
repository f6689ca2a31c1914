import Foundation

enum CryptoBench {
    static func run() throws {
        print("the crypto benchmark is not written yet")
    }
}
