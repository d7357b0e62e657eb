import EtcdAPI
import EtcdClient
import Fleet
public import FleetRegistry
import Foundation
import Synchronization

/// The engine of one fleetd: campaigns for leadership (etcd's election recipe on
/// `engine/` over a lease of its own), and while leading reconciles on every change of
/// `unit/` or `machine/` (watched), when a lost machine's grace runs out, and every
/// `engine_reconcile_interval` as a safety net. Every write is fenced by the leadership
/// key, so a deposed engine cannot overwrite its successor's decisions.
public actor EngineLoop {
    let registry: FleetRegistry
    let machineID: String
    let interval: Duration
    let ttl: Int64
    let grace: Duration
    /// A fresh engine each term: what it knows of machines' presence starts at election.
    private var engine: FleetEngine
    private var earlierPasses = 0
    public private(set) var isLeader = false
    public private(set) var lastPassDecisions = 0

    public init(registry: FleetRegistry, machineID: String, interval: Duration, grace: Duration, ttl: Duration) {
        self.registry = registry
        self.machineID = machineID
        self.interval = interval
        self.ttl = max(Int64(ttl.components.seconds), 2)
        self.grace = grace
        engine = FleetEngine(registry: registry, grace: grace)
    }

    public var passes: Int { get async { await earlierPasses + engine.passes } }

    public func run() async {
        while !Task.isCancelled {
            do {
                try await registry.client.withSession(ttl: ttl) { session in
                    let leadership = try await self.registry.client.campaign(self.registry.enginePrefix, value: self.machineID, session: session)
                    try await self.lead(leadership)
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                FleetLog.warning("engine \(machineID): \(error)")
            }
            isLeader = false
            try? await Task.sleep(for: .seconds(1))
        }
    }

    private func lead(_ leadership: EtcdLeadership) async throws {
        earlierPasses += await engine.passes
        let engine = FleetEngine(registry: registry, grace: grace)
        self.engine = engine
        isLeader = true
        FleetLog.info("engine \(machineID): leading")
        defer { isLeader = false }
        let fence = Etcdserverpb_Compare.createRevision(leadership.key, .equal, leadership.revision)
        let revision = try await engine.refresh()
        /// A pass is wanted; `refresh` asks for a full re-read (the safety net).
        let (triggers, trigger) = AsyncStream<Bool>.makeStream(bufferingPolicy: .bufferingNewest(1))
        trigger.yield(false)
        let registry = self.registry
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await registry.client.watch(registry.unitPrefix, prefix: true, fromRevision: revision + 1) { responses in
                    for try await response in responses {
                        await engine.apply(unitEvents: response.events)
                        trigger.yield(false)
                    }
                }
            }
            group.addTask {
                try await registry.client.watch(registry.machinePrefix, prefix: true, fromRevision: revision + 1) { responses in
                    for try await response in responses {
                        await engine.apply(machineEvents: response.events)
                        trigger.yield(false)
                    }
                }
            }
            group.addTask {
                // The safety net: a pass every interval, and a full re-read every 5th (a
                // missed watch event costs seconds, not forever).
                var ticks = 0
                while true {
                    try await Task.sleep(for: self.interval)
                    ticks += 1
                    trigger.yield(ticks % 5 == 0)
                }
            }
            group.addTask {
                var deadlineTask: Task<Void, Never>?
                var settle = Duration.milliseconds(50)
                for await refresh in triggers {
                    // Let a burst of changes (a fleetctl start of many units) settle: at
                    // least as long as the last pass took, so a big cluster under a burst
                    // spends at most half its engine time deciding.
                    try await Task.sleep(for: settle)
                    let started = ContinuousClock.now
                    let pass = try await engine.reconcile(fence: fence, refresh: refresh)
                    settle = min(max(.milliseconds(50), ContinuousClock.now - started), .seconds(1))
                    await self.record(pass)
                    deadlineTask?.cancel()
                    if let deadline = pass.nextDeadline {
                        deadlineTask = Task {
                            try? await Task.sleep(until: deadline, clock: .continuous)
                            if !Task.isCancelled { trigger.yield(false) }
                        }
                    }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    private func record(_ pass: FleetEngine.Pass) {
        lastPassDecisions = pass.decisions.count
        for decision in pass.decisions { FleetLog.info("engine: \(decision)") }
        for (unit, problem) in pass.unreadable { FleetLog.warning("engine: unit \(unit) cannot be scheduled: \(problem)") }
    }
}

/// fleetd's log: one line per event on stderr (journald captures it under systemd).
public enum FleetLog {
    private static let level = Atomic<Int>(0)

    public static var verbosity: Int {
        get { level.load(ordering: .relaxed) }
        set { level.store(newValue, ordering: .relaxed) }
    }

    public static func info(_ message: String) {
        if verbosity > 0 { write("INFO", message) }
    }

    public static func warning(_ message: String) { write("WARN", message) }

    private static func write(_ level: String, _ message: String) {
        FileHandle.standardError.write(Data("\(level) \(message)\n".utf8))
    }
}

public enum FleetVersion {
    /// The fleet release whose behaviour and formats this implements.
    public static let compatible = "1.0.0"
    public static let daemon = "1.0.0"
}
