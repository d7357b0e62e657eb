import Foundation
import Raft

/// Who this member is and which cluster it belongs to, fixed when the data directory is
/// created. As with etcd, a restart ignores `--initial-cluster` and the token: the IDs
/// come from `member/identity`, so changed flags cannot turn a member into another.
struct MemberIdentity {
    var memberID: UInt64
    var clusterID: UInt64
    var members: [UInt64: StoreNode.MemberRecord]

    static func loadOrBootstrap(directory: String, configuration: EtcdServerConfiguration) async throws -> MemberIdentity {
        let path = directory + "/identity"
        if FileManager.default.fileExists(atPath: path) {
            return try load(path)
        }
        let cluster = try configuration.resolvedInitialCluster()
        let own = try cluster.member(named: configuration.name, advertisedPeerURLs: configuration.initialAdvertisePeerURLs)
        if configuration.initialClusterState == .existing {
            // Added with `member add` beforehand: the running members say who we are.
            let others = cluster.members.filter { $0.id != own.id }.flatMap(\.peerURLs)
            let joined = try await PeerMembers.join(peerURLs: others, advertised: configuration.initialAdvertisePeerURLs)
            try joined.save(path)
            return joined
        }
        var members: [UInt64: StoreNode.MemberRecord] = [:]
        for member in cluster.members {
            members[member.id] = StoreNode.MemberRecord(name: member.name, peerURLs: member.peerURLs, clientURLs: [])
        }
        let identity = MemberIdentity(memberID: own.id, clusterID: cluster.clusterID, members: members)
        try identity.save(path)
        return identity
    }

    /// One line per fact: `member ID`, `cluster ID`, then `peer ID URL,… NAME` (the name
    /// last, as it may hold spaces; `learner` instead of `peer` for a learner).
    func save(_ path: String) throws {
        var text = "member \(String(memberID, radix: 16))\ncluster \(String(clusterID, radix: 16))\n"
        for (id, member) in members.sorted(by: { $0.key < $1.key }) {
            let kind = member.isLearner ? "learner" : "peer"
            text += "\(kind) \(String(id, radix: 16)) \(member.peerURLs.joined(separator: ",")) \(member.name)\n"
        }
        let temporary = path + ".tmp"
        try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
        chmod(temporary, 0o600)
        let descriptor = open(temporary, O_RDONLY)
        if descriptor >= 0 {
            fsync(descriptor)
            close(descriptor)
        }
        guard rename(temporary, path) == 0 else { throw EtcdServerError("cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    private static func load(_ path: String) throws -> MemberIdentity {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var memberID: UInt64?
        var clusterID: UInt64?
        var members: [UInt64: StoreNode.MemberRecord] = [:]
        for (number, line) in text.split(separator: "\n").enumerated() {
            let words = line.split(separator: " ", maxSplits: 3).map(String.init)
            switch (words.first, words.count) {
            case ("member", 2): memberID = UInt64(words[1], radix: 16)
            case ("cluster", 2): clusterID = UInt64(words[1], radix: 16)
            case ("peer", 4), ("learner", 4), ("peer", 3), ("learner", 3):
                guard let id = UInt64(words[1], radix: 16) else { fallthrough }
                members[id] = StoreNode.MemberRecord(
                    name: words.count == 4 ? words[3] : "", peerURLs: words[2].split(separator: ",").map(String.init), clientURLs: [],
                    isLearner: words[0] == "learner")
            default:
                throw EtcdServerError("\(path):\(number + 1): unreadable line \"\(line)\"")
            }
        }
        guard let memberID, let clusterID, members[memberID] != nil else {
            throw EtcdServerError("\(path): member, cluster or own peer line missing")
        }
        return MemberIdentity(memberID: memberID, clusterID: clusterID, members: members)
    }
}
