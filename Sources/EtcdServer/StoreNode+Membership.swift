import EtcdAPI
import EtcdV2Store
import Foundation
import Raft
import RaftTransport
import SwiftProtobuf

/// Membership changes: adding (voter or learner), removing, promoting a learner and moving
/// a member to other peer URLs, with etcd's strict reconfiguration checks. Changes run on
/// the leader, which knows which members are reachable and how far each has caught up;
/// the Cluster service forwards a request that reaches a follower.
///
/// Adds, removals and promotions are Raft configuration entries (one at a time); their
/// context carries the request ID and the member (`Etcdserverpb_Member`), so every member
/// learns the new member's URLs from the log. A URL update is an ordinary entry.
extension StoreNode {
    /// Why a membership request was not carried out, with etcd's message.
    enum MembershipOutcome: Sendable {
        case done(memberID: UInt64)
        /// This member is not the leader: the request belongs there (client URL, if known).
        case notLeader(leaderClientURL: String?)
        case refused(code: RefusalCode, message: String)
        case timedOut
    }

    enum RefusalCode: Sendable { case notFound, failedPrecondition, invalidArgument, unavailable }

    static let memberNotFound = MembershipOutcome.refused(code: .notFound, message: "etcdserver: member not found")
    static let notEnoughStarted = MembershipOutcome.refused(
        code: .failedPrecondition, message: "etcdserver: re-configuration failed due to not enough started members")

    /// The Raft membership the member records describe.
    var currentMembership: Membership {
        Membership(
            voters: Set(members.filter { !$0.value.isLearner }.keys), learners: Set(members.filter { $0.value.isLearner }.keys))
    }

    /// Voters reachable now: this member and those with an open peer connection.
    private func startedVoters(excluding excluded: UInt64? = nil) -> Int {
        currentMembership.voters.filter { id in
            id != excluded && (id == memberID || transport?.isConnected(to: id) == true)
        }.count
    }

    /// Whether one more voter keeps a quorum of reachable voters (`reachableExtra`: the
    /// newcomer itself when it is known to be up). As etcd, a lone member may always add a
    /// second: that is how a cluster restored or forced down to one member grows again.
    private func canAddVoter(reachableExtra: Int) -> Bool {
        guard strictReconfigCheck else { return true }
        let voters = currentMembership.voters.count
        if voters == 1 && startedVoters() == 1 { return true }
        return startedVoters() + reachableExtra >= (voters + 1) / 2 + 1
    }

    private var leaderGate: MembershipOutcome? {
        guard raft.role == .leader else {
            return .notLeader(leaderClientURL: members[raft.leader]?.clientURLs.first)
        }
        return nil
    }

    /// `MemberAdd`: a new member with a fresh ID (never one in use or removed before).
    func addMember(peerURLs: [String], learner: Bool, maxLearners: Int) async -> MembershipOutcome {
        if let gate = leaderGate { return gate }
        guard !peerURLs.isEmpty else { return .refused(code: .invalidArgument, message: "etcdserver: member peer URLs are empty") }
        for url in peerURLs {
            if (try? peerAddress(url, flag: "peer URL")) == nil {
                return .refused(code: .invalidArgument, message: "etcdserver: invalid peer URL \(url)")
            }
        }
        if members.values.contains(where: { !Set($0.peerURLs).isDisjoint(with: peerURLs) }) {
            return .refused(code: .failedPrecondition, message: "etcdserver: Peer URLs already exists")
        }
        if learner {
            if members.values.filter(\.isLearner).count >= maxLearners {
                return .refused(code: .failedPrecondition, message: "etcdserver: too many learner members in cluster")
            }
        } else if !canAddVoter(reachableExtra: 0) {
            return Self.notEnoughStarted
        }
        var id: UInt64 = 0
        repeat {
            // etcd mixes the time into a new member's ID, so re-adding the same URLs after a
            // removal gives another ID: a removed ID never comes back.
            id = EtcdIdentity.memberID(peerURLs: peerURLs, token: "\(clusterID)/\(DispatchTime.now().uptimeNanoseconds)/\(UInt64.random(in: 0...UInt64.max))")
        } while id == 0 || members[id] != nil || removedMembers.contains(id)
        var member = Etcdserverpb_Member()
        member.id = id
        member.peerUrls = peerURLs
        member.isLearner = learner
        return await proposeChange(MembershipChange(learner ? .addLearner : .addVoter, node: id), member: member)
    }

