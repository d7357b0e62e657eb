import HTTPServer
import EtcdAPI
public import EtcdClient
import Foundation
import GRPCCore
import NIOCore
import NIOHTTP1
import SwiftProtobuf
import Synchronization

/// What a worker node's local etcd proxy was asked to do: where to listen (one port, gRPC
/// and HTTP/1.1 as on a member), which cluster to serve, and whether writes pass.
public struct EtcdProxyConfiguration: Sendable {
    public var listenHost = "127.0.0.1"
    public var listenPort = 2379
    /// Client URLs of members to start from; the member list refreshes them.
    public var endpoints: [EtcdEndpoint] = []
    /// Peer URLs (etcd's v2 `--proxy` takes `--initial-cluster`): asked for the members'
    /// client URLs over the peer port's `/members`.
    public var peerURLs: [String] = []
    /// `--proxy readonly`: reads only.
    public var readOnly = false
    /// How often the member list is read again (etcd's v2 proxy: 30 s).
    public var refreshInterval: Duration = .seconds(30)
    public var tls: EtcdTLSConfiguration?

    public init() {}
}

/// The proxy a worker node runs on 127.0.0.1:2379 so that fleet, flannel and anything
/// else local talk to one address while the members come and go: every v3 gRPC call is
/// passed on as bytes to a member (EtcdClient's round robin and failover); watches are
/// coalesced and survive the loss of a member (`ProxyWatchHub`); lease keep-alive and
/// snapshot streams pass through; HTTP/1.1 requests (v2 keys, /version, /health, the v3
/// JSON gateway) go to a member's client URL, the next one when it does not answer.
/// `readOnly` refuses every request that would change the cluster.
public enum EtcdProxy {
    /// Serves until cancelled; `ready` gets the bound address.
    public static func run(_ configuration: EtcdProxyConfiguration, ready: @escaping @Sendable (String) -> Void) async throws {
        var endpoints = configuration.endpoints
        guard !endpoints.isEmpty || !configuration.peerURLs.isEmpty else { throw EtcdServerError("proxy: no endpoints to forward to") }
        var delay = Duration.milliseconds(200)
        while endpoints.isEmpty {
            // The members may start after the proxy (a worker booting with the masters).
            do {
                endpoints = try await clientEndpoints(fromPeers: configuration.peerURLs)
            } catch {
                FileHandle.standardError.write(Data("etcd: \(error); retrying in \(delay)\n".utf8))
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
        let state = ProxyState(endpoints: endpoints)
        let hub = ProxyWatchHub()
        let router = GRPCRouter(proxyingTo: state, hub: hub, readOnly: configuration.readOnly)
        let http = ProxyHTTPResponder(state: state, hub: hub, readOnly: configuration.readOnly, tls: configuration.tls)
        let listener = ClientPortListener(
            host: configuration.listenHost, port: configuration.listenPort, responder: http, router: router, maxMessageBytes: 16 << 20)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                try await listener.run { address in
                    ready("\(address.ipAddress ?? configuration.listenHost):\(address.port ?? configuration.listenPort)")
                }
            }
            group.addTask {
                try await followMembers(state: state, hub: hub, configuration: configuration)
            }
        }
    }

