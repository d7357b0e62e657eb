import BoltDB
import CLI
import EtcdAPI
import EtcdClient
import EtcdServer
import Glibc
import GoFormat
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `snapshot save`: streams the backend of one member into a file, as etcdctl 3.4 does
/// (a `.part` file written, fsynced, then renamed; zap-style progress lines on stderr).
enum EtcdctlSnapshotCommands {
    static var all: [EtcdctlCommandSpec] {
        [
            EtcdctlCommandSpec(
                ["snapshot", "save"], use: "save <filename>", short: "Stores an etcd node backend snapshot to a given file",
                run: save),
            EtcdctlCommandSpec(
                ["snapshot", "status"], use: "status <filename>", short: "Gets backend snapshot status of a given file",
                description: """
                    When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
                    The items in the lists are hash, revision, total keys, total size.
                    """, run: status),
            EtcdctlCommandSpec(
                ["snapshot", "restore"], use: "restore <filename> [options]",
                short: "Restores an etcd member snapshot to an etcd directory",
                flags: [
                    PFlag("data-dir", .string, default: "", "Path to the data directory"),
                    PFlag("wal-dir", .string, default: "", "Path to the WAL directory (use --data-dir if none given)"),
                    PFlag("initial-cluster", .string, default: "default=http://localhost:2380", "Initial cluster configuration for restore bootstrap"),
                    PFlag("initial-cluster-token", .string, default: "etcd-cluster", "Initial cluster token for the etcd cluster during restore bootstrap"),
                    PFlag("initial-advertise-peer-urls", .string, default: "http://localhost:2380", "List of this member's peer URLs to advertise to the rest of the cluster"),
                    PFlag("name", .string, default: "default", "Human-readable name for this member"),
                    PFlag("skip-hash-check", .bool, default: "false", "Ignore snapshot integrity hash value (required if copied from data directory)"),
                ], run: restore),
        ]
    }