    /// `MemberRemove`. Removing the leader hands leadership to the most advanced voter
    /// first, so the cluster keeps a leader that is staying.
    func removeMember(_ id: UInt64) async -> MembershipOutcome {
        if let gate = leaderGate { return gate }
        guard let record = members[id] else {
            if removedMembers.contains(id) { return .refused(code: .notFound, message: "etcdserver: ID removed") }
            return Self.memberNotFound
        }
        if !record.isLearner {
            let remaining = currentMembership.voters.count - 1
            guard remaining > 0 else { return Self.notEnoughStarted }
            if strictReconfigCheck && startedVoters(excluding: id) < remaining / 2 + 1 { return Self.notEnoughStarted }
        }
        if id == memberID {
            let others = currentMembership.voters.subtracting([memberID])
            guard let target = others.max(by: { (raft.matchIndex(of: $0) ?? 0, $1) < (raft.matchIndex(of: $1) ?? 0, $0) }) else {
                return Self.notEnoughStarted
            }
            guard case .moved = await moveLeader(to: target) else {
                return .refused(code: .unavailable, message: "etcdserver: leader transfer before removing the leader failed")
            }
        }
        var member = Etcdserverpb_Member()
        member.id = id
        return await proposeChange(MembershipChange(.remove, node: id), member: member)
    }

    /// `MemberPromote`: only a learner that has caught up (etcd: 90% of the leader's log).
    func promoteMember(_ id: UInt64) async -> MembershipOutcome {
        if let gate = leaderGate { return gate }
        guard let record = members[id] else { return Self.memberNotFound }
        guard record.isLearner else {
            return .refused(code: .failedPrecondition, message: "etcdserver: can only promote a learner member")
        }
        let match = raft.matchIndex(of: id) ?? 0
        if Double(match) < Double(raft.lastIndex) * 0.9 {
            return .refused(
                code: .failedPrecondition, message: "etcdserver: can only promote a learner member which is in sync with leader")
        }
        if !canAddVoter(reachableExtra: transport?.isConnected(to: id) == true ? 1 : 0) { return Self.notEnoughStarted }
        var member = Etcdserverpb_Member()
        member.id = id
        return await proposeChange(MembershipChange(.promote, node: id), member: member)
    }

    /// `MemberUpdate`: new peer URLs for a member (through the log, not a Raft change).
    func updateMember(_ id: UInt64, peerURLs: [String]) async -> MembershipOutcome {
        if let gate = leaderGate { return gate }
        guard members[id] != nil else { return Self.memberNotFound }
        if members.contains(where: { $0.key != id && !Set($0.value.peerURLs).isDisjoint(with: peerURLs) }) {
            return .refused(code: .failedPrecondition, message: "etcdserver: Peer URLs already exists")
        }
        var member = Etcdserverpb_Member()
        member.id = id
        member.peerUrls = peerURLs
        guard let body = try? member.serializedBytes() as [UInt8] else { return .refused(code: .invalidArgument, message: "etcdserver: bad member") }
        switch await propose(.memberUpdate, body) {
        case .membersChanged: return .done(memberID: id)
        case .memberFailed(let message): return .refused(code: .failedPrecondition, message: message)
        case .noLeader: return .refused(code: .unavailable, message: "etcdserver: no leader")
        default: return .timedOut
        }
    }

