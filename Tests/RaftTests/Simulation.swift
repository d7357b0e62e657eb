import Raft
import TestSupport

/// A failure of a safety invariant, with the seed and step that reproduce it.
struct InvariantViolation: Error, CustomStringConvertible {
    var description: String
}

extension UInt64 {
    func saturatingSubtract(_ other: UInt64) -> UInt64 { self > other ? self - other : 0 }
}

/// What survives a crash: only what the host synced.
struct SimulatedDisk {
    var hardState = HardState()
    var snapshot: Snapshot?
    var entries: [Entry] = []

    mutating func persist(_ ready: Ready) {
        if let snapshot = ready.snapshot {
            self.snapshot = snapshot
            entries.removeAll { $0.index <= snapshot.metadata.index }
        }
        if let first = ready.entries.first {
            entries.removeAll { $0.index >= first.index }
            entries.append(contentsOf: ready.entries)
        }
        if let hard = ready.hardState { hardState = hard }
    }

    mutating func persist(compacted snapshot: Snapshot) {
        self.snapshot = snapshot
        entries.removeAll { $0.index <= snapshot.metadata.index }
    }
}

/// One simulated member: the core, its disk and a tiny state machine (the applied
/// entries, which is all the invariants need).
struct SimulatedNode {
    var raft: RaftNode
    var disk: SimulatedDisk
    var applied: [LogIndex: (term: Term, data: [UInt8])] = [:]
    var appliedIndex: LogIndex = 0
    /// Data of the snapshot the state machine was last restored from (its index).
    var stateMachineBase: LogIndex = 0
    var running = true
}

/// Several members over a simulated network and disks, all driven by one seeded
/// generator, with safety invariants checked as they run.
struct SimulatedCluster {
    var nodes: [NodeID: SimulatedNode] = [:]
    /// Messages in flight with the step at which they may arrive.
    var network: [(deliverAt: Int, message: Message)] = []
    var generator: SeededGenerator
    var now = 0
    let configurationTemplate: (NodeID) -> RaftConfiguration
    let initialMembership: Membership

    // Faults.
    var dropRate = 0.0
    var duplicateRate = 0.0
    var maxDelay = 0
    /// Pairs (from, to) whose messages are lost.
    var blocked: Set<[NodeID]> = []
    var failWriteRate = 0.0

    // What the invariants remember.
    var leaders: [Term: NodeID] = [:]
    /// Every entry any member applied, by index: all members must agree.
    var appliedHistory: [LogIndex: (term: Term, data: [UInt8])] = [:]
    var highestApplied: LogIndex = 0
    /// Reads asked and the highest applied index anywhere at that moment.
    var pendingReads: [[UInt8]: LogIndex] = [:]
    var completedReads = 0
    var readCounter = 0

    init(
        nodes ids: [NodeID], voters: Set<NodeID>? = nil, seed: UInt64,
        configure: @escaping (NodeID) -> RaftConfiguration = { RaftConfiguration(id: $0) }
    ) {
        generator = SeededGenerator(seed: seed)
        configurationTemplate = { id in
            var configuration = configure(id)
            configuration.randomSeed = seed &+ id &* 7919
            return configuration
        }
        initialMembership = Membership(voters: voters ?? Set(ids))
        for id in ids {
            let raft = RaftNode(
                configuration: configurationTemplate(id), state: RaftPersistentState(initialMembership: initialMembership))
            nodes[id] = SimulatedNode(raft: raft, disk: SimulatedDisk())
        }
    }

    var ids: [NodeID] { nodes.keys.sorted() }

    func leader() -> NodeID? {
        let current = nodes.values.filter { $0.running && $0.raft.role == .leader }
        return current.max { $0.raft.term < $1.raft.term }?.raft.id
    }

    /// One line per member, for failure messages.
    func describe() -> String {
        ids.map { id in
            let node = nodes[id]!
            let raft = node.raft
            var line = "\(id): \(node.running ? "up" : "down") \(raft.role) term \(raft.term) leader \(raft.leader)"
            line += " log \(raft.firstIndex)...\(raft.lastIndex) commit \(raft.commitIndex) applied \(node.appliedIndex)"
            line += " voters \(raft.membership.voters.sorted()) learners \(raft.membership.learners.sorted())"
            if raft.role == .leader {
                line += " match " + ids.map { "\($0):\(raft.matchIndex(of: $0).map(String.init) ?? "-")" }.joined(separator: ",")
                line += " transferee \(raft.transferee) tail "
                line += raft.entries(from: max(raft.firstIndex, raft.lastIndex.saturatingSubtract(3)), to: raft.lastIndex + 1)
                    .map { "\($0.index)/\($0.term):\(String(decoding: $0.data, as: UTF8.self))" }.joined(separator: " ")
            }
            return line
        }.joined(separator: "\n    ")
    }

