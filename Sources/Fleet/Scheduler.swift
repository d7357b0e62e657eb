import UnitFile

/// fleet's three cluster-level states of a unit.
public enum DesiredState: String, Sendable, Hashable, CaseIterable, Comparable {
    /// Known to fleet, not assigned to a machine.
    case inactive
    /// Assigned to a machine and loaded into its systemd.
    case loaded
    /// Loaded and started.
    case launched

    private var rank: Int { DesiredState.allCases.firstIndex(of: self) ?? 0 }
    public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
}

/// A machine as the engine sees it: its ID, the address it publishes and its metadata.
public struct FleetMachine: Sendable, Hashable {
    public var id: String
    public var publicIP: String
    public var metadata: [String: String]

    public init(id: String, publicIP: String = "", metadata: [String: String] = [:]) {
        self.id = id
        self.publicIP = publicIP
        self.metadata = metadata
    }

    /// fleet's short form: the first 8 characters.
    public var shortID: String { String(id.prefix(8)) }
}

/// A submitted unit and what the user wants of it.
public struct FleetJob: Sendable, Hashable {
    public var unit: FleetUnit
    public var desired: DesiredState

    public init(unit: FleetUnit, desired: DesiredState) {
        self.unit = unit
        self.desired = desired
    }

    public var name: String { unit.name.name }
}

/// One change the engine makes to the schedule.
public enum ScheduleDecision: Sendable, Hashable, CustomStringConvertible {
    case schedule(unit: String, machine: String)
    case unschedule(unit: String, machine: String, reason: String)

    public var description: String {
        switch self {
        case .schedule(let unit, let machine): "schedule \(unit) to \(machine)"
        case .unschedule(let unit, let machine, let reason): "unschedule \(unit) from \(machine): \(reason)"
        }
    }
}

/// fleet's engine as a pure function: the jobs, the machines that count as present and
/// the current schedule in, the changes out. Least-loaded placement (units per machine,
/// ties by machine ID) among the machines the unit's requirements allow, in fleet's
/// order: `MachineID`, metadata, `MachineOf` peers already there, conflicts (both ways),
/// replacement. Global units are not the engine's: each agent takes them (`globalUnits`).
public enum Scheduler {
    public static func reconcile(jobs: [String: FleetJob], machines: [FleetMachine], schedule: [String: String]) -> [ScheduleDecision] {
        var state = ClusterState(machines: machines, schedule: schedule, jobs: jobs)
        var decisions: [ScheduleDecision] = []

        // 1. Units whose place no longer holds leave it.
        for (name, machineID) in schedule.sorted(by: { $0.key < $1.key }) {
            let reason: String?
            if let job = jobs[name] {
                if job.desired == .inactive {
                    reason = "target state inactive"
                } else if job.unit.isGlobal || job.unit.name.isTemplate {
                    reason = "not schedulable by the engine"
                } else if let machine = state.machine(machineID) {
                    reason = state.ableToRun(job, on: machine, ignoring: name) ? nil : "machine no longer able to run the unit"
                } else {
                    reason = "target machine went away"
                }
            } else {
                reason = "unit was destroyed"
            }
            if let reason {
                state.unschedule(name)
                decisions.append(.unschedule(unit: name, machine: machineID, reason: reason))
            }
        }

        // 2. Units that want a machine get one. A pass can make room for another (a
        // `MachineOf` follower after its peer), so passes repeat until nothing changes.
        var pending = jobs.compactMap { name, job in
            job.desired != .inactive && !job.unit.isGlobal && !job.unit.name.isTemplate && state.schedule[name] == nil ? name : nil
        }.sorted()
        var progress = true
        while progress && !pending.isEmpty {
            progress = false
            var waiting: [String] = []
            for name in pending {
                guard state.schedule[name] == nil, let job = jobs[name] else { continue }
                guard let machine = state.bestMachine(for: job) else {
                    waiting.append(name)
                    continue
                }
                // A replacement takes the replaced units' machine; they move on.
                for displaced in state.units(on: machine.id) where job.unit.requirements.replaces.contains(where: { Glob.matches($0, displaced) }) {
                    state.unschedule(displaced)
                    decisions.append(.unschedule(unit: displaced, machine: machine.id, reason: "replaced by \(name)"))
                }
                state.assign(name, to: machine.id)
                decisions.append(.schedule(unit: name, machine: machine.id))
                progress = true
            }
            // Displaced units want a machine again.
            pending = (waiting + decisions.compactMap { decision -> String? in
                if case .unschedule(let unit, _, let reason) = decision, reason.hasPrefix("replaced by "), state.schedule[unit] == nil,
                    let job = jobs[unit], job.desired != .inactive
                {
                    return unit
                }
                return nil
            }).uniqued().sorted()
        }
        return decisions
    }

