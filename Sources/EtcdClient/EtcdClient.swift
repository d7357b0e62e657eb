import EtcdAPI
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization

/// An async client for etcd's v3 API. Works against real etcd 3.4+ and `coreos etcd`.
///
/// A client lives inside ``withClient(_:_:)``: connections run for the duration of the
/// closure and are closed when it returns, so no connection outlives its user.
///
/// ```swift
/// try await EtcdClient.withClient(.init(endpoints: [try .init(parsing: "127.0.0.1:2379")])) { etcd in
///     try await etcd.put("foo", "bar")
///     let response = try await etcd.get("foo")
/// }
/// ```
///
/// Calls are spread round-robin over the endpoints that are reachable (failover). Unary calls carry the
/// configured deadline; a lost auth token is refreshed once and the call retried.
public final class EtcdClient: Sendable {
    public let configuration: EtcdClientConfiguration
    let grpc: GRPCClient<HTTP2ClientTransport.Posix>
    private let token = Mutex<String?>(nil)

    var kvService: Etcdserverpb_KV.Client<HTTP2ClientTransport.Posix> { .init(wrapping: grpc) }
    var watchService: Etcdserverpb_Watch.Client<HTTP2ClientTransport.Posix> { .init(wrapping: grpc) }
    var leaseService: Etcdserverpb_Lease.Client<HTTP2ClientTransport.Posix> { .init(wrapping: grpc) }
    var clusterService: Etcdserverpb_Cluster.Client<HTTP2ClientTransport.Posix> { .init(wrapping: grpc) }
    var maintenanceService: Etcdserverpb_Maintenance.Client<HTTP2ClientTransport.Posix> { .init(wrapping: grpc) }
    var authService: Etcdserverpb_Auth.Client<HTTP2ClientTransport.Posix> { .init(wrapping: grpc) }

    init(configuration: EtcdClientConfiguration, grpc: GRPCClient<HTTP2ClientTransport.Posix>) {
        self.configuration = configuration
        self.grpc = grpc
    }

    /// Connects to the cluster, runs `body` with a client, and closes the connections.
    public static func withClient<Result: Sendable>(
        _ configuration: EtcdClientConfiguration,
        _ body: (EtcdClient) async throws -> Result
    ) async throws -> Result {
        let transport = try makeTransport(configuration)
        return try await withGRPCClient(transport: transport) { grpc in
            let client = EtcdClient(configuration: configuration, grpc: grpc)
            if let token = configuration.token { client.token.withLock { $0 = token } }
            if configuration.credentials != nil { try await client.authenticate() }
            return try await body(client)
        }
    }

    /// Connects to one endpoint only (for per-endpoint commands such as `endpoint status`).
    public static func withClient<Result: Sendable>(
        _ configuration: EtcdClientConfiguration,
        endpoint: EtcdEndpoint,
        _ body: (EtcdClient) async throws -> Result
    ) async throws -> Result {
        var single = configuration
        single.endpoints = [endpoint]
        return try await withClient(single, body)
    }

    static func makeTransport(_ configuration: EtcdClientConfiguration) throws -> HTTP2ClientTransport.Posix {
        guard let first = configuration.endpoints.first else {
            throw EtcdError(.invalidArgument, "no endpoints given")
        }
        let target: any ResolvableTarget
        let allIPv4 = configuration.endpoints.allSatisfy { isIPv4Literal($0.host) }
        if allIPv4 {
            target = .ipv4(pairs: configuration.endpoints.map { (host: $0.host, port: $0.port) })
        } else if configuration.endpoints.allSatisfy({ $0.host.contains(":") }) {
            target = .ipv6(pairs: configuration.endpoints.map { (host: $0.host, port: $0.port) })
        } else {
            target = .dns(host: first.host, port: first.port)
        }
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.connection.maxIdleTime = nil
        config.backoff.initial = .milliseconds(100)
        config.backoff.max = .seconds(1)
        config.channelDebuggingCallbacks.onCreateTCPConnection = { channel in HTTP2PingResponder.install(on: channel) }
        let useTLS = configuration.tls != nil || configuration.endpoints.contains { $0.secure }
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if useTLS {
            let tls = configuration.tls ?? EtcdTLSConfiguration()
            security = .tls { settings in
                if let certificate = tls.certificateFile, let key = tls.keyFile {
                    settings.certificateChain = [.file(path: certificate, format: .pem)]
                    settings.privateKey = .file(path: key, format: .pem)
                }
                if let ca = tls.trustedCAFile {
                    settings.trustRoots = .certificates([.file(path: ca, format: .pem)])
                }
                if tls.insecureSkipVerify { settings.serverCertificateVerification = .noVerification }
            }
        } else {
            security = .plaintext
        }
        // Round robin over every endpoint, as clientv3 3.4's balancer: a dead member is skipped
        // while the others serve.
        let serviceConfig = ServiceConfig(loadBalancingConfig: [.roundRobin])
        return try HTTP2ClientTransport.Posix(
            target: target, transportSecurity: security, config: config, serviceConfig: serviceConfig)
    }

    private static func isIPv4Literal(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }

    // MARK: Call plumbing

    /// Options for a unary call: wait for a connection, all within the request deadline
    /// (as clientv3 does: its dial is non-blocking).
    var unaryOptions: CallOptions {
        var options = CallOptions.defaults
        options.timeout = configuration.requestTimeout
        options.waitForReady = true
        return options
    }

    /// Options for streams: wait for a connection, no deadline.
    var streamOptions: CallOptions {
        var options = CallOptions.defaults
        options.waitForReady = true
        return options
    }

    var metadata: Metadata {
        guard let token = token.withLock({ $0 }) else { return [:] }
        return ["token": "\(token)"]
    }

    /// Runs a unary call with the client's metadata and deadline, maps errors to
    /// ``EtcdError`` and re-authenticates once on an invalid token.
    func call<Response: Sendable>(
        _ body: @Sendable (_ metadata: Metadata, _ options: CallOptions) async throws -> Response
    ) async throws(EtcdError) -> Response {
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.requestTimeout
        var reauthenticated = false
        var backoff = Duration.milliseconds(20)
        while true {
            var options = unaryOptions
            options.timeout = max(deadline - clock.now, .milliseconds(1))
            do {
                return try await body(metadata, options)
            } catch {
                let wrapped = EtcdError.wrap(error)
                if wrapped.message == EtcdError.invalidAuthToken && configuration.credentials != nil && !reauthenticated {
                    reauthenticated = true
                    try await authenticate()
                    continue
                }
                // Nothing was sent when no connection was ready: retrying cannot apply a
                // request twice, so wait for a connection until the deadline.
                guard wrapped.code == .unavailable, Self.notSentMessages.contains(wrapped.message),
                    clock.now + backoff < deadline
                else { throw wrapped }
                do { try await Task.sleep(for: backoff) } catch { throw EtcdError.wrap(error) }
                backoff = min(backoff * 2, .milliseconds(500))
            }
        }
    }

    /// Transport errors that mean the request never left the client.
    static let notSentMessages: Set<String> = ["subchannel isn't ready"]

    /// Gets a token for the configured user (`Auth.Authenticate`).
    public func authenticate() async throws(EtcdError) {
        guard let credentials = configuration.credentials else { return }
        var request = Etcdserverpb_AuthenticateRequest()
        request.name = credentials.user
        request.password = credentials.password
        let options = unaryOptions
        do {
            let response = try await authService.authenticate(request, options: options)
            token.withLock { $0 = response.token }
        } catch {
            throw EtcdError.wrap(error)
        }
    }
}
