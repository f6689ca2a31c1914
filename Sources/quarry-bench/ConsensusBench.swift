import Foundation

enum ConsensusBench {
    static func run() throws {
        print("the consensus benchmark is not written yet")
    }
}
