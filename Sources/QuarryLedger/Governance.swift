import QuarryCore
import QuarryCrypto

/// What a governance proposal does once more than two thirds of the validators' voting
/// power approve it.
public enum GovernanceAction: Sendable, Equatable, CanonicalCodable {
    case addValidator(GenesisValidator)
    case removeValidator(PublicKeyBytes)
    case setRole(Role, Address)
    case addMerchant(Address)
    case removeMerchant(Address)
    case setParameter(GovernableParameter, UInt64)

    public enum Role: UInt8, Sendable, CaseIterable {
        case registrar = 0, crystalIssuer = 1, boxOperator = 2
    }

    /// Parameters governance may change. The drop schedule, batch length and pools are fixed
    /// by genesis and cannot be changed.
    public enum GovernableParameter: UInt8, Sendable, CaseIterable {
        case maxSpeedKmh = 0, claimStalenessSeconds = 1, clockToleranceSeconds = 2, claimSpanMaxSeconds = 3, transfersEnabled = 4
    }

    public func encode(to e: inout CanonicalEncoder) {
        switch self {
        case .addValidator(let v): e.u8(1); e.value(v)
        case .removeValidator(let k): e.u8(2); e.value(k)
        case .setRole(let r, let a): e.u8(3); e.u8(r.rawValue); e.value(a)
        case .addMerchant(let a): e.u8(4); e.value(a)
        case .removeMerchant(let a): e.u8(5); e.value(a)
        case .setParameter(let p, let v): e.u8(6); e.u8(p.rawValue); e.u64(v)
        }
    }

    public init(from d: inout CanonicalDecoder) throws {
        let tag = try d.u8()
        switch tag {
        case 1: self = .addValidator(try d.value())
        case 2: self = .removeValidator(try d.value())
        case 3:
            let r = try d.u8()
            guard let role = Role(rawValue: r) else { throw CanonicalError.unknownTag(type: "Role", tag: r) }
            self = .setRole(role, try d.value())
        case 4: self = .addMerchant(try d.value())
        case 5: self = .removeMerchant(try d.value())
        case 6:
            let p = try d.u8()
            guard let parameter = GovernableParameter(rawValue: p) else { throw CanonicalError.unknownTag(type: "GovernableParameter", tag: p) }
            self = .setParameter(parameter, try d.u64())
        default: throw CanonicalError.unknownTag(type: "GovernanceAction", tag: tag)
        }
    }
}

/// The validator set in force (initially the genesis validators).
public struct ValidatorSet: Sendable, Equatable, CanonicalCodable {
    public var validators: [GenesisValidator]

    public init(validators: [GenesisValidator]) { self.validators = validators }

    public var totalPower: UInt64 { validators.reduce(0) { $0 + $1.power } }

    public func validator(at address: Address) -> GenesisValidator? {
        validators.first { Address(publicKey: $0.publicKey) == address }
    }

    public func encode(to e: inout CanonicalEncoder) { e.sequence(validators) { e, v in e.value(v) } }
    public init(from d: inout CanonicalDecoder) throws {
        validators = try d.sequence(limit: Genesis.validatorsMax, field: "validators") { d in try d.value(GenesisValidator.self) }
    }
}

/// A validator set approved by governance, in force from `effectiveHeight`.
public struct PendingValidatorSet: Sendable, Equatable, CanonicalCodable {
    public var effectiveHeight: UInt64
    public var set: ValidatorSet

    public func encode(to e: inout CanonicalEncoder) { e.u64(effectiveHeight); e.value(set) }
    public init(effectiveHeight: UInt64, set: ValidatorSet) { self.effectiveHeight = effectiveHeight; self.set = set }
    public init(from d: inout CanonicalDecoder) throws { effectiveHeight = try d.u64(); set = try d.value() }
}

public struct Proposal: Sendable, Equatable, CanonicalCodable {
    public var proposer: Address
    public var action: GovernanceAction
    /// Votes are accepted up to and including this height.
    public var expiresHeight: UInt64
    public var yesPower: UInt64
    /// Validators that approved, in voting order.
    public var voters: [Address]
    public var executed: Bool

