import BoltDB
import Foundation
import TestSupport
import Testing

/// The bbolt reader against backend snapshots written by real etcd 3.4, and against
/// damaged copies of them.
@Suite("bbolt files from etcd 3.4", .serialized)
struct BoltFileTests {
    /// A snapshot of a one-member etcd holding some keys and a deletion, with Debian's
    /// `etcdctl snapshot status -w json` of it.
    static func etcdSnapshot() throws -> (path: String, expected: String, cluster: EtcdCluster) {
        let cluster = try EtcdCluster(size: 1, basePort: 26190)
        let environment = ["ETCDCTL_API": "3", "ETCDCTL_ENDPOINTS": cluster.endpoints[0], "PATH": "/usr/bin:/bin"]
        for index in 0..<150 {
            _ = try ProcessRunner.run("/usr/bin/etcdctl", ["put", "key/\(index)", String(repeating: "v", count: index)], environment: environment)
            if index % 50 == 0 { _ = try ProcessRunner.run("/usr/bin/etcdctl", ["del", "key/\(index / 2)"], environment: environment) }
        }
        let path = cluster.root + "/snapshot.db"
        let saved = try ProcessRunner.run("/usr/bin/etcdctl", ["snapshot", "save", path], environment: environment)
        #expect(saved.status == 0, "\(saved.standardError)")
        let status = try ProcessRunner.run("/usr/bin/etcdctl", ["snapshot", "status", path, "-w", "json"], environment: environment)
        return (path, status.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines), cluster)
    }

    @Test func statusMatchesEtcdctlAndDamageIsReportedNotCrashed() throws {
        let (path, expected, cluster) = try Self.etcdSnapshot()
        defer { cluster.shutdown() }
        let status = try EtcdBackendStatus(path: path)
        #expect(
            "{\"hash\":\(status.hash),\"revision\":\(status.revision),\"totalKey\":\(status.totalKeys),\"totalSize\":\(status.totalSize)}"
                == expected)
        let file = try BoltFile(path: path)
        #expect(file.check().isEmpty)
        #expect(try file.buckets().map { String(decoding: $0.name, as: UTF8.self) }.contains("key"))

        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let damaged = cluster.root + "/damaged.db"

        // Too short for a meta page, then for two pages: bbolt's own messages.
        try original.prefix(1000).write(to: URL(fileURLWithPath: damaged))
        #expect(throws: BoltError(damaged, "invalid database")) { try BoltFile(path: damaged) }
        try original.prefix(5000).write(to: URL(fileURLWithPath: damaged))
        #expect(throws: BoltError(damaged, "file size too small")) { try BoltFile(path: damaged) }

        // Cut in the middle of the page area: an error naming a page, no crash.
        try original.prefix(original.count / 2).write(to: URL(fileURLWithPath: damaged))
        #expect(throws: BoltError.self) { try EtcdBackendStatus(path: damaged) }

        // Both meta pages destroyed.
        var noMeta = original
        for offset in [16, 4096 + 16] { noMeta[offset] ^= 0xFF }
        try noMeta.write(to: URL(fileURLWithPath: damaged))
        #expect(throws: BoltError(damaged, "invalid database")) { try BoltFile(path: damaged) }

        // Random byte flips anywhere: each copy is read or refused, never a crash.
        var generator = SeededGenerator(seed: SeededGenerator.seed(fallback: 0xB017))
        var refused = 0
        for _ in 0..<300 {
            var copy = original
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                copy[Int.random(in: 0..<copy.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
            }
            try copy.write(to: URL(fileURLWithPath: damaged))
            do { _ = try EtcdBackendStatus(path: damaged) } catch { refused += 1 }
        }
        #expect(refused > 0)
    }
}
