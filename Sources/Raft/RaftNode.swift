/// Tuning and safety switches of one member.
public struct RaftConfiguration: Sendable, Hashable {
    public enum ReadMode: Sendable, Hashable {
        /// ReadIndex: the leader confirms with a quorum (one heartbeat round) that it is
        /// still leader before a read point is released. No clock assumption.
        case safe
        /// The leader answers from its commit index at once, trusting that no other leader
        /// can exist within an election timeout of its last quorum contact. Correct only
        /// if clocks advance at about the same rate everywhere (bounded drift, no long
        /// pauses) and `checkQuorum` is on. Opt-in.
        case leaseBased
    }

    public var id: NodeID
    /// Ticks without a leader before a campaign; the actual timeout is randomized in
    /// `[electionTicks, 2 × electionTicks)`.
    public var electionTicks: Int = 10
    public var heartbeatTicks: Int = 1
    public var preVote = true
    public var checkQuorum = true
    public var readMode: ReadMode = .safe
    public var maxBytesPerAppend = 1 << 20
    public var maxInflightAppends = 256
    public var maxInflightBytes = 32 << 20
    /// Committed entries handed out per Ready.
    public var maxCommittedBytesPerReady = 64 << 20
    public var snapshotChunkBytes = 1 << 20
    /// Seeds the election-timeout randomization, so runs are reproducible.
    public var randomSeed: UInt64
    /// Deliberate bugs, for the robustness suite to show that its checks catch them.
    /// Empty everywhere else.
    public var injectedBugs: InjectedBugs = []

    /// Deliberate violations of Raft's rules (see `injectedBugs`).
    public struct InjectedBugs: OptionSet, Sendable, Hashable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// The leader counts an entry committed once it has it itself, without a quorum.
        public static let commitWithoutQuorum = InjectedBugs(rawValue: 1)
    }

    public init(id: NodeID, randomSeed: UInt64? = nil) {
        self.id = id
        self.randomSeed = randomSeed ?? (id &* 0x9E37_79B9_7F4A_7C15)
    }
}

/// What a member has on disk, to start (or restart) it.
public struct RaftPersistentState: Sendable {
    public var hardState: HardState
    public var snapshot: Snapshot?
    /// Entries after the snapshot, in order.
    public var entries: [Entry]
    /// The membership when there is no snapshot (a new cluster's initial members).
    public var initialMembership: Membership

    public init(hardState: HardState = HardState(), snapshot: Snapshot? = nil, entries: [Entry] = [], initialMembership: Membership) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
        self.initialMembership = initialMembership
    }
}

/// One Raft member as a pure state machine: inputs are ``tick()``, ``step(_:)``,
/// ``propose(_:)``, ``requestRead(context:)``, ``transferLeadership(to:)`` and
/// ``proposeMembershipChange(_:)``; output is a ``Ready`` batch acknowledged with
/// ``advance(_:)``. No I/O, no clock, no threads: the same inputs give the same outputs.
///
/// Membership changes are single-server changes applied when their entry commits, one at
/// a time: a leader refuses a new change until the previous one is applied, and a new
/// leader first applies everything up to its own first entry. Any two majorities of
/// configurations that differ by one server overlap, so two leaders cannot be elected in
/// one term across a change; the one-at-a-time rule and the new-leader rule close the
/// known hole of single-server changes during leader changes (Ongaro, raft-dev 2015).
public struct RaftNode: Sendable {
    public let configuration: RaftConfiguration
    public var id: NodeID { configuration.id }

    public private(set) var term: Term
    public private(set) var vote: NodeID
    public private(set) var leader: NodeID = 0
    public private(set) var role: Role = .follower
    public private(set) var membership: Membership
    var log: RaftLog

    /// (index, membership from that index on), oldest first.
    private var membershipHistory: [(index: LogIndex, membership: Membership)]
    var progress: [NodeID: Progress] = [:]
    private var votes: [NodeID: Bool] = [:]
    private var electionElapsed = 0
    private var heartbeatElapsed = 0
    private var randomizedElectionTimeout = 0
    private var ticks = 0
    private var random: UInt64
    private var pendingMembershipIndex: LogIndex = 0
    public private(set) var transferee: NodeID = 0
    private var transferElapsed = 0