    /// The global units `machine` should run, given the units it runs now (an agent's own
    /// decision: the engine does not schedule them).
    public static func globalUnits(for machine: FleetMachine, jobs: [String: FleetJob], local: [String]) -> [String] {
        let state = ClusterState(machines: [machine], schedule: Dictionary(local.map { ($0, machine.id) }, uniquingKeysWith: { a, _ in a }), jobs: jobs)
        return jobs.values.filter { $0.unit.isGlobal && $0.desired != .inactive && !$0.unit.name.isTemplate }
            .filter { state.metadataAllows($0, on: machine) && state.conflictsAllow($0, on: machine, ignoring: $0.name) }
            .map(\.name).sorted()
    }
}

/// The schedule being worked on in one engine pass.
struct ClusterState {
    private(set) var schedule: [String: String]
    private var machinesByID: [String: FleetMachine]
    private var byMachine: [String: Set<String>]
    /// Per machine, its units that declare `Conflicts=` or `Replaces=` (few, in practice):
    /// a unit without either needs to look only at these, not at every unit there.
    private var constrainingByMachine: [String: Set<String>]
    private let constraining: Set<String>
    let jobs: [String: FleetJob]

    init(machines: [FleetMachine], schedule: [String: String], jobs: [String: FleetJob]) {
        self.schedule = schedule
        self.jobs = jobs
        machinesByID = Dictionary(machines.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        constraining = Set(jobs.compactMap { name, job in
            job.unit.requirements.conflicts.isEmpty && job.unit.requirements.replaces.isEmpty ? nil : name
        })
        byMachine = [:]
        constrainingByMachine = [:]
        for (unit, machine) in schedule {
            byMachine[machine, default: []].insert(unit)
            if constraining.contains(unit) { constrainingByMachine[machine, default: []].insert(unit) }
        }
    }

    func machine(_ id: String) -> FleetMachine? { machinesByID[id] }
    func units(on machine: String) -> [String] { (byMachine[machine] ?? []).sorted() }

    mutating func unschedule(_ unit: String) {
        guard let machine = schedule.removeValue(forKey: unit) else { return }
        byMachine[machine]?.remove(unit)
        constrainingByMachine[machine]?.remove(unit)
    }

    mutating func assign(_ unit: String, to machine: String) {
        schedule[unit] = machine
        byMachine[machine, default: []].insert(unit)
        if constraining.contains(unit) { constrainingByMachine[machine, default: []].insert(unit) }
    }

    /// Least loaded first, ties by machine ID; a machine hosting a unit this one replaces
    /// comes first of all.
    func bestMachine(for job: FleetJob) -> FleetMachine? {
        let candidates = machinesByID.values.sorted { a, b in
            // (Sorting 100 machines per unit costs less than one etcd round trip.)
            let loadA = byMachine[a.id]?.count ?? 0, loadB = byMachine[b.id]?.count ?? 0
            return loadA != loadB ? loadA < loadB : a.id < b.id
        }
        let replaces = job.unit.requirements.replaces
        if !replaces.isEmpty {
            for machine in candidates where units(on: machine.id).contains(where: { unit in replaces.contains { Glob.matches($0, unit) } }) {
                if ableToRun(job, on: machine, ignoring: job.name, replacing: true) { return machine }
            }
        }
        return candidates.first { ableToRun(job, on: $0, ignoring: job.name) }
    }

    /// fleet's `AbleToRun`, in its order.
    func ableToRun(_ job: FleetJob, on machine: FleetMachine, ignoring: String, replacing: Bool = false) -> Bool {
        let requirements = job.unit.requirements
        if let wanted = requirements.machineID, wanted != machine.id, !(wanted.count == 8 && machine.id.hasPrefix(wanted)) {
            return false
        }
        guard metadataAllows(job, on: machine) else { return false }
        for peer in requirements.machineOf where schedule[peer] != machine.id { return false }
        guard conflictsAllow(job, on: machine, ignoring: ignoring, skippingReplaced: replacing) else { return false }
        // A replaced unit may not sit next to the unit replacing it.
        for other in constrainingByMachine[machine.id] ?? [] where other != ignoring {
            if let replacer = jobs[other], replacer.unit.requirements.replaces.contains(where: { Glob.matches($0, job.name) }) {
                return false
            }
        }
        return true
    }

    func metadataAllows(_ job: FleetJob, on machine: FleetMachine) -> Bool {
        job.unit.requirements.metadata.allSatisfy { key, allowed in machine.metadata[key].map(allowed.contains) ?? false }
    }

    /// No unit there matches this one's `Conflicts`, and none there conflicts with it.
    func conflictsAllow(_ job: FleetJob, on machine: FleetMachine, ignoring: String, skippingReplaced: Bool = false) -> Bool {
        // Without Conflicts= of its own, only units there that declare some can object.
        let others = job.unit.requirements.conflicts.isEmpty ? constrainingByMachine[machine.id] ?? [] : byMachine[machine.id] ?? []
        for other in others where other != ignoring {
            if skippingReplaced, job.unit.requirements.replaces.contains(where: { Glob.matches($0, other) }) { continue }
            if job.unit.requirements.conflicts.contains(where: { Glob.matches($0, other) }) { return false }
            if let otherJob = jobs[other], otherJob.unit.requirements.conflicts.contains(where: { Glob.matches($0, job.name) }) {
                return false
            }
        }
        return true
    }
}

/// Go's `path.Match` for unit names: `*` any run of characters but `/`, `?` one, `[…]` a
/// class (`[!…]` or `[^…]` negated, ranges `a-z`), `\` escapes.
public enum Glob {
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        match(Array(pattern), 0, Array(name), 0)
    }

