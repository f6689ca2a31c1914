import QuarryCore

extension Ledger {
    struct SystemOutput {
        var transactions: [SystemTransaction] = []
        var events: [Event] = []
    }

    /// The protocol's own work at the start of a block, bounded per block:
    /// 1. refund at most `refundChunkMax` draw requests whose deadline has passed, oldest
    ///    deadline first;
    /// 2. carry the drops of closed empty batches (O(1) per run of empty batches) and pay at
    ///    most `settlementChunkMax` participants of closed batches, in batch order and, within
    ///    a batch, in ascending vehicle-id order.
    /// It reads only what the previous block committed plus its own writes.
    func runSystemPhase(_ ws: WorkingState, _ context: BlockContext) throws -> SystemOutput {
        var out = SystemOutput()
        try refundExpiredDraws(ws, context, &out)
        try settleMileage(ws, context, &out)
        ws.commitTransaction()
        return out
    }

    private func refundExpiredDraws(_ ws: WorkingState, _ context: BlockContext, _ out: inout SystemOutput) throws {
        let limit = Int(genesis.economics.refundChunkMax)
        var expired: [[UInt8]] = []
        // Keys are 0x09 || deadline || season || index: ascending deadline order.
        try store.scan(column: Ledger.stateColumn, from: [0x09], to: [0x09] + StateKey.be64(context.time) + [0xFF]) { key, _ in
            guard StateKey.readBE64(key[1..<9]) <= context.time else { return false }
            expired.append(key)
            return expired.count < limit
        }
        for key in expired {
            let deadline = StateKey.readBE64(key[1..<9])
            let seasonID = StateKey.readBE64(key[9..<17]), index = StateKey.readBE64(key[17..<25])
            guard let draw: DrawRequest = try ws.read(StateKey.draw(season: seasonID, index: index)),
                  var season: Season = try ws.read(StateKey.season(seasonID)) else {
                preconditionFailure("draw deadline entry without its draw or season")
            }
            precondition(draw.deadline == deadline && season.settled == index, "draws expire out of order")
            var acc = try ws.account(draw.requester)
            acc.crystals = acc.crystals.addingReportingOverflow(draw.crystals).overflow ? UInt64.max : acc.crystals + draw.crystals
            ws.setAccount(draw.requester, acc)
            season.settled += 1
            ws.write(StateKey.season(seasonID), season)
            ws.delete(StateKey.draw(season: seasonID, index: index))
            ws.delete(key)
            out.transactions.append(.refundDraw(seasonID: seasonID, requestIndex: index, crystals: draw.crystals))
            out.events.append(Event("draw.refunded", [("season", String(seasonID)), ("index", String(index)),
                                                      ("requester", draw.requester.text), ("crystals", String(draw.crystals))]))
        }
    }

    /// The first batch at or after `from` that has a batch record (at least one claim).
    private func nextNonEmptyBatch(from: UInt64) throws -> UInt64? {
        var found: UInt64?
        try store.scan(column: Ledger.stateColumn, from: StateKey.batch(from), to: [0x06]) { key, _ in
            found = StateKey.readBE64(key[1..<9])
            return false
        }
        return found
    }