    private struct ReadRequest {
        var index: LogIndex
        var context: [UInt8]
        var from: NodeID
        var acks: Set<NodeID>
    }
    private var reads: [ReadRequest] = []
    private var readsWaitingForCommit: [(context: [UInt8], from: NodeID)] = []

    private var outbox: [Message] = []
    private var readStates: [ReadState] = []
    private var lastSoftState: SoftState
    private var lastHardState: HardState
    /// The newest local snapshot with its data, sent to followers behind the log.
    public private(set) var snapshot: Snapshot?
    /// The host took the snapshot's data back (it is on disk; keeping a copy of the whole
    /// state in memory would double it). A follower then needs it: see `snapshotDataNeeded`.
    private var snapshotDataReleased = false
    /// Set when a follower needs the snapshot and its data was released: the host hands it
    /// back with `provideSnapshotData(_:)`; the follower is served on a later round.
    public private(set) var snapshotDataNeeded = false
    private var receivedSnapshot: Snapshot?
    private var incoming: (metadata: SnapshotMetadata, data: [UInt8])?

    public init(configuration: RaftConfiguration, state: RaftPersistentState) {
        self.configuration = configuration
        term = state.hardState.term
        vote = state.hardState.vote
        log = RaftLog(snapshot: state.snapshot?.metadata, entries: state.entries, committed: state.hardState.commit)
        membership = state.snapshot?.metadata.membership ?? state.initialMembership
        membershipHistory = [(log.snapshotIndex, membership)]
        snapshot = state.snapshot
        random = configuration.randomSeed
        lastSoftState = SoftState(leader: 0, role: .follower)
        lastHardState = state.hardState
        randomizeElectionTimeout()
    }

    // MARK: Inspection