    /// One client per endpoint set. When the member list changes, a client for the new set
    /// is started and takes over (watches move to it) before the old one is let go; the old
    /// one lingers only while streams passed through it are still open.
    static func followMembers(state: ProxyState, hub: ProxyWatchHub, configuration: EtcdProxyConfiguration) async throws {
        try await withThrowingDiscardingTaskGroup { clients in
            var stopPrevious: AsyncStream<Void>.Continuation?
            while !Task.isCancelled {
                let endpoints = state.endpoints
                var clientConfiguration = EtcdClientConfiguration(endpoints: endpoints, tls: configuration.tls)
                clientConfiguration.requestTimeout = .seconds(10)
                let (installed, markInstalled) = AsyncStream<EtcdClient>.makeStream()
                let (stop, stopThis) = AsyncStream<Void>.makeStream()
                let settings = clientConfiguration
                clients.addTask {
                    try await EtcdClient.withClient(settings) { client in
                        markInstalled.yield(client)
                        markInstalled.finish()
                        for await _ in stop {}
                    }
                }
                var current: EtcdClient?
                for await client in installed {
                    current = client
                    break
                }
                guard let client = current else { return }
                state.client.withLock { $0 = client }
                await hub.use(client)
                stopPrevious?.finish()
                stopPrevious = stopThis
                while !Task.isCancelled {
                    try await Task.sleep(for: configuration.refreshInterval)
                    guard let members = try? await client.memberList() else { continue }
                    let fresh = members.members.filter { !$0.isLearner }.flatMap(\.clientUrls).compactMap { try? EtcdEndpoint(parsing: $0) }
                    if !fresh.isEmpty, Set(fresh) != Set(endpoints) {
                        FileHandle.standardError.write(Data("etcd proxy: members now \(fresh.map(\.description).joined(separator: ","))\n".utf8))
                        state.setEndpoints(fresh)
                        break
                    }
                }
            }
        }
    }

    /// The members' client URLs, from the peer port of any of them.
    static func clientEndpoints(fromPeers peerURLs: [String]) async throws -> [EtcdEndpoint] {
        var failures: [String] = []
        for url in peerURLs {
            do {
                let response = try await HTTP1Exchange.perform(
                    "GET", url: try HTTPURL(parsing: url), pathAndQuery: "/members", dialTimeout: .seconds(2), headerTimeout: .seconds(5),
                    maxBodyBytes: 1 << 20)
                let listed = try JSONDecoder().decode([PeerMembers.Listed].self, from: Data(response.body))
                let endpoints = listed.filter { $0.isLearner != true }.flatMap(\.clientURLs).compactMap { try? EtcdEndpoint(parsing: $0) }
                if !endpoints.isEmpty { return endpoints }
            } catch {
                failures.append("\(url): \(error)")
            }
        }
        throw EtcdServerError("proxy: could not read the member list from \(peerURLs.joined(separator: ",")): \(failures.joined(separator: "; "))")
    }
}

/// The client in use and the endpoints it was made for.
final class ProxyState: Sendable {
    let client = Mutex<EtcdClient?>(nil)
    private let endpointList: Mutex<[EtcdEndpoint]>
    /// Where HTTP/1.1 requests go first (the last member that answered).
    let preferred = Mutex(0)

    init(endpoints: [EtcdEndpoint]) { endpointList = Mutex(endpoints) }

    var endpoints: [EtcdEndpoint] { endpointList.withLock { $0 } }
    func setEndpoints(_ endpoints: [EtcdEndpoint]) { endpointList.withLock { $0 = endpoints } }

    func currentClient() throws -> EtcdClient {
        guard let client = client.withLock({ $0 }) else {
            throw RPCError(code: .unavailable, message: "etcdserver: no endpoint available yet")
        }
        return client
    }
}

extension GRPCRouter {
    /// Calls that change the cluster: refused by a read-only proxy.
    static let writingMethods: Set<String> = [
        "KV/Put", "KV/DeleteRange", "KV/Compact", "Lease/LeaseGrant", "Lease/LeaseRevoke", "Lease/LeaseKeepAlive",
        "Cluster/MemberAdd", "Cluster/MemberRemove", "Cluster/MemberUpdate", "Cluster/MemberPromote", "Maintenance/Alarm",
        "Maintenance/Defragment", "Maintenance/MoveLeader", "Auth/AuthEnable", "Auth/AuthDisable", "Auth/UserAdd",
        "Auth/UserDelete", "Auth/UserChangePassword", "Auth/UserGrantRole", "Auth/UserRevokeRole", "Auth/RoleAdd",
        "Auth/RoleDelete", "Auth/RoleGrantPermission", "Auth/RoleRevokePermission",
    ]

