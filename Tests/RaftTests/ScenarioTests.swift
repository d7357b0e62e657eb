import Raft
import Testing

/// Named scenarios from the Raft paper and thesis, each on the simulated cluster.
@Suite struct ScenarioTests {
    static func electedCluster(_ count: Int, seed: UInt64 = 1) throws -> SimulatedCluster {
        var cluster = SimulatedCluster(nodes: (1...UInt64(count)).map { $0 }, seed: seed)
        let elected = try cluster.run(upTo: 200) { $0.leader() != nil }
        #expect(elected)
        return cluster
    }

    func committed(_ cluster: SimulatedCluster, _ text: String) -> Bool {
        cluster.appliedHistory.values.contains { $0.data == Array(text.utf8) }
    }

    @Test func singleNodeElectsItselfAndCommits() throws {
        var cluster = try Self.electedCluster(1)
        _ = cluster.propose(at: 1, "x")
        #expect(try cluster.run(upTo: 5) { committed($0, "x") })
    }

    @Test func threeNodesElectOneLeaderAndReplicate() throws {
        var cluster = try Self.electedCluster(3)
        let leader = try #require(cluster.leader())
        for index in 0..<20 { _ = cluster.propose(at: leader, "v\(index)") }
        #expect(try cluster.run(upTo: 20) { cluster in (0..<20).allSatisfy { committed(cluster, "v\($0)") } })
        // Every member applies everything.
        #expect(try cluster.run(upTo: 20) { $0.nodes.values.allSatisfy { $0.appliedIndex == $0.raft.lastIndex } })
        try cluster.checkLogMatching()
    }

    @Test func followersForwardProposals() throws {
        var cluster = try Self.electedCluster(3)
        let leader = try #require(cluster.leader())
        let follower = try #require(cluster.ids.first { $0 != leader })
        #expect(try cluster.run(upTo: 5) { $0.nodes[follower]!.raft.leader == leader })
        #expect(cluster.propose(at: follower, "via follower") == .forwarded(to: leader))
        #expect(try cluster.run(upTo: 10) { committed($0, "via follower") })
    }

    /// Figure 8 of the Raft paper, played out step by step: S1 (term 4) re-replicates its
    /// term-2 entry to a majority. Counting those replicas must not commit it: S5 (whose
    /// log ends with a term-3 entry at the same index) can still win and overwrite it. A
    /// core that commits by counting applies the term-2 entry on S1 and the term-3 entry
    /// elsewhere, which the harness reports as a state-machine safety violation.
    @Test func figure8PreviousTermEntriesCommitOnlyThroughCurrentTerm() throws {
        // Elections only when the test calls them; one entry per append, as in the figure.
        var cluster = SimulatedCluster(nodes: [1, 2, 3, 4, 5], seed: 8) { id in
            var configuration = RaftConfiguration(id: id)
            configuration.electionTicks = 1000
            configuration.checkQuorum = false
            configuration.maxBytesPerAppend = 1
            return configuration
        }
        func elect(_ id: NodeID) throws {
            for _ in 0..<5 where cluster.leader() != id {
                cluster.nodes[id]!.raft.campaign()
                for _ in 0..<8 where cluster.leader() != id { try cluster.deliver() }
            }
            #expect(cluster.leader() == id, "\(cluster.describe())")
        }
        // (a) S1 leads and gets an entry only to S2.
        try elect(1)
        for _ in 0..<4 { try cluster.deliver() }
        cluster.partition([[1, 2], [3], [4], [5]])
        _ = cluster.propose(at: 1, "from S1")
        for _ in 0..<3 { try cluster.deliver() }
        #expect(cluster.nodes[2]!.raft.lastIndex == 2)
        // (b) S1 crashes; S5 wins with S3 and S4 and keeps its own entry at index 2.
        cluster.crash(1)
        cluster.partition([[2], [3, 4, 5]])
        try elect(5)
        cluster.partition([[2], [3], [4], [5]])
        _ = cluster.propose(at: 5, "from S5")
        #expect(cluster.nodes[5]!.raft.term(at: 2) == cluster.nodes[5]!.raft.term)
        // (c) S5 crashes; S1 returns, wins with S2 and S3 and copies its index 2 to S3.
        cluster.crash(5)
        cluster.restart(1)
        cluster.partition([[1, 2, 3], [4]])
        try elect(1)
        let oldTerm = cluster.nodes[2]!.raft.term(at: 2)
        // Until S1 hears that S3 holds index 2 (three of five copies of the old entry).
        for _ in 0..<10 where (cluster.nodes[1]!.raft.matchIndex(of: 3) ?? 0) < 2 { try cluster.deliver() }
        #expect(cluster.nodes[3]!.raft.term(at: 2) == oldTerm)
        #expect(cluster.nodes[3]!.raft.lastIndex == 2)
        // S1 is cut off at once: what it still had in flight is lost.
        cluster.partition([[1], [2, 3, 4, 5]])
        cluster.crash(1)
        // (d) S5 returns and wins with S3 and S4; its index 2 replaces S1's everywhere.
        cluster.restart(5)
        try elect(5)
        for _ in 0..<10 { try cluster.deliver() }
        #expect(cluster.nodes[3]!.appliedIndex >= 2)
        // Had S1 committed its index 2 by counting replicas, it would have applied it,
        // and the rounds above would have thrown a state-machine safety violation.
        try cluster.checkLogMatching()
    }

