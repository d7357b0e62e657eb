import Foundation
import MVCC
import Raft
import Storage

/// Writes a member data directory that starts from a given state: what
/// `etcdctl snapshot restore` makes from a snapshot file (a new cluster: new IDs, the
/// membership of `--initial-cluster`) and what `--force-new-cluster` makes of a surviving
/// member's own data (the same IDs, this member alone).
///
/// The directory holds the identity file and a Raft log whose snapshot is the state, at
/// `index` in `term`, committed. Members restored from one file start with identical logs.
public enum DataDirectoryBuilder {
    /// Creates `directory` (which must not exist or be empty) for member `memberID` of
    /// `clusterID`, whose members are `members` (all voters).
    static func create(
        directory: String, memberID: UInt64, clusterID: UInt64, members: [UInt64: StoreNode.MemberRecord], state: StoreState,
        index: LogIndex, term: Term
    ) throws {
        let memberDirectory = directory + "/member"
        if let existing = try? FileManager.default.contentsOfDirectory(atPath: memberDirectory), !existing.isEmpty {
            throw EtcdServerError("data-dir \"\(directory)\" exists")
        }
        try EtcdServer.createPrivateDirectory(memberDirectory)
        var rewritten = state
        rewritten.members = members
        let membership = Membership(voters: Set(members.keys))
        do {
            let (log, _) = try DurableLog.open(path: memberDirectory, initialMembership: membership)
            let snapshot = Snapshot(
                metadata: SnapshotMetadata(index: index, term: term, membership: membership), data: rewritten.encoded())
            try log.persistSnapshot(snapshot, hardState: HardState(term: term, vote: 0, commit: index))
            log.drain()
        }
        // The identity goes last: a directory without one is not a member yet, so a restore
        // cut short is started again rather than run half made.
        try MemberIdentity(memberID: memberID, clusterID: clusterID, members: members).save(memberDirectory + "/identity")
    }

    /// `etcdctl snapshot restore`: a new member directory from a snapshot file written by
    /// `etcdctl snapshot save` against `coreos etcd`. Returns the new cluster's ID.
    public static func restore(
        snapshotPath: String, name: String, initialCluster: String, token: String, advertisedPeerURLs: [String],
        directory: String
    ) throws -> (memberID: UInt64, clusterID: UInt64, revision: Int64) {
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: snapshotPath)))
        } catch {
            throw EtcdServerError("open \(snapshotPath): \(error.localizedDescription)")
        }
        var state = try EtcdSnapshotFile.decode(bytes, path: snapshotPath)
        let cluster = try InitialCluster(parsing: initialCluster, token: token)
        let own = try cluster.member(named: name, advertisedPeerURLs: advertisedPeerURLs)
        var members: [UInt64: StoreNode.MemberRecord] = [:]
        for member in cluster.members {
            members[member.id] = StoreNode.MemberRecord(name: member.name, peerURLs: member.peerURLs, clientURLs: [])
        }
        // A new cluster: no removed members, no alarms of members that are gone.
        state.removed = []
        state.alarms = []
        try create(
            directory: directory, memberID: own.id, clusterID: cluster.clusterID, members: members, state: state,
            index: LogIndex(members.count), term: 1)
        return (own.id, cluster.clusterID, state.store.currentRevision)
    }
}
