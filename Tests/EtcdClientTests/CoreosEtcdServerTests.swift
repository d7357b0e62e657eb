import EtcdAPI
import EtcdClient
import Foundation
import SwiftProtobuf
import TestSupport
import Testing

/// EtcdClient against our own server (`coreos etcd`, one member): the same client, the
/// same calls, and a restart in the middle. Part of the serialized interop suite.
extension EtcdClientInteropTests {
    /// Starts `coreos etcd` on `port` with `directory`; stopped by PID by the caller.
    static func startOurServer(port: Int, directory: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessRunner.coreosBinary)
        // The peer port too: etcd's default (2380) may be another test's at the same time.
        let peer = "http://127.0.0.1:\(port + 1)"
        process.arguments = [
            "etcd", "--data-dir", directory, "--listen-client-urls", "http://127.0.0.1:\(port)",
            "--advertise-client-urls", "http://127.0.0.1:\(port)", "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer, "--initial-cluster", "default=\(peer)",
        ]
        process.standardOutput = ProcessRunner.nullDevice()
        process.standardError = ProcessRunner.nullDevice()
        try process.run()
        return process
    }

    static func stop(_ process: Process) {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    @Test func clientCallsAgainstCoreosEtcdSurviveARestart() async throws {
        let directory = NSTemporaryDirectory() + "coreos-etcd-server-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = 26210
        let configuration = EtcdClientConfiguration(
            endpoints: [EtcdEndpoint(host: "127.0.0.1", port: port)], requestTimeout: .seconds(60))
        var server = try Self.startOurServer(port: port, directory: directory)
        defer { Self.stop(server) }

        let leaseID: Int64 = try await EtcdClient.withClient(configuration) { etcd in
            try await etcd.put("app/a", "1")
            try await etcd.put("app/b", "2")
            #expect(try await etcd.get("app/", prefix: true).count == 2)
            let swap = Etcdserverpb_TxnRequest.with {
                $0.compare = [.value("app/a", .equal, "1")]
                $0.success = [.put("app/a", "10")]
            }
            #expect(try await etcd.txn(swap).succeeded)
            #expect(try await !etcd.txn(swap).succeeded)

            // A watch from the first revision replays history, then sees a live put.
            var create = Etcdserverpb_WatchCreateRequest()
            (create.key, create.rangeEnd) = EtcdKeyRange.prefix(Data("app/".utf8))
            create.startRevision = 1
            let seen: [String] = try await etcd.watch(create) { responses in
                var keys: [String] = []
                var wrote = false
                for try await response in responses {
                    keys += response.events.map { String(decoding: $0.kv.key, as: UTF8.self) }
                    if keys.count >= 3 && !wrote {
                        wrote = true
                        try await etcd.put("app/c", "live")
                    }
                    if keys.count >= 4 { break }
                }
                return keys
            }
            #expect(seen == ["app/a", "app/b", "app/a", "app/c"])

            // A lease keeps its key until revoked.
            let lease = try await etcd.leaseGrant(ttl: 30)
            var leased = Etcdserverpb_PutRequest()
            leased.key = Data("app/leased".utf8)
            leased.value = Data("x".utf8)
            leased.lease = lease.id
            _ = try await etcd.put(leased)
            let ttl = try await etcd.leaseTimeToLive(id: lease.id, keys: true)
            #expect(ttl.grantedTtl == 30 && ttl.keys == [Data("app/leased".utf8)])
            return lease.id
        }

        // Restart: everything acknowledged is still there, the lease too.
        Self.stop(server)
        server = try Self.startOurServer(port: port, directory: directory)
        try await EtcdClient.withClient(configuration) { etcd in
            let values = try await etcd.get("app/", prefix: true).kvs.map { String(decoding: $0.value, as: UTF8.self) }
            #expect(values == ["10", "2", "live", "x"])
            _ = try await etcd.leaseRevoke(id: leaseID)
            #expect(try await etcd.get("app/leased").count == 0)
            do {
                _ = try await etcd.leaseRevoke(id: leaseID)
                Issue.record("a revoked lease must be gone")
            } catch let error as EtcdError {
                #expect(error.message == "etcdserver: requested lease not found")
            }
        }
    }
}
