import EtcdAPI
import Foundation
import MVCC
import RaftCoding
import Testing

@testable import EtcdServer

@Suite struct InitialClusterTests {
    @Test func membersAndIDsAsEtcdComputesThem() throws {
        let cluster = try InitialCluster(parsing: "default=http://localhost:2380", token: "etcd-cluster")
        #expect(cluster.members.map(\.id) == [0x8e9e05c52164694d])
        #expect(cluster.clusterID == 0xcdf818194e3a8c32)
        let three = try InitialCluster(
            parsing: "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,a=http://10.0.1.1:2380,c=http://10.0.0.3:2380", token: "t")
        #expect(three.members.count == 3)
        #expect(three.members.map(\.id) == three.members.map(\.id).sorted())
        let a = try three.member(named: "a", advertisedPeerURLs: ["http://10.0.1.1:2380", "http://10.0.0.1:2380"])
        #expect(a.peerURLs.count == 2)
    }

    @Test func badClustersAreRefusedWithEtcdsWords() {
        #expect(throws: EtcdServerError.self) { try InitialCluster(parsing: "", token: "t") }
        #expect(throws: EtcdServerError.self) { try InitialCluster(parsing: "a", token: "t") }
        #expect(throws: EtcdServerError.self) { try InitialCluster(parsing: "a=ftp://x:1", token: "t") }
        #expect(throws: EtcdServerError.self) { try InitialCluster(parsing: "a=http://x:1,b=http://x:1", token: "t") }
        do {
            let cluster = try InitialCluster(parsing: "a=http://x:1", token: "t")
            _ = try cluster.member(named: "b", advertisedPeerURLs: ["http://x:1"])
            Issue.record("an unknown name was accepted")
        } catch {
            #expect(error.description == "couldn't find local name \"b\" in the initial cluster configuration")
        }
    }
}

@Suite struct AutoCompactionTests {
    @Test func periodicKeepsTheRetentionOfHistory() throws {
        var policy = try #require(try AutoCompaction.parse(mode: "periodic", retention: "1", parseDuration: { _ in nil }))
        #expect(policy.checkInterval == .seconds(360))
        // Samples every 6 minutes; after an hour the sample from an hour ago is the target.
        var compacted: Int64 = 0
        var targets: [Int64] = []
        for step in 0...12 {
            let now = Duration.seconds(360 * step)
            if let target = policy.check(at: now, currentRevision: Int64(100 + 10 * step), compactedRevision: compacted) {
                targets.append(target)
                compacted = target
            }
        }
        #expect(targets == [100, 110, 120])
    }

    @Test func revisionModeKeepsTheLastRevisions() throws {
        var policy = try #require(try AutoCompaction.parse(mode: "revision", retention: "1000", parseDuration: { _ in nil }))
        #expect(policy.checkInterval == .seconds(300))
        #expect(policy.check(at: .zero, currentRevision: 500, compactedRevision: 0) == nil)
        #expect(policy.check(at: .zero, currentRevision: 5000, compactedRevision: 0) == 4000)
        #expect(policy.check(at: .zero, currentRevision: 5000, compactedRevision: 4000) == nil)
    }

    @Test func flagsParseAsEtcd() throws {
        #expect(try AutoCompaction.parse(mode: nil, retention: nil, parseDuration: { _ in nil }) == nil)
        #expect(try AutoCompaction.parse(mode: "periodic", retention: "0", parseDuration: { _ in nil }) == nil)
        let minutes = try AutoCompaction.parse(mode: "periodic", retention: "30m", parseDuration: { $0 == "30m" ? .seconds(1800) : nil })
        #expect(minutes == AutoCompaction(mode: .periodic(.seconds(1800))))
        #expect(throws: EtcdServerError.self) { try AutoCompaction.parse(mode: "hourly", retention: "1", parseDuration: { _ in nil }) }
        #expect(throws: EtcdServerError.self) { try AutoCompaction.parse(mode: "revision", retention: "1h", parseDuration: { _ in nil }) }
    }
}

