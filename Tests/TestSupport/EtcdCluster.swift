public import Foundation

/// etcd members on loopback for interop tests: real etcd 3.4 (Debian's `etcd`), ours
/// (`coreos etcd`, same flags), or ours behind the worker-node proxy (at least three
/// members, clients given only the proxy's endpoint). Each member has its own data directory and ports; members
/// are stopped by PID when the cluster is stopped or deinitialised, also when a test fails.
public final class EtcdCluster: @unchecked Sendable {
    /// Which server the members run.
    public enum Server: String, Sendable, CaseIterable {
        case etcd
        case coreos
        /// `coreos etcd --proxy on` in front of `coreos etcd` members.
        case coreosBehindProxy

        /// Added to a test's base port so that the servers' clusters do not share ports.
        public var portOffset: Int {
            switch self {
            case .etcd: 0
            case .coreos: 1000
            case .coreosBehindProxy: 2000
            }
        }
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
    /// The proxy's client port (`coreosBehindProxy`).
    public let proxyPort: Int?
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
        let count = server == .coreosBehindProxy ? max(size, 3) : size
        proxyPort = server == .coreosBehindProxy ? basePort + 2 * count : nil
        members = (0..<count).map { index in
            Member(
                name: "m\(index)", clientPort: basePort + 2 * index, peerPort: basePort + 2 * index + 1,
                dataDirectory: directory + "/m\(index).etcd")
        }
        for member in members { try start(member.name, initial: true) }
        try waitHealthy()
        if let proxyPort { try startProxy(port: proxyPort) }
    }

    /// What clients are given: every member, or the proxy alone.
    public var endpoints: [String] { proxyPort.map { ["127.0.0.1:\($0)"] } ?? members.map(\.clientEndpoint) }

    private func startProxy(port: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessRunner.coreosBinary)
        process.arguments = [
            "etcd", "--proxy", "on", "--listen-client-urls", "http://127.0.0.1:\(port)", "--initial-cluster", initialCluster,
            "--proxy-refresh-interval", "2000",
        ]
        process.standardOutput = ProcessRunner.nullDevice()
        process.standardError = ProcessRunner.nullDevice()
        process.standardInput = ProcessRunner.nullDevice()
        try process.run()
        lock.withLock { processes["proxy"] = process }
        try Self.waitHealthy("127.0.0.1:\(port)", name: "the proxy", deadline: Date().addingTimeInterval(20))
    }

    private var initialCluster: String {
        members.map { "\($0.name)=http://127.0.0.1:\($0.peerPort)" }.joined(separator: ",")
    }

    /// Starts (or restarts) one member.
    public func start(_ name: String, initial: Bool = false) throws {
        guard let member = members.first(where: { $0.name == name }) else { throw ClusterError("no member \(name)") }
        let process = Process()
        switch server {
        case .etcd: process.executableURL = URL(fileURLWithPath: ProcessRunner.which("etcd") ?? "/usr/bin/etcd")
        case .coreos, .coreosBehindProxy: process.executableURL = URL(fileURLWithPath: ProcessRunner.coreosBinary)
        }
        process.arguments = (server == .etcd ? [] : ["etcd"]) + [
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
        stop("proxy", kill: true)
        for member in members { stop(member.name, kill: true) }
        try? FileManager.default.removeItem(atPath: root)
    }

    deinit { shutdown() }

    /// Waits until every running member answers `endpoint health`.
    public func waitHealthy(timeout: TimeInterval = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        let running = lock.withLock { Set(processes.keys) }
        for member in members where running.contains(member.name) {
            try Self.waitHealthy(member.clientEndpoint, name: "member \(member.name)", deadline: deadline)
        }
    }

    /// Polls `etcdctl endpoint health` on one endpoint until it answers or `deadline` passes.
    static func waitHealthy(_ endpoint: String, name: String, deadline: Date) throws {
        while true {
            let result = try ProcessRunner.run(
                ProcessRunner.which("etcdctl") ?? "/usr/bin/etcdctl", ["--endpoints=\(endpoint)", "--command-timeout=1s", "endpoint", "health"],
                environment: ["ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"])
            if result.status == 0 { return }
            if Date() > deadline { throw ClusterError("\(name) did not become healthy") }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
