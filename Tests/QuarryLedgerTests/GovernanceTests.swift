import Testing
import QuarryCore
import QuarryCrypto
@testable import QuarryLedger

func validatorKey(_ n: Int) -> SigningKey { testKey("gov-validator-\(n)") }

func governanceGenesis() -> Genesis {
    var g = testGenesis()
    g.validators = (1...4).map { GenesisValidator(name: "v\($0)", publicKey: validatorKey($0).publicKeyBytes, power: 1) }
    return g
}

@Suite struct GovernanceTests {
    @Test func roleChangeNeedsMoreThanTwoThirds() throws {
        let chain = try TestChain(genesis: governanceGenesis())
        let newRegistrar = testKey("new-registrar")
        let action = GovernanceAction.setRole(.registrar, newRegistrar.address)
        #expect(try chain.rejects(ownerKey(1), .propose(action: action, votingPeriodBlocks: 10), "governance.not_validator"))
        #expect(try chain.rejects(validatorKey(1), .propose(action: action, votingPeriodBlocks: 0), "tx.invalid_field"))
        #expect(try chain.run(validatorKey(1), .propose(action: action, votingPeriodBlocks: 10)).succeeded)
        #expect(try chain.rejects(validatorKey(1), .vote(proposalID: 0), "governance.already_voted"))
        #expect(try chain.rejects(ownerKey(1), .vote(proposalID: 0), "governance.not_validator"))
        #expect(try chain.rejects(validatorKey(2), .vote(proposalID: 7), "governance.unknown_proposal"))
        #expect(try chain.run(validatorKey(2), .vote(proposalID: 0)).succeeded)
        // 2 of 4 is not more than two thirds: nothing changed yet.
        #expect(try chain.ledger.roles().registrar == registrar.address)
        #expect(try chain.ledger.proposal(0)?.executed == false)
        #expect(try chain.run(validatorKey(3), .vote(proposalID: 0)).succeeded)
        #expect(try chain.ledger.roles().registrar == newRegistrar.address)
        #expect(try chain.rejects(validatorKey(4), .vote(proposalID: 0), "governance.executed"))
        let register = Payload.registerVehicle(vehicleID: vehicleID(1), vehicleKey: vehicleKey(1).publicKeyBytes, model: "LS7",
                                               cohortTags: [], owner: ownerKey(1).address, odometerMetres: 0)
        #expect(try chain.rejects(registrar, register, "tx.unauthorized"))
        #expect(try chain.run(newRegistrar, register).succeeded)
    }

    @Test func proposalsExpire() throws {
        let chain = try TestChain(genesis: governanceGenesis())
        #expect(try chain.run(validatorKey(1), .propose(action: .setParameter(.transfersEnabled, 1), votingPeriodBlocks: 1)).succeeded)
        try chain.block([])
        #expect(try chain.rejects(validatorKey(2), .vote(proposalID: 0), "governance.expired"))
        #expect(try chain.rejects(validatorKey(1), .propose(action: .setParameter(.transfersEnabled, 2), votingPeriodBlocks: 5),
                                  "governance.invalid_action"))
        #expect(try chain.rejects(validatorKey(1), .propose(action: .setParameter(.maxSpeedKmh, 0), votingPeriodBlocks: 5),
                                  "governance.invalid_action"))
    }

    @Test func parameterChangeEnablesTransfers() throws {
        let chain = try TestChain(genesis: governanceGenesis())
        #expect(try chain.rejects(ownerKey(1), .transfer(to: ownerKey(2).address, amount: 1), "transfer.disabled"))
        #expect(try chain.run(validatorKey(1), .propose(action: .setParameter(.transfersEnabled, 1), votingPeriodBlocks: 5)).succeeded)
        #expect(try chain.run(validatorKey(2), .vote(proposalID: 0)).succeeded)
        #expect(try chain.run(validatorKey(4), .vote(proposalID: 0)).succeeded)
        #expect(try chain.ledger.parameters().transfersEnabled)
        #expect(try chain.rejects(ownerKey(1), .transfer(to: ownerKey(2).address, amount: 1), "balance.insufficient"))
    }

    @Test func validatorSetChangeTakesEffectTwoBlocksLater() throws {
        let chain = try TestChain(genesis: governanceGenesis())
        let newcomer = GenesisValidator(name: "v5", publicKey: validatorKey(5).publicKeyBytes, power: 2)
        #expect(try chain.rejects(validatorKey(1), .propose(action: .removeValidator(validatorKey(9).publicKeyBytes), votingPeriodBlocks: 5),
                                  "governance.invalid_action"))
        #expect(try chain.run(validatorKey(1), .propose(action: .addValidator(newcomer), votingPeriodBlocks: 5)).succeeded)
        #expect(try chain.run(validatorKey(2), .vote(proposalID: 0)).succeeded)
        let passed = try chain.block([chain.tx(validatorKey(3), .vote(proposalID: 0))])
        #expect(passed.transactions[0].succeeded && passed.validatorSet == nil)
        #expect(try chain.ledger.validatorSet().validators.count == 4)
        #expect(try chain.block([]).validatorSet == nil)
        let effective = try chain.block([])
        #expect(effective.height == passed.height + Governance.validatorUpdateDelayBlocks)
        #expect(effective.validatorSet?.validators.count == 5)
        #expect(effective.systemTransactions.contains(.activateValidatorSet(validators: 5, totalPower: 6)))
        #expect(try chain.ledger.validatorSet().totalPower == 6)
        // The new validator can now propose; 4 of 6 power is not enough, 5 of 6 is.
        #expect(try chain.run(validatorKey(5), .propose(action: .removeValidator(validatorKey(4).publicKeyBytes), votingPeriodBlocks: 9)).succeeded)
        #expect(try chain.run(validatorKey(1), .vote(proposalID: 1)).succeeded)
        #expect(try chain.run(validatorKey(2), .vote(proposalID: 1)).succeeded)
        #expect(try chain.ledger.proposal(1)?.executed == false)
        #expect(try chain.run(validatorKey(3), .vote(proposalID: 1)).succeeded)
        #expect(try chain.ledger.proposal(1)?.executed == true)
    }
}
