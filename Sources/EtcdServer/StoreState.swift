import EtcdAPI
import EtcdAuth
import Foundation
import EtcdV2Store
import MVCC
import RaftCoding

/// Everything the log builds on a member, as one value for Raft snapshots: the MVCC store,
/// granted leases, raised alarms and the members. Layout: magic `ETCDSTATE` and a format
/// byte, then each part as a length-prefixed blob.
///
/// Format 4 (written now) adds users, roles and permissions. Format 3 added the v2 keys store. Format 2 kept every member (name, peer
/// and client URLs, learner) and the IDs of removed members. Format 1 kept only what
/// members published: names and client URLs. All are read.
struct StoreState {
    var store: MVCCStore
    var leases: [Int64: Int64]
    var alarms: [Etcdserverpb_AlarmMember]
    /// nil for a format-1 state (membership was then fixed at bootstrap).
    var members: [UInt64: StoreNode.MemberRecord]?
    var removed: Set<UInt64>
    /// The v2 keys (empty in formats 1 and 2).
    var v2 = V2Store()
    /// Users, roles and permissions (none before format 4).
    var auth = AuthStore()
    /// What a format-1 state knew of the members.
    var published: [UInt64: (name: String, clientURLs: [String])]

    static let magic: [UInt8] = Array("ETCDSTATE".utf8)
    static let format: UInt8 = 4

    init(store: MVCCStore, leases: [Int64: Int64], alarms: [Etcdserverpb_AlarmMember], members: [UInt64: StoreNode.MemberRecord], removed: Set<UInt64>) {
        self.store = store
        self.leases = leases
        self.alarms = alarms
        self.members = members
        self.removed = removed
        self.published = members.mapValues { ($0.name, $0.clientURLs) }
    }

    func encoded() -> [UInt8] {
        var bytes = Self.magic + [Self.format]
        bytes.appendBlob(store.encoded())
        bytes.appendInteger(UInt32(leases.count))
        for (id, ttl) in leases.sorted(by: { $0.key < $1.key }) {
            bytes.appendInteger(id)
            bytes.appendInteger(ttl)
        }
        bytes.appendInteger(UInt32(alarms.count))
        for alarm in alarms {
            bytes.appendInteger(alarm.memberID)
            bytes.appendInteger(UInt32(alarm.alarm.rawValue))
        }
        let members = self.members ?? [:]
        bytes.appendInteger(UInt32(members.count))
        for (id, member) in members.sorted(by: { $0.key < $1.key }) {
            bytes.appendInteger(id)
            bytes.appendBlob(Array(member.name.utf8))
            bytes.appendBlob(Array(member.clientURLs.joined(separator: ",").utf8))
            bytes.appendBlob(Array(member.peerURLs.joined(separator: ",").utf8))
            bytes.append(member.isLearner ? 1 : 0)
        }
        bytes.appendInteger(UInt32(removed.count))
        for id in removed.sorted() { bytes.appendInteger(id) }
        bytes.appendBlob(v2.encoded())
        // JSON: small, and its shape can grow without a new format.
        bytes.appendBlob(Array((try? JSONEncoder().encode(auth)) ?? Data()))
        return bytes
    }

    /// nil when the bytes are not a state of a known format. The store's values go to `values`.
    init?(decoding bytes: [UInt8], values: ValueLog = ValueLog()) {
        var reader = ByteReader(bytes[...])
        guard reader.bytes(Self.magic.count) == Self.magic, let format = reader.u8(), (1...4).contains(format),
            let storeBytes = reader.blob(), let store = MVCCStore(decoding: storeBytes, values: values), let leaseCount = reader.u32(),
            Int(leaseCount) <= bytes.count
        else { return nil }
        var leases: [Int64: Int64] = [:]
        for _ in 0..<leaseCount {
            guard let id = reader.u64(), let ttl = reader.u64() else { return nil }
            leases[Int64(bitPattern: id)] = Int64(bitPattern: ttl)
        }
        guard let alarmCount = reader.u32(), Int(alarmCount) <= bytes.count else { return nil }
        var alarms: [Etcdserverpb_AlarmMember] = []
        for _ in 0..<alarmCount {
            guard let member = reader.u64(), let type = reader.u32() else { return nil }
            var alarm = Etcdserverpb_AlarmMember()
            alarm.memberID = member
            alarm.alarm = Etcdserverpb_AlarmType(rawValue: Int(type)) ?? .none
            alarms.append(alarm)
        }
        func urls(_ blob: [UInt8]) -> [String] {
            let joined = String(decoding: blob, as: UTF8.self)
            return joined.isEmpty ? [] : joined.split(separator: ",").map(String.init)
        }
        guard let memberCount = reader.u32(), Int(memberCount) <= bytes.count else { return nil }
        var members: [UInt64: StoreNode.MemberRecord] = [:]
        for _ in 0..<memberCount {
            guard let id = reader.u64(), let name = reader.blob(), let clientURLs = reader.blob() else { return nil }
            var member = StoreNode.MemberRecord(name: String(decoding: name, as: UTF8.self), peerURLs: [], clientURLs: urls(clientURLs))
            if format >= 2 {
                guard let peerURLs = reader.blob(), let learner = reader.u8() else { return nil }
                member.peerURLs = urls(peerURLs)
                member.isLearner = learner == 1
            }
            members[id] = member
        }
        var removed: Set<UInt64> = []
        if format >= 2 {
            guard let removedCount = reader.u32(), Int(removedCount) <= bytes.count else { return nil }
            for _ in 0..<removedCount {
                guard let id = reader.u64() else { return nil }
                removed.insert(id)
            }
        }
        var v2 = V2Store()
        if format >= 3 {
            guard let blob = reader.blob(), let decoded = V2Store(decoding: blob) else { return nil }
            v2 = decoded
        }
        var auth = AuthStore()
        if format >= 4 {
            guard let blob = reader.blob(), let decoded = try? JSONDecoder().decode(AuthStore.self, from: Data(blob)) else { return nil }
            auth = decoded
        }
        guard reader.isEmpty else { return nil }
        self.init(store: store, leases: leases, alarms: alarms, members: members, removed: removed)
        self.v2 = v2
        self.auth = auth
        if format == 1 { self.members = nil }
    }
}