    /// A node partitioned away keeps campaigning; with pre-vote it never raises the term,
    /// so rejoining does not depose the leader (thesis §9.6).
    @Test func disruptiveRejoiningServerIsHarmlessWithPreVote() throws {
        var cluster = try Self.electedCluster(3, seed: 3)
        let leader = try #require(cluster.leader())
        let term = cluster.nodes[leader]!.raft.term
        let loner = try #require(cluster.ids.first { $0 != leader })
        cluster.partition([[loner], Set(cluster.ids.filter { $0 != loner })])
        for _ in 0..<200 { try cluster.advanceTime() }
        #expect(cluster.nodes[loner]!.raft.term == term)
        cluster.heal()
        for _ in 0..<50 { try cluster.advanceTime() }
        #expect(cluster.leader() == leader)
        #expect(cluster.nodes[leader]!.raft.term == term)
    }

    /// Check-quorum: a leader cut off from the majority steps down.
    @Test func isolatedLeaderStepsDown() throws {
        var cluster = try Self.electedCluster(3, seed: 4)
        let leader = try #require(cluster.leader())
        cluster.partition([[leader], Set(cluster.ids.filter { $0 != leader })])
        for _ in 0..<40 { try cluster.advanceTime() }
        #expect(cluster.nodes[leader]!.raft.role != .leader)
        #expect(cluster.leader() != nil && cluster.leader() != leader)
    }

