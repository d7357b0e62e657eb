public import EtcdAPI
import EtcdClient
public import Fleet
import Foundation

/// One machine's engine: reads the units, the machines and the schedule, lets the pure
/// `Scheduler` decide, and writes the changes into the per-machine schedules (with each
/// unit's desired state and content hash, so an agent needs nothing but its own prefix).
/// Only the elected engine calls `reconcile`; leadership and the watch loop are the
/// daemon's.
public actor FleetEngine {
    public let registry: FleetRegistry
    private var presence: MachinePresence
    /// Parsed units by content hash and name (specifiers depend on the name): bodies never
    /// change, so each is read and parsed once.
    private var parsed: [String: FleetUnit] = [:]
    /// Whether the first pass took over the machines that were away at election.
    private var adopted = false

    public init(registry: FleetRegistry, grace: Duration) {
        self.registry = registry
        presence = MachinePresence(grace: grace)
    }

    /// What one pass did.
    public struct Pass: Sendable {
        public var decisions: [ScheduleDecision]
        /// Entries rewritten because a unit's desired state or content changed.
        public var updatedEntries: [String]
        /// Units whose body could not be read or parsed (left unscheduled, reported).
        public var unreadable: [String: String]
        /// When a missing machine's grace runs out (reconcile again then).
        public var nextDeadline: ContinuousClock.Instant?
    }

    /// One pass. `fence` (the engine's leadership key and revision) guards every write:
    /// an engine that lost its election while deciding writes nothing.
    public func reconcile(now: ContinuousClock.Instant = .now, fence: Etcdserverpb_Compare? = nil) async throws -> Pass {
        let records = try await registry.units()
        let alive = try await registry.machines().map { FleetMachine(id: $0.id, publicIP: $0.publicIP, metadata: $0.metadata) }
        let entries = try await registry.scheduleEntries()
        let aliveIDs = Set(alive.map(\.id))
        if !adopted {
            // First pass of this engine: machines that hold units but are away now get
            // their grace from now, with the metadata they last registered.
            let away = Set(entries.values.map(\.machine)).subtracting(aliveIDs)
            if !away.isEmpty {
                let known = try await registry.knownMachines()
                presence.adopt(
                    away.compactMap { known[$0] }.map { FleetMachine(id: $0.id, publicIP: $0.publicIP, metadata: $0.metadata) }, at: now)
            }
            adopted = true
        }
        let present = presence.observe(alive, at: now)
        var jobs: [String: FleetJob] = [:]
        var unreadable: [String: String] = [:]
        for (name, record) in records {
            do {
                jobs[name] = FleetJob(unit: try await unit(name: name, hash: record.hash), desired: record.desiredState)
            } catch {
                unreadable[name] = "\(error)"
            }
        }
        let schedule = entries.mapValues(\.machine)
        // Units that cannot be read keep their place: the engine does not know better.
        let readable = schedule.filter { jobs[$0.key] != nil || records[$0.key] == nil }
        let decisions = Scheduler.reconcile(jobs: jobs, machines: present, schedule: readable)
        var final = schedule
        var operations: [Etcdserverpb_RequestOp] = []
        for decision in decisions {
            switch decision {
            case .schedule(let unit, let machine):
                guard let record = records[unit] else { continue }
                if let previous = final[unit], previous != machine { operations += registry.unscheduleOperations(unit, from: previous) }
                operations += registry.scheduleOperations(unit, on: machine, .init(hash: record.hash, desired: record.desired))
                final[unit] = machine
            case .unschedule(let unit, let machine, _):
                operations += registry.unscheduleOperations(unit, from: machine)
                final[unit] = nil
            }
        }
        // Scheduled units whose desired state or content changed: their entry follows.
        var updated: [String] = []
        for (unit, machine) in final.sorted(by: { $0.key < $1.key }) {
            guard let record = records[unit], let current = entries[unit], current.machine == machine else { continue }
            let wanted = FleetRegistry.ScheduleEntry(hash: record.hash, desired: record.desired)
            if current.entry != wanted {
                operations.append(registry.scheduleOperations(unit, on: machine, wanted)[0])
                updated.append(unit)
            }
        }
        try await registry.apply(operations, fence: fence)
        passes += 1
        // Machines whose grace ran out and whose units have moved are forgotten.
        if passes % 30 == 1 {
            let held = Set(final.values)
            for (id, _) in try await registry.knownMachines() where !aliveIDs.contains(id) && !held.contains(id) && !presence.counts(id) {
                try await registry.forgetMachine(id)
            }
        }
        return Pass(
            decisions: decisions, updatedEntries: updated, unreadable: unreadable,
            nextDeadline: presence.nextExpiry(after: now, alive: Set(alive.map(\.id))))
    }

    /// Passes made so far (`/metrics`).
    public private(set) var passes = 0

    private func unit(name: String, hash: String) async throws -> FleetUnit {
        if let cached = parsed[hash + "/" + name] { return cached }
        guard let text = try await registry.body(hash) else { throw FleetRegistry.Failure.corrupt(key: "body/\(hash)") }
        let unit = try FleetUnit(name: name, text: text)
        parsed[hash + "/" + name] = unit
        return unit
    }
}

extension FleetRegistry {
    /// The whole schedule with its entries: unit → (machine, entry).
    public func scheduleEntries() async throws -> [String: (machine: String, entry: ScheduleEntry)] {
        let schedules = prefix + "schedule/"
        var result: [String: (machine: String, entry: ScheduleEntry)] = [:]
        for kv in try await client.get(schedules, prefix: true).kvs {
            let path = String(decoding: kv.key, as: UTF8.self).dropFirst(schedules.count)
            let parts = path.split(separator: "/", maxSplits: 1)
            guard parts.count == 2 else { continue }
            guard let entry = try? JSONDecoder().decode(ScheduleEntry.self, from: kv.value) else {
                throw Failure.corrupt(key: String(decoding: kv.key, as: UTF8.self))
            }
            result[String(parts[1])] = (String(parts[0]), entry)
        }
        return result
    }
}
