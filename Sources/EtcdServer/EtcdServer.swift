import Crypto
import EtcdAPI
import EtcdClient
import Foundation
import GRPCCore
import HTTPServer
import MVCC
import NIOCore
import NIOPosix
import Net
import Raft
import RaftTransport
import Storage
import SwiftProtobuf
import Synchronization

/// What `coreos etcd` was asked to run (etcd 3.4's flags, defaults as etcd).
public struct EtcdServerConfiguration: Sendable {
    public var name = "default"
    public var dataDirectory: String?
    public var listenClientURLs = ["http://localhost:2379"]
    public var advertiseClientURLs = ["http://localhost:2379"]
    public var listenPeerURLs = ["http://localhost:2380"]
    public var initialAdvertisePeerURLs = ["http://localhost:2380"]
    /// `name=peerURL,…`; nil means this member alone, under its name and advertised peer
    /// URLs (etcd's default).
    public var initialCluster: String?
    public var initialClusterToken = "etcd-cluster"
    /// `--initial-cluster-state`: `existing` joins a running cluster the member was added to.
    public var initialClusterState = InitialClusterState.new
    /// `--experimental-max-learners`: learners a cluster may have at once.
    public var maxLearners = 1
    /// `--auth-token`: `simple`, or `jwt,pub-key=…,priv-key=…,sign-method=…,ttl=…`.
    public var authToken = "simple"
    /// `--auth-token-ttl`: how long a simple token lives without use.
    public var authTokenTTL: Duration = .seconds(300)
    /// `--bcrypt-cost`.
    public var bcryptCost = 10
    /// `--v2-shared-keyspace`: v2 writes also show as v3 keys (our extension; see the etcd applet page).
    public var v2SharedKeyspace = false
    /// TLS of the client port (used when the client URLs are https).
    public var clientTLS = TLSSettings()
    /// TLS between members (used when the peer URLs are https).
    public var peerTLS = TLSSettings()
    /// `--enable-v2`: serve the v2 keys API (on by default here; etcd 3.4 has it off).
    public var enableV2 = true
    /// `--force-new-cluster`: restart as the only member of a new cluster, keeping the data.
    public var forceNewCluster = false
    /// `--discovery`: a discovery token URL to bootstrap from instead of `--initial-cluster`.
    public var discoveryURL: String?
    /// `--discovery-srv` and `--discovery-srv-name`: DNS SRV records naming the members.
    public var discoverySRV: String?
    public var discoverySRVName = ""
    /// `--discovery-fallback`: what a member does when discovery finds the cluster full.
    public var discoveryFallback = DiscoveryFallback.proxy

    public enum DiscoveryFallback: String, Sendable { case exit, proxy }
    /// Milliseconds, as etcd's `--heartbeat-interval` and `--election-timeout`.
    public var heartbeatInterval = 100
    public var electionTimeout = 1000
    /// `--max-request-bytes`, `--max-txn-ops`, `--quota-backend-bytes` (0: 2 GiB).
    public var maxRequestBytes = 1_572_864
    public var maxTxnOperations = 128
    public var quotaBackendBytes: Int64 = 0
    /// `--auto-compaction-mode` and `--auto-compaction-retention`; nil: off.
    public var autoCompaction: AutoCompaction?
    /// `--experimental-watch-progress-notify-interval` (etcd's default: 10 minutes).
    public var watchProgressNotifyInterval: Duration = .seconds(600)
    /// `--experimental-slow-disk-leader-transfer`: a leader whose log syncs take at least
    /// this long five times in a row hands leadership to a caught-up follower; `.zero`
    /// keeps it leading whatever its disk does (etcd 3.4's behaviour).
    public var slowDiskLeaderTransfer: Duration = .milliseconds(100)
    /// `--snapshot-count`: applied entries between snapshots of the state.
    public var snapshotCount: UInt64 = 100_000
    /// `--pre-vote` (etcd 3.4 defaults it off; our Raft always has it available).
    public var preVote = false
    /// `--strict-reconfig-check`.
    public var strictReconfigCheck = true
    /// `--max-concurrent-streams`: HTTP/2 streams one client connection may have open.
    public var maxConcurrentStreams: UInt32 = .max
    /// `--listen-metrics-urls`: extra listeners serving only `/metrics` and `/health`.
    public var listenMetricsURLs: [String] = []
    /// `--wal-dir`: the log's segments in a directory of their own (nil: `member/wal`).
    public var walDirectory: String?
    /// `--logger`, `--log-level`, `--log-outputs`.
    public var log = ServerLog()

