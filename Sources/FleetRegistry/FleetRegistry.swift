public import EtcdClient
public import EtcdAPI
public import Fleet
import Foundation
import SwiftProtobuf
import UnitFile

/// fleet's state in etcd v3 (layout: Documentation/fleet.md). Every write is one
/// transaction, so concurrent fleetctl, API and engine calls cannot leave half a change.
public struct FleetRegistry: Sendable {
    public let client: EtcdClient
    /// `etcd_key_prefix`, ending in `/`.
    public let prefix: String

    public init(client: EtcdClient, prefix: String = "/_coreos.com/fleet/") {
        self.client = client
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
    }

    /// A unit's record: its body's hash and its desired state.
    public struct UnitRecord: Sendable, Hashable, Codable {
        public var name: String
        public var hash: String
        public var desired: String

        public var desiredState: DesiredState { DesiredState(rawValue: desired) ?? .inactive }

        public init(name: String, hash: String, desired: String) {
            self.name = name
            self.hash = hash
            self.desired = desired
        }
    }

    /// An entry of a machine's schedule: what to run and how far.
    public struct ScheduleEntry: Sendable, Hashable, Codable {
        public var hash: String
        public var desired: String

        public init(hash: String, desired: String) {
            self.hash = hash
            self.desired = desired
        }
    }

    /// A machine's presence record.
    public struct MachineRecord: Sendable, Hashable, Codable {
        public var id: String
        public var publicIP: String
        public var metadata: [String: String]
        public var version: String
        /// Where this machine's fleetd answers (`unix:///…` or `http://…`): `fleetctl status`
        /// and `journal` ask it about the units it runs.
        public var endpoint: String?

        public init(id: String, publicIP: String, metadata: [String: String], version: String, endpoint: String? = nil) {
            self.id = id
            self.publicIP = publicIP
            self.metadata = metadata
            self.version = version
            self.endpoint = endpoint
        }
    }

    /// A unit's systemd state on one machine, as its agent publishes it.
    public struct UnitStateRecord: Sendable, Hashable, Codable {
        public var loadState: String
        public var activeState: String
        public var subState: String
        public var hash: String
        /// How far the agent took the unit: `loaded` or `launched` (fleet's current state).
        public var current: String?

        public init(loadState: String, activeState: String, subState: String, hash: String, current: String? = nil) {
            self.loadState = loadState
            self.activeState = activeState
            self.subState = subState
            self.hash = hash
            self.current = current
        }
    }

    public enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        case unitExists(String)
        case unitNotFound(String)
        case differentContent(String)
        case corrupt(key: String)
        /// A fenced write found that this engine no longer leads.
        case notLeader

