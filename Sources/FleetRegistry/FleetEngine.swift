public import EtcdAPI
import EtcdClient
public import Fleet
import Foundation
import SwiftProtobuf

/// One machine's engine: keeps the units, the machines and the schedule in memory (read
/// once, then followed through the watch events the daemon hands it), lets the pure
/// `Scheduler` decide, and writes the changes into the per-machine schedules (with each
/// unit's desired state and content hash, so an agent needs nothing but its own prefix).
/// A pass costs no etcd read beyond new bodies; `refresh` re-reads everything (the first
/// pass, the periodic safety net). Only the elected engine calls `reconcile`; leadership
/// and the watches are the daemon's. Only the elected engine writes schedules (fenced),
/// so its own writes keep its schedule view current.
public actor FleetEngine {
    public let registry: FleetRegistry
    private var presence: MachinePresence
    /// Parsed units by content hash and name (specifiers depend on the name): bodies never
    /// change, so each is read and parsed once.
    private var parsed: [String: FleetUnit] = [:]
    /// Whether the first pass took over the machines that were away at election.
    private var adopted = false
    private var records: [String: FleetRegistry.UnitRecord] = [:]
    private var alive: [String: FleetMachine] = [:]
    private var entries: [String: (machine: String, entry: FleetRegistry.ScheduleEntry)] = [:]
    private var loaded = false
    /// Events applied while a refresh is in flight: the snapshot may be older than some of
    /// them, so they are applied again on top of it.
    private var duringRefresh: [(unit: Bool, event: Mvccpb_Event)]?

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
    /// Reads units, machines and schedule at one revision; returns it (watches go on
    /// from the next).
    @discardableResult
    public func refresh() async throws -> Int64 {
        duringRefresh = []
        defer { duringRefresh = nil }
        let snapshot = try await registry.snapshot()
        records = snapshot.units
        alive = Dictionary(snapshot.machines.map { ($0.id, FleetMachine(id: $0.id, publicIP: $0.publicIP, metadata: $0.metadata)) }) { a, _ in a }
        entries = snapshot.schedule
        loaded = true
        // Watch events that arrived while the snapshot was read and are newer than it.
        let newer = (duringRefresh ?? []).filter { $0.event.kv.modRevision > snapshot.revision }
        duringRefresh = nil
        for (unit, event) in newer {
            if unit { apply(unitEvents: [event]) } else { apply(machineEvents: [event]) }
        }
        return snapshot.revision
    }

    /// Unit records changed (a watch on `unit/`).
    public func apply(unitEvents events: [Mvccpb_Event]) {
        duringRefresh?.append(contentsOf: events.map { (true, $0) })
        for event in events {
            let name = String(String(decoding: event.kv.key, as: UTF8.self).dropFirst(registry.unitPrefix.count))
            if event.type == .delete {
                records[name] = nil
            } else if let record = try? registry.decodeRecord(FleetRegistry.UnitRecord.self, event.kv) {
                records[name] = record
            }
        }
    }

    /// Machines came, changed or went (a watch on `machine/`).
    public func apply(machineEvents events: [Mvccpb_Event]) {
        duringRefresh?.append(contentsOf: events.map { (false, $0) })
        for event in events {
            let id = String(String(decoding: event.kv.key, as: UTF8.self).dropFirst(registry.machinePrefix.count))
            if event.type == .delete {
                alive[id] = nil
            } else if let record = try? registry.decodeRecord(FleetRegistry.MachineRecord.self, event.kv) {
                alive[id] = FleetMachine(id: record.id, publicIP: record.publicIP, metadata: record.metadata)
            }
        }
    }

    /// One pass over the engine's view; with `refresh` (the default) the view is read
    /// from etcd first.
    public func reconcile(now: ContinuousClock.Instant = .now, fence: Etcdserverpb_Compare? = nil, refresh: Bool = true) async throws -> Pass {
        if refresh || !loaded { try await self.refresh() }
        let records = self.records
        let alive = self.alive.values.sorted { $0.id < $1.id }
        let entries = self.entries
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
        // Bodies not parsed yet are read in batches (a burst of new units costs a few
        // requests, not one round trip each).
        let missing = Set(records.values.filter { parsed[$0.hash + "/" + $0.name] == nil }.map(\.hash))
        let texts = try await registry.bodies(Array(missing))
        for (name, record) in records where parsed[record.hash + "/" + name] == nil {
            guard let text = texts[record.hash] else { continue }
            if let unit = try? FleetUnit(name: name, text: text) { parsed[record.hash + "/" + name] = unit }
        }
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
                operations += registry.scheduleOperations(unit, on: machine, wanted, placed: false)
                updated.append(unit)
            }
        }
        do {
            try await registry.apply(operations, fence: fence)
        } catch {
            loaded = false  // partly written, perhaps: read everything next time
            throw error
        }
        for (unit, machine) in final {
            if let record = records[unit] { self.entries[unit] = (machine, .init(hash: record.hash, desired: record.desired)) }
        }
        for unit in self.entries.keys where final[unit] == nil { self.entries[unit] = nil }
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
    /// What the engine reads: units, machines and the schedule at one revision.
    public struct Snapshot: Sendable {
        public var units: [String: UnitRecord]
        public var machines: [MachineRecord]
        public var schedule: [String: (machine: String, entry: ScheduleEntry)]
        public var revision: Int64
    }

    public func snapshot() async throws -> Snapshot {
        let response = try await client.txn(
            .with { $0.success = [.get(unitPrefix, prefix: true), .get(machinePrefix, prefix: true), .get(prefix + "schedule/", prefix: true)] })
        var ranges: [[Mvccpb_KeyValue]] = []
        for answer in response.responses {
            guard case .responseRange(let range) = answer.response else { throw Failure.corrupt(key: prefix) }
            ranges.append(range.kvs)
        }
        guard ranges.count == 3 else { throw Failure.corrupt(key: prefix) }
        var units: [String: UnitRecord] = [:]
        for kv in ranges[0] {
            let record = try decodeRecord(UnitRecord.self, kv)
            units[record.name] = record
        }
        let machines = try ranges[1].map { kv throws(Failure) in try decodeRecord(MachineRecord.self, kv) }
        return Snapshot(units: units, machines: machines, schedule: try scheduleEntries(from: ranges[2]), revision: response.header.revision)
    }

    /// The whole schedule with its entries: unit → (machine, entry).
    public func scheduleEntries() async throws -> [String: (machine: String, entry: ScheduleEntry)] {
        try scheduleEntries(from: try await client.get(prefix + "schedule/", prefix: true).kvs)
    }

    func scheduleEntries(from kvs: [Mvccpb_KeyValue]) throws(Failure) -> [String: (machine: String, entry: ScheduleEntry)] {
        let schedules = prefix + "schedule/"
        var result: [String: (machine: String, entry: ScheduleEntry)] = [:]
        for kv in kvs {
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