    /// Proposes a configuration entry and waits for it to be applied here. One change is
    /// in flight at a time: a request arriving while another is pending waits its turn.
    private func proposeChange(_ change: MembershipChange, member: Etcdserverpb_Member) async -> MembershipOutcome {
        let deadline = ContinuousClock.now + requestTimeout
        while true {
            let request = takeRequestID()
            var context: [UInt8] = []
            withUnsafeBytes(of: request.littleEndian) { context.append(contentsOf: $0) }
            context += (try? member.serializedBytes() as [UInt8]) ?? []
            var withContext = change
            withContext.context = context
            switch raft.proposeMembershipChange(withContext) {
            case .appended, .forwarded:
                let applied: Applied = await withCheckedContinuation { continuation in
                    waitForApply(request) { applied, _ in continuation.resume(returning: applied) }
                }
                switch applied {
                case .membersChanged: return .done(memberID: change.node)
                case .memberFailed(let message): return .refused(code: .failedPrecondition, message: message)
                default: return .timedOut
                }
            case .dropped(.membershipChangePending), .dropped(.leadershipTransferInProgress), .dropped(.noLeader):
                // Another change first, or a leader being chosen (right after a handover):
                // wait for it, as etcd's proposals wait for a leader.
                guard ContinuousClock.now < deadline else { return .timedOut }
                try? await Task.sleep(for: .milliseconds(20))
            case .dropped(.invalidMembershipChange):
                return .refused(code: .failedPrecondition, message: "etcdserver: the membership change does not apply to the current members")
            case .dropped:
                return .refused(code: .unavailable, message: "etcdserver: no leader")
            }
        }
    }

    /// Applies a committed configuration entry to the member records (Raft has already
    /// changed its own membership) and answers the request that proposed it.
    func applyMembershipChange(_ data: [UInt8]) {
        guard let change = MembershipChange(decoding: data), change.context.count >= 8 else { return }
        var request: UInt64 = 0
        for offset in 0..<8 { request |= UInt64(change.context[offset]) << (8 * UInt64(offset)) }
        let member = (try? Etcdserverpb_Member(serializedBytes: Array(change.context[8...]))) ?? Etcdserverpb_Member()
        guard change.applied(to: currentMembership) != nil else {
            // Replayed on a member that joined later (it started from the current members),
            // or overtaken by another change: nothing to do.
            waiters.removeValue(forKey: request)?(.memberFailed("etcdserver: the membership change no longer applies"), header)
            return
        }
        switch change.operation {
        case .addVoter, .addLearner:
            members[change.node] = MemberRecord(
                name: member.name, peerURLs: member.peerUrls, clientURLs: [], isLearner: change.operation == .addLearner)
            setTransportPeer(change.node)
        case .remove:
            members[change.node] = nil
            removedMembers.insert(change.node)
            if change.node == memberID { markRemoved() }
        case .promote:
            members[change.node]?.isLearner = false
        }
        v2.countInternalWrite()
        waiters.removeValue(forKey: request)?(.membersChanged, header)
    }

    func applyMemberUpdate(_ member: Etcdserverpb_Member) -> Applied {
        guard members[member.id] != nil else { return .memberFailed("etcdserver: member not found") }
        members[member.id]?.peerURLs = member.peerUrls
        setTransportPeer(member.id)
        v2.countInternalWrite()
        return .membersChanged
    }

    /// Points the transport at every member's first peer URL. Removed members keep their
    /// address: they get the removal notice when they call.
    func syncTransportPeers() {
        for id in members.keys { setTransportPeer(id) }
    }

    private func setTransportPeer(_ id: UInt64) {
        guard id != memberID, let url = members[id]?.peerURLs.first, let address = try? peerAddress(url, flag: "peer URL")
        else { return }
        transport?.setPeer(id, address)
    }

    /// What a member sends a removed member that calls it (a heartbeat answer in term 0,
    /// which no Raft message carries, with this context).
    static let removedNotice: [UInt8] = Array("coreos-etcd: member removed from the cluster".utf8)

    /// Whether a peer message goes on to Raft: messages of removed members do not (they are
    /// told instead), and a removal notice stops this member.
    func admit(_ message: Raft.Message) -> Bool {
        if message.term == 0 && message.kind == .heartbeatResponse && message.context == Self.removedNotice {
            if members[message.from] != nil || removedMembers.contains(message.from) { markRemoved() }
            return false
        }
        if removedMembers.contains(message.from) {
            var notice = Raft.Message(.heartbeatResponse, from: memberID, to: message.from, term: 0)
            notice.context = Self.removedNotice
            transport?.send([notice])
            return false
        }
        return true
    }

    private func markRemoved() { isRemoved = true }

    /// Returns once this member has been removed from the cluster; throws when cancelled
    /// (the server is stopping for another reason).
    func waitUntilRemoved() async throws {
        while !isRemoved { try await Task.sleep(for: .milliseconds(100)) }
    }
}