    public var commitIndex: LogIndex { log.committed }
    public var appliedIndex: LogIndex { log.applied }
    public var lastIndex: LogIndex { log.lastIndex }
    public var firstIndex: LogIndex { log.firstIndex }
    public var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }
    public func term(at index: LogIndex) -> Term? { log.term(at: index) }
    /// Entries still in the log between `from` and `to` (exclusive).
    public func entries(from: LogIndex, to: LogIndex) -> [Entry] { log.entries(from: from, to: to) }
    /// The leader's view of a follower's match index.
    public func matchIndex(of node: NodeID) -> LogIndex? { progress[node]?.match }
    private var isPromotable: Bool { membership.voters.contains(id) }

    // MARK: Time

    public mutating func tick() {
        ticks += 1
        if role == .leader {
            tickLeader()
        } else {
            electionElapsed += 1
            if isPromotable && electionElapsed >= randomizedElectionTimeout {
                electionElapsed = 0
                campaign(transfer: false)
            }
        }
    }

    private mutating func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if transferee != 0 {
            transferElapsed += 1
            if transferElapsed >= configuration.electionTicks {
                transferee = 0
                // A leader that is no longer a voter leaves once its handover had its time.
                if !membership.voters.contains(id) {
                    becomeFollower(term: term, leader: 0)
                    return
                }
            }
        }
        if electionElapsed >= configuration.electionTicks {
            electionElapsed = 0
            if configuration.checkQuorum {
                let active = membership.voters.filter { $0 == id || progress[$0]?.recentActive == true }.count
                for node in progress.keys where node != id { progress[node]?.recentActive = false }
                if active < membership.quorum {
                    becomeFollower(term: term, leader: 0)
                    return
                }
            }
        }
        // A snapshot that got no answer within two election timeouts is sent again.
        for (node, peer) in progress where node != id {
            if case .snapshot(_, let sentAt) = peer.state, ticks - sentAt > 2 * configuration.electionTicks {
                progress[node]?.becomeProbe()
                _ = sendAppend(to: node)
            }
        }
        if heartbeatElapsed >= configuration.heartbeatTicks {
            heartbeatElapsed = 0
            broadcastHeartbeat(context: [])
        }
    }

    private mutating func randomizeElectionTimeout() {
        // SplitMix64: tiny, seedable, good enough to spread timeouts.
        random &+= 0x9E37_79B9_7F4A_7C15
        var mixed = random
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        mixed ^= mixed >> 31
        let ticks = configuration.electionTicks
        randomizedElectionTimeout = ticks + Int(mixed % UInt64(max(ticks, 1)))
    }

    // MARK: Roles

    private mutating func reset(term newTerm: Term) {
        if term != newTerm {
            term = newTerm
            vote = 0
        }
        leader = 0
        electionElapsed = 0
        heartbeatElapsed = 0
        randomizeElectionTimeout()
        votes = [:]
        transferee = 0
        reads = []
        readsWaitingForCommit = []
        progress = [:]
    }

    private mutating func becomeFollower(term newTerm: Term, leader newLeader: NodeID) {
        reset(term: newTerm)
        role = .follower
        leader = newLeader
    }

    private mutating func becomePreCandidate() {
        // Term and vote stay: a pre-vote changes nothing anyone has persisted.
        votes = [:]
        leader = 0
        role = .preCandidate
        electionElapsed = 0
        randomizeElectionTimeout()
    }

    private mutating func becomeCandidate() {
        reset(term: term + 1)
        vote = id
        role = .candidate
    }

    private mutating func becomeLeader() {
        reset(term: term)
        role = .leader
        leader = id
        for node in membership.all { progress[node] = newProgress() }
        progress[id]?.match = log.stableIndex
        // Everything already in the log must be applied before this leader may change
        // membership (it cannot know whether an earlier change committed).
        pendingMembershipIndex = log.lastIndex
        appendAsLeader([Entry(term: term, index: 0)])
    }

    private func newProgress() -> Progress {
        Progress(next: log.lastIndex + 1, maxInflight: configuration.maxInflightAppends, maxInflightBytes: configuration.maxInflightBytes)
    }

    /// Starts an election now (tests, or a host that knows the leader is gone).
    public mutating func campaign() { campaign(transfer: false) }

    static let transferContext = Array("transfer".utf8)

    private mutating func campaign(transfer: Bool) {
        guard isPromotable else { return }
        if configuration.preVote && !transfer {
            becomePreCandidate()
            requestVotes(.preVote, term: term + 1, transfer: false)
        } else {
            becomeCandidate()
            requestVotes(.vote, term: term, transfer: transfer)
        }
    }

    private mutating func requestVotes(_ kind: Message.Kind, term voteTerm: Term, transfer: Bool) {
        if recordVote(from: id, granted: true) == .won {
            win(kind)
            return
        }
        for node in membership.voters.sorted() where node != id {
            var message = Message(kind, from: id, to: node, term: voteTerm)
            message.index = log.lastIndex
            message.logTerm = log.lastTerm
            if transfer { message.context = Self.transferContext }
            outbox.append(message)
        }
    }

    private enum Poll { case pending, won, lost }

    private mutating func recordVote(from node: NodeID, granted: Bool) -> Poll {
        if votes[node] == nil { votes[node] = granted }
        let yes = membership.voters.filter { votes[$0] == true }.count
        let no = membership.voters.filter { votes[$0] == false }.count
        if yes >= membership.quorum { return .won }
        if no >= membership.quorum { return .lost }
        return .pending
    }

    private mutating func win(_ kind: Message.Kind) {
        if kind == .preVote {
            becomeCandidate()
            requestVotes(.vote, term: term, transfer: false)
        } else {
            becomeLeader()
            broadcastAppend()
        }
    }

    // MARK: Messages

    /// Handles a message from another member. Messages from unknown senders, with a
    /// stale term or out of place are ignored (or answered so the sender can catch up).
    public mutating func step(_ message: Message) {
        guard message.to == id, message.from != id, message.from != 0 else { return }
        if message.term > term {
            switch message.kind {
            case .vote, .preVote:
                let inLease = configuration.checkQuorum && leader != 0 && electionElapsed < configuration.electionTicks
                if inLease && message.context != Self.transferContext { return }
                if message.kind == .vote {
                    // A candidate whose log is behind ours will not get our vote. Taking
                    // its term must not restart our election clock: otherwise each stale
                    // candidate pushes back the member that can win, and a majority side
                    // that is exactly a quorum waits several timeouts for a leader.
                    let elapsed = electionElapsed
                    let candidateBehind = !log.isUpToDate(index: message.index, term: message.logTerm)
                    becomeFollower(term: message.term, leader: 0)
                    if candidateBehind { electionElapsed = elapsed }
                }
            case .preVoteResponse where !message.reject:
                break
            case .append, .heartbeat, .snapshot:
                becomeFollower(term: message.term, leader: message.from)
            default:
                becomeFollower(term: message.term, leader: 0)
            }
        } else if message.term < term && message.term != 0 {
            if (configuration.checkQuorum || configuration.preVote) && (message.kind == .append || message.kind == .heartbeat) {
                // Tell a stale leader there is a newer term, so it steps down.
                outbox.append(Message(.appendResponse, from: id, to: message.from, term: term))
            } else if message.kind == .preVote {
                var response = Message(.preVoteResponse, from: id, to: message.from, term: term)
                response.reject = true
                outbox.append(response)
            }
            return
        }
        switch message.kind {
        case .vote, .preVote:
            handleVoteRequest(message)
            return
        default:
            break
        }
        switch role {
        case .leader: stepLeader(message)
        case .candidate, .preCandidate: stepCandidate(message)
        case .follower: stepFollower(message)
        }
    }

    private mutating func handleVoteRequest(_ message: Message) {
        let isPre = message.kind == .preVote
        let canVote = vote == message.from || (vote == 0 && leader == 0) || (isPre && message.term > term)
        let responseKind: Message.Kind = isPre ? .preVoteResponse : .voteResponse
        if canVote && log.isUpToDate(index: message.index, term: message.logTerm) {
            // A granted pre-vote answers in the asked term so the asker does not step down.
            outbox.append(Message(responseKind, from: id, to: message.from, term: message.term))
            if !isPre {
                electionElapsed = 0
                vote = message.from
            }
        } else {
            var response = Message(responseKind, from: id, to: message.from, term: term)
            response.reject = true
            outbox.append(response)
        }
    }

    private mutating func stepCandidate(_ message: Message) {
        switch message.kind {
        case .append, .heartbeat, .snapshot:
            becomeFollower(term: message.term, leader: message.from)
            stepFollower(message)
        case .voteResponse where role == .candidate, .preVoteResponse where role == .preCandidate:
            switch recordVote(from: message.from, granted: !message.reject) {
            case .won: win(role == .preCandidate ? .preVote : .vote)
            case .lost: becomeFollower(term: term, leader: 0)
            case .pending: break
            }
        default:
            break
        }
    }

    private mutating func stepFollower(_ message: Message) {
        switch message.kind {
        case .append:
            electionElapsed = 0
            leader = message.from
            handleAppend(message)
        case .heartbeat:
            electionElapsed = 0
            leader = message.from
            log.commit(to: message.commit)
            var response = Message(.heartbeatResponse, from: id, to: message.from, term: term)
            response.context = message.context
            outbox.append(response)
        case .snapshot:
            electionElapsed = 0
            leader = message.from
            handleSnapshotChunk(message)
        case .timeoutNow:
            campaign(transfer: true)
        case .readIndexResponse:
            readStates.append(ReadState(index: message.index, context: message.context))
        case .propose, .readIndex, .transferLeader:
            if leader != 0 {
                var forwarded = message
                forwarded.to = leader
                forwarded.from = id
                outbox.append(forwarded)
            }
        default:
            break
        }
    }

    private mutating func handleAppend(_ message: Message) {
        var response = Message(.appendResponse, from: id, to: message.from, term: term)
        if message.index < log.committed {
            response.index = log.committed
        } else if let lastNew = log.maybeAppend(
            after: message.index, term: message.logTerm, entries: message.entries, leaderCommit: message.commit)
        {
            response.index = lastNew
        } else {
            response.reject = true
            response.index = message.index
            let hint = log.conflictHint(index: min(message.index, log.lastIndex), term: message.logTerm)
            response.rejectHint = hint
            response.logTerm = log.term(at: hint) ?? 0
        }
        outbox.append(response)
    }

    private mutating func handleSnapshotChunk(_ message: Message) {
        guard let chunk = message.snapshotChunk else { return }
        if chunk.offset == 0 {
            incoming = (chunk.metadata, chunk.data)
        } else if var partial = incoming, partial.metadata == chunk.metadata, partial.data.count == chunk.offset {
            partial.data += chunk.data
            incoming = partial
        } else {
            // A chunk is missing: give up this copy; the leader sends it again.
            incoming = nil
            var response = Message(.appendResponse, from: id, to: message.from, term: term)
            response.reject = true
            response.index = chunk.metadata.index
            response.rejectHint = log.lastIndex
            outbox.append(response)
            return
        }
        guard chunk.isLast, let complete = incoming else { return }
        incoming = nil
        var response = Message(.appendResponse, from: id, to: message.from, term: term)
        response.index = restore(Snapshot(metadata: complete.metadata, data: complete.data)) ? log.lastIndex : log.committed
        outbox.append(response)
    }

    /// Installs a snapshot from the leader; false when the log already covers it.
    private mutating func restore(_ received: Snapshot) -> Bool {
        let metadata = received.metadata
        guard metadata.index > log.committed else { return false }
        if log.matches(index: metadata.index, term: metadata.term) {
            log.commit(to: metadata.index)
            return false
        }
        log.restore(metadata)
        membership = metadata.membership
        membershipHistory = [(metadata.index, membership)]
        snapshot = received
        snapshotDataReleased = false
        snapshotDataNeeded = false
        receivedSnapshot = received
        return true
    }

    // MARK: Leader

    private mutating func stepLeader(_ message: Message) {
        switch message.kind {
        case .propose:
            guard transferee == 0 else { return }
            let accepted = message.entries.filter { entry in
                entry.kind == .normal || membershipChangeRefusal(entry) == nil
            }
            appendAsLeader(accepted.map { Entry(term: term, index: 0, kind: $0.kind, data: $0.data) })
        case .readIndex:
            handleRead(context: message.context, from: message.from)
        case .transferLeader:
            transferLeadership(to: message.index)
        case .appendResponse:
            handleAppendResponse(message)
        case .heartbeatResponse:
            guard var peer = progress[message.from] else { return }
            peer.recentActive = true
            peer.probeSent = false
            if case .replicate = peer.state, peer.inflights.isFull { peer.inflights.freeFirst() }
            progress[message.from] = peer
            if peer.match < log.lastIndex { _ = sendAppend(to: message.from) }
            if !message.context.isEmpty { acknowledgeRead(context: message.context, from: message.from) }
        default:
            break
        }
    }

    private mutating func handleAppendResponse(_ message: Message) {
        guard var peer = progress[message.from] else { return }
        peer.recentActive = true
        if message.reject {
            if case .snapshot = peer.state {
                peer.becomeProbe()
                progress[message.from] = peer
                _ = sendAppend(to: message.from)
                return
            }
            var hint = message.rejectHint
            if message.logTerm > 0 { hint = log.conflictHint(index: message.rejectHint, term: message.logTerm) }
            if peer.decrease(rejected: message.index, hint: hint) {
                if case .replicate = peer.state { peer.becomeProbe() }
                progress[message.from] = peer
                _ = sendAppend(to: message.from)
            } else {
                progress[message.from] = peer
            }
            return
        }
        let wasPaused = peer.isPaused
        if peer.update(match: message.index) {
            switch peer.state {
            case .probe: peer.becomeReplicate()
            case .snapshot(let index, _) where peer.match >= index: peer.becomeReplicate()
            case .snapshot: break
            case .replicate: peer.inflights.free(upTo: message.index)
            }
            progress[message.from] = peer
            if maybeCommit() {
                broadcastAppend()
            } else if wasPaused {
                _ = sendAppend(to: message.from)
            }
            while sendAppend(to: message.from, onlyWithEntries: true) {}
            if message.from == transferee, progress[message.from]?.match == log.lastIndex {
                outbox.append(Message(.timeoutNow, from: id, to: message.from, term: term))
            }
        } else {
            if case .replicate = peer.state { peer.inflights.free(upTo: message.index) }
            progress[message.from] = peer
        }
    }

    /// Sends the next append (or the snapshot) to `node` unless its progress is paused.
    @discardableResult
    private mutating func sendAppend(to node: NodeID, onlyWithEntries: Bool = false) -> Bool {
        guard var peer = progress[node], node != id, !peer.isPaused else { return false }
        let previous = peer.next - 1
        guard let previousTerm = log.term(at: previous) else {
            return onlyWithEntries ? false : sendSnapshot(to: node)
        }
        let entries = log.entries(from: peer.next, to: log.lastIndex + 1, maxBytes: configuration.maxBytesPerAppend)
        if onlyWithEntries && entries.isEmpty { return false }
        var message = Message(.append, from: id, to: node, term: term)
        message.index = previous
        message.logTerm = previousTerm
        message.entries = entries
        message.commit = log.committed
        outbox.append(message)
        switch peer.state {
        case .replicate:
            if let last = entries.last {
                peer.next = last.index + 1
                peer.inflights.add(index: last.index, bytes: entries.reduce(0) { $0 + $1.byteSize })
            }
        case .probe:
            peer.probeSent = true
        case .snapshot:
            break
        }
        progress[node] = peer
        return true
    }

    private mutating func sendSnapshot(to node: NodeID) -> Bool {
        // Entries after the snapshot were trimmed from memory: only a newer one will do.
        if (snapshot?.metadata.index ?? 0) < log.snapshotIndex {
            freshSnapshotNeeded = true
            return false
        }
        guard let snapshot, var peer = progress[node] else { return false }
        if snapshotDataReleased {
            snapshotDataNeeded = true
            return false
        }
        let size = snapshot.data.count
        let chunk = max(configuration.snapshotChunkBytes, 1)
        var offset = 0
        repeat {
            var message = Message(.snapshot, from: id, to: node, term: term)
            let end = min(offset + chunk, size)
            message.snapshotChunk = SnapshotChunk(
                metadata: snapshot.metadata, offset: offset, totalSize: size, data: Array(snapshot.data[offset..<end]))
            outbox.append(message)
            offset = end
        } while offset < size
        peer.state = .snapshot(index: snapshot.metadata.index, sentAtTick: ticks)
        peer.inflights.reset()
        progress[node] = peer
        return true
    }

    private mutating func broadcastAppend() {
        for node in progress.keys.sorted() where node != id { sendAppend(to: node) }
    }

    private mutating func broadcastHeartbeat(context: [UInt8]) {
        for (node, peer) in progress.sorted(by: { $0.key < $1.key }) where node != id {
            var message = Message(.heartbeat, from: id, to: node, term: term)
            message.commit = min(peer.match, log.committed)
            message.context = context
            outbox.append(message)
        }
    }

    /// Advances the commit index to what a quorum of voters has, counting only entries of
    /// the current term (Raft §5.4.2).
    private mutating func maybeCommit() -> Bool {
        let matches = membership.voters.map { progress[$0]?.match ?? 0 }.sorted(by: >)
        let quorum = configuration.injectedBugs.contains(.commitWithoutQuorum) ? 1 : membership.quorum
        guard matches.count >= quorum else { return false }
        let candidate = matches[quorum - 1]
        guard candidate > log.committed, log.term(at: candidate) == term else { return false }
        let committedBefore = log.term(at: log.committed) == term
        log.commit(to: candidate)
        if !committedBefore { releaseReadsWaitingForCommit() }
        return true
    }

    private mutating func appendAsLeader(_ entries: [Entry]) {
        guard !entries.isEmpty else { return }
        var index = log.lastIndex
        let stamped = entries.map { entry -> Entry in
            index += 1
            if entry.kind == .configurationChange { pendingMembershipIndex = index }
            return Entry(term: term, index: index, kind: entry.kind, data: entry.data)
        }
        log.append(stamped)
        progress[id]?.next = log.lastIndex + 1
        broadcastAppend()
    }

    // MARK: Proposals

    /// Appends `data` to the log (leader), forwards it to the leader (follower) or drops it.
    @discardableResult
    public mutating func propose(_ data: [UInt8]) -> ProposalOutcome {
        propose(Entry(term: 0, index: 0, kind: .normal, data: data))
    }

    /// Proposes a single-server membership change; refused while another is pending.
    @discardableResult
    public mutating func proposeMembershipChange(_ change: MembershipChange) -> ProposalOutcome {
        propose(Entry(term: 0, index: 0, kind: .configurationChange, data: change.encoded()))
    }

    private mutating func propose(_ entry: Entry) -> ProposalOutcome {
        switch role {
        case .leader:
            guard transferee == 0 else { return .dropped(.leadershipTransferInProgress) }
            if entry.kind == .configurationChange, let refusal = membershipChangeRefusal(entry) { return .dropped(refusal) }
            appendAsLeader([entry])
            return .appended(index: log.lastIndex, term: term)
        case .follower where leader != 0:
            var message = Message(.propose, from: id, to: leader, term: 0)
            message.entries = [entry]
            outbox.append(message)
            return .forwarded(to: leader)
        default:
            return .dropped(.noLeader)
        }
    }

    private func membershipChangeRefusal(_ entry: Entry) -> ProposalDropReason? {
        if pendingMembershipIndex > log.applied { return .membershipChangePending }
        guard let change = MembershipChange(decoding: entry.data), change.applied(to: membership) != nil else {
            return .invalidMembershipChange
        }
        return nil
    }

    // MARK: Reads

    /// Asks for a linearizable read point for `context` (unique per request). It arrives
    /// as a ``ReadState`` in a later Ready; false when it cannot be served now (no leader).
    @discardableResult
    public mutating func requestRead(context: [UInt8]) -> Bool {
        switch role {
        case .leader:
            if configuration.readMode == .leaseBased && configuration.checkQuorum {
                readStates.append(ReadState(index: log.committed, context: context))
            } else {
                handleRead(context: context, from: id)
            }
            return true
        case .follower where leader != 0:
            var message = Message(.readIndex, from: id, to: leader, term: 0)
            message.context = context
            outbox.append(message)
            return true
        default:
            return false
        }
    }

    private mutating func handleRead(context: [UInt8], from: NodeID) {
        if membership.voters == [id] {
            deliverRead(index: log.committed, context: context, to: from)
            return
        }
        // Until this leader committed an entry of its term, its commit index may be
        // behind what an earlier leader committed.
        guard log.term(at: log.committed) == term else {
            readsWaitingForCommit.append((context, from))
            return
        }
        reads.append(ReadRequest(index: log.committed, context: context, from: from, acks: [id]))
        broadcastHeartbeat(context: context)
    }

    private mutating func acknowledgeRead(context: [UInt8], from: NodeID) {
        guard let position = reads.firstIndex(where: { $0.context == context }) else { return }
        reads[position].acks.insert(from)
        guard reads[position].acks.intersection(membership.voters).count >= membership.quorum else { return }
        // A quorum confirmed leadership after every earlier request too: release them all.
        let released = reads[...position]
        reads.removeFirst(position + 1)
        for request in released { deliverRead(index: request.index, context: request.context, to: request.from) }
    }

    private mutating func deliverRead(index: LogIndex, context: [UInt8], to node: NodeID) {
        if node == id {
            readStates.append(ReadState(index: index, context: context))
        } else {
            var response = Message(.readIndexResponse, from: id, to: node, term: term)
            response.index = index
            response.context = context
            outbox.append(response)
        }
    }

    private mutating func releaseReadsWaitingForCommit() {
        let waiting = readsWaitingForCommit
        readsWaitingForCommit = []
        for read in waiting { handleRead(context: read.context, from: read.from) }
    }

    // MARK: Leadership transfer

    /// Hands leadership to `target` (a voter): once its log is complete it is told to
    /// campaign at once. Proposals are refused meanwhile; the attempt ends after an
    /// election timeout.
    public mutating func transferLeadership(to target: NodeID) {
        switch role {
        case .leader:
            guard target != id, membership.voters.contains(target), transferee != target else { return }
            transferee = target
            transferElapsed = 0
            if progress[target]?.match == log.lastIndex {
                outbox.append(Message(.timeoutNow, from: id, to: target, term: term))
            } else {
                sendAppend(to: target)
            }
        case .follower where leader != 0:
            var message = Message(.transferLeader, from: id, to: leader, term: 0)
            message.index = target
            outbox.append(message)
        default:
            break
        }
    }

    // MARK: Ready

    public var hasReady: Bool {
        SoftState(leader: leader, role: role) != lastSoftState || hardState != lastHardState
            || log.stableIndex < log.lastIndex || receivedSnapshot != nil || log.committed > log.applying
            || !outbox.isEmpty || !readStates.isEmpty
    }

    /// The work to do now; call ``advance(_:)`` once it is done.
    public mutating func ready() -> Ready {
        var ready = Ready()
        let soft = SoftState(leader: leader, role: role)
        if soft != lastSoftState {
            ready.softState = soft
            lastSoftState = soft
        }
        ready.entries = log.unstableEntries
        ready.snapshot = receivedSnapshot
        receivedSnapshot = nil
        ready.committedEntries = log.nextCommitted(maxBytes: configuration.maxCommittedBytesPerReady)
        if let last = ready.committedEntries.last { log.applying = last.index }
        for entry in ready.committedEntries where entry.kind == .configurationChange {
            applyMembershipChange(entry)
        }
        let hard = hardState
        if hard != lastHardState {
            ready.hardState = hard
            ready.termOrVoteChanged = hard.term != lastHardState.term || hard.vote != lastHardState.vote
            lastHardState = hard
        }
        ready.messages = outbox
        outbox = []
        ready.readStates = readStates
        readStates = []
        return ready
    }

    /// The host persisted and applied `ready`.
    public mutating func advance(_ ready: Ready) {
        if let last = ready.entries.last, log.term(at: last.index) == last.term {
            log.stableIndex = max(log.stableIndex, last.index)
        }
        if let last = ready.committedEntries.last { log.applied = max(log.applied, last.index) }
        if role == .leader, progress[id]?.update(match: log.stableIndex) == true, maybeCommit() {
            broadcastAppend()
        }
    }

    private mutating func applyMembershipChange(_ entry: Entry) {
        guard let change = MembershipChange(decoding: entry.data), let updated = change.applied(to: membership) else {
            return
        }
        membership = updated
        membershipHistory.append((entry.index, updated))
        guard role == .leader else { return }
        for node in updated.all where progress[node] == nil { progress[node] = newProgress() }
        for node in progress.keys where !updated.contains(node) { progress[node] = nil }
        if maybeCommit() { broadcastAppend() }
        if !updated.voters.contains(id) {
            // A leader that removed (or demoted) itself stays long enough to tell the
            // others the change committed, and hands over to the most advanced voter;
            // stepping down at once could leave them unable to learn the commit and so
            // bound to the old configuration, which needs this member's vote.
            let target = updated.voters.max { (progress[$0]?.match ?? 0, $1) < (progress[$1]?.match ?? 0, $0) }
            if let target {
                transferee = 0
                transferLeadership(to: target)
            } else {
                becomeFollower(term: term, leader: 0)
            }
        }
    }

    // MARK: Snapshots

    /// Drops the snapshot's data from memory (the host keeps it on disk).
    public mutating func releaseSnapshotData() {
        guard snapshot != nil, !snapshotDataReleased else { return }
        snapshot?.data = []
        snapshotDataReleased = true
    }

    /// Gives back the data of the current snapshot after `snapshotDataNeeded`; ignored when
    /// `index` is not the current snapshot's.
    public mutating func provideSnapshotData(_ data: [UInt8], index: LogIndex) {
        guard snapshotDataReleased, snapshot?.metadata.index == index else { return }
        snapshot?.data = data
        snapshotDataReleased = false
        snapshotDataNeeded = false
    }

    /// Set when a follower needs entries `trimLog` dropped and the snapshot is older than
    /// them: the host takes a new one (`compact(at:data:)`), which then goes out.
    public private(set) var freshSnapshotNeeded = false

    /// Drops applied entries from memory that no follower still needs, keeping the last
    /// `catchUp` of them for followers a little behind (the WAL keeps them all until a
    /// snapshot covers them). A follower that needs a dropped entry later gets a snapshot
    /// taken then (see `freshSnapshotNeeded`), as etcd sends a snapshot of its current state.
    public mutating func trimLog(keepingForCatchUp catchUp: LogIndex) {
        var needed = log.applied
        if role == .leader {
            for (node, peer) in progress where node != id { needed = min(needed, peer.match) }
        }
        guard needed > catchUp else { return }
        log.compact(upTo: needed - catchUp)
    }

    /// Whether a follower is being sent the snapshot (its data should stay in memory).
    public var isSendingSnapshot: Bool {
        progress.values.contains { if case .snapshot = $0.state { true } else { false } }
    }

    /// Records the host's snapshot of the state machine at `index` (≤ applied) and drops
    /// the log up to it. Returns the snapshot to persist, or nil if `index` is not usable.
    public mutating func compact(at index: LogIndex, data: [UInt8]) -> Snapshot? {
        guard index <= log.applied, index > (snapshot?.metadata.index ?? 0), index >= log.snapshotIndex,
            let term = log.term(at: index)
        else { return nil }
        freshSnapshotNeeded = false
        let member = membershipHistory.last { $0.index <= index }?.membership ?? membership
        let created = Snapshot(metadata: SnapshotMetadata(index: index, term: term, membership: member), data: data)
        log.compact(upTo: index)
        snapshot = created
        snapshotDataReleased = false
        snapshotDataNeeded = false
        if let keep = membershipHistory.lastIndex(where: { $0.index <= index }) {
            membershipHistory.removeFirst(keep)
        }
        return created
    }
}