    public init() {}

    public enum InitialClusterState: String, Sendable { case new, existing }

    public var resolvedDataDirectory: String { dataDirectory ?? "\(name).etcd" }

    /// The initial cluster as given, or this member alone.
    public func resolvedInitialCluster() throws(EtcdServerError) -> InitialCluster {
        let text = initialCluster ?? initialAdvertisePeerURLs.map { "\(name)=\($0)" }.joined(separator: ",")
        return try InitialCluster(parsing: text, token: initialClusterToken)
    }
}

/// The versions this member reports: etcd's server version, and the cluster version
/// (etcd's capability level) it runs at.
public enum EtcdVersion {
    public static let server = "3.4.23"
    public static let cluster = "3.4"
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

public struct EtcdServerError: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// Set when discovery found the cluster full and `--discovery-fallback=proxy` asks this
    /// process to run as a proxy to these members' peer URLs instead.
    public var proxyPeerURLs: [String]?
    init(_ description: String) { self.description = description }

    static func becomeProxy(peerURLs: [String]) -> EtcdServerError {
        var error = EtcdServerError("discovery cluster full, falling back to proxy")
        error.proxyPeerURLs = peerURLs
        return error
    }
}

/// An etcd member: the gRPC services over Raft, Storage and MVCC, and the peer transport
/// to the other members of its cluster.
public enum EtcdServer {
    /// The configuration with the initial cluster discovery found (`--discovery`,
    /// `--discovery-srv`), for a member without a data directory yet.
    static func discovered(_ configuration: EtcdServerConfiguration) async throws -> EtcdServerConfiguration {
        guard !FileManager.default.fileExists(atPath: configuration.resolvedDataDirectory + "/member/identity") else {
            return configuration
        }
        var result = configuration
        switch try await Bootstrap.discover(configuration) {
        case .initialCluster(let text):
            result.initialCluster = text
            // As etcd: a cluster formed by a discovery token takes the token URL as its
            // cluster token, so member and cluster IDs come out as etcd's.
            if let url = configuration.discoveryURL, !url.isEmpty { result.initialClusterToken = url }
        case .proxy(let peerURLs): throw EtcdServerError.becomeProxy(peerURLs: peerURLs)
        case nil: break
        }
        return result
    }

    /// The member's Raft core, log and store, recovered from its data directory.
    static func openNode(
        directory: String, identity: MemberIdentity, configuration: EtcdServerConfiguration, loop: any EventLoop
    ) async throws -> StoreNode {
        let membership = Membership(
            voters: Set(identity.members.filter { !$0.value.isLearner }.keys),
            learners: Set(identity.members.filter { $0.value.isLearner }.keys))
        let (log, opened) = try DurableLog.open(
            path: directory + "/member", walDirectory: configuration.walDirectory, initialMembership: membership)
        if let note = opened.truncatedTail { FileHandle.standardError.write(Data("etcd: \(note)\n".utf8)) }
        var raftConfiguration = RaftConfiguration(id: identity.memberID, randomSeed: UInt64.random(in: 1...UInt64.max))
        raftConfiguration.electionTicks = max(configuration.electionTimeout / max(configuration.heartbeatInterval, 1), 2)
        raftConfiguration.preVote = configuration.preVote
        let bugs = try InjectedBugs.fromEnvironment()
        if bugs.commitWithoutQuorum { raftConfiguration.injectedBugs.insert(.commitWithoutQuorum) }
        let limits = StoreNode.Limits(
            maxRequestBytes: configuration.maxRequestBytes, maxTxnOperations: configuration.maxTxnOperations,
            quotaBytes: configuration.quotaBackendBytes > 0 ? configuration.quotaBackendBytes : 2 << 30)
        let node = StoreNode(
            memberID: identity.memberID, clusterID: identity.clusterID, members: identity.members,
            raft: RaftNode(configuration: raftConfiguration, state: opened.state), log: log,
            requestTimeout: .milliseconds(5000 + 2 * configuration.electionTimeout), limits: limits,
            snapshotCount: configuration.snapshotCount, values: try ValueLog(directory: directory + "/member"),
            loop: loop)
        // Before the log is replayed: mirrored writes must be replayed as they were applied.
        await node.shareV2Keyspace(configuration.v2SharedKeyspace)
        if bugs.readWithoutReadIndex { await node.injectReadsWithoutReadIndex() }
        await node.watchSlowDisk(threshold: configuration.slowDiskLeaderTransfer)
        await node.checkReconfigurationStrictly(configuration.strictReconfigCheck)
        await node.recover()
        return node
    }