        public var description: String {
            switch self {
            case .unitExists(let name): "unit \(name) already exists"
            case .unitNotFound(let name): "unit \(name) not found"
            case .differentContent(let name): "unit \(name) exists with different content (use --replace)"
            case .corrupt(let key): "unreadable record at \(key)"
            case .notLeader: "engine leadership lost"
            }
        }
    }

    // MARK: Keys

    func unitKey(_ name: String) -> String { prefix + "unit/" + name }
    func bodyKey(_ hash: String) -> String { prefix + "body/" + hash }
    func referenceKey(_ hash: String, _ name: String) -> String { prefix + "bodyref/" + hash + "/" + name }
    func scheduleKey(_ machine: String, _ name: String) -> String { prefix + "schedule/" + machine + "/" + name }
    public func schedulePrefix(_ machine: String) -> String { prefix + "schedule/" + machine + "/" }
    func machineKey(_ id: String) -> String { prefix + "machine/" + id }
    func stateKey(_ name: String, _ machine: String) -> String { prefix + "state/" + name + "/" + machine }
    func globalKey(_ name: String) -> String { prefix + "global/" + name }
    func metadataKey(_ machine: String, _ key: String) -> String { prefix + "machine-metadata/" + machine + "/" + key }
    public var globalPrefix: String { prefix + "global/" }
    public var unitPrefix: String { prefix + "unit/" }
    public var machinePrefix: String { prefix + "machine/" }
    public func metadataPrefix(_ machine: String) -> String { prefix + "machine-metadata/" + machine + "/" }
    public var enginePrefix: String { prefix + "engine" }

    private static func json<Value: Encodable>(_ value: Value) -> String {
        String(decoding: (try? JSONEncoder.sorted.encode(value)) ?? Data(), as: UTF8.self)
    }

    private func decode<Value: Decodable>(_ type: Value.Type, _ kv: Mvccpb_KeyValue) throws(Failure) -> Value {
        do {
            return try JSONDecoder().decode(type, from: kv.value)
        } catch {
            throw .corrupt(key: String(decoding: kv.key, as: UTF8.self))
        }
    }

    // MARK: Units

    /// Stores a unit with a desired state. The same content again is not an error (fleetctl
    /// submits what is there already); different content is, unless `replace`.
    public func submit(_ unit: FleetUnit, desired: DesiredState, replace: Bool = false) async throws {
        let name = unit.name.name
        let hash = unit.hash
        // The unit, its reference and its body in one transaction: a collection racing
        // with this submit sees either no reference and no new body, or both. (The body is
        // written even when a twin unit stored it already: the same bytes under the same key.)
        let record = UnitRecord(name: name, hash: hash, desired: desired.rawValue)
        // Global units are also indexed under `global/`, which agents watch (few keys)
        // instead of every unit record.
        let index: [Etcdserverpb_RequestOp] = unit.isGlobal ? [.put(globalKey(name), Self.json(record))] : []
        let created = try await client.txn(
            .with {
                $0.compare = [.createRevision(unitKey(name), .equal, 0)]
                $0.success = [
                    .put(unitKey(name), Self.json(record)), .put(referenceKey(hash, name), ""), .put(bodyKey(hash), unit.text),
                ] + index
                $0.failure = [.get(unitKey(name))]
            })
        if created.succeeded { return }
        guard case .responseRange(let range) = created.responses.first?.response, let existing = range.kvs.first else {
            return try await submit(unit, desired: desired, replace: replace)  // deleted meanwhile: try again
        }
        let old = try decode(UnitRecord.self, existing)
        if old.hash == hash { return }
        guard replace else { throw Failure.differentContent(name) }
        // Swap the content in place (the desired state stays), then collect the old body.
        let swappedRecord = UnitRecord(name: name, hash: hash, desired: old.desired)
        let swapped = try await client.txn(
            .with {
                $0.compare = [.modRevision(unitKey(name), .equal, existing.modRevision)]
                $0.success = [
                    .put(unitKey(name), Self.json(swappedRecord)),
                    .put(referenceKey(hash, name), ""), .put(bodyKey(hash), unit.text), .delete(referenceKey(old.hash, name)),
                    unit.isGlobal ? .put(globalKey(name), Self.json(swappedRecord)) : .delete(globalKey(name)),
                ]
            })
        if !swapped.succeeded { return try await submit(unit, desired: desired, replace: replace) }
        try await collect(old.hash)
    }

    /// Sets what the user wants of a unit.
    public func setDesired(_ name: String, _ state: DesiredState) async throws {
        while true {
            let response = try await client.get(unitKey(name))
            guard let kv = response.kvs.first else { throw Failure.unitNotFound(name) }
            var record = try decode(UnitRecord.self, kv)
            if record.desired == state.rawValue { return }
            record.desired = state.rawValue
            let global = try await client.get(globalKey(name)).kvs.isEmpty == false
            let written = try await client.txn(
                .with {
                    $0.compare = [.modRevision(unitKey(name), .equal, kv.modRevision)]
                    $0.success = [.put(unitKey(name), Self.json(record))] + (global ? [.put(globalKey(name), Self.json(record))] : [])
                })
            if written.succeeded { return }
        }
    }

    /// Deletes a unit and, when it was the last to use it, its body.
    public func destroy(_ name: String) async throws {
        let response = try await client.get(unitKey(name))
        guard let kv = response.kvs.first else { throw Failure.unitNotFound(name) }
        let record = try decode(UnitRecord.self, kv)
        let deleted = try await client.txn(
            .with {
                $0.compare = [.modRevision(unitKey(name), .equal, kv.modRevision)]
                $0.success = [.delete(unitKey(name)), .delete(referenceKey(record.hash, name)), .delete(globalKey(name))]
            })
        if !deleted.succeeded { return try await destroy(name) }
        try await collect(record.hash)
    }

    /// Deletes a body no unit refers to: the whole reference range must be empty at the
    /// moment of the delete, so a submit adding a reference at the same time keeps it.
    func collect(_ hash: String) async throws {
        let references = Data((prefix + "bodyref/" + hash + "/").utf8)
        var none = Etcdserverpb_Compare()
        none.key = references
        none.rangeEnd = EtcdKeyRange.prefixEnd(of: references)
        none.target = .create
        none.result = .equal
        none.createRevision = 0
        _ = try await client.txn(
            .with {
                $0.compare = [none]
                $0.success = [.delete(bodyKey(hash))]
            })
    }

    /// One unit's record, nil when there is none.
    public func unit(_ name: String) async throws -> UnitRecord? {
        guard let kv = try await client.get(unitKey(name)).kvs.first else { return nil }
        return try decode(UnitRecord.self, kv)
    }

    /// Every unit record, by name.
    public func units() async throws -> [String: UnitRecord] {
        let response = try await client.get(prefix + "unit/", prefix: true)
        var records: [String: UnitRecord] = [:]
        for kv in response.kvs {
            let record = try decode(UnitRecord.self, kv)
            records[record.name] = record
        }
        return records
    }

    /// A unit body by hash, nil when it is gone.
    public func body(_ hash: String) async throws -> String? {
        try await client.get(bodyKey(hash)).kvs.first.map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// Several bodies by hash, 128 reads per request; missing ones are left out.
    public func bodies(_ hashes: [String]) async throws -> [String: String] {
        var result: [String: String] = [:]
        var start = 0
        while start < hashes.count {
            let batch = Array(hashes[start..<min(start + 128, hashes.count)])
            let response = try await client.txn(.with { $0.success = batch.map { .get(bodyKey($0)) } })
            for (hash, answer) in zip(batch, response.responses) {
                if case .responseRange(let range) = answer.response, let kv = range.kvs.first {
                    result[hash] = String(decoding: kv.value, as: UTF8.self)
                }
            }
            start += batch.count
        }
        return result
    }

    /// The hashes of every stored body (to check collection).
    public func bodyHashes() async throws -> [String] {
        let bodies = prefix + "body/"
        return try await client.get(bodies, prefix: true).kvs.map { String(String(decoding: $0.key, as: UTF8.self).dropFirst(bodies.count)) }
    }

    // MARK: Machines

    /// Publishes a machine's presence on its lease (kept alive by the agent).
    /// Also keeps a copy without a lease (`machine-info/<id>`): an engine elected while a
    /// machine is briefly away still knows its metadata and gives it its grace period.
    public func register(_ machine: MachineRecord, lease: Int64) async throws {
        let record = Self.json(machine)
        _ = try await client.txn(
            .with {
                $0.success = [.put(machineKey(machine.id), record, lease: lease), .put(prefix + "machine-info/" + machine.id, record)]
            })
    }

    /// The last record every machine registered, present or not.
    public func knownMachines() async throws -> [String: MachineRecord] {
        var result: [String: MachineRecord] = [:]
        for kv in try await client.get(prefix + "machine-info/", prefix: true).kvs {
            let record = try decode(MachineRecord.self, kv)
            result[record.id] = record
        }
        return result
    }

    /// Forgets a machine that is gone for good (its grace ran out and its units moved).
    public func forgetMachine(_ id: String) async throws {
        _ = try await client.delete(prefix + "machine-info/" + id)
    }

    /// The machines present now.
    public func machines() async throws -> [MachineRecord] {
        try await client.get(prefix + "machine/", prefix: true).kvs.map { kv throws(Failure) in try decode(MachineRecord.self, kv) }
    }

    // MARK: Schedules and states

    /// The engine places a unit on a machine (or updates how far it should go there).
    public func schedule(_ name: String, on machine: String, _ entry: ScheduleEntry) async throws {
        _ = try await client.put(scheduleKey(machine, name), Self.json(entry))
    }

    public func unschedule(_ name: String, from machine: String) async throws {
        _ = try await client.delete(scheduleKey(machine, name))
    }

    /// The operations that place a unit (for fenced batches): its entry in the machine's
    /// schedule, and `placement/<unit>` naming the machine, so one unit's machine is one
    /// key read rather than a scan of every schedule.
    /// `placed: false` for a unit that stays where it is (only its entry changes).
    public func scheduleOperations(_ name: String, on machine: String, _ entry: ScheduleEntry, placed: Bool = true) -> [Etcdserverpb_RequestOp] {
        [.put(scheduleKey(machine, name), Self.json(entry))] + (placed ? [.put(placementKey(name), machine)] : [])
    }

    public func unscheduleOperations(_ name: String, from machine: String) -> [Etcdserverpb_RequestOp] {
        [.delete(scheduleKey(machine, name)), .delete(placementKey(name))]
    }

    func placementKey(_ name: String) -> String { prefix + "placement/" + name }

    /// The machine a unit is scheduled on, nil when none.
    public func placement(of name: String) async throws -> String? {
        try await client.get(placementKey(name)).kvs.first.map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// Decodes a record read elsewhere (watch events).
    public func decodeRecord<Value: Decodable>(_ type: Value.Type, _ kv: Mvccpb_KeyValue) throws(Failure) -> Value {
        try decode(type, kv)
    }

    /// One machine's schedule: what its agent runs.
    public func schedule(of machine: String) async throws -> [String: ScheduleEntry] {
        let machinePrefix = schedulePrefix(machine)
        var entries: [String: ScheduleEntry] = [:]
        for kv in try await client.get(machinePrefix, prefix: true).kvs {
            entries[String(String(decoding: kv.key, as: UTF8.self).dropFirst(machinePrefix.count))] = try decode(ScheduleEntry.self, kv)
        }
        return entries
    }

    /// The whole schedule, unit → machine (the engine's view).
    public func fullSchedule() async throws -> [String: String] {
        try await scheduleEntries().mapValues(\.machine)
    }

    /// An agent publishes a unit's systemd state on its machine's lease.
    public func publishState(_ name: String, machine: String, _ state: UnitStateRecord, lease: Int64) async throws {
        _ = try await client.put(stateKey(name, machine), Self.json(state), lease: lease)
    }

    /// An agent withdraws a unit's state (the unit left its machine).
    public func withdrawState(_ name: String, machine: String) async throws {
        _ = try await client.delete(stateKey(name, machine))
    }

    /// Writes states in as few transactions as etcd allows (128 operations each): an
    /// agent publishing many changes at once makes few requests.
    public func publishStates(_ changes: [(unit: String, state: UnitStateRecord?)], machine: String, lease: Int64) async throws {
        let operations = changes.map { change -> Etcdserverpb_RequestOp in
            if let state = change.state { return .put(stateKey(change.unit, machine), Self.json(state), lease: lease) }
            return .delete(stateKey(change.unit, machine))
        }
        try await apply(operations, fence: nil)
    }

    /// Runs operations in transactions of at most 128; each checks `fence` (the engine's
    /// leadership) first and throws ``Failure/notLeader`` when it no longer holds.
    public func apply(_ operations: [Etcdserverpb_RequestOp], fence: Etcdserverpb_Compare?) async throws {
        // etcd refuses a transaction that touches a key twice: the last operation on a key
        // wins (a unit moved in one pass deletes and puts its placement).
        var last: [Data: Int] = [:]
        for (index, operation) in operations.enumerated() { last[operation.key] = index }
        let operations = operations.enumerated().filter { last[$0.element.key] == $0.offset }.map(\.element)
        var start = 0
        while start < operations.count {
            let batch = Array(operations[start..<min(start + 128, operations.count)])
            let response = try await client.txn(
                .with {
                    $0.compare = fence.map { [$0] } ?? []
                    $0.success = batch
                })
            if !response.succeeded { throw Failure.notLeader }
            start += batch.count
        }
    }

    // MARK: Machine metadata (PATCH /fleet/v1/machines)

    /// Metadata set through the API, merged over the machine's configured metadata.
    public func metadataOverrides(_ machine: String) async throws -> [String: String?] {
        let keyPrefix = metadataPrefix(machine)
        var result: [String: String?] = [:]
        for kv in try await client.get(keyPrefix, prefix: true).kvs {
            let key = String(String(decoding: kv.key, as: UTF8.self).dropFirst(keyPrefix.count))
            // An empty marker value means "removed": the configured value is hidden too.
            result[key] = kv.value.isEmpty ? String?.none : String(decoding: kv.value.dropFirst(), as: UTF8.self)
        }
        return result
    }

    /// Sets (or, with nil, removes) one metadata key of a machine, in one transaction with
    /// the others of a PATCH.
    public func patchMetadata(_ changes: [(machine: String, key: String, value: String?)]) async throws {
        // A set value is stored with a leading "=" so that an empty string stays distinct
        // from the removal marker.
        try await apply(changes.map { .put(metadataKey($0.machine, $0.key), $0.value.map { "=" + $0 } ?? "") }, fence: nil)
    }

    /// Every published unit state, as (unit, machine, state).
    public func states() async throws -> [(unit: String, machine: String, state: UnitStateRecord)] {
        let states = prefix + "state/"
        return try await client.get(states, prefix: true).kvs.compactMap { kv throws(Failure) in
            let path = String(decoding: kv.key, as: UTF8.self).dropFirst(states.count)
            guard let slash = path.lastIndex(of: "/") else { return nil }
            return (String(path[..<slash]), String(path[path.index(after: slash)...]), try decode(UnitStateRecord.self, kv))
        }
    }
}

extension JSONEncoder {
    /// Keys sorted: the same record is the same bytes (and the same revision-free value).
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}

extension Etcdserverpb_RequestOp {
    /// The key a put or delete acts on.
    fileprivate var key: Data {
        switch request {
        case .requestPut(let put): put.key
        case .requestDeleteRange(let delete): delete.key
        case .requestRange(let range): range.key
        default: Data()
        }
    }
}
