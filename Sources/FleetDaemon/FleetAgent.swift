import EtcdAPI
import EtcdClient
import Fleet
public import FleetRegistry
import Foundation

/// One machine's agent: keeps the machine present (a lease, kept alive), follows its own
/// schedule prefix and the global-unit index by watch, converges the unit manager to
/// them, and publishes unit states on the machine's lease in batches.
///
/// Losing etcd (a leader change, a partition) does not touch running units: the agent
/// keeps them and re-registers when etcd answers again; the engine's grace period keeps
/// their schedule meanwhile.
public actor FleetAgent {
    public struct Identity: Sendable {
        public var machineID: String
        public var publicIP: String
        public var metadata: [String: String]
        public var endpoint: String?
        public var ttl: Duration

        public init(machineID: String, publicIP: String, metadata: [String: String], endpoint: String?, ttl: Duration) {
            self.machineID = machineID
            self.publicIP = publicIP
            self.metadata = metadata
            self.endpoint = endpoint
            self.ttl = ttl
        }
    }

    /// What the agent wants of one unit, and what it has done.
    struct Target: Equatable, Sendable {
        var hash: String
        var desired: DesiredState
    }

    let registry: FleetRegistry
    let identity: Identity
    private var manager: (any UnitManager)?
    private var lease: Int64 = 0
    private var scheduled: [String: Target] = [:]
    /// The newest revision the schedule view reflects (a periodic re-read older than an
    /// applied watch event is dropped).
    private var scheduleRevision: Int64 = 0
    private var globalRecords: [String: FleetRegistry.UnitRecord] = [:]
    private var globalUnits: [String: FleetUnit] = [:]
    private var metadata: [String: String]
    private var wanted: [String: Target] = [:]
    private var applied: [String: Target] = [:]
    private var converging: Set<String> = []
    private var dirty: Set<String> = []
    private var dirtySignal: AsyncStream<Void>.Continuation?
    private var bodies: [String: String] = [:]
    /// Counters for /metrics.
    public private(set) var statePublishes = 0
    public private(set) var stateRequests = 0

    public init(registry: FleetRegistry, identity: Identity) {
        self.registry = registry
        self.identity = identity
        metadata = identity.metadata
    }

    public func attach(_ manager: any UnitManager) { self.manager = manager }

    /// A unit's state changed in the manager: publish it soon.
    public func unitChanged(_ name: String) {
        dirty.insert(name)
        dirtySignal?.yield()
    }

    public var units: [String: (hash: String, desired: String)] {
        applied.mapValues { ($0.hash, $0.desired.rawValue) }
    }

    public var currentMetadata: [String: String] { metadata }

    /// Runs until cancelled. The machine's lease is kept across broken connections: when
    /// keep-alives fail for a while (an etcd leader election, a partition) the agent asks
    /// whether the lease still lives before granting a new one, so its keys, and what the
    /// engine knows of the machine, survive a blip.
    public func run() async {
        var backoff = Duration.milliseconds(200)
        var current: Int64?
        let ttl = max(Int64(identity.ttl.components.seconds), 2)
        while !Task.isCancelled {
            do {
                if let lease = current, (try? await registry.client.leaseTimeToLive(id: lease).ttl) ?? 0 > 0 {
                    FleetLog.info("agent \(identity.machineID): lease \(String(lease, radix: 16)) still alive")
                } else {
                    current = try await registry.client.leaseGrant(ttl: ttl).id
                }
                let lease = current!
                try await registry.client.withLeaseKeepAlive(id: lease) { try await self.serve(lease: lease) }
            } catch is CancellationError {
                break
            } catch {
                if Task.isCancelled { break }
                FleetLog.warning("agent \(identity.machineID): \(error); reconnecting")
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(2))
        }
        // A clean exit withdraws the machine at once rather than after its TTL.
        if let lease = current {
            let client = registry.client
            await Task { _ = try? await client.leaseRevoke(id: lease) }.value
        }
    }

    private func serve(lease: Int64) async throws {
        self.lease = lease
        let (signals, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        dirtySignal = signal
        try await register()
        // Everything the agent knows is published again on the new lease.
        dirty.formUnion(applied.keys)
        signal.yield()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.followSchedule() }
            group.addTask { try await self.followGlobalUnits() }
            group.addTask { try await self.followMetadata() }
            group.addTask { try await self.publishLoop(signals) }
            group.addTask { try await self.resynchronize() }
            try await group.next()
            group.cancelAll()
        }
    }

    private func register() async throws {
        try await registry.register(
            .init(id: identity.machineID, publicIP: identity.publicIP, metadata: metadata, version: FleetVersion.daemon, endpoint: identity.endpoint),
            lease: lease)
    }

    // MARK: Following etcd

    nonisolated private func followSchedule() async throws {
        let prefix = registry.schedulePrefix(identity.machineID)
        let revision = try await readSchedule()
        try await registry.client.watch(prefix, prefix: true, fromRevision: revision + 1) { responses in
            for try await response in responses {
                await self.applySchedule(response.events, prefix: prefix, revision: response.header.revision)
            }
        }
    }

    /// Reads the whole schedule prefix; applies it unless a watch event newer than the
    /// read was applied meanwhile. Returns the read's revision.
    @discardableResult
    nonisolated private func readSchedule() async throws -> Int64 {
        let prefix = registry.schedulePrefix(identity.machineID)
        let initial = try await registry.client.get(prefix, prefix: true)
        var entries: [String: Target] = [:]
        for kv in initial.kvs {
            let name = String(String(decoding: kv.key, as: UTF8.self).dropFirst(prefix.count))
            if let entry = try? registry.decodeRecord(FleetRegistry.ScheduleEntry.self, kv) {
                entries[name] = Target(hash: entry.hash, desired: DesiredState(rawValue: entry.desired) ?? .inactive)
            }
        }
        await setSchedule(entries, revision: initial.header.revision)
        return initial.header.revision
    }

    /// The safety net under the watches: every TTL the agent re-reads its schedule and the
    /// global units (a few keys), so a missed event costs one period, not forever.
    nonisolated private func resynchronize() async throws {
        while true {
            try await Task.sleep(for: identity.ttl)
            try await readSchedule()
        }
    }

    private func setSchedule(_ entries: [String: Target], revision: Int64) async {
        guard revision >= scheduleRevision else { return }
        scheduleRevision = revision
        scheduled = entries
        await recompute()
    }

    private func applySchedule(_ events: [Mvccpb_Event], prefix: String, revision: Int64) async {
        scheduleRevision = max(scheduleRevision, revision)
        for event in events {
            let name = String(String(decoding: event.kv.key, as: UTF8.self).dropFirst(prefix.count))
            if event.type == .delete {
                scheduled[name] = nil
            } else if let entry = try? registry.decodeRecord(FleetRegistry.ScheduleEntry.self, event.kv) {
                scheduled[name] = Target(hash: entry.hash, desired: DesiredState(rawValue: entry.desired) ?? .inactive)
            }
        }
        await recompute()
    }

    nonisolated private func followGlobalUnits() async throws {
        let prefix = registry.globalPrefix
        let initial = try await registry.client.get(prefix, prefix: true)
        var records: [String: FleetRegistry.UnitRecord] = [:]
        for kv in initial.kvs {
            if let record = try? registry.decodeRecord(FleetRegistry.UnitRecord.self, kv) { records[record.name] = record }
        }
        await setGlobal(records)
        try await registry.client.watch(prefix, prefix: true, fromRevision: initial.header.revision + 1) { responses in
            for try await response in responses {
                await self.applyGlobal(response.events, prefix: prefix)
            }
        }
    }

    private func setGlobal(_ records: [String: FleetRegistry.UnitRecord]) async {
        globalRecords = records
        await recompute()
    }

    private func applyGlobal(_ events: [Mvccpb_Event], prefix: String) async {
        for event in events {
            let name = String(String(decoding: event.kv.key, as: UTF8.self).dropFirst(prefix.count))
            if event.type == .delete {
                globalRecords[name] = nil
            } else if let record = try? registry.decodeRecord(FleetRegistry.UnitRecord.self, event.kv) {
                globalRecords[name] = record
            }
        }
        await recompute()
    }

    nonisolated private func followMetadata() async throws {
        let prefix = registry.metadataPrefix(identity.machineID)
        let revision = try await registry.client.get(prefix, prefix: true).header.revision
        try await applyMetadata()
        try await registry.client.watch(prefix, prefix: true, fromRevision: revision + 1) { responses in
            for try await response in responses where !response.events.isEmpty { try await self.applyMetadata() }
        }
    }

    private func applyMetadata() async throws {
        var merged = identity.metadata
        for (key, value) in try await registry.metadataOverrides(identity.machineID) { merged[key] = value }
        if merged != metadata {
            metadata = merged
            try await register()
            await recompute()
        }
    }

    // MARK: Converging

    /// What this machine should run: its schedule plus the global units that fit here.
    private func recompute() async {
        var next = scheduled.filter { $0.value.desired != .inactive }
        var jobs: [String: FleetJob] = [:]
        for (name, record) in globalRecords where record.desiredState != .inactive {
            guard let unit = await globalUnit(name, hash: record.hash) else { continue }
            jobs[name] = FleetJob(unit: unit, desired: record.desiredState)
        }
        let machine = FleetMachine(id: identity.machineID, publicIP: identity.publicIP, metadata: metadata)
        for name in Scheduler.globalUnits(for: machine, jobs: jobs, local: Array(next.keys)) {
            if let record = globalRecords[name] { next[name] = Target(hash: record.hash, desired: record.desiredState) }
        }
        wanted = next
        for name in Set(wanted.keys).union(applied.keys) where !converging.contains(name) {
            if wanted[name] != applied[name] {
                converging.insert(name)
                Task { await self.converge(name) }
            }
        }
    }

    private func globalUnit(_ name: String, hash: String) async -> FleetUnit? {
        if let unit = globalUnits[name], unit.hash == hash { return unit }
        guard let text = await body(hash), let unit = try? FleetUnit(name: name, text: text) else { return nil }
        globalUnits[name] = unit
        return unit
    }

    private func body(_ hash: String) async -> String? {
        if let text = bodies[hash] { return text }
        guard let text = try? await registry.body(hash) else { return nil }
        bodies[hash] = text
        return text
    }

    /// Brings one unit to what is wanted, one step at a time (a stop may take a while;
    /// other units go on meanwhile). Runs again if the wish changed during a step.
    private func converge(_ name: String) async {
        defer { converging.remove(name) }
        guard let manager else { return }
        while wanted[name] != applied[name] {
            let target = wanted[name]
            let current = applied[name]
            if target == nil || (current != nil && current!.hash != target!.hash) {
                // Gone from this machine, or new content: stop and unload the old one first.
                await manager.unload(name)
                applied[name] = nil
                unitChanged(name)
                continue
            }
            guard let target else { continue }
            if current == nil {
                guard let text = await body(target.hash) else {
                    FleetLog.warning("agent \(identity.machineID): body \(target.hash) of \(name) not found")
                    return
                }
                do {
                    try await manager.load(name, text: text)
                } catch {
                    FleetLog.warning("agent \(identity.machineID): loading \(name): \(error)")
                    return
                }
                applied[name] = Target(hash: target.hash, desired: .loaded)
                unitChanged(name)
                continue
            }
            if target.desired == .launched, current!.desired != .launched {
                applied[name]!.desired = .launched
                await manager.start(name)
            } else if target.desired == .loaded, current!.desired == .launched {
                applied[name]!.desired = .loaded
                await manager.stop(name)
            } else {
                applied[name] = target
            }
            unitChanged(name)
        }
    }

    // MARK: Publishing

    /// Publishes what changed, coalescing bursts: one batch of transactions per wake-up.
    private func publishLoop(_ signals: AsyncStream<Void>) async throws {
        for await _ in signals {
            try await Task.sleep(for: .milliseconds(20))
            let names = dirty
            dirty = []
            guard !names.isEmpty, let manager else { continue }
            var changes: [(unit: String, state: FleetRegistry.UnitStateRecord?)] = []
            for name in names.sorted() {
                guard let target = applied[name], let status = await manager.status(name) else {
                    changes.append((name, nil))
                    continue
                }
                changes.append(
                    (name, .init(loadState: status.load, activeState: status.active, subState: status.sub, hash: target.hash, current: target.desired.rawValue)))
            }
            do {
                try await registry.publishStates(changes, machine: identity.machineID, lease: lease)
                statePublishes += changes.count
                stateRequests += (changes.count + 127) / 128
            } catch {
                dirty.formUnion(names)
                throw error
            }
        }
    }

    /// Stops every unit (fleetd is exiting).
    public func shutdown() async {
        await manager?.shutdown()
    }
}