    /// `--force-new-cluster`: applies what the log has committed, sets the old data aside
    /// (`member` becomes `member.before-force-new-cluster.<time>`) and writes a data
    /// directory whose only member is this one, with the same member and cluster IDs.
    /// Entries the old cluster had not committed are dropped, as etcd drops them.
    static func collapseToSingleMember(directory: String, configuration: EtcdServerConfiguration, loop: any EventLoop) async throws {
        let memberDirectory = directory + "/member"
        guard FileManager.default.fileExists(atPath: memberDirectory + "/identity") else {
            throw EtcdServerError("--force-new-cluster needs an existing data directory (\(memberDirectory)/identity not found)")
        }
        let identity = try await MemberIdentity.loadOrBootstrap(directory: memberDirectory, configuration: configuration)
        let (state, index, term): (StoreState, LogIndex, Term)
        do {
            let node = try await openNode(directory: directory, identity: identity, configuration: configuration, loop: loop)
            (state, index, term) = await node.applyCommitted()
            await node.closeLog()
        }
        guard var own = state.members?[identity.memberID] ?? identity.members[identity.memberID] else {
            throw EtcdServerError("--force-new-cluster: this member is not in its own cluster (it was removed)")
        }
        own.isLearner = false
        var single = state
        single.removed = Set((state.members ?? identity.members).keys).union(state.removed).subtracting([identity.memberID])
        let aside = memberDirectory + ".before-force-new-cluster.\(Int(Date().timeIntervalSince1970))"
        try FileManager.default.moveItem(atPath: memberDirectory, toPath: aside)
        try DataDirectoryBuilder.create(
            directory: directory, memberID: identity.memberID, clusterID: identity.clusterID,
            members: [identity.memberID: own], state: single, index: max(index, 1), term: max(term, 1))
        FileHandle.standardError.write(
            Data("etcd: forced a new cluster of this member alone at index \(index); the previous data is in \(aside)\n".utf8))
    }

    /// The TLS contexts of the client and peer sides, for those whose URLs are https (etcd
    /// refuses https URLs without certificates), and the TLS this member's own calls use.
    static func tlsContexts(_ configuration: EtcdServerConfiguration) throws -> (client: TLSContexts?, peer: TLSContexts?) {
        func side(_ settings: TLSSettings, urls: [String], flag: String, fixtures: String, protocols: [String]) throws -> TLSContexts? {
            guard urls.contains(where: { $0.hasPrefix("https://") }) else { return nil }
            guard settings.isEnabled else {
                throw EtcdServerError("TLS key/cert (\(flag)) must be provided for https URLs \(urls.joined(separator: ","))")
            }
            let hosts = urls.compactMap { URLComponents(string: $0)?.host }
            return try settings.contexts(fixtures: fixtures, hosts: hosts, applicationProtocols: protocols)
        }
        let directory = configuration.resolvedDataDirectory + "/fixtures"
        let client = try side(
            configuration.clientTLS, urls: configuration.listenClientURLs, flag: "--cert-file, --key-file or --auto-tls",
            fixtures: directory + "/client", protocols: ["h2", "http/1.1"])
        let peer = try side(
            configuration.peerTLS, urls: configuration.listenPeerURLs + configuration.initialAdvertisePeerURLs,
            flag: "--peer-cert-file, --peer-key-file or --peer-auto-tls", fixtures: directory + "/peer", protocols: [])
        MemberTLS.clientPorts.withLock { $0 = client.map { MemberTLS.configuration($0.clientFiles) } }
        MemberTLS.peerPorts.withLock { $0 = peer.map { MemberTLS.configuration($0.clientFiles) } }
        return (client, peer)
    }

