/// A member of a Raft group. 0 means "none".
public typealias NodeID = UInt64
public typealias Term = UInt64
/// A log position; the first entry has index 1.
public typealias LogIndex = UInt64

/// One log entry: client data, or a membership change the core applies itself.
public struct Entry: Sendable, Hashable {
    public enum Kind: UInt8, Sendable, Hashable {
        case normal = 0
        case configurationChange = 1
    }

    public var term: Term
    public var index: LogIndex
    public var kind: Kind
    public var data: [UInt8]

    public init(term: Term, index: LogIndex, kind: Kind = .normal, data: [UInt8] = []) {
        self.term = term
        self.index = index
        self.kind = kind
        self.data = data
    }

    /// What flow control counts for this entry.
    var byteSize: Int { data.count + 24 }
}

/// What must be on disk before any message that depends on it is sent.
public struct HardState: Sendable, Hashable {
    public var term: Term
    public var vote: NodeID
    public var commit: LogIndex

    public init(term: Term = 0, vote: NodeID = 0, commit: LogIndex = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }
}

/// The members of the group: voters decide, learners only receive the log.
public struct Membership: Sendable, Hashable {
    public var voters: Set<NodeID>
    public var learners: Set<NodeID>

    public init(voters: Set<NodeID> = [], learners: Set<NodeID> = []) {
        self.voters = voters
        self.learners = learners
    }

    public var all: Set<NodeID> { voters.union(learners) }
    public func contains(_ id: NodeID) -> Bool { voters.contains(id) || learners.contains(id) }
    var quorum: Int { voters.count / 2 + 1 }
}

/// A single-server membership change (see ``RaftNode/proposeMembershipChange(_:)``).
public struct MembershipChange: Sendable, Hashable {
    public enum Operation: UInt8, Sendable, Hashable {
        case addVoter = 0
        case addLearner = 1
        case remove = 2
        /// A learner becomes a voter.
        case promote = 3
    }

    public var operation: Operation
    public var node: NodeID
    /// Opaque to Raft (etcd puts the member's URLs here).
    public var context: [UInt8]

    public init(_ operation: Operation, node: NodeID, context: [UInt8] = []) {
        self.operation = operation
        self.node = node
        self.context = context
    }

    /// Encoding inside a configuration-change entry: operation, node (little endian), context.
    public func encoded() -> [UInt8] {
        var bytes = [operation.rawValue]
        withUnsafeBytes(of: node.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes + context
    }

    public init?(decoding bytes: [UInt8]) {
        guard bytes.count >= 9, let operation = Operation(rawValue: bytes[0]) else { return nil }
        var node: UInt64 = 0
        for offset in 0..<8 { node |= UInt64(bytes[1 + offset]) << (8 * UInt64(offset)) }
        self.init(operation, node: node, context: Array(bytes[9...]))
    }

    /// The membership after this change, or nil when it makes no sense (removing a
    /// stranger, adding a voter twice, leaving no voter).
    public func applied(to membership: Membership) -> Membership? {
        var result = membership
        switch operation {
        case .addVoter:
            guard !membership.voters.contains(node) else { return nil }
            result.learners.remove(node)
            result.voters.insert(node)
        case .addLearner:
            guard !membership.contains(node) else { return nil }
            result.learners.insert(node)
        case .remove:
            guard membership.contains(node) else { return nil }
            result.voters.remove(node)
            result.learners.remove(node)
            guard !result.voters.isEmpty else { return nil }
        case .promote:
            guard membership.learners.contains(node) else { return nil }
            result.learners.remove(node)
            result.voters.insert(node)
        }
        return result
    }
}

/// Where a snapshot sits in the log and the membership at that point.
public struct SnapshotMetadata: Sendable, Hashable {
    public var index: LogIndex
    public var term: Term
    public var membership: Membership

    public init(index: LogIndex, term: Term, membership: Membership) {
        self.index = index
        self.term = term
        self.membership = membership
    }
}

/// A state-machine snapshot: opaque data the host produced at `metadata.index`.
public struct Snapshot: Sendable, Hashable {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata, data: [UInt8]) {
        self.metadata = metadata
        self.data = data
    }
}

