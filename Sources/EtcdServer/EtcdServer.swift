import Crypto
import EtcdAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Raft
import Storage

/// What `coreos etcd` was asked to run (etcd 3.4's flags, defaults as etcd).
public struct EtcdServerConfiguration: Sendable {
    public var name = "default"
    public var dataDirectory: String?
    public var listenClientURLs = ["http://localhost:2379"]
    public var advertiseClientURLs = ["http://localhost:2379"]
    public var initialAdvertisePeerURLs = ["http://localhost:2380"]
    public var initialClusterToken = "etcd-cluster"
    /// Milliseconds, as etcd's `--heartbeat-interval` and `--election-timeout`.
    public var heartbeatInterval = 100
    public var electionTimeout = 1000

    public init() {}

    public var resolvedDataDirectory: String { dataDirectory ?? "\(name).etcd" }
}

/// Member and cluster IDs as etcd computes them, so the same flags give the same IDs:
/// SHA-1 of the sorted peer URLs and the cluster token (member), of the sorted member IDs
/// (cluster); the first 8 bytes, big endian.
public enum EtcdIdentity {
    public static func memberID(peerURLs: [String], token: String) -> UInt64 {
        firstEight(Insecure.SHA1.hash(data: Array((peerURLs.sorted().joined() + token).utf8)))
    }

    public static func clusterID(memberIDs: [UInt64]) -> UInt64 {
        var bytes: [UInt8] = []
        for id in memberIDs.sorted() { withUnsafeBytes(of: id.bigEndian) { bytes.append(contentsOf: $0) } }
        return firstEight(Insecure.SHA1.hash(data: bytes))
    }

    private static func firstEight(_ digest: Insecure.SHA1.Digest) -> UInt64 {
        Array(digest).prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
}

public struct EtcdServerError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// A single-member etcd server: the KV service over Raft, Storage and MVCC.
public enum EtcdServer {
    /// Serves until the task is cancelled. `ready` is called once clients can connect.
    public static func run(_ configuration: EtcdServerConfiguration, ready: @Sendable (String) -> Void = { _ in }) async throws {
        let memberID = EtcdIdentity.memberID(
            peerURLs: configuration.initialAdvertisePeerURLs, token: configuration.initialClusterToken)
        let clusterID = EtcdIdentity.clusterID(memberIDs: [memberID])
        let directory = configuration.resolvedDataDirectory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let (log, opened) = try DurableLog.open(
            path: directory + "/member", initialMembership: Membership(voters: [memberID]))
        if let note = opened.truncatedTail { FileHandle.standardError.write(Data("etcd: \(note)\n".utf8)) }
        var raftConfiguration = RaftConfiguration(id: memberID, randomSeed: UInt64.random(in: 1...UInt64.max))
        raftConfiguration.electionTicks = max(configuration.electionTimeout / max(configuration.heartbeatInterval, 1), 2)
        let node = StoreNode(
            memberID: memberID, clusterID: clusterID, raft: RaftNode(configuration: raftConfiguration, state: opened.state),
            log: log)
        await node.campaign()

        guard let listen = configuration.listenClientURLs.first, let url = URLComponents(string: listen),
            let host = url.host, let port = url.port
        else { throw EtcdServerError("invalid --listen-client-urls \(configuration.listenClientURLs)") }
        let transport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: host == "localhost" ? "127.0.0.1" : host, port: port), transportSecurity: .plaintext)
        let member = MemberInfo(
            id: memberID, name: configuration.name, peerURLs: configuration.initialAdvertisePeerURLs,
            clientURLs: configuration.advertiseClientURLs)
        let server = GRPCServer(
            transport: transport,
            services: [
                KVService(node: node), WatchService(node: node), ClusterService(node: node, member: member),
                MaintenanceService(node: node), LeaseService(node: node),
            ])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(configuration.heartbeatInterval))
                    await node.tick()
                }
            }
            if let address = try await transport.listeningAddress.ipv4 {
                ready("\(address.host):\(address.port)")
            }
        }
    }
}