    // MARK: Driving

    /// Processes every member's Ready: persist (maybe failing), send, apply, advance.
    mutating func processReadies() throws {
        for id in ids {
            guard var node = nodes[id], node.running else { continue }
            var rounds = 0
            while node.raft.hasReady && rounds < 8 {
                rounds += 1
                let ready = node.raft.ready()
                if ready.mustSync && failWriteRate > 0 && Double.random(in: 0..<1, using: &generator) < failWriteRate {
                    // A failed sync: the host stops (as etcd does) and restarts from disk.
                    nodes[id] = node
                    crash(id)
                    restart(id)
                    node = nodes[id]!
                    break
                }
                node.disk.persist(ready)
                for message in ready.messages { send(message) }
                if let snapshot = ready.snapshot {
                    node.appliedIndex = snapshot.metadata.index
                    node.stateMachineBase = snapshot.metadata.index
                }
                for entry in ready.committedEntries {
                    try record(applied: entry, by: id, into: &node)
                }
                for read in ready.readStates {
                    guard let floor = pendingReads.removeValue(forKey: read.context) else { continue }
                    if read.index < floor {
                        throw InvariantViolation(
                            description: "read \(read.context) on \(id) got index \(read.index), below \(floor) applied before it was asked")
                    }
                    completedReads += 1
                }
                node.raft.advance(ready)
            }
            nodes[id] = node
            // The host answers a leader that trimmed entries a follower needs.
            if node.raft.freshSnapshotNeeded { compact(id) }
            try checkLeader(id)
        }
    }

    private mutating func record(applied entry: Entry, by id: NodeID, into node: inout SimulatedNode) throws {
        if let known = appliedHistory[entry.index] {
            if known.term != entry.term || known.data != entry.data {
                throw InvariantViolation(
                    description: "state machine safety: node \(id) applied (\(entry.term), \(entry.data)) at \(entry.index), another applied (\(known.term), \(known.data))")
            }
        } else {
            appliedHistory[entry.index] = (entry.term, entry.data)
        }
        if entry.index != node.appliedIndex + 1 {
            throw InvariantViolation(description: "node \(id) applied \(entry.index) after \(node.appliedIndex)")
        }
        node.appliedIndex = entry.index
        highestApplied = max(highestApplied, entry.index)
    }

    /// At most one leader per term, and a new leader holds every applied entry.
    private mutating func checkLeader(_ id: NodeID) throws {
        guard let node = nodes[id], node.running, node.raft.role == .leader else { return }
        let term = node.raft.term
        if let other = leaders[term], other != id {
            throw InvariantViolation(description: "election safety: \(other) and \(id) both lead term \(term)")
        }
        if leaders[term] == nil {
            leaders[term] = id
            for (index, known) in appliedHistory where index > node.raft.firstIndex - 1 {
                guard let found = node.raft.term(at: index) else {
                    throw InvariantViolation(description: "leader completeness: leader \(id) of term \(term) lacks applied entry \(index)")
                }
                if found != known.term {
                    throw InvariantViolation(
                        description: "leader completeness: leader \(id) of term \(term) has term \(found) at \(index), applied was \(known.term)")
                }
            }
        }
    }

    /// Log matching: where two logs have an entry with the same index and term, they
    /// agree on everything before it (checked over the entries both still hold, or over
    /// the newest `window` of them, which is where a violation appears first).
    func checkLogMatching(window: Int? = nil) throws {
        let running = ids.compactMap { nodes[$0] }
        for (position, first) in running.enumerated() {
            for second in running[(position + 1)...] {
                let high = min(first.raft.lastIndex, second.raft.lastIndex)
                var low = max(first.raft.firstIndex, second.raft.firstIndex)
                if let window, high > LogIndex(window) { low = max(low, high - LogIndex(window)) }
                guard low <= high else { continue }
                var agreed = false
                var index = high
                while index >= low {
                    let a = first.raft.term(at: index)
                    let b = second.raft.term(at: index)
                    if agreed, a != b {
                        throw InvariantViolation(
                            description: "log matching: nodes \(first.raft.id) and \(second.raft.id) agree after \(index) but differ at it")
                    }
                    if a == b, a != nil { agreed = true }
                    if index == 0 { break }
                    index -= 1
                }
            }
        }
    }