    private func settleMileage(_ ws: WorkingState, _ context: BlockContext, _ out: inout SystemOutput) throws {
        let current = batch(at: context.time)
        var budget = genesis.economics.settlementChunkMax
        var cursor = ws.global.mileage
        while cursor.nextBatch < current {
            if cursor.active == nil {
                let next = try nextNonEmptyBatch(from: cursor.nextBatch) ?? current
                let stop = min(next, current)
                if stop > cursor.nextBatch {
                    let carried = schedule.cumulative(before: stop) - schedule.cumulative(before: cursor.nextBatch)
                    out.transactions.append(.carryEmptyBatches(from: cursor.nextBatch, to: stop, carriedGrains: carried))
                    out.events.append(Event("mileage.empty_batches", [("from", String(cursor.nextBatch)), ("to", String(stop)),
                                                                      ("carried", String(carried))]))
                    cursor.carryGrains += carried
                    cursor.nextBatch = stop
                    continue
                }
                guard budget > 0 else { break }
                guard let record: BatchRecord = try ws.read(StateKey.batch(next)) else { preconditionFailure("batch record vanished") }
                precondition(record.participants > 0 && record.totalMetres > 0, "batch record without claims")
                cursor.active = .init(batch: next, poolGrains: schedule.drop(batch: next) + cursor.carryGrains,
                                      totalMetres: record.totalMetres, participants: record.participants)
                cursor.carryGrains = 0
            }
            guard budget > 0, var active = cursor.active else { break }
            let chunk = try payChunk(ws, &active, limit: budget, &out)
            budget -= chunk.count
            let complete = active.paidParticipants == active.participants
            out.transactions.append(.settleBatch(batch: active.batch, poolGrains: active.poolGrains, totalMetres: active.totalMetres,
                                                 participantsPaid: chunk.count, paidGrains: chunk.grains, complete: complete))
            if complete {
                var record: BatchRecord = try ws.read(StateKey.batch(active.batch))!
                record.poolGrains = active.poolGrains
                record.paidGrains = active.paidGrains
                record.paidParticipants = active.paidParticipants
                record.settled = true
                ws.write(StateKey.batch(active.batch), record)
                let remainder = active.poolGrains - active.paidGrains
                out.events.append(Event("mileage.batch_settled", [("batch", String(active.batch)), ("pool", String(active.poolGrains)),
                                                                  ("paid", String(active.paidGrains)), ("remainder", String(remainder))]))
                cursor.carryGrains = remainder
                cursor.nextBatch = active.batch + 1
                cursor.active = nil
            } else {
                cursor.active = active
                break
            }
        }
        ws.global.mileage = cursor
    }

    /// Pays up to `limit` participants of the active batch after the last one paid.
    private func payChunk(_ ws: WorkingState, _ active: inout MileageCursor.Active, limit: UInt64,
                          _ out: inout SystemOutput) throws -> (count: UInt64, grains: UInt64) {
        let prefix = StateKey.participants(batch: active.batch)
        let start = active.lastPaidVehicle.map { prefix + $0.bytes + [0x00] } ?? prefix
        var entries: [([UInt8], [UInt8])] = []
        try store.scan(column: Ledger.stateColumn, from: start, to: prefixSuccessor(prefix)) { key, value in
            entries.append((key, value))
            return UInt64(entries.count) < limit
        }
        var grains: UInt64 = 0
        for (key, value) in entries {
            let p: Participant
            do { p = try Participant(canonicalBytes: value) } catch { preconditionFailure("corrupt participant record") }
            let share = active.poolGrains.multipliedFullWidth(by: p.metres)
            let amount = active.totalMetres.dividingFullWidth(share).quotient
            ws.global.mileagePoolGrains -= amount
            ws.global.mileagePaidGrains += amount
            try ws.credit(p.owner, grains: amount)
            ws.delete(key)
            grains += amount
            let vehicle = Hash256(unchecked: Array(key[9..<41]))
            active.lastPaidVehicle = vehicle
            out.events.append(Event("mileage.payout", [("batch", String(active.batch)), ("vehicle", vehicle.hex), ("owner", p.owner.text),
                                                       ("metres", String(p.metres)), ("grains", String(amount))]))
        }
        active.paidGrains += grains
        active.paidParticipants += UInt64(entries.count)
        precondition(active.paidGrains <= active.poolGrains, "batch paid more than its pool")
        precondition(active.paidParticipants <= active.participants, "batch paid more participants than it has")
        if UInt64(entries.count) < limit {
            precondition(active.paidParticipants == active.participants, "batch participants missing")
        }
        return (UInt64(entries.count), grains)
    }
}
