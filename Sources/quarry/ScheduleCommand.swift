import ArgumentParser
import Foundation
import QuarryLedger

struct ScheduleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Print a batch's era, drop and cumulative payout of the mileage schedule, as JSON.",
        discussion: """
            The drop of batch N is (500 stones in grains) >> (N / 210,000); cumulativeGrains sums \
            batches 0 through N. Amounts are decimal strings of grains (1 stone = 100,000,000 grains). \
            With --genesis FILE the schedule of that genesis (for example a devnet's) is used.
            """)

    @Option(help: "The batch index (batch N covers [genesis + N*600 s, genesis + (N+1)*600 s) on mainnet).")
    var batch: UInt64

    @Option(help: ArgumentHelp("Use the economic parameters of this genesis JSON file.", valueName: "file"))
    var genesis: String?

    func run() throws {
        var schedule = Schedule.mainnet
        if let genesis {
            guard let data = FileManager.default.contents(atPath: genesis) else {
                throw CLIError("cannot read genesis file '\(genesis)'")
            }
            schedule = try Genesis.load(json: Array(data)).economics.schedule
        }
        print(schedule.info(batch: batch).json)
    }
}
