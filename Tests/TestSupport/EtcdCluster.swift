public import Foundation

/// etcd members on loopback for interop tests: real etcd 3.4 (Debian's `etcd`) or ours
/// (`coreos etcd`, same flags). Each member has its own data directory and ports; members
/// are stopped by PID when the cluster is stopped or deinitialised, also when a test fails.
public final class EtcdCluster: @unchecked Sendable {
    /// Which server the members run.
    public enum Server: String, Sendable, CaseIterable {
        case etcd
        case coreos
    }

    public struct Member: Sendable {
        public var name: String
        public var clientPort: Int
        public var peerPort: Int
        public var dataDirectory: String
        public var clientEndpoint: String { "127.0.0.1:\(clientPort)" }
    }

    public let members: [Member]
    public let root: String
    private var processes: [String: Process] = [:]
    private let lock = NSLock()
    private let token: String
    public let server: Server

    /// `size` members with ports from `basePort` upward (client, peer, client, peer, …).
    public init(size: Int, basePort: Int, server: Server = .etcd) throws {
        self.server = server
        if server == .etcd, ProcessRunner.which("etcd") == nil {
            throw ClusterError("etcd (Debian package etcd-server) is required")
        }
        root = NSTemporaryDirectory() + "coreos-etcd-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        token = "coreos-test-" + UUID().uuidString.prefix(8)
        let directory = root
        members = (0..<size).map { index in
            Member(
                name: "m\(index)", clientPort: basePort + 2 * index, peerPort: basePort + 2 * index + 1,
                dataDirectory: directory + "/m\(index).etcd")
        }
        for member in members { try start(member.name, initial: true) }
        try waitHealthy()
    }

    public var endpoints: [String] { members.map(\.clientEndpoint) }

    private var initialCluster: String {
        members.map { "\($0.name)=http://127.0.0.1:\($0.peerPort)" }.joined(separator: ",")
    }

    /// Starts (or restarts) one member.
    public func start(_ name: String, initial: Bool = false) throws {
        guard let member = members.first(where: { $0.name == name }) else { throw ClusterError("no member \(name)") }
        let process = Process()
        switch server {
        case .etcd: process.executableURL = URL(fileURLWithPath: ProcessRunner.which("etcd") ?? "/usr/bin/etcd")
        case .coreos: process.executableURL = URL(fileURLWithPath: ProcessRunner.coreosBinary)
        }
        process.arguments = (server == .coreos ? ["etcd"] : []) + [
            "--name", member.name, "--data-dir", member.dataDirectory,
            "--listen-client-urls", "http://127.0.0.1:\(member.clientPort)",
            "--advertise-client-urls", "http://127.0.0.1:\(member.clientPort)",
            "--listen-peer-urls", "http://127.0.0.1:\(member.peerPort)",
            "--initial-advertise-peer-urls", "http://127.0.0.1:\(member.peerPort)",
            "--initial-cluster", initialCluster, "--initial-cluster-token", token,
            "--initial-cluster-state", "new", "--enable-v2=true",
        ]
        let log = FileHandle(forWritingAtPath: root + "/\(name).log") ?? {
            _ = FileManager.default.createFile(atPath: root + "/\(name).log", contents: nil)
            return FileHandle(forWritingAtPath: root + "/\(name).log") ?? ProcessRunner.nullDevice()
        }()
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = ProcessRunner.nullDevice()
        try process.run()
        lock.withLock { processes[name] = process }
    }

    /// Stops one member: SIGTERM, or SIGKILL when `kill` is set.
    public func stop(_ name: String, kill: Bool = false) {
        guard let process = lock.withLock({ processes.removeValue(forKey: name) }) else { return }
        Foundation.kill(process.processIdentifier, kill ? SIGKILL : SIGTERM)
        process.waitUntilExit()
    }

    /// Stops every member and removes the data.
    public func shutdown() {
        for member in members { stop(member.name, kill: true) }
        try? FileManager.default.removeItem(atPath: root)
    }

    deinit { shutdown() }

    /// Waits until every running member answers `endpoint health`.
    public func waitHealthy(timeout: TimeInterval = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        let running = lock.withLock { Set(processes.keys) }
        for member in members where running.contains(member.name) {
            while true {
                let result = try ProcessRunner.run(
                    ProcessRunner.which("etcdctl") ?? "/usr/bin/etcdctl",
                    ["--endpoints=\(member.clientEndpoint)", "--command-timeout=1s", "endpoint", "health"],
                    environment: ["ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"])
                if result.status == 0 { break }
                if Date() > deadline { throw ClusterError("member \(member.name) did not become healthy") }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
