import EtcdAPI
import MVCC
import RaftCoding

/// Everything the log builds on a member, as one value for Raft snapshots: the MVCC store,
/// granted leases, raised alarms and what members published. Layout: magic `ETCDSTATE`
/// and format 1, then each part as a length-prefixed blob.
struct StoreState {
    var store: MVCCStore
    var leases: [Int64: Int64]
    var alarms: [Etcdserverpb_AlarmMember]
    var published: [UInt64: (name: String, clientURLs: [String])]

    static let magic: [UInt8] = Array("ETCDSTATE".utf8)
    static let format: UInt8 = 1

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
        bytes.appendInteger(UInt32(published.count))
        for (id, member) in published.sorted(by: { $0.key < $1.key }) {
            bytes.appendInteger(id)
            bytes.appendBlob(Array(member.name.utf8))
            bytes.appendBlob(Array(member.clientURLs.joined(separator: ",").utf8))
        }
        return bytes
    }

    init(store: MVCCStore, leases: [Int64: Int64], alarms: [Etcdserverpb_AlarmMember], published: [UInt64: (name: String, clientURLs: [String])]) {
        self.store = store
        self.leases = leases
        self.alarms = alarms
        self.published = published
    }

    /// nil when the bytes are not a state of this format. The store's values go to `values`.
    init?(decoding bytes: [UInt8], values: ValueLog = ValueLog()) {
        var reader = ByteReader(bytes[...])
        guard reader.bytes(Self.magic.count) == Self.magic, reader.u8() == Self.format,
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
        guard let memberCount = reader.u32(), Int(memberCount) <= bytes.count else { return nil }
        var published: [UInt64: (name: String, clientURLs: [String])] = [:]
        for _ in 0..<memberCount {
            guard let id = reader.u64(), let name = reader.blob(), let urls = reader.blob() else { return nil }
            let joined = String(decoding: urls, as: UTF8.self)
            published[id] = (String(decoding: name, as: UTF8.self), joined.isEmpty ? [] : joined.split(separator: ",").map(String.init))
        }
        guard reader.isEmpty else { return nil }
        self.init(store: store, leases: leases, alarms: alarms, published: published)
    }
}
