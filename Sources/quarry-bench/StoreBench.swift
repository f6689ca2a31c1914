import Foundation

enum StoreBench {
    static func run() throws {
        print("the store benchmark is not written yet")
    }
}