    public func encode(to e: inout CanonicalEncoder) {
        e.value(proposer); e.value(action); e.u64(expiresHeight); e.u64(yesPower); e.sequence(voters) { e, a in e.value(a) }; e.bool(executed)
    }
    public init(proposer: Address, action: GovernanceAction, expiresHeight: UInt64, yesPower: UInt64, voters: [Address], executed: Bool) {
        self.proposer = proposer; self.action = action; self.expiresHeight = expiresHeight
        self.yesPower = yesPower; self.voters = voters; self.executed = executed
    }
    public init(from d: inout CanonicalDecoder) throws {
        proposer = try d.value(); action = try d.value(); expiresHeight = try d.u64(); yesPower = try d.u64()
        voters = try d.sequence(limit: Genesis.validatorsMax, field: "voters") { d in try d.value(Address.self) }
        executed = try d.bool()
    }
}

public enum Governance {
    /// A validator-set change approved in block H governs consensus from this many blocks later.
    public static let validatorUpdateDelayBlocks: UInt64 = 2
    public static let votingPeriodBlocksMax: UInt64 = 100_000
}

extension Executor {
    mutating func propose(_ action: GovernanceAction, votingPeriodBlocks: UInt64) throws {
        let set = try ws.validatorSet()
        guard set.validator(at: sender) != nil else {
            throw TransactionError("governance.not_validator", "only validators may propose")
        }
        guard votingPeriodBlocks >= 1, votingPeriodBlocks <= Governance.votingPeriodBlocksMax else {
            throw TransactionError.invalidField("votingPeriodBlocks", "must be 1 to \(Governance.votingPeriodBlocksMax)")
        }
        try validate(action, set)
        let id = ws.global.nextProposalID
        ws.global.nextProposalID += 1
        var proposal = Proposal(proposer: sender, action: action, expiresHeight: context.height + votingPeriodBlocks,
                                yesPower: 0, voters: [], executed: false)
        events.append(Event("governance.proposed", [("proposal", String(id)), ("proposer", sender.text)]))
        try approve(&proposal, id: id, set: set)
    }

    mutating func vote(_ id: UInt64) throws {
        let set = try ws.validatorSet()
        guard set.validator(at: sender) != nil else { throw TransactionError("governance.not_validator", "only validators may vote") }
        guard var proposal: Proposal = try ws.read(StateKey.proposal(id)) else {
            throw TransactionError("governance.unknown_proposal", "no proposal \(id)")
        }
        guard !proposal.executed else { throw TransactionError("governance.executed", "proposal \(id) has already passed") }
        guard context.height <= proposal.expiresHeight else {
            throw TransactionError("governance.expired", "proposal \(id) expired at height \(proposal.expiresHeight)")
        }
        guard !proposal.voters.contains(sender) else { throw TransactionError("governance.already_voted", "the validator already approved proposal \(id)") }
        try approve(&proposal, id: id, set: set)
    }

    /// Adds the sender's approval and executes the proposal once yes power * 3 > total * 2.
    private mutating func approve(_ proposal: inout Proposal, id: UInt64, set: ValidatorSet) throws {
        proposal.voters.append(sender)
        proposal.yesPower += set.validator(at: sender)!.power
        events.append(Event("governance.approved", [("proposal", String(id)), ("validator", sender.text),
                                                    ("yesPower", String(proposal.yesPower)), ("totalPower", String(set.totalPower))]))
        if proposal.yesPower.multipliedFullWidth(by: 3) > set.totalPower.multipliedFullWidth(by: 2) {
            try validate(proposal.action, set)
            try execute(proposal.action, set)
            proposal.executed = true
            events.append(Event("governance.executed", [("proposal", String(id))]))
        }
        ws.write(StateKey.proposal(id), proposal)
    }

