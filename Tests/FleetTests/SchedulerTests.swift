import Testing

@testable import Fleet

@Suite struct SchedulerTests {
    private func job(_ name: String, _ fleet: String = "", _ desired: DesiredState = .launched) throws -> (String, FleetJob) {
        (name, FleetJob(unit: try FleetUnit(name: name, text: "[Service]\nExecStart=/bin/true\n[X-Fleet]\n" + fleet), desired: desired))
    }

    private let machines = [
        FleetMachine(id: "aaaa1111aaaa1111aaaa1111aaaa1111", metadata: ["role": "core", "region": "east"]),
        FleetMachine(id: "bbbb2222bbbb2222bbbb2222bbbb2222", metadata: ["role": "worker", "region": "east"]),
        FleetMachine(id: "cccc3333cccc3333cccc3333cccc3333", metadata: ["role": "worker", "region": "west"]),
    ]
    private var a: String { machines[0].id }
    private var b: String { machines[1].id }
    private var c: String { machines[2].id }

    /// Applies the decisions to a schedule, as the engine writes them.
    private func apply(_ decisions: [ScheduleDecision], to schedule: [String: String]) -> [String: String] {
        var result = schedule
        for decision in decisions {
            switch decision {
            case .schedule(let unit, let machine): result[unit] = machine
            case .unschedule(let unit, _, _): result[unit] = nil
            }
        }
        return result
    }

    @Test func leastLoadedFirstThenByMachineID() throws {
        let jobs = Dictionary(uniqueKeysWithValues: try (1...6).map { try job("u\($0).service") })
        let schedule = apply(Scheduler.reconcile(jobs: jobs, machines: machines, schedule: [:]), to: [:])
        #expect(schedule["u1.service"] == a && schedule["u2.service"] == b && schedule["u3.service"] == c)
        #expect(Dictionary(grouping: schedule.values, by: { $0 }).mapValues(\.count) == [a: 2, b: 2, c: 2])
        #expect(Scheduler.reconcile(jobs: jobs, machines: machines, schedule: schedule).isEmpty)
    }

    @Test func requirementsDecideWhereUnitsLand() throws {
        let jobs = Dictionary(uniqueKeysWithValues: [
            try job("pinned.service", "MachineID=\(c)\n"),
            try job("short.service", "MachineID=bbbb2222\n"),
            try job("core.service", "MachineMetadata=role=core\n"),
            try job("west-worker.service", "MachineMetadata=role=worker\nMachineMetadata=region=west\n"),
            try job("either.service", "MachineMetadata=region=nowhere region=west\n"),
            try job("nowhere.service", "MachineMetadata=role=gpu\n"),
            try job("sidekick.service", "MachineOf=core.service\n"),
        ])
        let schedule = apply(Scheduler.reconcile(jobs: jobs, machines: machines, schedule: [:]), to: [:])
        #expect(schedule["pinned.service"] == c)
        #expect(schedule["short.service"] == b)
        #expect(schedule["core.service"] == a)
        #expect(schedule["west-worker.service"] == c)
        #expect(schedule["either.service"] == c)
        #expect(schedule["nowhere.service"] == nil)
        #expect(schedule["sidekick.service"] == a)
    }

    @Test func conflictsHoldInBothDirections() throws {
        let jobs = Dictionary(uniqueKeysWithValues: [
            try job("web@1.service", "Conflicts=web@*.service\n"), try job("web@2.service", "Conflicts=web@*.service\n"),
            try job("web@3.service", "Conflicts=web@*.service\n"), try job("web@4.service", "Conflicts=web@*.service\n"),
            try job("lonely.service", "Conflicts=*\n"),
        ])
        let schedule = apply(Scheduler.reconcile(jobs: jobs, machines: machines, schedule: [:]), to: [:])
        // `lonely` comes first by name and takes the least-loaded machine, a; its `Conflicts=*`
        // keeps every web off a (the other direction), and the webs' own conflicts keep one
        // per machine: two land, two wait.
        #expect(schedule["lonely.service"] == a)
        let webs = ["web@1.service", "web@2.service", "web@3.service", "web@4.service"].compactMap { schedule[$0] }
        #expect(webs.sorted() == [b, c])
    }

    @Test func aLostMachinesUnitsMoveAndInactiveUnitsLeave() throws {
        var jobs = Dictionary(uniqueKeysWithValues: [try job("x.service"), try job("y.service", "MachineOf=x.service\n")])
        var schedule = apply(Scheduler.reconcile(jobs: jobs, machines: machines, schedule: [:]), to: [:])
        #expect(schedule["x.service"] == a && schedule["y.service"] == a)
        let remaining = Array(machines.dropFirst())
        let decisions = Scheduler.reconcile(jobs: jobs, machines: remaining, schedule: schedule)
        #expect(decisions.contains(.unschedule(unit: "x.service", machine: a, reason: "target machine went away")))
        schedule = apply(decisions, to: schedule)
        #expect(schedule["x.service"] == b && schedule["y.service"] == b, "the follower moves with its peer")
        jobs["x.service"]?.desired = .inactive
        schedule = apply(Scheduler.reconcile(jobs: jobs, machines: remaining, schedule: schedule), to: schedule)
        #expect(schedule["x.service"] == nil && schedule["y.service"] == nil)
    }

    @Test func aReplacementTakesTheMachineAndTheReplacedUnitMoves() throws {
        var jobs = Dictionary(uniqueKeysWithValues: [try job("old.service", "MachineID=\(a)\n")])
        var schedule = apply(Scheduler.reconcile(jobs: jobs, machines: machines, schedule: [:]), to: [:])
        #expect(schedule["old.service"] == a)
        jobs["old.service"] = try job("old.service").1
        let (name, replacement) = try job("new.service", "Replaces=old.service\n")
        jobs[name] = replacement
        schedule = apply(Scheduler.reconcile(jobs: jobs, machines: machines, schedule: schedule), to: schedule)
        #expect(schedule["new.service"] == a)
        #expect(schedule["old.service"] != nil && schedule["old.service"] != a)
    }

    @Test func globalUnitsAreEachAgentsOwn() throws {
        let jobs = Dictionary(uniqueKeysWithValues: [
            try job("everywhere.service", "Global=true\n"), try job("workers.service", "Global=true\nMachineMetadata=role=worker\n"),
            try job("not-with-db.service", "Global=true\nConflicts=db.service\n"),
        ])
        #expect(Scheduler.reconcile(jobs: jobs, machines: machines, schedule: [:]).isEmpty)
        #expect(Scheduler.globalUnits(for: machines[0], jobs: jobs, local: []) == ["everywhere.service", "not-with-db.service"])
        #expect(
            Scheduler.globalUnits(for: machines[1], jobs: jobs, local: ["db.service"]) == ["everywhere.service", "workers.service"])
    }

    @Test func aMissingMachineKeepsItsUnitsForTheGracePeriod() {
        var presence = MachinePresence(grace: .seconds(30))
        let start = ContinuousClock.now
        #expect(presence.observe(machines, at: start).count == 3)
        let withoutA = Array(machines.dropFirst())
        #expect(presence.observe(withoutA, at: start + .seconds(29)).count == 3, "still within the grace")
        #expect(presence.nextExpiry(after: start + .seconds(29), alive: Set(withoutA.map(\.id))) == start + .seconds(30))
        #expect(presence.observe(withoutA, at: start + .seconds(31)).map(\.id) == [b, c])
        #expect(presence.observe(machines, at: start + .seconds(32)).count == 3, "back again")
    }
}
