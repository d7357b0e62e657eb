import CLinux
import EtcdAPI
import EtcdAuth
import EtcdV2Store
import Foundation
import MVCC
import NIOCore
import Raft
import RaftTransport
import Storage
import SwiftProtobuf
import Synchronization

/// One member: the Raft core, its durable log and the MVCC store it applies to. Writes
/// are proposed as log entries and answered when applied; linearizable reads wait for a
/// ReadIndex point to be applied.
///
/// The actor runs on a thread of its own (`loop`, an event loop nothing else uses), and
/// writes and syncs the log on it: nothing in the Ready loop waits for another thread.
/// Client connections and peers hand requests over through `submit` and `deliver`.
actor StoreNode {
    /// The thread the node runs on.
    nonisolated let loop: any EventLoop
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }

    enum RequestKind: UInt8 {
        case put = 1
        case deleteRange = 2
        case txn = 3
        case compact = 4
        case leaseGrant = 5
        case leaseRevoke = 6
        /// A keep-alive taken by a member of a multi-member cluster: every member restarts
        /// the lease's clock when it is applied, so any member answers time-to-live.
        case leaseRenew = 7
        /// A member announcing its name and client URLs (etcd's publish).
        case publishAttributes = 8
        /// Raising or clearing an alarm (NOSPACE).
        case alarm = 9
        /// New peer URLs for a member (etcd's ConfChangeUpdateNode: not a Raft change).
        case memberUpdate = 10
        /// A write to the v2 keys store (`V2Request`).
        case v2 = 11
        /// A change of users, roles, permissions or auth state (`AuthStore.Change`, JSON).
        case auth = 12

        /// Requests that add data: refused while NOSPACE is raised, checked against the quota.
        var consumesSpace: Bool { self == .put || self == .txn || self == .leaseGrant }
    }

    /// The limits etcd's flags set.
    struct Limits: Sendable {
        /// `--max-request-bytes`: a proposal above it is refused before it reaches the log.
        var maxRequestBytes = 1_572_864
        /// `--max-txn-ops`.
        var maxTxnOperations = 128
        /// `--quota-backend-bytes` (0: etcd's default of 2 GiB), checked against the store's
        /// logical size.
        var quotaBytes: Int64 = 2 << 30
    }

    enum Applied: Sendable {
        case put(WriteOutcome<KeyValue?>)
        case deleteRange(WriteOutcome<DeleteResult>)
        case txn(WriteOutcome<TxnResult>)
        case compact(revision: Int64)
        case failed(MVCCError)
        /// No leader to take the proposal (etcd: "etcdserver: no leader").
        case noLeader
        case leaseGranted(id: Int64, ttl: Int64)
        case leaseRevoked(revision: Int64)
        case leaseRenewed(ttl: Int64)
        case leaseFailed(String)
        case published
        case alarms([Etcdserverpb_AlarmMember])
        /// Not applied in time: lost with a change of leader, or no quorum.
        case timedOut
        /// Larger than `--max-request-bytes`.
        case tooLarge
        /// Larger than etcd's gRPC receive limit (the request limit plus 512 KiB).
        case overTransportLimit(size: Int, limit: Int)
        /// Over the quota, or refused while the NOSPACE alarm is raised.
        case noSpace
        /// A membership change took effect; the members after it.
        case membersChanged
        /// A membership change that no longer applies when its entry came up.
        case memberFailed(String)
        /// An auth change was applied, or refused with etcd's error.
        case auth(Result<Void, AuthError>)
        /// A v2 write: its events, or etcd's v2 error.
        case v2(Result<[V2Event], V2Error>)
    }

    /// A member as the Cluster service lists it: raft attributes from the initial cluster,
    /// name and client URLs as the member published them.
    struct MemberRecord: Sendable, Equatable {
        var name: String
        var peerURLs: [String]
        var clientURLs: [String]
        var isLearner = false
    }

    /// Raft traffic for `/v2/stats/self` and `/v2/stats/leader`.
    var peerStats = PeerStats()
    /// When this member started, and since when the current leader leads (as this member saw it).
    nonisolated let started = Date()
    var leaderSince = Date()
    /// The v2 store's operation counts (`/v2/stats/store`); gets in `v2GetCounts`.
    var v2Stats = V2StoreCounts()
    nonisolated let v2GetCounts = Mutex((success: UInt64(0), failure: UInt64(0)))
    /// `--v2-shared-keyspace`: v2 writes show in the v3 keyspace too.
    var v2SharedKeyspace = false

    /// Raft's state as etcd names it in `/v2/stats/self`.
    var raftStateName: String {
        switch raft.role {
        case .leader: "StateLeader"
        case .candidate, .preCandidate: "StateCandidate"
        case .follower: "StateFollower"
        }
    }

    /// Users, roles and permissions: replicated state.
    var auth = AuthStore() {
        didSet { authNow.withLock { $0 = auth } }
    }
    /// The auth state, readable from any thread: every request's permission check reads it.
    nonisolated let authNow = Mutex(AuthStore())

    /// The v2 keys: replicated state, separate from the v3 keyspace as in etcd.
    var v2 = V2Store()
    /// `wait=true` requests waiting for a v2 event.
    var v2Watchers: [Int: V2Watcher] = [:]
    var nextV2Watcher = 0
    /// Set while the leader's expiry proposal is in flight.
    var v2ExpiryProposed = false

    /// Granted leases and their TTLs: replicated state, rebuilt by replaying the log.
    private(set) var leases: [Int64: Int64] = [:]
    /// When each lease runs out: the leader's own clock, refreshed whenever this member
    /// becomes leader so no lease expires early after a change of leader.
    private var expiries: [Int64: ContinuousClock.Instant] = [:]
    private var wasLeader = false
    /// etcd's minimum TTL: 1.5 election timeouts, in whole seconds.
    var minimumTTL: Int64 = 2

    let memberID: UInt64
    let clusterID: UInt64
    /// Every member, replicated: changed by membership entries as they are applied.
    var members: [UInt64: MemberRecord] {
        didSet { membersNow.withLock { $0 = members } }
    }
    /// The members, readable from any thread (the peer port answers `/members` with them).
    nonisolated let membersNow: Mutex<[UInt64: MemberRecord]>
    nonisolated var isLearnerNow: Bool { membersNow.withLock { $0[memberID]?.isLearner == true } }
    /// Members removed from the cluster: their messages are refused (a removed member that
    /// missed its removal would otherwise disrupt elections) and answered with a notice.
    var removedMembers: Set<UInt64> = []
    /// Set once this member's own removal is applied (or another member says so).
    var isRemoved = false
    /// How long a write or a linearizable read may wait before "request timed out"
    /// (etcd: 5 s plus two election timeouts).
    let requestTimeout: Duration
    let limits: Limits
    /// Raised alarms (replicated): member and type, in the order raised.
    private(set) var alarms: [Etcdserverpb_AlarmMember] = []
    /// What /metrics reports.
    struct Counters: Sendable {
        var leaderChanges: UInt64 = 0
        var proposalsFailed: UInt64 = 0
        var readIndexesFailed: UInt64 = 0
        var slowDiskHandovers: UInt64 = 0
        var puts: UInt64 = 0
        var deletes: UInt64 = 0
        var txns: UInt64 = 0
        var ranges: UInt64 = 0
        var healthSuccesses: UInt64 = 0
        var healthFailures: UInt64 = 0
        /// Watchers whose live feed overflowed and that caught up from history.
        var slowWatchers: UInt64 = 0
    }
    private(set) var counters = Counters()
    private var lastLeader: NodeID = 0
    var pendingProposals: Int { waiters.count }
    var walSyncDurations: DurationHistogram { log.syncDurations }
    var walBytesWritten: UInt64 { log.bytesWritten }
    var logicalSize: Int { store.logicalSize }
    var liveKeys: Int { store.liveKeyCount }
    var spaceAlarmRaised: Bool { alarms.contains { $0.alarm == .nospace } }
    var raft: RaftNode
    private let log: DurableLog
    var transport: TCPTransport?
    private(set) var store: MVCCStore
    private var appliedIndex: LogIndex = 0
    private var nextRequest: UInt64
    var waiters: [UInt64: ProposalCompletion] = [:]
    /// When waiting proposals time out, oldest first (one timeout for all, so appending
    /// keeps the order); swept on every tick instead of a timer per request.
    private var proposalDeadlines: [(deadline: ContinuousClock.Instant, request: UInt64)] = []
    private var proposalDeadlinesStart = 0
    /// Linearizable reads share ReadIndex rounds, as etcd's read loop does: those asking
    /// while a round is out wait for the next, so a burst of reads costs one round.
    private var readsForNextRound: [ReadCompletion] = []
    private var readRound: (context: [UInt8], deadline: ContinuousClock.Instant, waiting: [ReadCompletion])?
    private var readRoundNumber: UInt64 = 0
    /// Rounds whose read point is known, waiting for it to be applied here.
    private var confirmedReads: [(index: LogIndex, waiting: [ReadCompletion])] = []
    /// Requests handed over by `submit` from any thread, taken in one visit.
    private nonisolated let inbox = Mutex<[Submission]>([])
    private var processScheduled = false
    /// Set while `takeSubmissions` runs: it processes once at the end.
    private var takingSubmissions = false
    /// Watches this member's log syncs while it leads (`--experimental-slow-disk-leader-transfer`).
    var slowDisk = SlowDiskDetector(threshold: .zero)
    /// `--strict-reconfig-check`: membership changes that would leave fewer started voters
    /// than a quorum are refused.
    var strictReconfigCheck = true
    /// `InjectedBugs.readWithoutReadIndex`: linearizable reads skip the ReadIndex round.
    private var readsSkipReadIndex = false
    private var processing = false
    /// Watchers: key range and where to deliver (events, revision) batches.
    private var subscribers: [Int: (key: [UInt8], end: [UInt8], deliver: AsyncStream<([Event], Int64)>.Continuation)] = [:]
    private var nextSubscriber = 0

    init(
        memberID: UInt64, clusterID: UInt64, members: [UInt64: MemberRecord], raft: RaftNode, log: DurableLog,
        requestTimeout: Duration = .seconds(7), limits: Limits = Limits(), snapshotCount: UInt64 = 100_000,
        values: ValueLog = ValueLog(), loop: any EventLoop
    ) {
        store = MVCCStore(values: values)
        self.loop = loop
        self.limits = limits
        self.memberID = memberID
        self.clusterID = clusterID
        self.members = members
        membersNow = Mutex(members)
        self.raft = raft
        self.log = log
        self.requestTimeout = requestTimeout
        self.snapshotCount = snapshotCount
        nextRequest = UInt64.random(in: 1...UInt64.max / 2)
    }

    /// Loads the snapshot the data directory started from; the log replays the rest.
    func recover() {
        if let snapshot = raft.snapshot { restore(snapshot) }
        raft.releaseSnapshotData()
        returnFreedMemory()
    }

    /// A snapshot's bytes are one large allocation, freed right after use; malloc keeps
    /// such freed memory mapped (its threshold for separate mappings grows after the first
    /// one), so the member hands it back explicitly.
    private func returnFreedMemory() {
        _ = coreos_release_free_memory()
        ticksSinceMemoryReturned = 0
    }

    /// Trimmed log entries and replaced snapshots are freed all the time; every 50 ticks
    /// (5 s at the default heartbeat) the free memory goes back, as Go's scavenger does
    /// for etcd.
    private var ticksSinceMemoryReturned = 0

    /// Keeps the snapshot's data out of memory except while a follower is being sent it.
    private func manageSnapshotData() {
        if raft.freshSnapshotNeeded {
            takeSnapshot()
        } else if raft.snapshotDataNeeded, let index = raft.snapshot?.metadata.index {
            do {
                if let loaded = try log.loadNewestSnapshot(), loaded.metadata.index == index {
                    raft.provideSnapshotData(loaded.data, index: index)
                }
            } catch {
                FileHandle.standardError.write(Data("etcd: cannot read the snapshot for a follower: \(error)\n".utf8))
            }
        } else if !raft.isSendingSnapshot {
            raft.releaseSnapshotData()
        }
    }

    // MARK: Snapshots

    /// Entries applied between snapshots (`--snapshot-count`).
    let snapshotCount: UInt64
    private var snapshotIndex: LogIndex = 0

    var state: StoreState {
        var state = StoreState(store: store, leases: leases, alarms: alarms, members: members, removed: removedMembers)
        state.v2 = v2
        state.auth = auth
        return state
    }

    /// Replaces the replicated state with a snapshot's (on start, or sent by the leader to
    /// a member too far behind). A snapshot this build cannot read stops the member: going
    /// on would serve another history than the cluster's.
    private func restore(_ snapshot: Snapshot) {
        // A fresh log: the old one's values are no longer referenced once the state is replaced.
        guard let restored = StoreState(decoding: snapshot.data, values: store.values.successor()) else {
            FileHandle.standardError.write(Data("etcd: snapshot at index \(snapshot.metadata.index) is unreadable\n".utf8))
            exit(1)
        }
        store = restored.store
        v2 = restored.v2
        auth = restored.auth
        leases = restored.leases
        alarms = restored.alarms
        if let restoredMembers = restored.members {
            members = restoredMembers
            removedMembers = restored.removed
            syncTransportPeers()
        } else {
            // Format 1 (before membership changes): the members are those of the start.
            for (id, member) in restored.published where members[id] != nil {
                members[id]?.name = member.name
                members[id]?.clientURLs = member.clientURLs
            }
        }
        let now = ContinuousClock.now
        expiries = leases.mapValues { now + .seconds($0) }
        appliedIndex = snapshot.metadata.index
        snapshotIndex = snapshot.metadata.index
        // The live feeds stopped at the old state and the snapshot jumps past the events in
        // between: each watcher's feed ends, and it catches up from the restored history as
        // a slow watcher does (found by the robustness suite: a watcher on a member that
        // caught up from a snapshot saw nothing after it).
        for id in Array(subscribers.keys) { unwatch(id) }
    }

    /// Hands leadership to `target` and waits (up to the request timeout) until it holds it.
    func moveLeader(to target: UInt64) async -> MoveLeaderOutcome {
        guard raft.role == .leader else { return .notLeader }
        guard raft.membership.voters.contains(target) else { return .badTransferee }
        if target == memberID { return .moved }
        let deadline = ContinuousClock.now + requestTimeout
        var nextAttempt = ContinuousClock.now
        while ContinuousClock.now < deadline {
            if raft.leader == target { return .moved }
            // Another member took over: the handover failed.
            if raft.role != .leader && raft.leader != 0 { return .timedOut }
            if ContinuousClock.now >= nextAttempt, raft.role == .leader {
                // A handover gives up after an election timeout (the target did not catch
                // up under load, or its election failed): ask again until the deadline.
                raft.transferLeadership(to: target)
                scheduleProcessing()
                nextAttempt = ContinuousClock.now + .milliseconds(500)
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return .timedOut
    }

    enum MoveLeaderOutcome { case moved, notLeader, badTransferee, timedOut }

    /// The leader's syncs stayed slow: leadership goes to the voter with the most of the
    /// log (Raft brings it level first, then tells it to campaign), so writes wait on a
    /// healthy disk. Counted in /metrics; logged, as etcd logs slow syncs.
    private func handOverFromSlowDisk() {
        let candidates = raft.membership.voters.filter { $0 != memberID }
        guard let target = candidates.max(by: { (raft.matchIndex(of: $0) ?? 0, $1) < (raft.matchIndex(of: $1) ?? 0, $0) })
        else { return }
        counters.slowDiskHandovers += 1
        FileHandle.standardError.write(Data(
            "etcd: log syncs slower than \(slowDisk.threshold) \(slowDisk.consecutive) times in a row; transferring leadership to \(String(target, radix: 16))\n".utf8))
        raft.transferLeadership(to: target)
    }

    /// Snapshots the state at the applied index and drops the log before it, so restart
    /// replays at most `snapshotCount` entries and the WAL stops growing.
    func takeSnapshot() {
        guard appliedIndex > snapshotIndex, let snapshot = raft.compact(at: appliedIndex, data: state.encoded()) else { return }
        snapshotIndex = snapshot.metadata.index
        do {
            try log.persistSnapshot(snapshot, hardState: raft.hardState)
        } catch {
            FileHandle.standardError.write(Data("etcd: storage failed: \(error)\n".utf8))
            exit(1)
        }
        if !raft.isSendingSnapshot { raft.releaseSnapshotData() }
        returnFreedMemory()
    }

    /// Waits for the log's writes to finish (the directory lock goes with the last reference).
    func closeLog() { log.drain() }

    /// Where Raft messages to other members go; set once, before the first tick.
    func attach(_ transport: TCPTransport) {
        self.transport = transport
        syncTransportPeers()
    }

    /// Applies what the log says is committed, without a leader (on start, before
    /// `--force-new-cluster` collapses the membership). Returns the state reached, and the
    /// index and term it stands at.
    func applyCommitted() -> (state: StoreState, index: LogIndex, term: Term) {
        process()
        return (state, appliedIndex, raft.term)
    }

    var isSingleMember: Bool { raft.membership.all.count == 1 }

    var header: Etcdserverpb_ResponseHeader {
        var header = Etcdserverpb_ResponseHeader()
        header.clusterID = clusterID
        header.memberID = memberID
        header.revision = store.currentRevision
        header.raftTerm = raft.term
        return header
    }

    var isLeader: Bool { raft.role == .leader }
    /// Bytes of the data directory's log and snapshots (the backend size clients see).
    var databaseSize: Int64 { Int64(log.sizeOnDisk) }
    var leader: NodeID { raft.leader }
    var raftTerm: UInt64 { raft.term }
    var raftIndex: UInt64 { raft.commitIndex }
    var raftApplied: UInt64 { appliedIndex }

    func tick() async {
        raft.tick()
        expireOverdue()
        // Applied entries leave memory (the WAL has them): a lone member needs none; a
        // cluster keeps etcd's 5000 catch-up entries for followers a little behind.
        raft.trimLog(keepingForCatchUp: isSingleMember ? 0 : 5000)
        manageSnapshotData()
        ticksSinceMemoryReturned += 1
        if ticksSinceMemoryReturned >= 50 { returnFreedMemory() }
        process()
        await expireLeases()
        expireV2Keys()
    }

    /// The leader revokes leases whose time ran out, through the log.
    private func expireLeases() async {
        guard raft.role == .leader else { return }
        let now = ContinuousClock.now
        for (id, expiry) in expiries where expiry < now {
            expiries[id] = now + .seconds(3600)  // one revoke in flight per lease
            var request = Etcdserverpb_LeaseRevokeRequest()
            request.id = id
            if let body = try? request.serializedBytes() as [UInt8] {
                Task { _ = await self.propose(.leaseRevoke, body) }
            }
        }
    }

    /// Extends a lease from now (keep-alive); nil when it does not exist. With more than
    /// one member the renewal goes through the log, so every member's clock restarts.
    func renew(_ id: Int64) async -> Int64? {
        guard let ttl = leases[id] else { return nil }
        if isSingleMember {
            expiries[id] = ContinuousClock.now + .seconds(ttl)
            return ttl
        }
        var request = Etcdserverpb_LeaseKeepAliveRequest()
        request.id = id
        guard let body = try? request.serializedBytes() as [UInt8] else { return nil }
        if case .leaseRenewed(let ttl) = await propose(.leaseRenew, body) { return ttl }
        return nil
    }

    /// `.noSpace` when the quota refuses the request: over the quota every request that
    /// may add data is refused (a read-only txn too, as etcd); under it, a raised alarm
    /// still refuses those that write. etcd checks this before validating a txn.
    private func spaceRefusal(_ kind: RequestKind, _ body: [UInt8]) -> Applied? {
        guard kind.consumesSpace else { return nil }
        if Int64(store.logicalSize + body.count + MVCCStore.revisionOverhead) >= limits.quotaBytes {
            if !spaceAlarmRaised { raiseSpaceAlarm() }
            return .noSpace
        }
        return spaceAlarmRaised && Self.writes(kind, body) ? .noSpace : nil
    }

    /// Proposes NOSPACE for this member (once: later writes see it raised).
    private func raiseSpaceAlarm() {
        var request = Etcdserverpb_AlarmRequest()
        request.action = .activate
        request.memberID = memberID
        request.alarm = .nospace
        guard let body = try? request.serializedBytes() as [UInt8] else { return }
        Task { _ = await self.propose(.alarm, body) }
    }

    /// Announces this member's name and client URLs through the log, until it is applied.
    func publish(name: String, clientURLs: [String]) async {
        var member = Etcdserverpb_Member()
        member.id = memberID
        member.name = name
        member.clientUrls = clientURLs
        guard let body = try? member.serializedBytes() as [UInt8] else { return }
        while !Task.isCancelled {
            if case .published = await propose(.publishAttributes, body) { return }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Whole seconds left for a lease on the leader's clock (the granted TTL elsewhere),
    /// truncated as etcd's `int64(Remaining().Seconds())`: a fresh 60 s lease has 59 left.
    func remaining(_ id: Int64) -> Int64? {
        guard let ttl = leases[id] else { return nil }
        guard let expiry = expiries[id] else { return ttl }
        return max(0, (expiry - ContinuousClock.now).components.seconds)
    }

    func keys(attachedTo id: Int64) -> [[UInt8]] {
        var all = RangeRequest(key: [0], rangeEnd: [0])
        all.keysOnly = true
        return ((try? store.range(all))?.keyValues ?? []).filter { $0.lease == id }.map(\.key)
    }

    /// A lone member elects itself at once instead of waiting for an election timeout.
    func campaignIfAlone() async {
        guard raft.membership.voters == [memberID] else { return }
        raft.campaign()
        process()
    }

    /// Called with the outcome of a proposal and the response header after it, on the
    /// actor: it must return quickly (hand the answer to a connection, resume a task).
    typealias ProposalCompletion = @Sendable (Applied, Etcdserverpb_ResponseHeader) -> Void

    /// Where a linearizable or serializable read may be answered from.
    enum ReadOutcome: Sendable {
        /// The store to read (valid only during the call: keeping it would make the next
        /// write copy the whole store) and the response header.
        case ready(MVCCStore, Etcdserverpb_ResponseHeader)
        case noLeader
        case timedOut
    }
    typealias ReadCompletion = @Sendable (ReadOutcome) -> Void

    /// A request handed to the node from outside the actor.
    enum Submission: Sendable {
        /// A write; for a txn, `invalid` is what validating it found (the service decoded
        /// it already), reported after the quota check as etcd orders them.
        case proposal(RequestKind, [UInt8], invalid: MVCCError? = nil, ProposalCompletion)
        /// A range: `linearizable` waits for a ReadIndex round first.
        case read(linearizable: Bool, ReadCompletion)
        /// Messages from other members, in arrival order.
        case messages([Raft.Message])
    }

    /// Hands a request over without waiting for the actor: the gRPC connections call this
    /// from their event loops, and the completion answers the client. Requests submitted
    /// together are taken in one visit to the actor.
    nonisolated func submit(_ submission: Submission) {
        let first = inbox.withLock { queued in
            queued.append(submission)
            return queued.count == 1
        }
        if first { onStoreThread { $0.takeSubmissions() } }
    }

    /// Runs `body` on the node's thread, after what is queued there.
    private nonisolated func onStoreThread(_ body: @escaping @Sendable (isolated StoreNode) -> Void) {
        loop.execute { self.assumeIsolated(body) }
    }

    /// Messages from other members (the transport's delivery callback).
    nonisolated func deliver(_ messages: [Raft.Message]) { submit(.messages(messages)) }

    /// Everything submitted since the last visit, then one pass of the Ready loop for all.
    private func takeSubmissions() {
        let submissions = inbox.withLock { queued in
            defer { queued.removeAll(keepingCapacity: true) }
            return queued
        }
        takingSubmissions = true
        defer {
            takingSubmissions = false
            startReadRound()
            process()
        }
        for submission in submissions {
            switch submission {
            case .proposal(let kind, let body, let invalid, let completion):
                startProposal(kind, body, invalid: invalid, completion)
            case .read(let linearizable, let completion):
                if linearizable && !readsSkipReadIndex {
                    readsForNextRound.append(completion)
                } else {
                    counters.ranges += 1
                    completion(.ready(store, header))
                }
            case .messages(let messages):
                for message in messages where admit(message) {
                    peerStats.received(message, at: .now)
                    raft.step(message)
                }
            }
        }
    }

    /// Proposes a write and waits until it is applied.
    func propose(_ kind: RequestKind, _ body: [UInt8]) async -> Applied {
        await withCheckedContinuation { continuation in
            startProposal(kind, body) { applied, _ in continuation.resume(returning: applied) }
        }
    }

    /// Checks a proposal against the limits and appends it to the log; `completion` runs
    /// once it is applied, refused or timed out.
    private func startProposal(
        _ kind: RequestKind, _ body: [UInt8], invalid: MVCCError? = nil, _ completion: @escaping ProposalCompletion
    ) {
        if let refusal = refusal(kind, body, invalid: invalid) {
            completion(refusal, header)
            return
        }
        let request = takeRequestID()
        var data: [UInt8] = []
        data.reserveCapacity(9 + body.count)
        data.append(kind.rawValue)
        withUnsafeBytes(of: request.littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: body)
        switch raft.propose(data) {
        case .appended, .forwarded:
            break
        case .dropped:
            completion(.noLeader, header)
            return
        }
        waitForApply(request, completion)
    }

    /// A fresh request ID, carried in the entry so the applying member finds the waiter.
    func takeRequestID() -> UInt64 {
        nextRequest &+= 1
        return nextRequest
    }

    /// Registers `completion` for the entry carrying `request`, with the request timeout.
    func waitForApply(_ request: UInt64, _ completion: @escaping ProposalCompletion) {
        proposalDeadlines.append((ContinuousClock.now + requestTimeout, request))
        waiters[request] = completion
        scheduleProcessing()
    }

    /// Why a proposal cannot go to the log, in etcd's order of checks: for a txn the quota
    /// and the txn's own limits (`invalid`) come first, then the request size.
    private func refusal(_ kind: RequestKind, _ body: [UInt8], invalid: MVCCError?) -> Applied? {
        if kind == .txn {
            if let refusal = spaceRefusal(kind, body) { return refusal }
            if let invalid { return .failed(invalid) }
        }
        // etcd's gRPC layer refuses messages above the limit plus 512 KiB; below that,
        // etcd measures the internal request: the body plus a header of about 16 bytes.
        if body.count > limits.maxRequestBytes + 512 * 1024 {
            return .overTransportLimit(size: body.count, limit: limits.maxRequestBytes + 512 * 1024)
        }
        if body.count + 16 > limits.maxRequestBytes { return .tooLarge }
        return spaceRefusal(kind, body)
    }

    /// Runs `process` soon, once for however many requests ask before it starts.
    func scheduleProcessing() {
        guard !processing, !processScheduled, !takingSubmissions else { return }
        processScheduled = true
        onStoreThread { node in
            node.processScheduled = false
            node.process()
        }
    }

    /// Times out proposals and reads whose deadline passed.
    private func expireOverdue() {
        let now = ContinuousClock.now
        while proposalDeadlinesStart < proposalDeadlines.count, proposalDeadlines[proposalDeadlinesStart].deadline < now {
            expireProposal(proposalDeadlines[proposalDeadlinesStart].request)
            proposalDeadlinesStart += 1
        }
        if proposalDeadlinesStart > 1024, proposalDeadlinesStart * 2 > proposalDeadlines.count {
            proposalDeadlines.removeFirst(proposalDeadlinesStart)
            proposalDeadlinesStart = 0
        }
        if let round = readRound, round.deadline < now {
            readRound = nil
            counters.readIndexesFailed += 1
            for read in round.waiting { read(.timedOut) }
            startReadRound()
        }
    }

    private func expireProposal(_ request: UInt64) {
        guard let waiter = waiters.removeValue(forKey: request) else { return }
        counters.proposalsFailed += 1
        waiter(.timedOut, header)
    }

    func countHealthCheck(_ healthy: Bool) {
        if healthy { counters.healthSuccesses += 1 } else { counters.healthFailures += 1 }
    }

    /// The store and header to answer a range from, in one hop (counted for /metrics).
    func readView() -> (store: MVCCStore, header: Etcdserverpb_ResponseHeader) {
        counters.ranges += 1
        return (store, header)
    }

    func watchSlowDisk(threshold: Duration) { slowDisk = SlowDiskDetector(threshold: threshold) }

    func checkReconfigurationStrictly(_ strict: Bool) { strictReconfigCheck = strict }

    /// Turns on `InjectedBugs.readWithoutReadIndex` (the robustness suite's proof that its
    /// linearizability check catches stale reads).
    func injectReadsWithoutReadIndex() { readsSkipReadIndex = true }

    /// Waits until every write acknowledged before the call is applied here (ReadIndex).
    func linearizableBarrier() async -> Bool {
        if readsSkipReadIndex { return true }
        return await withCheckedContinuation { continuation in
            readsForNextRound.append { outcome in
                if case .ready = outcome { continuation.resume(returning: true) } else { continuation.resume(returning: false) }
            }
            startReadRound()
        }
    }

    /// Asks Raft for a read point for every read waiting, unless a round is out already.
    private func startReadRound() {
        guard readRound == nil, !readsForNextRound.isEmpty else { return }
        let waiting = readsForNextRound
        readsForNextRound = []
        requestReadPoint(for: waiting, deadline: ContinuousClock.now + requestTimeout)
    }

    private func requestReadPoint(for waiting: [ReadCompletion], deadline: ContinuousClock.Instant) {
        readRoundNumber &+= 1
        let context = withUnsafeBytes(of: (memberID ^ readRoundNumber).littleEndian) { Array($0) }
        guard raft.requestRead(context: context) else {
            counters.readIndexesFailed += 1
            for read in waiting { read(.noLeader) }
            return
        }
        readRound = (context, deadline, waiting)
        scheduleProcessing()
    }

    /// Answers the reads whose point is applied.
    private func answerConfirmedReads() {
        guard confirmedReads.contains(where: { $0.index <= appliedIndex }) else { return }
        let done = confirmedReads.filter { $0.index <= appliedIndex }
        confirmedReads.removeAll { $0.index <= appliedIndex }
        counters.ranges += UInt64(done.reduce(0) { $0 + $1.waiting.count })
        let current = header
        for round in done {
            for read in round.waiting { read(.ready(store, current)) }
        }
    }

    enum WatchStart: Sendable {
        /// Past events to replay, and the live feed after them.
        case started(id: Int, history: [Event], revision: Int64, live: AsyncStream<([Event], Int64)>)
        case compacted(compactRevision: Int64)
        case future
    }

    /// Registers a watcher for `[key, end)` from `startRevision` (0: from now on). The
    /// history and the live feed join without a gap or an overlap: both are taken here,
    /// where no write can come between them.
    func watch(key: [UInt8], end: [UInt8], startRevision: Int64) -> WatchStart {
        let current = store.currentRevision
        var history: [Event] = []
        if startRevision > 0 && startRevision <= current {
            do {
                history = try store.events(from: startRevision, key: key, end: end)
            } catch {
                return .compacted(compactRevision: store.compactedRevision)
            }
        }
        // Bounded, as etcd's watcher channels: a watcher whose reader falls behind loses
        // its live feed (see `publish`) and catches up from history instead.
        let (stream, continuation) = AsyncStream<([Event], Int64)>.makeStream(
            bufferingPolicy: .bufferingOldest(Self.watchBufferBatches))
        nextSubscriber += 1
        subscribers[nextSubscriber] = (key, end, continuation)
        return .started(id: nextSubscriber, history: history, revision: current, live: stream)
    }

    func unwatch(_ id: Int) {
        subscribers.removeValue(forKey: id)?.deliver.finish()
    }

    /// Write batches a watcher may have queued before it counts as slow.
    static let watchBufferBatches = 128

    /// A v2 write's v3 twin (`--v2-shared-keyspace`), applied with it: the key's old lease
    /// is dropped (without deleting the key) and a new one granted for a TTL.
    func mirrorV2Put(key: [UInt8], value: [UInt8], lease: Int64?, ttl: Int64?, dropping oldLease: Int64?) {
        if let oldLease {
            leases[oldLease] = nil
            expiries[oldLease] = nil
        }
        if let lease, let ttl {
            leases[lease] = max(ttl, 1)
            expiries[lease] = ContinuousClock.now + .seconds(max(ttl, 1))
        }
        let granted = leases
        guard let result = try? store.put(PutRequest(key: key, value: value, lease: lease ?? 0), leaseExists: { granted[$0] != nil })
        else { return }
        publish(result.events, revision: result.revision)
    }

    /// A v2 deletion's v3 twin.
    func mirrorV2Delete(key: [UInt8], rangeEnd: [UInt8], dropping oldLease: Int64?) {
        if let oldLease {
            leases[oldLease] = nil
            expiries[oldLease] = nil
        }
        let result = store.deleteRange(DeleteRangeRequest(key: key, rangeEnd: rangeEnd))
        if !result.events.isEmpty { publish(result.events, revision: result.revision) }
    }

    private func publish(_ events: [Event], revision: Int64) {
        guard !events.isEmpty else { return }
        var slow: [Int] = []
        for (id, subscriber) in subscribers {
            let matching = events.filter { Self.inRange($0.keyValue.key, subscriber.key, subscriber.end) }
            guard !matching.isEmpty else { continue }
            if case .dropped = subscriber.deliver.yield((matching, revision)) { slow.append(id) }
        }
        // A full buffer kept the oldest batches: the watcher gets those, then its feed ends
        // and it re-registers from the revision after the last it received.
        for id in slow { unwatch(id) }
        counters.slowWatchers += UInt64(slow.count)
    }

    static func inRange(_ key: [UInt8], _ start: [UInt8], _ end: [UInt8]) -> Bool {
        if end.isEmpty { return key == start }
        if key.lexicographicallyPrecedes(start) { return false }
        return end == [0] || key.lexicographicallyPrecedes(end)
    }

    /// Persist, apply, advance: one Ready at a time.
    private func process() {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        while raft.hasReady {
            let ready = raft.ready()
            // A leader's appends and heartbeats go out before its own disk write, so the
            // followers' syncs overlap the leader's (Raft thesis 10.2.1): the leader counts
            // itself toward a commit only once `advance` reports its entries stable.
            // Everything else (votes, acknowledgements) waits for the sync.
            var early: [Raft.Message] = []
            var late: [Raft.Message] = []
            for message in ready.messages {
                switch message.kind {
                case .append, .heartbeat, .snapshot: early.append(message)
                default: late.append(message)
                }
            }
            if !early.isEmpty {
                peerStats.sent(early, at: .now)
                transport?.send(early)
            }
            do {
                if let synced = try log.persist(ready), raft.role == .leader,
                    slowDisk.observe(synced, at: ContinuousClock.now)
                {
                    handOverFromSlowDisk()
                }
            } catch {
                // The disk state is unknown after a failed sync: stop serving.
                FileHandle.standardError.write(Data("etcd: storage failed: \(error)\n".utf8))
                exit(1)
            }
            if !late.isEmpty { transport?.send(late) }
            if let snapshot = ready.snapshot { restore(snapshot) }
            defer { if ready.snapshot != nil { raft.releaseSnapshotData() } }
            for entry in ready.committedEntries { apply(entry) }
            if let round = readRound, let read = ready.readStates.first(where: { $0.context == round.context }) {
                confirmedReads.append((read.index, round.waiting))
                readRound = nil
            }
            raft.advance(ready)
            if raft.role == .leader && !wasLeader {
                let now = ContinuousClock.now
                for (id, ttl) in leases { expiries[id] = now + .seconds(ttl) }
            }
            wasLeader = raft.role == .leader
            if raft.leader != lastLeader {
                if raft.leader != 0 { counters.leaderChanges += 1 }
                leaderSince = Date()
                peerStats.forgetFollowers()
                lastLeader = raft.leader
                // A new leader never heard of the round out: ask it again.
                if let round = readRound, raft.leader != 0 {
                    readRound = nil
                    requestReadPoint(for: round.waiting, deadline: round.deadline)
                }
            }
            answerConfirmedReads()
            startReadRound()
            if appliedIndex - snapshotIndex >= snapshotCount { takeSnapshot() }
        }
    }

    private func apply(_ entry: Entry) {
        appliedIndex = entry.index
        if entry.kind == .configurationChange {
            applyMembershipChange(entry.data)
            return
        }
        guard entry.kind == .normal, entry.data.count >= 9, let kind = RequestKind(rawValue: entry.data[0]) else { return }
        var request: UInt64 = 0
        for offset in 0..<8 { request |= UInt64(entry.data[1 + offset]) << (8 * UInt64(offset)) }
        let body = Data(entry.data[9...])
        // Previous states in events only feed watchers (a request's prev_kv is separate).
        store.eventsCarryPrevious = !subscribers.isEmpty
        let outcome: Applied
        let granted = leases
        let leaseExists: (Int64) -> Bool = { granted[$0] != nil }
        if kind.consumesSpace && spaceAlarmRaised && Self.writes(kind, Array(body)) {
            waiters.removeValue(forKey: request)?(.noSpace, header)
            return
        }
        do throws(MVCCError) {
            switch kind {
            case .put:
                let message = (try? Etcdserverpb_PutRequest(serializedBytes: body)) ?? Etcdserverpb_PutRequest()
                counters.puts += 1
                let result = try store.put(ProtoMapping.put(message), leaseExists: leaseExists)
                publish(result.events, revision: result.revision)
                outcome = .put(result)
            case .deleteRange:
                let message = (try? Etcdserverpb_DeleteRangeRequest(serializedBytes: body)) ?? Etcdserverpb_DeleteRangeRequest()
                counters.deletes += 1
                let result = store.deleteRange(ProtoMapping.delete(message))
                publish(result.events, revision: result.revision)
                outcome = .deleteRange(result)
            case .txn:
                let message = (try? Etcdserverpb_TxnRequest(serializedBytes: body)) ?? Etcdserverpb_TxnRequest()
                counters.txns += 1
                let result = try store.txn(ProtoMapping.txn(message), maxOperations: Int.max, leaseExists: leaseExists)
                publish(result.events, revision: result.revision)
                outcome = .txn(result)
            case .compact:
                let message = (try? Etcdserverpb_CompactionRequest(serializedBytes: body)) ?? Etcdserverpb_CompactionRequest()
                try store.compact(message.revision)
                outcome = .compact(revision: store.currentRevision)
            case .leaseGrant:
                let message = (try? Etcdserverpb_LeaseGrantRequest(serializedBytes: body)) ?? Etcdserverpb_LeaseGrantRequest()
                if leases[message.id] != nil {
                    outcome = .leaseFailed("etcdserver: lease already exists")
                } else {
                    let ttl = max(message.ttl, minimumTTL)
                    leases[message.id] = ttl
                    expiries[message.id] = ContinuousClock.now + .seconds(ttl)
                    outcome = .leaseGranted(id: message.id, ttl: ttl)
                }
            case .leaseRevoke:
                let message = (try? Etcdserverpb_LeaseRevokeRequest(serializedBytes: body)) ?? Etcdserverpb_LeaseRevokeRequest()
                if leases[message.id] == nil {
                    outcome = .leaseFailed("etcdserver: requested lease not found")
                } else {
                    // The lease's keys go in one revision.
                    let doomed = keys(attachedTo: message.id).map { Operation.deleteRange(DeleteRangeRequest(key: $0)) }
                    let result = try store.txn(TxnRequest(success: doomed), maxOperations: Int.max)
                    publish(result.events, revision: result.revision)
                    leases[message.id] = nil
                    expiries[message.id] = nil
                    outcome = .leaseRevoked(revision: result.revision)
                }
            case .leaseRenew:
                let message = (try? Etcdserverpb_LeaseKeepAliveRequest(serializedBytes: body)) ?? Etcdserverpb_LeaseKeepAliveRequest()
                if let ttl = leases[message.id] {
                    expiries[message.id] = ContinuousClock.now + .seconds(ttl)
                    outcome = .leaseRenewed(ttl: ttl)
                } else {
                    outcome = .leaseFailed("etcdserver: requested lease not found")
                }
            case .publishAttributes:
                let message = (try? Etcdserverpb_Member(serializedBytes: body)) ?? Etcdserverpb_Member()
                if members[message.id] != nil {
                    members[message.id]?.name = message.name
                    members[message.id]?.clientURLs = message.clientUrls
                    v2.countInternalWrite()
                }
                outcome = .published
            case .memberUpdate:
                let message = (try? Etcdserverpb_Member(serializedBytes: body)) ?? Etcdserverpb_Member()
                outcome = applyMemberUpdate(message)
            case .v2:
                outcome = applyV2(Array(body))
            case .auth:
                outcome = applyAuth(body)
            case .alarm:
                let message = (try? Etcdserverpb_AlarmRequest(serializedBytes: body)) ?? Etcdserverpb_AlarmRequest()
                var alarm = Etcdserverpb_AlarmMember()
                alarm.memberID = message.memberID
                alarm.alarm = message.alarm
                switch message.action {
                case .activate:
                    if !alarms.contains(alarm) { alarms.append(alarm) }
                    outcome = .alarms([alarm])
                case .deactivate:
                    let existed = alarms.contains(alarm)
                    alarms.removeAll { $0 == alarm }
                    outcome = .alarms(existed ? [alarm] : [])
                default:
                    outcome = .alarms(alarms)
                }
            }
        } catch {
            outcome = .failed(error)
        }
        waiters.removeValue(forKey: request)?(outcome, header)
    }

    /// Whether a request adds data: puts, lease grants, txns with a put.
    static func writes(_ kind: RequestKind, _ body: [UInt8]) -> Bool {
        guard kind == .txn else { return kind.consumesSpace }
        guard let message = try? Etcdserverpb_TxnRequest(serializedBytes: body) else { return true }
        return hasPut(message)
    }

    /// Whether a txn writes in either branch (nested txns included): etcd's capped applier
    /// refuses only those while NOSPACE is raised.
    static func hasPut(_ txn: Etcdserverpb_TxnRequest) -> Bool {
        (txn.success + txn.failure).contains { operation in
            switch operation.request {
            case .requestPut: true
            case .requestTxn(let nested): hasPut(nested)
            default: false
            }
        }
    }
}
