import EtcdAPI
import EtcdClient
import Foundation
import SwiftProtobuf
import TestSupport
import Testing

/// EtcdClient against real etcd 3.4 members started on loopback. Each test owns its
/// cluster (distinct ports) and stops it by PID when done, also on failure.
@Suite("EtcdClient against etcd 3.4 and coreos etcd", .serialized)
struct EtcdClientInteropTests {
    /// Generous deadlines: CI machines run these next to CPU-heavy suites on two cores.
    static func configuration(_ cluster: EtcdCluster) throws -> EtcdClientConfiguration {
        EtcdClientConfiguration(
            endpoints: try cluster.endpoints.map { try EtcdEndpoint(parsing: $0) }, requestTimeout: .seconds(20))
    }

    @Test(arguments: EtcdCluster.Server.allCases) func keyValueAndTransactions(server: EtcdCluster.Server) async throws {
        let cluster = try EtcdCluster(size: 1, basePort: 26100 + server.portOffset, server: server)
        defer { cluster.shutdown() }
        try await EtcdClient.withClient(try Self.configuration(cluster)) { etcd in
            let clock = ContinuousClock()
            let began = clock.now
            let first: Etcdserverpb_PutResponse
            do { first = try await etcd.put("app/a", "1") } catch {
                Issue.record("first put failed after \(clock.now - began): \(error)")
                throw error
            }
            try await etcd.put("app/b", "2")
            try await etcd.put("other", "x")
            let all = try await etcd.get("app/", prefix: true)
            #expect(all.count == 2)
            #expect(all.kvs.map { String(decoding: $0.value, as: UTF8.self) } == ["1", "2"])

            var limited = Etcdserverpb_RangeRequest()
            (limited.key, limited.rangeEnd) = EtcdKeyRange.prefix(Data("app/".utf8))
            limited.limit = 1
            limited.sortOrder = .descend
            limited.sortTarget = .key
            let page = try await etcd.range(limited)
            #expect(page.more && page.count == 2 && page.kvs.first?.key == Data("app/b".utf8))

            // Reads at an old revision see the old state.
            var old = Etcdserverpb_RangeRequest()
            old.key = Data("app/b".utf8)
            old.revision = first.header.revision
            #expect(try await etcd.range(old).kvs.isEmpty)

            // Compare-and-swap: succeeds once, then fails on the changed value.
            let swap = Etcdserverpb_TxnRequest.with {
                $0.compare = [.value("app/a", .equal, "1")]
                $0.success = [.put("app/a", "10"), .get("app/a")]
                $0.failure = [.get("app/a")]
            }
            let won = try await etcd.txn(swap)
            #expect(won.succeeded)
            let lost = try await etcd.txn(swap)
            #expect(!lost.succeeded)
            if case .responseRange(let range) = lost.responses.first?.response {
                #expect(range.kvs.first?.value == Data("10".utf8))
            } else {
                Issue.record("failure branch must return the range")
            }
            // Nested transaction inside the success branch.
            let nested = Etcdserverpb_TxnRequest.with {
                $0.success = [
                    .with {
                        $0.requestTxn = .with {
                            $0.compare = [.version("app/b", .equal, 1)]
                            $0.success = [.delete("app/", prefix: true)]
                        }
                    }
                ]
            }
            #expect(try await etcd.txn(nested).succeeded)
            #expect(try await etcd.get("app/", prefix: true).count == 0)

            // The server's error text is kept: 1.6 MiB is over etcd's 1.5 MiB request limit.
            var big = Etcdserverpb_PutRequest()
            big.key = Data("big".utf8)
            big.value = Data(repeating: 0x78, count: 1_600_000)
            do {
                _ = try await etcd.put(big)
                Issue.record("a 1.6 MB value must be refused")
            } catch let error as EtcdError {
                #expect(error.message == "etcdserver: request is too large")
            }
        }
    }

    /// etcd (grpc-go) sends a PING after each request; swift-nio-http2 alone would close the
    /// connection after 200 of them in 30 s. Hundreds of calls on one connection must all succeed.
    @Test(arguments: EtcdCluster.Server.allCases) func manySequentialCallsOnOneConnection(server: EtcdCluster.Server) async throws {
        let cluster = try EtcdCluster(size: 1, basePort: 26150 + server.portOffset, server: server)
        defer { cluster.shutdown() }
        try await EtcdClient.withClient(try Self.configuration(cluster)) { etcd in
            for index in 0..<600 { try await etcd.put("seq/\(index)", "v") }
            #expect(try await etcd.get("seq/", prefix: true).count == 600)
        }
    }

    @Test(arguments: EtcdCluster.Server.allCases) func watchReplaysHistoryAndReportsCompaction(server: EtcdCluster.Server) async throws {
        let cluster = try EtcdCluster(size: 1, basePort: 26110 + server.portOffset, server: server)
        defer { cluster.shutdown() }
        try await EtcdClient.withClient(try Self.configuration(cluster)) { etcd in
            let start = try await etcd.put("w/k", "1").header.revision
            try await etcd.put("w/k", "2")
            try await etcd.delete("w/k")
            let events = try await etcd.watch("w/", prefix: true, fromRevision: start, prevKV: true) { responses in
                var collected: [Mvccpb_Event] = []
                for try await response in responses {
                    collected += response.events
                    if collected.count >= 3 { break }
                }
                return collected
            }
            #expect(events.map(\.type) == [.put, .put, .delete])
            #expect(events.map { String(decoding: $0.kv.value, as: UTF8.self) } == ["1", "2", ""])
            #expect(events[2].prevKv.value == Data("2".utf8))
            #expect(events.map(\.kv.modRevision) == [start, start + 1, start + 2])

            try await etcd.compact(revision: start + 2)
            do {
                _ = try await etcd.watch("w/", prefix: true, fromRevision: start) { responses in
                    for try await _ in responses {}
                }
                Issue.record("watching a compacted revision must fail")
            } catch let error as EtcdError {
                #expect(error.code == .compacted(compactRevision: start + 2))
                #expect(error.message == "etcdserver: mvcc: required revision has been compacted")
            }
        }
    }