    mutating func send(_ message: Message) {
        if blocked.contains([message.from, message.to]) { return }
        if dropRate > 0 && Double.random(in: 0..<1, using: &generator) < dropRate { return }
        let delay = maxDelay > 0 ? Int.random(in: 0...maxDelay, using: &generator) : 0
        network.append((now + delay, message))
        if duplicateRate > 0 && Double.random(in: 0..<1, using: &generator) < duplicateRate {
            network.append((now + Int.random(in: 0...max(maxDelay, 1), using: &generator), message))
        }
    }

    /// Delivers every message that is due (in a shuffled order when delays are on).
    mutating func deliver() throws {
        let due = network.filter { $0.deliverAt <= now }
        network.removeAll { $0.deliverAt <= now }
        var messages = due.map(\.message)
        if maxDelay > 0 { messages.shuffle(using: &generator) }
        for message in messages {
            guard nodes[message.to]?.running == true, !blocked.contains([message.from, message.to]) else { continue }
            nodes[message.to]!.raft.step(message)
        }
        try processReadies()
    }

    mutating func tickAll() throws {
        for id in ids where nodes[id]?.running == true { nodes[id]!.raft.tick() }
        try processReadies()
    }

    /// One unit of simulated time: tick everyone, deliver what is due.
    mutating func advanceTime() throws {
        now += 1
        try tickAll()
        try deliver()
    }

    /// Runs until `condition` holds or `limit` steps pass; returns whether it held.
    mutating func run(upTo limit: Int, until condition: (SimulatedCluster) -> Bool) throws -> Bool {
        for _ in 0..<limit {
            if condition(self) { return true }
            try advanceTime()
        }
        return condition(self)
    }

    // MARK: Faults

    mutating func crash(_ id: NodeID) {
        nodes[id]?.running = false
        network.removeAll { $0.message.to == id }
    }

    /// Restarts from what the disk holds; the state machine is rebuilt by re-applying.
    mutating func restart(_ id: NodeID) {
        guard let node = nodes[id] else { return }
        let disk = node.disk
        let raft = RaftNode(
            configuration: configurationTemplate(id),
            state: RaftPersistentState(
                hardState: disk.hardState, snapshot: disk.snapshot, entries: disk.entries,
                initialMembership: initialMembership))
        let base = disk.snapshot?.metadata.index ?? 0
        nodes[id] = SimulatedNode(raft: raft, disk: disk, appliedIndex: base, stateMachineBase: base)
    }

    mutating func partition(_ groups: [Set<NodeID>]) {
        blocked = []
        for a in ids {
            for b in ids where a != b {
                if !groups.contains(where: { $0.contains(a) && $0.contains(b) }) { blocked.insert([a, b]) }
            }
        }
    }

    mutating func heal() {
        blocked = []
        dropRate = 0
        duplicateRate = 0
        maxDelay = 0
        failWriteRate = 0
    }

    // MARK: Client actions

    mutating func propose(at id: NodeID, _ text: String) -> ProposalOutcome? {
        guard nodes[id]?.running == true else { return nil }
        return nodes[id]!.raft.propose(Array(text.utf8))
    }

    mutating func requestRead(at id: NodeID) {
        guard nodes[id]?.running == true else { return }
        readCounter += 1
        let context = Array("read-\(readCounter)".utf8)
        if nodes[id]!.raft.requestRead(context: context) { pendingReads[context] = highestApplied }
    }

    /// The host takes a snapshot at its applied index and compacts.
    mutating func compact(_ id: NodeID) {
        guard var node = nodes[id], node.running, node.appliedIndex > (node.raft.snapshot?.metadata.index ?? 0) else { return }
        let index = min(node.appliedIndex, node.raft.appliedIndex)
        if let snapshot = node.raft.compact(at: index, data: Array("state@\(index)".utf8)) {
            node.disk.persist(compacted: snapshot)
        }
        nodes[id] = node
    }
}