    /// Figure 7: followers with missing and extra entries all end with the leader's log.
    @Test func figure7DivergentFollowersConverge() throws {
        var cluster = try Self.electedCluster(5, seed: 7)
        for round in 0..<6 {
            let leader = try #require(cluster.leader())
            // Cut a random minority away while the leader writes, then crash the leader.
            let minority = Set(cluster.ids.filter { $0 != leader }.shuffled(using: &cluster.generator).prefix(2))
            cluster.partition([minority, Set(cluster.ids).subtracting(minority)])
            for index in 0..<5 { _ = cluster.propose(at: leader, "r\(round)-\(index)") }
            try cluster.deliver()
            cluster.heal()
            cluster.crash(leader)
            _ = try cluster.run(upTo: 300) { $0.leader() != nil }
            cluster.restart(leader)
        }
        let leader = try #require(cluster.leader())
        _ = cluster.propose(at: leader, "final")
        #expect(try cluster.run(upTo: 300) { c in
            guard let leader = c.leader() else { return false }
            let last = c.nodes[leader]!.raft.lastIndex
            return c.nodes.values.allSatisfy { $0.raft.lastIndex == last && $0.appliedIndex == last }
        })
        try cluster.checkLogMatching()
    }

    @Test func leaderTransferHandsOverToAnUpToDateFollower() throws {
        var cluster = try Self.electedCluster(3, seed: 5)
        let leader = try #require(cluster.leader())
        let target = try #require(cluster.ids.first { $0 != leader })
        _ = cluster.propose(at: leader, "before transfer")
        cluster.nodes[leader]!.raft.transferLeadership(to: target)
        #expect(cluster.propose(at: leader, "during") == .dropped(.leadershipTransferInProgress))
        #expect(try cluster.run(upTo: 30) { $0.leader() == target })
        #expect(try cluster.run(upTo: 10) { committed($0, "before transfer") })
    }

    @Test func readIndexWaitsForAQuorumAndIsLinearizable() throws {
        var cluster = try Self.electedCluster(3, seed: 6)
        let leader = try #require(cluster.leader())
        _ = cluster.propose(at: leader, "w")
        #expect(try cluster.run(upTo: 10) { committed($0, "w") })
        let follower = try #require(cluster.ids.first { $0 != leader })
        cluster.requestRead(at: follower)
        cluster.requestRead(at: leader)
        #expect(try cluster.run(upTo: 10) { $0.completedReads == 2 })
        // Cut the leader off: its reads must not complete.
        cluster.partition([[leader], Set(cluster.ids.filter { $0 != leader })])
        cluster.requestRead(at: leader)
        for _ in 0..<5 { try cluster.advanceTime() }
        #expect(cluster.completedReads == 2)
    }

    @Test func learnerReplicatesWithoutVotingAndIsPromoted() throws {
        var cluster = SimulatedCluster(nodes: [1, 2, 3, 4], voters: [1, 2, 3], seed: 9)
        #expect(try cluster.run(upTo: 200) { $0.leader() != nil })
        var leader = try #require(cluster.leader())
        #expect(cluster.nodes[leader]!.raft.proposeMembershipChange(MembershipChange(.addLearner, node: 4)) != .dropped(.noLeader))
        _ = cluster.propose(at: leader, "for the learner")
        #expect(try cluster.run(upTo: 50) { $0.nodes[4]!.applied.isEmpty == false || $0.nodes[4]!.appliedIndex >= 3 })
        #expect(cluster.nodes[4]!.raft.membership.learners == [4])
        // One change at a time: a second change waits until the first is applied.
        leader = try #require(cluster.leader())
        #expect(try cluster.run(upTo: 20) { $0.nodes[leader]!.raft.appliedIndex >= 3 })
        guard case .appended = cluster.nodes[leader]!.raft.proposeMembershipChange(MembershipChange(.promote, node: 4)) else {
            Issue.record("promotion refused")
            return
        }
        #expect(cluster.nodes[leader]!.raft.proposeMembershipChange(MembershipChange(.remove, node: 3)) == .dropped(.membershipChangePending))
        #expect(try cluster.run(upTo: 50) { $0.nodes.values.allSatisfy { $0.raft.membership.voters == [1, 2, 3, 4] } })
    }

    /// Elects a leader, crashes one follower, commits 30 entries and compacts the others'
    /// logs past them; the follower stays down.
    func leaveAFollowerBehindASnapshot(_ cluster: inout SimulatedCluster) throws -> (leader: NodeID, lagging: NodeID) {
        #expect(try cluster.run(upTo: 200) { $0.leader() != nil })
        let leader = try #require(cluster.leader())
        let lagging = try #require(cluster.ids.first { $0 != leader })
        cluster.crash(lagging)
        for index in 0..<30 { _ = cluster.propose(at: leader, "e\(index)") }
        #expect(try cluster.run(upTo: 30) { committed($0, "e29") })
        for id in cluster.ids where id != lagging { cluster.compact(id) }
        return (leader, lagging)
    }

    @Test func laggingFollowerCatchesUpFromAChunkedSnapshot() throws {
        var cluster = SimulatedCluster(nodes: [1, 2, 3], seed: 10) { id in
            var configuration = RaftConfiguration(id: id)
            configuration.snapshotChunkBytes = 4
            return configuration
        }
        let (leader, lagging) = try leaveAFollowerBehindASnapshot(&cluster)
        #expect(cluster.nodes[leader]!.raft.firstIndex > 10)
        cluster.restart(lagging)
        #expect(try cluster.run(upTo: 100) { c in c.nodes[lagging]!.raft.lastIndex == c.nodes[leader]!.raft.lastIndex })
        #expect(cluster.nodes[lagging]!.stateMachineBase > 0)
        _ = cluster.propose(at: leader, "after snapshot")
        #expect(try cluster.run(upTo: 20) { c in c.nodes[lagging]!.appliedIndex == c.nodes[leader]!.raft.lastIndex })
    }

    @Test func aReleasedSnapshotIsAskedForBackWhenAFollowerNeedsIt() throws {
        var cluster = SimulatedCluster(nodes: [1, 2, 3], seed: 11) { id in RaftConfiguration(id: id) }
        let (leader, lagging) = try leaveAFollowerBehindASnapshot(&cluster)
        let snapshotIndex = try #require(cluster.nodes[leader]!.raft.snapshot?.metadata.index)
        let data = try #require(cluster.nodes[leader]!.raft.snapshot?.data)
        cluster.nodes[leader]!.raft.releaseSnapshotData()
        #expect(cluster.nodes[leader]!.raft.snapshot?.data.isEmpty == true)
        cluster.restart(lagging)
        // Without the data the leader sends nothing to the lagging follower and says so.
        #expect(try cluster.run(upTo: 50) { $0.nodes[leader]!.raft.snapshotDataNeeded })
        #expect(cluster.nodes[lagging]!.raft.lastIndex < snapshotIndex)
        // A wrong index is ignored; the right one lets the snapshot go out.
        cluster.nodes[leader]!.raft.provideSnapshotData(data, index: snapshotIndex + 1)
        #expect(cluster.nodes[leader]!.raft.snapshotDataNeeded)
        cluster.nodes[leader]!.raft.provideSnapshotData(data, index: snapshotIndex)
        #expect(!cluster.nodes[leader]!.raft.snapshotDataNeeded)
        #expect(try cluster.run(upTo: 100) { c in c.nodes[lagging]!.raft.lastIndex == c.nodes[leader]!.raft.lastIndex })
        #expect(cluster.nodes[lagging]!.stateMachineBase > 0)
    }

    @Test func entriesTrimmedFromMemoryAreReplacedByAFreshSnapshotForAFollowerThatNeedsThem() throws {
        var cluster = try Self.electedCluster(3, seed: 12)
        let leader = try #require(cluster.leader())
        let followers = cluster.ids.filter { $0 != leader }
        let (successor, lagging) = (followers[0], followers[1])
        for index in 0..<10 { _ = cluster.propose(at: leader, "a\(index)") }
        #expect(try cluster.run(upTo: 30) { committed($0, "a9") })
        // With every follower caught up, the leader keeps only the catch-up window.
        cluster.nodes[leader]!.raft.trimLog(keepingForCatchUp: 2)
        #expect(cluster.nodes[leader]!.raft.firstIndex > 5)
        #expect(cluster.nodes[leader]!.raft.snapshot == nil)
        // A follower that stops acknowledging holds the leader's trimming back.
        let laggingLast = cluster.nodes[lagging]!.raft.lastIndex
        cluster.crash(lagging)
        for index in 0..<10 { _ = cluster.propose(at: leader, "b\(index)") }
        #expect(try cluster.run(upTo: 30) { c in c.nodes[successor]!.appliedIndex == c.nodes[leader]!.raft.lastIndex })
        cluster.nodes[leader]!.raft.trimLog(keepingForCatchUp: 0)
        let held = cluster.nodes[leader]!.raft.firstIndex
        #expect(held <= laggingLast + 1)
        // A follower trims to what it applied; once it leads, the lagging member needs
        // what it dropped: the new leader sets `freshSnapshotNeeded`, its host (the
        // simulation, as coreos etcd) takes a snapshot at once, it goes out, and the
        // lagging member catches up from it.
        cluster.nodes[successor]!.raft.trimLog(keepingForCatchUp: 0)
        let trimmedTo = cluster.nodes[successor]!.raft.firstIndex - 1
        #expect(trimmedTo >= held)
        #expect(cluster.nodes[successor]!.raft.snapshot == nil)
        cluster.crash(leader)
        cluster.restart(lagging)
        #expect(try cluster.run(upTo: 300) { c in c.nodes[lagging]!.raft.lastIndex == c.nodes[successor]!.raft.lastIndex })
        #expect((cluster.nodes[successor]!.raft.snapshot?.metadata.index ?? 0) >= trimmedTo)
        #expect(cluster.nodes[lagging]!.stateMachineBase >= trimmedTo)
        #expect(!cluster.nodes[successor]!.raft.freshSnapshotNeeded)
    }
}