    static let readOnlyRefusal = RPCError(code: .permissionDenied, message: "etcdproxy: this proxy is read-only")

    /// Every etcd v3 method, passed on to the cluster.
    init(proxyingTo state: ProxyState, hub: ProxyWatchHub, readOnly: Bool) {
        let unary: [(String, [String])] = [
            ("KV", ["Range", "Put", "DeleteRange", "Txn", "Compact"]),
            ("Lease", ["LeaseGrant", "LeaseRevoke", "LeaseTimeToLive", "LeaseLeases"]),
            ("Cluster", ["MemberAdd", "MemberRemove", "MemberUpdate", "MemberList", "MemberPromote"]),
            ("Maintenance", ["Alarm", "Status", "Defragment", "Hash", "HashKV", "MoveLeader"]),
            ("Auth", [
                "AuthEnable", "AuthDisable", "Authenticate", "UserAdd", "UserGet", "UserList", "UserDelete", "UserChangePassword",
                "UserGrantRole", "UserRevokeRole", "RoleAdd", "RoleGet", "RoleList", "RoleDelete", "RoleGrantPermission",
                "RoleRevokePermission",
            ]),
        ]
        var table: [String: (MethodDescriptor, GRPCMethod)] = [:]
        for (service, methods) in unary {
            for method in methods {
                let refused = readOnly && Self.writingMethods.contains("\(service)/\(method)")
                let isTxn = service == "KV" && method == "Txn"
                table["/etcdserverpb.\(service)/\(method)"] = (
                    MethodDescriptor(fullyQualifiedService: "etcdserverpb.\(service)", method: method),
                    .unary { bytes, _, caller in
                        if refused { throw Self.readOnlyRefusal }
                        if readOnly && isTxn, let txn = try? Etcdserverpb_TxnRequest(serializedBytes: bytes), Self.txnWrites(txn) {
                            throw Self.readOnlyRefusal
                        }
                        do {
                            return try await state.currentClient().forwardUnary(
                                service: "etcdserverpb.\(service)", method: method, request: bytes, metadata: caller.forwarded)
                        } catch let error as EtcdError {
                            throw RPCError(code: Self.code(error.code), message: error.message)
                        }
                    }
                )
            }
        }
        for (service, method) in [("Lease", "LeaseKeepAlive"), ("Maintenance", "Snapshot")] {
            let refused = readOnly && Self.writingMethods.contains("\(service)/\(method)")
            table["/etcdserverpb.\(service)/\(method)"] = (
                MethodDescriptor(fullyQualifiedService: "etcdserverpb.\(service)", method: method),
                .streaming { requests, sink, _ in
                    if refused { throw Self.readOnlyRefusal }
                    do {
                        try await state.currentClient().forwardStream(
                            service: "etcdserverpb.\(service)", method: method, requests: requests, metadata: sink.caller.forwarded
                        ) { message in try await sink.send(message) }
                    } catch let error as EtcdError {
                        throw RPCError(code: Self.code(error.code), message: error.message)
                    }
                }
            )
        }
        let watch = ProxyWatchService(hub: hub)
        table["/etcdserverpb.Watch/Watch"] = (
            MethodDescriptor(fullyQualifiedService: "etcdserverpb.Watch", method: "Watch"), .streaming(watch.watch)
        )
        self.init(methods: table)
    }

    static func txnWrites(_ txn: Etcdserverpb_TxnRequest) -> Bool {
        (txn.success + txn.failure).contains { operation in
            switch operation.request {
            case .requestPut, .requestDeleteRange: true
            case .requestTxn(let nested): txnWrites(nested)
            default: false
            }
        }
    }

    static func code(_ code: EtcdError.Code) -> RPCError.Code {
        switch code {
        case .invalidArgument: .invalidArgument
        case .notFound: .notFound
        case .alreadyExists: .alreadyExists
        case .failedPrecondition: .failedPrecondition
        case .permissionDenied: .permissionDenied
        case .unauthenticated: .unauthenticated
        case .resourceExhausted: .resourceExhausted
        case .outOfRange, .compacted: .outOfRange
        case .deadlineExceeded: .deadlineExceeded
        case .cancelled: .cancelled
        case .aborted: .aborted
        case .unimplemented: .unimplemented
        case .internal: .internalError
        case .dataLoss: .dataLoss
        default: .unavailable
        }
    }
}