    @Test(arguments: EtcdCluster.Server.allCases) func watchResumesAcrossAMemberRestart(server: EtcdCluster.Server) async throws {
        let cluster = try EtcdCluster(size: 1, basePort: 26120 + server.portOffset, server: server)
        defer { cluster.shutdown() }
        try await EtcdClient.withClient(try Self.configuration(cluster)) { etcd in
            try await etcd.put("r/0", "before")
            let values = try await etcd.watch("r/", prefix: true) { responses in
                var seen: [String] = []
                var iterator = responses.makeAsyncIterator()
                try await etcd.put("r/1", "a")
                while seen.count < 1, let response = try await iterator.next() {
                    seen += response.events.map { String(decoding: $0.kv.value, as: UTF8.self) }
                }
                // kill -9 the only member, start it again, write: the watch must carry on.
                cluster.stop("m0", kill: true)
                try cluster.start("m0")
                try cluster.waitHealthy()
                try await etcd.put("r/2", "b")
                try await etcd.put("r/3", "c")
                while seen.count < 3, let response = try await iterator.next() {
                    seen += response.events.map { String(decoding: $0.kv.value, as: UTF8.self) }
                }
                return seen
            }
            #expect(values == ["a", "b", "c"])
        }
    }

    @Test(arguments: EtcdCluster.Server.allCases) func leasesExpireUnlessKeptAlive(server: EtcdCluster.Server) async throws {
        let cluster = try EtcdCluster(size: 1, basePort: 26130 + server.portOffset, server: server)
        defer { cluster.shutdown() }
        try await EtcdClient.withClient(try Self.configuration(cluster)) { etcd in
            let lease = try await etcd.leaseGrant(ttl: 2)
            #expect(lease.ttl == 2)
            try await etcd.put("l/key", "v", lease: lease.id)
            let renewals = try await etcd.withLeaseKeepAlive(id: lease.id) {
                try await Task.sleep(for: .seconds(4))
                return try await etcd.get("l/key").count
            }
            #expect(renewals == 1, "the key survives twice its TTL while kept alive")
            let listed = try await etcd.leaseLeases()
            #expect(listed.leases.contains { $0.id == lease.id })
            let info = try await etcd.leaseTimeToLive(id: lease.id, keys: true)
            #expect(info.grantedTtl == 2 && info.keys == [Data("l/key".utf8)])
            try await Task.sleep(for: .seconds(4))
            #expect(try await etcd.get("l/key").count == 0, "without keep-alive the key expires")
            #expect(try await etcd.leaseTimeToLive(id: lease.id).ttl == -1)

            // A revoked lease: keep-alive reports the loss.
            let second = try await etcd.leaseGrant(ttl: 10)
            let revoker = Task {
                try await Task.sleep(for: .milliseconds(500))
                try await etcd.leaseRevoke(id: second.id)
            }
            do {
                try await etcd.withLeaseKeepAlive(id: second.id) { try await Task.sleep(for: .seconds(30)) }
                Issue.record("keep-alive must report a revoked lease")
            } catch let error as EtcdError {
                #expect(error.code == .leaseLost(id: second.id))
            }
            try await revoker.value
            do {
                try await etcd.leaseRevoke(id: second.id)
                Issue.record("revoking twice must fail")
            } catch let error as EtcdError {
                #expect(error.message == "etcdserver: requested lease not found")
            }
        }
    }

    @Test(arguments: EtcdCluster.Server.allCases) func threeMemberClusterMaintenanceAndFailover(server: EtcdCluster.Server) async throws {
        let cluster = try EtcdCluster(size: 3, basePort: 26140 + server.portOffset, server: server)
        defer { cluster.shutdown() }
        try await EtcdClient.withClient(try Self.configuration(cluster)) { etcd in
            let members = try await etcd.memberList()
            #expect(members.members.count == 3)
            #expect(Set(members.members.map(\.name)) == ["m0", "m1", "m2"])
            let status = try await etcd.status()
            #expect(status.version == "3.4.23" || status.version.hasPrefix("3."))
            #expect(status.leader != 0)
            try await etcd.put("h/k", "v")
            let hash = try await etcd.hashKV()
            #expect(hash.hash != 0)
            _ = try await etcd.defragment()
            #expect(try await etcd.alarm(.with { $0.action = .get }).alarms.isEmpty)
            // A database (etcd: bbolt pages; ours: the state, padded) and a SHA-256 after it.
            let bytes = try await etcd.snapshot { _ in }
            #expect(bytes > (server == .etcd ? 4096 : 512))
            #expect(bytes % 512 == 32)

            // The first endpoint dies: once the others have a leader, calls fail over to them.
            cluster.stop("m0", kill: true)
            try cluster.waitHealthy()
            try await etcd.put("h/after", "failover")
            #expect(try await etcd.get("h/after").count == 1)
        }
    }
}
