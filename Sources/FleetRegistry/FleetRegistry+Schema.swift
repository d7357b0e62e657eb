import EtcdAPI
import EtcdClient
import Fleet
import Foundation
import UnitFile

/// The registry as fleet's API shows it: shared by fleetd's HTTP API and by fleetctl's
/// `--driver=etcd`, so both answer alike.
extension FleetRegistry {
    /// A refusal with the HTTP status fleet's API gives it.
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public var status: Int
        public var message: String
        public var description: String { message }

        public init(_ status: Int, _ message: String) {
            self.status = status
            self.message = message
        }
    }

    public enum SetOutcome: Sendable {
        case created, updated
    }

    /// Every unit with its options, desired and current state and machine, by name.
    public func schemaUnits() async throws -> [FleetSchema.Unit] {
        let records = try await units()
        let schedule = try await scheduleEntries()
        let states = try await states()
        var result: [FleetSchema.Unit] = []
        for name in records.keys.sorted() {
            result.append(try await schemaUnit(records[name]!, machine: schedule[name]?.machine, states: states))
        }
        return result
    }

    public func schemaUnit(_ name: String) async throws -> FleetSchema.Unit? {
        guard let record = try await unit(name) else { return nil }
        let machine = try await placement(of: name)
        return try await schemaUnit(record, machine: machine, states: try await states(of: name))
    }

    func states(of unit: String) async throws -> [(unit: String, machine: String, state: UnitStateRecord)] {
        let statePrefix = prefix + "state/" + unit + "/"
        return try await client.get(statePrefix, prefix: true).kvs.compactMap { kv in
            let machine = String(String(decoding: kv.key, as: UTF8.self).dropFirst(statePrefix.count))
            guard let state = try? JSONDecoder().decode(UnitStateRecord.self, from: kv.value) else { return nil }
            return (unit, machine, state)
        }
    }

    private func schemaUnit(
        _ record: UnitRecord, machine: String?, states: [(unit: String, machine: String, state: UnitStateRecord)]
    ) async throws -> FleetSchema.Unit {
        let text = try await body(record.hash) ?? ""
        let options = (try? UnitFile(parsing: text, file: record.name)).map(FleetSchema.options(of:)) ?? []
        // fleet's current state: how far the agent of the unit's machine took this content
        // (for a global unit: the furthest any machine took it).
        let reported = states.filter { $0.unit == record.name && $0.state.hash == record.hash && (machine == nil || $0.machine == machine) }
        var current = "inactive"
        if let state = reported.first { current = state.state.current ?? "loaded" }
        if reported.contains(where: { $0.state.current == "launched" }) { current = "launched" }
        return FleetSchema.Unit(name: record.name, options: options, desiredState: record.desired, currentState: current, machineID: machine)
    }

    public func schemaStates() async throws -> [FleetSchema.UnitState] {
        try await states().map {
            FleetSchema.UnitState(
                name: $0.unit, hash: $0.state.hash, machineID: $0.machine, load: $0.state.loadState, active: $0.state.activeState,
                sub: $0.state.subState)
        }.sorted { ($0.name, $0.machineID) < ($1.name, $1.machineID) }
    }

    public func schemaMachines() async throws -> [FleetSchema.Machine] {
        try await machines().sorted { $0.id < $1.id }.map { FleetSchema.Machine(id: $0.id, primaryIP: $0.publicIP, metadata: $0.metadata) }
    }

    /// fleet's PUT semantics: a new unit needs options; an existing one takes a desired
    /// state and, with options of different content, new content (fleetctl's `--replace`).
    public func set(_ unit: FleetSchema.Unit) async throws -> SetOutcome {
        let name = unit.name
        var desired: DesiredState?
        if let state = unit.desiredState, !state.isEmpty {
            guard let parsed = DesiredState(rawValue: state) else { throw Refusal(400, "invalid desiredState: \(state)") }
            desired = parsed
        }
        let existing = try await self.unit(name)
        let options = unit.options ?? []
        if existing == nil && options.isEmpty { throw Refusal(409, "unit does not exist and options field empty") }
        if !options.isEmpty {
            let parsed: FleetUnit
            do {
                parsed = try FleetUnit(name: name, text: try FleetSchema.text(of: options))
            } catch {
                throw Refusal(400, "\(error)")
            }
            guard let existing else {
                try await submit(parsed, desired: desired ?? .inactive)
                return .created
            }
            if parsed.hash != existing.hash { try await submit(parsed, desired: desired ?? existing.desiredState, replace: true) }
            if let desired { try await setDesired(name, desired) }
            return .updated
        }
        guard let desired else { throw Refusal(409, "must provide DesiredState to update existing unit") }
        try await setDesired(name, desired)
        return .updated
    }
}
