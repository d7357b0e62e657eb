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
        let (triggers, trigger) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for prefix in [registry.unitPrefix, registry.machinePrefix] {
                group.addTask {
                    try await self.registry.client.watch(prefix, prefix: true) { responses in
                        trigger.yield()
                        for try await _ in responses { trigger.yield() }
                    }
                }
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: self.interval)
                    trigger.yield()
                }
            }
            group.addTask {
                var deadlineTask: Task<Void, Never>?
                for await _ in triggers {
                    // Let a burst of changes (a fleetctl start of many units) settle.
                    try await Task.sleep(for: .milliseconds(50))
                    let pass = try await engine.reconcile(fence: fence)
                    await self.record(pass)
                    deadlineTask?.cancel()
                    if let deadline = pass.nextDeadline {
                        deadlineTask = Task {
                            try? await Task.sleep(until: deadline, clock: .continuous)
                            if !Task.isCancelled { trigger.yield() }
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
