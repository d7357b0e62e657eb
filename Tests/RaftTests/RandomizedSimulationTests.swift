import Raft
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Thousands of seeded runs of 1, 3 and 5 members through loss, duplication,
/// reordering, delay, partitions (symmetric, one-way, flapping), crashes that lose what
/// was not synced, failed writes, membership changes, leader transfers and snapshots.
/// Safety invariants are checked as the run goes; after the faults stop, a leader must
/// appear and commit within a bounded number of steps.
///
/// `COREOS_RAFT_SEEDS` sets how many seeds (default 2000), `COREOS_RAFT_STEPS` the steps
/// per seed (default 1000); `COREOS_TEST_SEED` replays one seed.
@Suite struct RandomizedSimulationTests {
    static func environmentNumber(_ name: String) -> Int? {
        guard let value = getenv(name) else { return nil }
        return Int(String(cString: value))
    }

    @Test func safetyAndLivenessAcrossSeeds() throws {
        let steps = Self.environmentNumber("COREOS_RAFT_STEPS") ?? 1000
        let seeds: [UInt64]
        if let replay = Self.environmentNumber("COREOS_TEST_SEED") {
            seeds = [UInt64(replay)]
        } else {
            seeds = (1...UInt64(Self.environmentNumber("COREOS_RAFT_SEEDS") ?? 2000)).map { $0 }
        }
        var failures: [String] = []
        for seed in seeds {
            do {
                try Self.run(seed: seed, steps: steps)
            } catch {
                failures.append(
                    "seed \(seed): \(error)\n  replay: COREOS_TEST_SEED=\(seed) COREOS_RAFT_STEPS=\(steps) swift test --filter RandomizedSimulationTests")
                if failures.count >= 5 { break }
            }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    }

    /// One seeded run. Throws the first invariant violated, or a liveness failure.
    static func run(seed: UInt64, steps: Int) throws {
        var setup = SeededGenerator(seed: seed)
        let voterCount = setup.pick([1, 3, 3, 5, 5])
        let spare: UInt64 = voterCount == 1 ? 0 : UInt64(setup.pick([0, 1, 2]))
        let ids = (1...UInt64(voterCount) + spare).map { $0 }
        // Small messages and windows make the interleavings of the paper's figures likely.
        let appendBytes = setup.pick([1, 100, 1 << 20])
        let inflight = setup.pick([1, 4, 256])
        let chunk = setup.pick([3, 64, 1 << 20])
        var cluster = SimulatedCluster(nodes: ids, voters: Set(ids.prefix(voterCount)), seed: seed) { id in
            var configuration = RaftConfiguration(id: id)
            configuration.maxBytesPerAppend = appendBytes
            configuration.maxInflightAppends = inflight
            configuration.snapshotChunkBytes = chunk
            return configuration
        }
        cluster.dropRate = setup.pick([0, 0.01, 0.05, 0.2])
        cluster.duplicateRate = setup.pick([0, 0.02, 0.1])
        cluster.maxDelay = setup.pick([0, 1, 3])
        cluster.failWriteRate = setup.pick([0, 0, 0.002])
        let flapping = setup.pick([false, false, true])
        var proposals = 0
        var generator = setup

        for step in 0..<steps {
            cluster.now += 1
            try cluster.tickAll()
            let roll = Double.random(in: 0..<1, using: &generator)
            let target = generator.pick(ids)
            switch roll {
            case ..<0.30:
                proposals += 1
                _ = cluster.propose(at: target, "p\(proposals)")
            case ..<0.36:
                cluster.requestRead(at: target)
            case ..<0.375:
                // Leaders half the time: leader changes are where the hard cases live.
                if Bool.random(using: &generator), let leader = cluster.leader() {
                    cluster.crash(leader)
                } else {
                    cluster.crash(target)
                }
            case ..<0.385:
                // Crash right after the member handled messages, before its Ready was
                // persisted: whatever it had not synced is gone.
                let due = cluster.network.filter { $0.deliverAt <= cluster.now && $0.message.to == target }
                for item in due { cluster.nodes[target]?.raft.step(item.message) }
                cluster.network.removeAll { $0.deliverAt <= cluster.now && $0.message.to == target }
                cluster.crash(target)
            case ..<0.42:
                if cluster.nodes[target]?.running == false { cluster.restart(target) }
            case ..<0.435:
                let shuffled = ids.shuffled(using: &generator)
                let cut = Int.random(in: 1..<max(ids.count, 2), using: &generator)
                cluster.partition([Set(shuffled.prefix(cut)), Set(shuffled.dropFirst(cut))])
            case ..<0.445:
                // One-way: `target` hears nobody, everybody hears it.
                cluster.blocked = Set(ids.filter { $0 != target }.map { [$0, target] })
            case ..<0.46:
                cluster.blocked = []
            case ..<0.47:
                if let leader = cluster.leader() {
                    cluster.nodes[leader]!.raft.transferLeadership(to: generator.pick(ids))
                }
            case ..<0.48:
                if let leader = cluster.leader() {
                    let membership = cluster.nodes[leader]!.raft.membership
                    let change: MembershipChange
                    if let learner = membership.learners.first, Bool.random(using: &generator) {
                        change = MembershipChange(.promote, node: learner)
                    } else if let outsider = ids.first(where: { !membership.contains($0) }) {
                        change = MembershipChange(generator.pick([.addLearner, .addVoter]), node: outsider)
                    } else {
                        change = MembershipChange(.remove, node: generator.pick(Array(membership.all)))
                    }
                    _ = cluster.nodes[leader]!.raft.proposeMembershipChange(change)
                }
            case ..<0.50:
                cluster.compact(target)
            case ..<0.52:
                // Applied entries dropped from memory, as coreos etcd does on every tick.
                if cluster.nodes[target]?.running == true {
                    cluster.nodes[target]!.raft.trimLog(keepingForCatchUp: LogIndex(generator.next() % 4))
                }
            default:
                break
            }
            if flapping && step % 37 == 0 {
                cluster.blocked = cluster.blocked.isEmpty ? Set([[ids[0], ids[ids.count - 1]], [ids[ids.count - 1], ids[0]]]) : []
            }
            try cluster.deliver()
            try cluster.checkLogMatching(window: step % 100 == 0 ? nil : 32)
        }

        // Liveness: faults stop, everyone restarts; a leader must commit a new entry.
        cluster.heal()
        for id in ids where cluster.nodes[id]?.running == false { cluster.restart(id) }
        let marker = "liveness-\(seed)"
        // Like a client, propose again when the leader that took the proposal lost its term
        // (its entry may be overwritten) or nothing happened for a while.
        var proposedAt: (term: Term, step: Int)?
        for step in 0..<600 {
            if let leader = cluster.leader(), cluster.nodes[leader]!.raft.membership.voters.contains(leader) {
                let term = cluster.nodes[leader]!.raft.term
                if proposedAt == nil || proposedAt!.term != term || step - proposedAt!.step > 50 {
                    if case .appended = cluster.propose(at: leader, marker) { proposedAt = (term, step) }
                }
            }
            if proposedAt != nil, cluster.appliedHistory.values.contains(where: { $0.data == Array(marker.utf8) }) {
                try cluster.checkLogMatching(window: nil)
                return
            }
            try cluster.advanceTime()
        }
        throw InvariantViolation(
            description: "liveness: no commit within 600 steps after healing\n    \(cluster.describe())")
    }
}