    private func validate(_ action: GovernanceAction, _ set: ValidatorSet) throws {
        func invalid(_ why: String) -> TransactionError { TransactionError("governance.invalid_action", why) }
        switch action {
        case .addValidator(let v):
            guard v.publicKey.scheme == .sm2, (try? SM2PublicKey(rawRepresentation: v.publicKey.bytes)) != nil else {
                throw invalid("validators use SM2 keys on the curve")
            }
            guard v.power >= 1, v.power <= Genesis.powerMax, !v.name.isEmpty, v.name.utf8.count <= Genesis.nameBytesMax else {
                throw invalid("power must be 1 to 2^40 and the name 1-64 bytes")
            }
            guard !set.validators.contains(where: { $0.publicKey == v.publicKey }) else { throw invalid("already a validator") }
            guard set.validators.count < Genesis.validatorsMax else { throw invalid("the validator set is full") }
        case .removeValidator(let key):
            guard set.validators.contains(where: { $0.publicKey == key }) else { throw invalid("not a validator") }
            guard set.validators.count > 1 else { throw invalid("the last validator cannot be removed") }
        case .setRole: break
        case .addMerchant(let a):
            let roles = try ws.roles()
            guard !roles.merchants.contains(a) else { throw invalid("already a merchant") }
            guard roles.merchants.count < Genesis.merchantsMax else { throw invalid("too many merchants") }
        case .removeMerchant(let a):
            guard try ws.roles().merchants.contains(a) else { throw invalid("not a merchant") }
        case .setParameter(let p, let v):
            var e = try ws.parameters()
            try Executor.set(p, v, in: &e)
            var g = genesis
            g.economics = e
            do { try g.validate() } catch { throw invalid(error.message) }
        }
        if case .addValidator = action, try ws.read(StateKey.pendingValidators, as: PendingValidatorSet.self) != nil {
            throw TransactionError("governance.validator_change_pending", "another validator-set change is waiting to take effect")
        }
        if case .removeValidator = action, try ws.read(StateKey.pendingValidators, as: PendingValidatorSet.self) != nil {
            throw TransactionError("governance.validator_change_pending", "another validator-set change is waiting to take effect")
        }
    }

    static func set(_ p: GovernanceAction.GovernableParameter, _ v: UInt64, in e: inout EconomicParameters) throws {
        switch p {
        case .maxSpeedKmh: e.maxSpeedKmh = v
        case .claimStalenessSeconds: e.claimStalenessSeconds = v
        case .clockToleranceSeconds: e.clockToleranceSeconds = v
        case .claimSpanMaxSeconds: e.claimSpanMaxSeconds = v
        case .transfersEnabled:
            guard v <= 1 else { throw TransactionError("governance.invalid_action", "transfersEnabled is 0 or 1") }
            e.transfersEnabled = v == 1
        }
    }

    private mutating func execute(_ action: GovernanceAction, _ set: ValidatorSet) throws {
        switch action {
        case .addValidator(let v):
            var next = set
            next.validators.append(v)
            ws.write(StateKey.pendingValidators, PendingValidatorSet(effectiveHeight: context.height + Governance.validatorUpdateDelayBlocks, set: next))
        case .removeValidator(let key):
            var next = set
            next.validators.removeAll { $0.publicKey == key }
            ws.write(StateKey.pendingValidators, PendingValidatorSet(effectiveHeight: context.height + Governance.validatorUpdateDelayBlocks, set: next))
        case .setRole(let role, let a):
            var roles = try ws.roles()
            switch role {
            case .registrar: roles.registrar = a
            case .crystalIssuer: roles.crystalIssuer = a
            case .boxOperator: roles.boxOperator = a
            }
            ws.write(StateKey.roles, roles)
        case .addMerchant(let a):
            let roles = try ws.roles()
            ws.write(StateKey.roles, Roles(registrar: roles.registrar, crystalIssuer: roles.crystalIssuer, boxOperator: roles.boxOperator,
                                           merchants: roles.merchants + [a]))
        case .removeMerchant(let a):
            var roles = try ws.roles()
            roles.merchants.removeAll { $0 == a }
            ws.write(StateKey.roles, roles)
        case .setParameter(let p, let v):
            var e = try ws.parameters()
            try Executor.set(p, v, in: &e)
            ws.write(StateKey.parameters, e)
        }
    }
}

extension WorkingState {
    func validatorSet() throws -> ValidatorSet {
        guard let s: ValidatorSet = try read(StateKey.validators) else { preconditionFailure("validator set missing from the state") }
        return s
    }
    func roles() throws -> Roles {
        guard let r: Roles = try read(StateKey.roles) else { preconditionFailure("roles missing from the state") }
        return r
    }
    func parameters() throws -> EconomicParameters {
        guard let p: EconomicParameters = try read(StateKey.parameters) else { preconditionFailure("parameters missing from the state") }
        return p
    }
}