    /// Writes a new member's data directory from a snapshot file, offline: a new cluster
    /// (IDs from `--initial-cluster` and the token), the keys, revisions and leases kept.
    @Sendable static func restore(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("snapshot restore requires exactly one argument") }
        let path = invocation.arguments[0]
        let flags = invocation.flags
        let name = flags.string("name") ?? "default"
        let dataDirectory = flags.string("data-dir").flatMap { $0.isEmpty ? nil : $0 } ?? "\(name).etcd"
        if let wal = flags.string("wal-dir"), !wal.isEmpty {
            throw EtcdctlFailure(EtcdctlExit.badFeature, "--wal-dir is not supported with coreos etcd (the WAL stays in <data-dir>/member/wal)")
        }
        guard access(path, F_OK) == 0 else {
            throw EtcdctlFailure(EtcdctlExit.error, "stat \(path): \(String(cString: strerror(errno)).lowercasedFirst())")
        }
        guard EtcdSnapshotFile.isOurs(path: path) else {
            throw EtcdctlFailure(
                EtcdctlExit.error,
                "\(path) is not a snapshot saved from coreos etcd (restoring etcd's own bbolt snapshots is not supported; restore it with etcd's etcdctl and migrate with `etcdctl make-mirror`)")
        }
        let peerURLs = (flags.string("initial-advertise-peer-urls") ?? "http://localhost:2380").split(separator: ",").map(String.init)
        zapInfo(
            "snapshot/v3_snapshot.go:296", "restoring snapshot",
            [("path", "\"\(path)\""), ("wal-dir", "\"\(dataDirectory)/member/wal\""), ("data-dir", "\"\(dataDirectory)\""),
             ("snap-dir", "\"\(dataDirectory)/member/snap\"")], io: invocation.io)
        do {
            let restored = try DataDirectoryBuilder.restore(
                snapshotPath: path, name: name, initialCluster: flags.string("initial-cluster") ?? "default=http://localhost:2380",
                token: flags.string("initial-cluster-token") ?? "etcd-cluster", advertisedPeerURLs: peerURLs, directory: dataDirectory)
            zapInfo(
                "snapshot/v3_snapshot.go:309", "restored snapshot",
                [("path", "\"\(path)\""), ("wal-dir", "\"\(dataDirectory)/member/wal\""), ("data-dir", "\"\(dataDirectory)\""),
                 ("snap-dir", "\"\(dataDirectory)/member/snap\""), ("member-id", "\"\(String(restored.memberID, radix: 16))\""),
                 ("cluster-id", "\"\(String(restored.clusterID, radix: 16))\""), ("revision", "\(restored.revision)")], io: invocation.io)
        } catch {
            throw EtcdctlFailure(EtcdctlExit.error, "\(error)")
        }
    }

    /// Reads a backend file offline (no endpoint is contacted).
    @Sendable static func status(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("snapshot status requires exactly one argument") }
        let path = invocation.arguments[0]
        guard invocation.printer.format != .protobuf else {
            throw EtcdctlFailure(EtcdctlExit.badFeature, "protobuf not supported as output format")
        }
        guard access(path, F_OK) == 0 else {
            throw EtcdctlFailure(EtcdctlExit.error, "stat \(path): \(String(cString: strerror(errno)).lowercasedFirst())")
        }
        let status: EtcdBackendStatus
        do {
            if EtcdSnapshotFile.isOurs(path: path) {
                // A snapshot saved from `coreos etcd`: our state format, same report.
                let ours = try EtcdSnapshotFile.status(path: path)
                status = EtcdBackendStatus(hash: ours.hash, revision: ours.revision, totalKeys: ours.totalKeys, totalSize: ours.totalSize)
            } else {
                status = try EtcdBackendStatus(path: path)
            }
        } catch let error as EtcdServerError {
            throw EtcdctlFailure(EtcdctlExit.error, error.description)
        } catch let error as BoltError {
            throw EtcdctlFailure(EtcdctlExit.error, error.message)
        } catch {
            throw EtcdctlFailure(EtcdctlExit.error, "\(error)")
        }
        invocation.printer.snapshotStatus(status)
    }

    /// zap's production encoder: epoch seconds as a float.
    static func zapInfo(_ caller: String, _ message: String, _ fields: [(String, String)], io: StandardStreams) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let timestamp = "\(now.tv_sec).\(String(format7(Int(now.tv_nsec) / 100)))"
        let extra = fields.map { ",\"\($0.0)\":\($0.1)" }.joined()
        io.error.line("{\"level\":\"info\",\"ts\":\(timestamp),\"caller\":\"\(caller)\",\"msg\":\"\(message)\"\(extra)}")
    }

    private static func format7(_ value: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 7 - digits.count)) + digits
    }

    @Sendable static func save(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("snapshot save expects one argument") }
        let endpoints = invocation.global.endpoints
        guard endpoints.count == 1 else {
            throw EtcdctlFailure(
                EtcdctlExit.interrupted,
                "snapshot must be requested to one selected node, not multiple [\(endpoints.joined(separator: " "))]")
        }
        let path = invocation.arguments[0]
        let partial = path + ".part"
        let io = invocation.io
        unlink(partial)
        let descriptor = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno)).lowercasedFirst()
            throw EtcdctlFailure(EtcdctlExit.interrupted, "could not open \(partial) (open \(partial): \(reason))")
        }
        zapInfo("snapshot/v3_snapshot.go:119", "created temporary db file", [("path", GoJSON.quote(partial))], io: io)
        let clock = ContinuousClock()
        let started = clock.now
        let writeFailure = Mutex<Int32>(0)
        let total: Int
        do {
            total = try await invocation.withClient { client in
                io.error.line(
                    "{\"level\":\"info\",\"ts\":\"\(GoLogTime.zap())\",\"caller\":\"clientv3/maintenance.go:200\",\"msg\":\"opened snapshot stream; downloading\"}"
                )
                zapInfo(
                    "snapshot/v3_snapshot.go:127", "fetching snapshot", [("endpoint", GoJSON.quote(endpoints[0]))], io: io)
                let received = try await client.snapshot { chunk in
                    let failed = chunk.blob.withUnsafeBytes { buffer -> Bool in
                        guard let base = buffer.baseAddress else { return false }
                        var offset = 0
                        while offset < buffer.count {
                            let written = write(descriptor, base + offset, buffer.count - offset)
                            if written < 0 {
                                if errno == EINTR { continue }
                                writeFailure.withLock { $0 = errno }
                                return true
                            }
                            offset += written
                        }
                        return false
                    }
                    if failed { throw EtcdError(.internal, "write \(partial): \(String(cString: strerror(writeFailure.withLock { $0 })))") }
                }
                io.error.line(
                    "{\"level\":\"info\",\"ts\":\"\(GoLogTime.zap())\",\"caller\":\"clientv3/maintenance.go:208\",\"msg\":\"completed snapshot read; closing\"}"
                )
                return received
            }
        } catch {
            close(descriptor)
            throw EtcdctlFailure(EtcdctlExit.interrupted, error.message)
        }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard synced, rename(partial, path) == 0 else {
            throw EtcdctlFailure(EtcdctlExit.interrupted, "could not rename \(partial) to \(path) (\(String(cString: strerror(errno))))")
        }
        let (seconds, attoseconds) = (clock.now - started).components
        let took = Double(seconds) + Double(attoseconds) / 1e18
        zapInfo(
            "snapshot/v3_snapshot.go:142", "fetched snapshot",
            [
                ("endpoint", GoJSON.quote(endpoints[0])),
                ("size", GoJSON.quote(EtcdctlPrinter.humanBytes(UInt64(total)))), ("took", "\(took)"),
            ], io: io)
        zapInfo("snapshot/v3_snapshot.go:152", "saved", [("path", GoJSON.quote(path))], io: io)
        io.output.line("Snapshot saved at \(path)")
    }
}

extension String {
    fileprivate func lowercasedFirst() -> String { prefix(1).lowercased() + dropFirst() }
}