@Suite struct PrometheusTextTests {
    @Test func numbersAsGoWritesThem() {
        #expect(PrometheusText.number(0) == "0")
        #expect(PrometheusText.number(20480) == "20480")
        #expect(PrometheusText.number(2_147_483_648) == "2.147483648e+09")
        #expect(PrometheusText.number(1_000_000) == "1e+06")
        #expect(PrometheusText.number(0.001) == "0.001")
        #expect(PrometheusText.number(0.00476697) == "0.00476697")
        #expect(PrometheusText.number(0.00001) == "1e-05")
        #expect(PrometheusText.number(8.192) == "8.192")
        #expect(PrometheusText.number(-3.5) == "-3.5")
    }
}

@Suite struct StoreStateTests {
    @Test func stateAndSnapshotFileRoundTripAndRefuseDamage() throws {
        var store = MVCCStore()
        _ = try store.put(PutRequest(key: Array("a".utf8), value: Array("1".utf8)))
        var alarm = Etcdserverpb_AlarmMember()
        alarm.memberID = 7
        alarm.alarm = .nospace
        let members: [UInt64: StoreNode.MemberRecord] = [
            7: StoreNode.MemberRecord(name: "m7", peerURLs: ["http://p:1"], clientURLs: ["http://a:1", "http://b:2"]),
            9: StoreNode.MemberRecord(name: "", peerURLs: ["http://p:2"], clientURLs: [], isLearner: true),
        ]
        let state = StoreState(store: store, leases: [5: 60], alarms: [alarm], members: members, removed: [3, 4])
        let decoded = try #require(StoreState(decoding: state.encoded()))
        #expect(decoded.store.encoded() == store.encoded())
        #expect(decoded.leases == [5: 60])
        #expect(decoded.alarms == [alarm])
        #expect(decoded.members == members)
        #expect(decoded.removed == [3, 4])
        let file = EtcdSnapshotFile.encode(state.encoded())
        #expect(file.count % 512 == 32)
        #expect(try EtcdSnapshotFile.decode(file, path: "f").store.currentRevision == 2)
        var damaged = file
        damaged[40] ^= 1
        #expect(throws: EtcdServerError.self) { try EtcdSnapshotFile.decode(damaged, path: "f") }
        #expect(StoreState(decoding: Array(state.encoded().dropLast())) == nil)
    }

    /// A format-1 state (written before membership changes) still loads: names and client
    /// URLs, no member records of its own.
    @Test func readsFormatOne() throws {
        var bytes = StoreState.magic + [1]
        bytes.appendBlob(MVCCStore().encoded())
        bytes.appendInteger(UInt32(0))
        bytes.appendInteger(UInt32(0))
        bytes.appendInteger(UInt32(1))
        bytes.appendInteger(UInt64(7))
        bytes.appendBlob(Array("m7".utf8))
        bytes.appendBlob(Array("http://a:1".utf8))
        let decoded = try #require(StoreState(decoding: bytes))
        #expect(decoded.members == nil)
        #expect(decoded.published[7]?.name == "m7")
        #expect(decoded.published[7]?.clientURLs == ["http://a:1"])
    }

    /// The peer port's `/members` answer is what a joining member reads back.
    @Test func peerMemberListRoundTrips() throws {
        let members: [UInt64: StoreNode.MemberRecord] = [5: StoreNode.MemberRecord(name: "a", peerURLs: ["http://p:1"], clientURLs: ["http://c:1"], isLearner: true)]
        let answer = PeerMembers.respond(path: "/members", members: members, clusterID: 0xabc)
        #expect(answer.status == 200)
        #expect(answer.headers.contains { $0 == ("X-Etcd-Cluster-ID", "abc") })
        let listed = try JSONDecoder().decode([PeerMembers.Listed].self, from: Data(answer.body))
        #expect(listed == [PeerMembers.Listed(id: 5, name: "a", peerURLs: ["http://p:1"], clientURLs: ["http://c:1"], isLearner: true)])
        #expect(PeerMembers.respond(path: "/nothing", members: members, clusterID: 1).status == 404)
    }
}