/// HTTP/1.1 through the proxy: passed to a member's client URL (the next one when it does
/// not answer); `/metrics` is the proxy's own.
struct ProxyHTTPResponder: HTTPResponder {
    let state: ProxyState
    let hub: ProxyWatchHub
    let readOnly: Bool
    let tls: EtcdTLSConfiguration?

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        if request.path == "/metrics" {
            let counts = hub.counts.withLock { $0 }
            let text = """
                # HELP etcd_grpc_proxy_watchers_coalescing_total Total number of current watchers coalesced
                # TYPE etcd_grpc_proxy_watchers_coalescing_total gauge
                etcd_grpc_proxy_watchers_coalescing_total \(counts.watchers - counts.upstreams)
                # HELP coreos_etcd_proxy_watchers Client watchers served by the proxy
                # TYPE coreos_etcd_proxy_watchers gauge
                coreos_etcd_proxy_watchers \(counts.watchers)
                # HELP coreos_etcd_proxy_upstream_watches Watches the proxy holds on the cluster
                # TYPE coreos_etcd_proxy_upstream_watches gauge
                coreos_etcd_proxy_upstream_watches \(counts.upstreams)

                """
            return HTTPResponse(.ok, contentType: "text/plain; version=0.0.4", body: text)
        }
        // etcd's read-only v2 proxy answers every other method with 501 Not Implemented.
        if readOnly && request.method != .GET && request.method != .HEAD {
            return HTTPResponse(.notImplemented, contentType: "text/plain; charset=utf-8", body: "Not Implemented\n")
        }
        let endpoints = state.endpoints
        guard !endpoints.isEmpty else { return HTTPResponse(.serviceUnavailable, contentType: "text/plain", body: "no endpoints\n") }
        let start = state.preferred.withLock { $0 } % endpoints.count
        let waits = request.uri.contains("wait=true")
        var failures: [String] = []
        for step in 0..<endpoints.count {
            let endpoint = endpoints[(start + step) % endpoints.count]
            let url = HTTPURL(secure: endpoint.secure || tls != nil, host: endpoint.host, port: endpoint.port)
            var headers: [(String, String)] = []
            for (name, value) in request.headers where !["host", "connection", "content-length", "transfer-encoding"].contains(name.lowercased()) {
                headers.append((name, value))
            }
            do {
                let answer = try await HTTP1Exchange.perform(
                    request.method.rawValue, url: url, pathAndQuery: request.uri, headers: headers,
                    body: request.body.isEmpty && (request.method == .GET || request.method == .HEAD) ? nil : request.body, tls: tls,
                    dialTimeout: .seconds(1), headerTimeout: waits ? nil : .seconds(10), maxBodyBytes: 64 << 20)
                state.preferred.withLock { $0 = (start + step) % endpoints.count }
                var response = HTTPResponse(HTTPResponseStatus(statusCode: answer.status), contentType: "", body: "")
                response.headers = answer.headers.filter {
                    !["content-length", "date", "connection", "transfer-encoding"].contains($0.name.lowercased())
                }.map { ($0.name, $0.value) }
                response.body = answer.body
                return response
            } catch {
                failures.append("\(endpoint): \(error)")
            }
        }
        return HTTPResponse(
            .badGateway, contentType: "text/plain; charset=utf-8", body: "proxy: no member answered: \(failures.joined(separator: "; "))\n")
    }
}

extension CallerCredentials {
    /// The caller's token, passed on so the members check the caller, not the proxy.
    var forwarded: Metadata {
        var metadata = Metadata()
        if let token { metadata.addString(token, forKey: "token") }
        return metadata
    }
}