/// A message between members. One struct for all kinds keeps the transport simple; the
/// fields each kind uses are listed with the kind.
public struct Message: Sendable, Hashable {
    public enum Kind: UInt8, Sendable, Hashable {
        /// `index`/`logTerm`: the entry before `entries`; `commit`.
        case append = 0
        /// `index`: the follower's match (or the rejected index with `reject`);
        /// `rejectHint`/`logTerm`: where the leader should probe next.
        case appendResponse = 1
        /// `commit`; `context` carries a ReadIndex round.
        case heartbeat = 2
        case heartbeatResponse = 3
        /// `index`/`logTerm`: the candidate's last entry; `context` is "transfer" when a
        /// leader handed over.
        case vote = 4
        case voteResponse = 5
        case preVote = 6
        case preVoteResponse = 7
        /// One chunk of a snapshot: `snapshotChunk`.
        case snapshot = 8
        /// A follower or learner asks the leader for a linearizable read point.
        case readIndex = 9
        /// `index`: the read point for `context`.
        case readIndexResponse = 10
        /// Campaign now, ignoring leases: the leader is handing over.
        case timeoutNow = 11
        /// A follower forwards proposals (`entries`) to the leader.
        case propose = 12
        /// A follower asks the leader to transfer leadership to `from`'s choice in `index`.
        case transferLeader = 13
    }

    public var kind: Kind
    public var from: NodeID
    public var to: NodeID
    public var term: Term
    public var logTerm: Term = 0
    public var index: LogIndex = 0
    public var entries: [Entry] = []
    public var commit: LogIndex = 0
    public var reject: Bool = false
    public var rejectHint: LogIndex = 0
    public var context: [UInt8] = []
    public var snapshotChunk: SnapshotChunk? = nil

    public init(_ kind: Kind, from: NodeID, to: NodeID, term: Term) {
        self.kind = kind
        self.from = from
        self.to = to
        self.term = term
    }
}

/// A piece of a snapshot on its way to a follower; `offset` orders the pieces.
public struct SnapshotChunk: Sendable, Hashable {
    public var metadata: SnapshotMetadata
    public var offset: Int
    public var totalSize: Int
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata, offset: Int, totalSize: Int, data: [UInt8]) {
        self.metadata = metadata
        self.offset = offset
        self.totalSize = totalSize
        self.data = data
    }

    public var isLast: Bool { offset + data.count >= totalSize }
}

/// A linearizable read point: once the host has applied `index`, it may answer the read
/// that asked with `context`.
public struct ReadState: Sendable, Hashable {
    public var index: LogIndex
    public var context: [UInt8]
}

public enum Role: Sendable, Hashable {
    case follower, preCandidate, candidate, leader
}

/// Volatile state the host may want to show or react to.
public struct SoftState: Sendable, Hashable {
    public var leader: NodeID
    public var role: Role
}

/// The work the host must do, in order: persist `hardState`, `entries` and `snapshot`
/// (with one sync when `mustSync`), then send `messages`, then apply `snapshot` and
/// `committedEntries` to the state machine and answer `readStates` once applied; then
/// call ``RaftNode/advance(_:)``.
public struct Ready: Sendable {
    public var softState: SoftState?
    public var hardState: HardState?
    public var entries: [Entry] = []
    public var snapshot: Snapshot?
    public var committedEntries: [Entry] = []
    public var messages: [Message] = []
    public var readStates: [ReadState] = []

    /// Whether the disk must be synced before the messages go out: for entries, a
    /// snapshot, or a new term or vote. A hard state that only moved the commit index may
    /// be written without a sync (as etcd): a commit index lost in a crash is learned
    /// again from the leader, or committed again by a lone member.
    public var mustSync: Bool { termOrVoteChanged || !entries.isEmpty || snapshot != nil }
    /// Set by ``RaftNode/ready()`` when `hardState` carries a new term or vote.
    public var termOrVoteChanged = false
}

/// What became of a proposal.
public enum ProposalOutcome: Sendable, Hashable {
    /// Appended by this leader at `index` in `term`: committed if that entry is later
    /// applied with the same term.
    case appended(index: LogIndex, term: Term)
    /// Sent to the leader; its fate shows when the entry is applied.
    case forwarded(to: NodeID)
    case dropped(ProposalDropReason)
}

public enum ProposalDropReason: Sendable, Hashable {
    case noLeader
    case leadershipTransferInProgress
    /// Another membership change is not applied yet (one at a time).
    case membershipChangePending
    /// The change does not apply to the current membership.
    case invalidMembershipChange
    /// This node is not a member (removed, or not added yet).
    case notAMember
}