    private static func match(_ pattern: [Character], _ p: Int, _ name: [Character], _ n: Int) -> Bool {
        var p = p, n = n
        while p < pattern.count {
            switch pattern[p] {
            case "*":
                // Try every split of the rest of the name (no `/` inside a star).
                var k = n
                while true {
                    if match(pattern, p + 1, name, k) { return true }
                    if k >= name.count || name[k] == "/" { return false }
                    k += 1
                }
            case "?":
                guard n < name.count, name[n] != "/" else { return false }
                p += 1
                n += 1
            case "[":
                guard n < name.count, let (matched, next) = matchClass(pattern, p, name[n]), matched else { return false }
                p = next
                n += 1
            case "\\" where p + 1 < pattern.count:
                guard n < name.count, name[n] == pattern[p + 1] else { return false }
                p += 2
                n += 1
            default:
                guard n < name.count, name[n] == pattern[p] else { return false }
                p += 1
                n += 1
            }
        }
        return n == name.count
    }

    /// Whether `character` is in the class at `start`, and where the class ends; nil for
    /// a malformed class (no match, as Go's `ErrBadPattern`).
    private static func matchClass(_ pattern: [Character], _ start: Int, _ character: Character) -> (Bool, Int)? {
        var index = start + 1
        var negated = false
        if index < pattern.count, pattern[index] == "!" || pattern[index] == "^" {
            negated = true
            index += 1
        }
        var matched = false
        var first = true
        while index < pattern.count, pattern[index] != "]" || first {
            first = false
            var low = pattern[index]
            if low == "\\", index + 1 < pattern.count {
                index += 1
                low = pattern[index]
            }
            var high = low
            if index + 2 < pattern.count, pattern[index + 1] == "-", pattern[index + 2] != "]" {
                high = pattern[index + 2]
                index += 2
            }
            if low <= character && character <= high { matched = true }
            index += 1
        }
        guard index < pattern.count else { return nil }
        return (matched != negated, index + 1)
    }
}

/// Which machines count as present: a machine that stops renewing its presence keeps its
/// units for a grace period before the engine moves them (fleet moved them as soon as a
/// TTL ran out, so any etcd hiccup longer than that rescheduled a whole machine). Pure:
/// the engine feeds what it sees and the time.
public struct MachinePresence: Sendable {
    public let grace: Duration
    private var lastSeen: [String: (machine: FleetMachine, at: ContinuousClock.Instant)] = [:]

    public init(grace: Duration) { self.grace = grace }

    /// The machines alive now; a missing one is kept until its grace runs out.
    public mutating func observe(_ alive: [FleetMachine], at now: ContinuousClock.Instant) -> [FleetMachine] {
        for machine in alive { lastSeen[machine.id] = (machine, now) }
        lastSeen = lastSeen.filter { now - $0.value.at <= grace }
        return lastSeen.values.map(\.machine).sorted { $0.id < $1.id }
    }

    /// Machines that hold units but were never seen by this engine (it was just elected
    /// while they were away): their grace starts now.
    public mutating func adopt(_ machines: [FleetMachine], at now: ContinuousClock.Instant) {
        for machine in machines where lastSeen[machine.id] == nil { lastSeen[machine.id] = (machine, now) }
    }

    /// Whether a machine is counted (present, or missing within its grace).
    public func counts(_ id: String) -> Bool { lastSeen[id] != nil }

    /// When the next missing machine's grace runs out (the engine reconciles then).
    public func nextExpiry(after now: ContinuousClock.Instant, alive: Set<String>) -> ContinuousClock.Instant? {
        lastSeen.filter { !alive.contains($0.key) }.map { $0.value.at + grace }.filter { $0 > now }.min()
    }
}

extension Array where Element: Hashable {
    fileprivate func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