    /// Creates the data directory and what is missing above it with mode 0700, as etcd
    /// does; an existing data directory open to others is reported as etcd 3.4 does
    /// (its permissions are left to the administrator).
    static func createPrivateDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let dataDirectory = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
        if let mode = (try? FileManager.default.attributesOfItem(atPath: dataDirectory))?[.posixPermissions] as? Int, mode & 0o077 != 0 {
            let shown = String(mode & 0o777, radix: 8)
            FileHandle.standardError.write(
                Data("etcd: check file permission: directory \"\(dataDirectory)\" exist, but the permission is 0\(shown). The recommended permission is 0700 to prevent possible unprivileged access to the data.\n".utf8))
        }
    }

    /// etcd's first lines: its version and the settings it runs with.
    static func logStart(_ configuration: EtcdServerConfiguration) {
        let log = configuration.log
        let directory = configuration.resolvedDataDirectory
        if log.format == .zap {
            log.info(
                "etcdmain", "", caller: "embed/etcd.go:305", message: "starting an etcd server",
                [
                    "etcd-version": .string(EtcdVersion.server), "name": .string(configuration.name), "data-dir": .string(directory),
                    "member-dir": .string(directory + "/member"), "snapshot-count": .int(Int64(configuration.snapshotCount)),
                    "advertise-client-urls": .strings(configuration.advertiseClientURLs),
                    "listen-client-urls": .strings(configuration.listenClientURLs),
                    "listen-peer-urls": .strings(configuration.listenPeerURLs),
                    "initial-cluster-state": .string(configuration.initialClusterState.rawValue),
                ])
            return
        }
        log.info("etcdmain", "etcd Version: \(EtcdVersion.server)", caller: "")
        log.info("embed", "name = \(configuration.name)", caller: "")
        log.info("embed", "data dir = \(directory)", caller: "")
        log.info("embed", "member dir = \(directory)/member", caller: "")
        log.info("embed", "heartbeat = \(configuration.heartbeatInterval)ms", caller: "")
        log.info("embed", "election = \(configuration.electionTimeout)ms", caller: "")
        log.info("embed", "snapshot count = \(configuration.snapshotCount)", caller: "")
        log.info("embed", "advertise client URLs = \(configuration.advertiseClientURLs.joined(separator: ","))", caller: "")
    }

    /// Serves until the task is cancelled. `ready` is called once clients can connect.
    public static func run(_ given: EtcdServerConfiguration, ready: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        let log = given.log
        logStart(given)
        let configuration = try await discovered(given)
        // The store's own thread: Raft, the log's writes and syncs, and the MVCC store.
        let storeThread = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { storeThread.shutdownGracefully { _ in } }
        let directory = configuration.resolvedDataDirectory
        try createPrivateDirectory(directory + "/member")
        if configuration.forceNewCluster {
            try await collapseToSingleMember(directory: directory, configuration: configuration, loop: storeThread.next())
        }
        let (clientTLS, peerTLS) = try tlsContexts(configuration)
        let identity = try await MemberIdentity.loadOrBootstrap(directory: directory + "/member", configuration: configuration)
        log.info(
            "etcdserver",
            "starting member \(String(identity.memberID, radix: 16)) in cluster \(String(identity.clusterID, radix: 16))",
            caller: "etcdserver/raft.go:536", message: "starting local member",
            ["local-member-id": .string(String(identity.memberID, radix: 16)), "cluster-id": .string(String(identity.clusterID, radix: 16))])
        let node = try await openNode(directory: directory, identity: identity, configuration: configuration, loop: storeThread.next())
        let limits = node.limits

        let peerListen = try configuration.listenPeerURLs.map { url throws(EtcdServerError) in
            try peerAddress(url, flag: "--listen-peer-urls")
        }
        let clusterID = identity.clusterID
        let transport = TCPTransport(
            id: identity.memberID, peers: [:], listen: peerListen, group: storeThread,
            httpResponder: { path in PeerMembers.respond(path: path, members: node.membersNow.withLock { $0 }, clusterID: clusterID) },
            tls: peerTLS.map { TCPTransport.PeerTLS(server: $0.server, client: $0.client) }, deliverBatch: { node.deliver($0) })
        await node.attach(transport)
        // Every member listens for peers, a lone one too: members may be added later.
        try await transport.start()
        defer { transport.shutdown() }
        for address in peerListen {
            let shown = address.unixPath ?? "\(address.host):\(address.port)"
            log.info(
                "embed", "listening for peers on \(shown)", caller: "embed/etcd.go:587", message: "serving peer traffic",
                ["address": .string(shown)])
        }
        await node.campaignIfAlone()

        guard !configuration.listenClientURLs.isEmpty else {
            throw EtcdServerError("--listen-client-urls is empty")
        }
        var endpoints = EtcdHTTPEndpoints(
            node: node, quotaBytes: limits.quotaBytes, enableV2: configuration.enableV2, maxLearners: configuration.maxLearners,
            bcryptCost: configuration.bcryptCost)
        let lockElection = LockElectionService()
        let router = GRPCRouter(
            kv: KVService(node: node),
            watch: WatchService(
                node: node, progressInterval: configuration.watchProgressNotifyInterval,
                fragmentBytes: configuration.maxRequestBytes + 512 * 1024),
            lease: LeaseService(node: node), cluster: ClusterService(node: node, maxLearners: configuration.maxLearners),
            maintenance: MaintenanceService(node: node), auth: AuthService(node: node, bcryptCost: configuration.bcryptCost),
            lockElection: lockElection, isLearner: { node.isLearnerNow })
        endpoints.grpcMetrics = router.metrics
        StoreNode.tokenLifetime.withLock { $0 = configuration.authTokenTTL }
        if configuration.authToken.hasPrefix("jwt,") {
            let tokens = try JWTTokens(options: String(configuration.authToken.dropFirst(4)))
            StoreNode.jwt.withLock { $0 = tokens }
        }
        // etcd's gRPC refuses messages over the request limit plus 512 KiB; between that and
        // four times it, the services answer with grpc-go's exact status (see
        // `StoreNode.propose`); above, the stream gets that status at once.
        // One listener per client URL, TLS on the https ones (etcd serves e.g. plain HTTP on
        // loopback and TLS outside at once).
        // One listener per address; an http and an https URL on one address share it.
        var addresses: [(host: String, port: Int, plain: Bool, secure: Bool)] = []
        for url in configuration.listenClientURLs {
            let (host, port) = try hostAndPort(url, flag: "--listen-client-urls")
            let secure = url.hasPrefix("https://")
            if let index = addresses.firstIndex(where: { $0.host == host && $0.port == port && port != 0 }) {
                if secure { addresses[index].secure = true } else { addresses[index].plain = true }
            } else {
                addresses.append((host, port, !secure, secure))
            }
        }
        let revocations: RevocationList?
        do {
            revocations = try configuration.clientTLS.revocationListFile.map { path in try RevocationList(contentsOf: path) }
        } catch {
            throw EtcdServerError("--client-crl-file: \(error)")
        }
        let listeners = addresses.map { address in
            var listener = ClientPortListener(
                host: address.host, port: address.port, responder: endpoints, router: router,
                maxMessageBytes: max(16 << 20, 4 * (configuration.maxRequestBytes + 512 * 1024)),
                tls: address.secure ? clientTLS?.server : nil, maxConcurrentStreams: configuration.maxConcurrentStreams)
            listener.alsoPlain = address.secure && address.plain
            listener.revocations = revocations
            return (listener: listener, host: address.host, port: address.port, secure: address.secure)
        }
        // Bound now, accepting once the member is published: a client that connects early
        // waits in the backlog instead of reaching a member that is not in the cluster yet.
        var bound: [(channel: any Channel, address: String, secure: Bool)] = []
        for item in listeners {
            let channel = try await item.listener.bind()
            let address = channel.localAddress
            bound.append((channel, "\(address?.ipAddress ?? item.host):\(address?.port ?? item.port)", item.secure))
        }
        let servedChannels = bound
        let metricsListeners = try configuration.listenMetricsURLs.map { url throws(EtcdServerError) in
            let (host, port) = try hostAndPort(url, flag: "--listen-metrics-urls")
            return HTTP1Listener(
                address: .tcp(host: host, port: port), responder: MetricsResponder(endpoints: endpoints),
                tls: url.hasPrefix("https://") ? clientTLS?.server : nil)
        }
        try await withThrowingDiscardingTaskGroup { group in
            for item in servedChannels {
                group.addTask { try await ClientPortListener.serve(item.channel, ready: { _ in }) }
            }
            for listener in metricsListeners {
                group.addTask {
                    try await listener.run { address in
                        log.info(
                            "embed", "listening for metrics on \(listener.address)", caller: "embed/etcd.go:708",
                            message: "serving metrics", ["address": .string(listener.address.description)])
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(configuration.heartbeatInterval))
                    await node.tick()
                }
            }
            group.addTask {
                await node.publish(name: configuration.name, clientURLs: configuration.advertiseClientURLs)
                guard !Task.isCancelled else { return }
                let memberHex = String(identity.memberID, radix: 16)
                let clusterHex = String(identity.clusterID, radix: 16)
                let attributes = "{Name:\(configuration.name) ClientURLs:[\(configuration.advertiseClientURLs.joined(separator: " "))]}"
                log.info(
                    "etcdserver", "published \(attributes) to cluster \(clusterHex)", caller: "etcdserver/server.go:2069",
                    message: "published local member to cluster through raft",
                    [
                        "local-member-id": .string(memberHex), "local-member-attributes": .string(attributes),
                        "request-path": .string("/0/members/\(memberHex)/attributes"), "cluster-id": .string(clusterHex),
                        "publish-timeout": "7s",
                    ])
                log.info(
                    "etcdserver/api", "enabled capabilities for version \(EtcdVersion.cluster)", caller: "api/capability.go:76",
                    message: "enabled capabilities for version", ["cluster-version": .string(EtcdVersion.cluster)])
                log.info("embed", "ready to serve client requests", caller: "embed/serve.go:97")
                for item in servedChannels {
                    try? await ClientPortListener.startAccepting(item.channel)
                    if item.secure {
                        log.info(
                            "embed", "serving client requests on \(item.address)", caller: "embed/serve.go:191",
                            message: "serving client traffic securely", ["address": .string(item.address)])
                    } else {
                        log.log(
                            .notice, "embed", "serving insecure client requests on \(item.address), this is strongly discouraged!",
                            caller: "embed/serve.go:140", message: "serving client traffic insecurely; this is strongly discouraged!",
                            ["address": .string(item.address)])
                    }
                }
                if let first = servedChannels.first, let address = first.channel.localAddress {
                    lockElection.listening(
                        on: EtcdEndpoint(host: address.ipAddress ?? "127.0.0.1", port: address.port ?? 0, secure: first.secure))
                    ready(first.address)
                }
                SystemdNotify.send("READY=1")
            }
            group.addTask {
                try await node.waitUntilRemoved()
                // Long enough to answer the request that removed us and, as leader, to hand over.
                try await Task.sleep(for: .milliseconds(2 * configuration.electionTimeout))
                throw EtcdServerError(
                    "the member has been permanently removed from the cluster; the data-dir used by this member (\(directory)) must be removed before it can join again")
            }
            if var policy = configuration.autoCompaction {
                group.addTask {
                    // Only the leader compacts, through the log, as etcd's compactor.
                    let started = ContinuousClock.now
                    while !Task.isCancelled {
                        try await Task.sleep(for: policy.checkInterval)
                        let (store, _) = await node.readView()
                        guard await node.isLeader,
                            let target = policy.check(
                                at: ContinuousClock.now - started, currentRevision: store.currentRevision,
                                compactedRevision: store.compactedRevision)
                        else { continue }
                        var request = Etcdserverpb_CompactionRequest()
                        request.revision = target
                        _ = await node.propose(.compact, try request.serializedBytes())
                    }
                }
            }
        }
    }
}
