import EtcdClient
public import Flannel
import HTTPServer
import NIOCore
import NIOHTTP1
import Net
import Platform

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// flanneld: takes a subnet lease for this host, programs the backend for every other
/// host's lease, writes `subnet.env`, and keeps all of it current until cancelled.
public enum FlannelDaemon {
    public typealias Log = @Sendable (String) -> Void

    public static let version = "v0.26.1-coreos"

    /// Runs until cancelled or until this host's lease is revoked (an error).
    public static func run(_ options: FlannelOptions, log: @escaping Log) async throws {
        try await withRegistry(options) { registry in
            try await run(options, registry: registry, log: log)
        }
    }

    /// Connects to etcd the way `options` say (v3 gRPC, or the v2 keys API) for `body`.
    public static func withRegistry<Result: Sendable>(
        _ options: FlannelOptions, _ body: @Sendable (any SubnetRegistry) async throws -> Result
    ) async throws -> Result {
        var tls: EtcdTLSConfiguration?
        if options.etcdCAFile != nil || options.etcdCertFile != nil || options.etcdKeyFile != nil {
            tls = EtcdTLSConfiguration(
                trustedCAFile: options.etcdCAFile, certificateFile: options.etcdCertFile, keyFile: options.etcdKeyFile)
        }
        let credentials = options.etcdUsername.map { (user: $0, password: options.etcdPassword ?? "") }
        if options.etcdAPI == "v2" {
            var urls: [HTTPURL] = []
            for text in options.etcdEndpoints {
                do { urls.append(try HTTPURL(parsing: text)) } catch { throw FlannelError("--etcd-endpoints \(text): \(error)") }
            }
            let client = EtcdV2Client(
                endpoints: urls, tls: tls, headerTimeout: .seconds(5), dialTimeout: .seconds(5), credentials: credentials)
            return try await body(EtcdV2SubnetRegistry(client: client, prefix: options.etcdPrefix))
        }
        var endpoints: [EtcdEndpoint] = []
        for text in options.etcdEndpoints {
            do { endpoints.append(try EtcdEndpoint(parsing: text)) } catch { throw FlannelError("--etcd-endpoints \(text): \(error)") }
        }
        let configuration = EtcdClientConfiguration(
            endpoints: endpoints, dialTimeout: .seconds(5), requestTimeout: .seconds(10), tls: tls, credentials: credentials)
        return try await EtcdClient.withClient(configuration) { client in
            try await body(EtcdV3SubnetRegistry(client: client, prefix: options.etcdPrefix))
        }
    }

    /// Reads and checks the network configuration; nil while the key does not exist.
    public static func loadConfig(_ registry: any SubnetRegistry, prefix: String) async throws -> FlannelConfig? {
        guard let text = try await registry.networkConfig() else { return nil }
        do {
            var config = try FlannelConfig(json: text)
            try config.check()
            _ = try BackendSettings(config)
            return config
        } catch {
            throw FlannelError("invalid network config at \(EtcdV3SubnetRegistry.configKey(prefix)): \(error)")
        }
    }

    static func run(_ options: FlannelOptions, registry: any SubnetRegistry, log: @escaping Log) async throws {
        let health = HealthState()
        try await withThrowingTaskGroup(of: Void.self) { group in
            if options.healthzPort > 0 {
                group.addTask {
                    let listener = HTTP1Listener(host: options.healthzIP, port: options.healthzPort, responder: health)
                    try await listener.run { address in log("Start healthz server on \(address)") }
                }
            }
            group.addTask {
                let overlay = try await Overlay.start(options, registry: registry, log: log)
                await health.setReady()
                SystemdNotify.send("READY=1")
                try await overlay.run()
            }
            try await group.next()
            group.cancelAll()
        }
    }
}

/// `/healthz`: 200 once the lease is held and the backend runs, 503 before.
actor HealthState: HTTPResponder {
    private var ready = false

    func setReady() { ready = true }

    nonisolated func respond(to request: HTTPRequest) async -> HTTPResponse {
        guard request.path == "/healthz" || request.path == "/readyz" else { return .notFound }
        if await ready { return HTTPResponse(.ok, contentType: "text/plain", body: "flanneld is running\n") }
        return HTTPResponse(.serviceUnavailable, contentType: "text/plain", body: "flanneld has no lease yet\n")
    }
}

/// One host's overlay: its lease, the other hosts' leases, and the backend that routes to
/// them. Everything that touches the kernel runs on this actor, one change at a time.
actor Overlay {
    let options: FlannelOptions
    let registry: any SubnetRegistry
    let log: FlannelDaemon.Log
    let config: FlannelConfig
    let network: IPv4Network
    let external: ExternalInterface
    let backend: any NetworkBackend
    let ownKey: SubnetKey
    let ownAttributes: SubnetLeaseAttributes
    let isReservation: Bool
    private(set) var expiry: ContinuousClock.Instant
    private var leases: [SubnetKey: SubnetLeaseRecord] = [:]
    private var revoked = false
    private var reportedFailures: Set<String> = []
    private let listedRevision: Int64

    private init(
        options: FlannelOptions, registry: any SubnetRegistry, log: @escaping FlannelDaemon.Log, config: FlannelConfig,
        network: IPv4Network, external: ExternalInterface, backend: any NetworkBackend, lease: AcquiredLease
    ) {
        self.options = options
        self.registry = registry
        self.log = log
        self.config = config
        self.network = network
        self.external = external
        self.backend = backend
        ownKey = lease.key
        ownAttributes = lease.attributes
        isReservation = lease.isReservation
        expiry = lease.expiry
        listedRevision = lease.revision
        for record in lease.records { leases[record.key] = record }
    }

    struct AcquiredLease {
        var key: SubnetKey
        var attributes: SubnetLeaseAttributes
        var isReservation: Bool
        var expiry: ContinuousClock.Instant
        var records: [SubnetLeaseRecord]
        var revision: Int64
    }

    /// Everything up to a working overlay: interface, configuration, backend device, lease,
    /// subnet.env. Nothing in the kernel changes before the configuration has been checked.
    static func start(_ options: FlannelOptions, registry: any SubnetRegistry, log: @escaping FlannelDaemon.Log)
        async throws -> Overlay
    {
        let netlink = try RouteNetlink()
        let external = try ExternalInterfaceSelection.select(options, netlink: netlink)
        log("Using interface with name \(external.link.name) and address \(external.address.address)")
        log("Using \(external.publicIP) as external address")

        var config: FlannelConfig?
        var attempts = 0
        while config == nil {
            config = try await retryingStore("fetch network config", log: log) {
                try await FlannelDaemon.loadConfig(registry, prefix: options.etcdPrefix)
            }
            if config == nil {
                if attempts % 10 == 0 {
                    log("Couldn't fetch network config: \(EtcdV3SubnetRegistry.configKey(options.etcdPrefix)) not found "
                        + "(create it with `coreos flannel network create`; an --etcd-api=\(options.etcdAPI) key); retrying")
                }
                attempts += 1
                try await Task.sleep(for: .seconds(1))
            }
        }
        guard let config, let network = config.network else { throw FlannelError("the network config has no IPv4 Network") }
        let settings = try BackendSettings(config)
        if network.contains(external.address.address) || network.contains(external.publicIP) {
            throw FlannelError(
                "the flannel Network \(network) overlaps the external interface's address \(external.address.address)"
                    + " (\(external.link.name)): pick a Network the hosts do not use")
        }
        log("Found network config - Backend type: \(settings.kind.rawValue)")

        let backend: any NetworkBackend
        switch settings.kind {
        case .vxlan:
            backend = try VXLANBackend(
                settings: settings, external: external, netlink: netlink,
                hardwareAddress: ExternalInterfaceSelection.stableHardwareAddress(vni: settings.vni))
        case .hostGateway:
            backend = HostGatewayBackend(settings: settings, external: external, netlink: netlink)
        case .udp:
            backend = try UDPBackend(settings: settings, external: external, netlink: netlink)
        }

        let lease = try await retryingStore("acquire a subnet lease", log: log) {
            try await acquire(options: options, registry: registry, config: config, external: external, backend: backend, log: log)
        }
        guard let subnet = lease.key.ipv4 else { throw FlannelError("the lease \(lease.key) has no IPv4 subnet") }
        log("Allocated lease (ip: \(subnet)) to current node (\(external.publicIP))")
        try backend.configure(subnet: subnet, network: network)
        let mtu = backend.mtu
        let overlay = Overlay(
            options: options, registry: registry, log: log, config: config, network: network, external: external,
            backend: backend, lease: lease)
        if options.ipMasquerade {
            let masquerade = try MasqueradeManager(network: network, subnet: subnet, forwardRules: options.iptablesForwardRules)
            try masquerade.ensure()
            log("Setting up masking rules (\(masquerade.tool))")
        }
        let text = SubnetEnvironment.text(config: config, lease: lease.key, mtu: mtu, ipMasquerade: options.ipMasquerade)
        do {
            try SubnetEnvironment.write(text, to: options.subnetFile)
        } catch {
            throw FlannelError("cannot write \(options.subnetFile): \(error)")
        }
        log("Wrote subnet file to \(options.subnetFile)")
        try await overlay.reconcile()
        log("Running backend.")
        return overlay
    }

    /// Runs `body` until it succeeds or fails for a reason retrying cannot change (a bad
    /// configuration, no free subnet, the kernel): an etcd that is starting, electing a
    /// leader or briefly unreachable is waited for, as flannel waits for it.
    static func retryingStore<Result: Sendable>(
        _ what: String, log: FlannelDaemon.Log, _ body: () async throws -> Result
    ) async throws -> Result {
        var delay = Duration.milliseconds(500)
        while true {
            do {
                return try await body()
            } catch let error where error is FlannelError || error is SubnetAllocator.Failure || error is NetlinkError
                || error is CancellationError
            {
                throw error
            } catch {
                log("Failed to \(what) (retrying in \(delay)): \(error)")
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    /// flannel's acquisition: decide, then create-if-absent; another host winning the race
    /// sends us back to the listing (10 tries).
    static func acquire(
        options: FlannelOptions, registry: any SubnetRegistry, config: FlannelConfig, external: ExternalInterface,
        backend: any NetworkBackend, log: FlannelDaemon.Log
    ) async throws -> AcquiredLease {
        let previous = previousSubnet(options.subnetFile)
        let attributes = SubnetLeaseAttributes(
            publicIP: external.publicIP.description, backendType: backend.settings.kind.rawValue,
            backendData: backend.backendData)
        let ttl = Int64(options.leaseTTL.components.seconds)
        for _ in 0..<10 {
            let (records, revision) = try await registry.leases()
            let views = records.compactMap { record -> SubnetLeaseView? in
                guard let subnet = record.key.ipv4, let ip = try? IPv4Address(parsing: record.attributes.publicIP) else { return nil }
                return SubnetLeaseView(
                    subnet: subnet, publicIP: ip, isReservation: !record.expires, hostIdentity: record.attributes.vtepMAC)
            }
            let decision = try SubnetAllocator.decide(
                config: config, leases: views, publicIP: external.publicIP, previous: previous,
                identity: backend.hostIdentity, random: { Int.random(in: 0..<$0) })
            switch decision {
            case .reuse(let view):
                let key = SubnetKey(ipv4: view.subnet)
                try await registry.renewLease(key, attributes, ttl: view.isReservation ? 0 : ttl)
                log("Found lease (ip: \(view.subnet)) for current IP (\(external.publicIP)), reusing")
                return AcquiredLease(
                    key: key, attributes: attributes, isReservation: view.isReservation,
                    expiry: .now + options.leaseTTL, records: records, revision: revision)
            case .create(let subnet, let deleteFirst):
                if let deleteFirst {
                    log("Deleting the old lease \(deleteFirst): it no longer fits the network config")
                    try await registry.deleteLease(SubnetKey(ipv4: deleteFirst))
                }
                let key = SubnetKey(ipv4: subnet)
                if try await registry.createLease(key, attributes, ttl: ttl) {
                    return AcquiredLease(
                        key: key, attributes: attributes, isReservation: false, expiry: .now + options.leaseTTL,
                        records: records, revision: revision)
                }
                log("Subnet \(subnet) was taken by another host meanwhile; trying again")
            }
        }
        throw FlannelError("Max retries reached trying to acquire a subnet")
    }

    /// The subnet of an earlier `subnet.env` (`FLANNEL_SUBNET=10.5.52.1/24` → 10.5.52.0/24).
    static func previousSubnet(_ path: String) -> IPv4Network? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("FLANNEL_SUBNET=") {
            guard let parsed = try? IPv4Network(parsing: line.dropFirst("FLANNEL_SUBNET=".count)) else { return nil }
            return try? IPv4Network(address: IPv4Address(bits: parsed.address.bits & parsed.netmask.bits), prefixLength: parsed.prefixLength)
        }
        return nil
    }

    // MARK: Running

    func run() async throws {
        let revoked = AsyncStream<Void>.makeStream()
        let revision = listedRevision
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await self.registry.watchLeases(after: revision) { events in
                    if await self.apply(events) { revoked.continuation.finish() }
                }
            }
            group.addTask { try await self.renewLoop() }
            if options.ipMasquerade, let subnet = ownKey.ipv4 {
                let masquerade = try MasqueradeManager(
                    network: network, subnet: subnet, forwardRules: options.iptablesForwardRules)
                let interval = options.iptablesResync
                let log = self.log
                group.addTask {
                    while true {
                        try await Task.sleep(for: interval)
                        if try masquerade.ensure() { log("Masquerade rules were missing: reinstalled") }
                    }
                }
            }
            group.addTask {
                // A safety net: the kernel state is compared with the leases every minute.
                while true {
                    try await Task.sleep(for: .seconds(60))
                    try await self.reconcile()
                }
            }
            group.addTask {
                for await _ in revoked.stream {}
                try Task.checkCancellation()
                throw FlannelError("Lease has been revoked. Shutting down daemon.")
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Applies watch events; true when this host's own lease is gone.
    func apply(_ events: [SubnetEvent]) async -> Bool {
        var changed = false
        for event in events {
            switch event {
            case .added(let record):
                if record.key == ownKey { continue }
                if leases[record.key] != record {
                    log("Subnet added: \(record.key) via \(record.attributes.publicIP)")
                    leases[record.key] = record
                    changed = true
                }
            case .removed(let key):
                if key == ownKey {
                    revoked = true
                    continue
                }
                if leases.removeValue(forKey: key) != nil {
                    log("Subnet removed: \(key)")
                    changed = true
                }
            case .snapshot(let records):
                var next: [SubnetKey: SubnetLeaseRecord] = [:]
                for record in records { next[record.key] = record }
                if next[ownKey] == nil { revoked = true }
                leases = next
                changed = true
            }
        }
        if revoked { return true }
        if changed {
            do { try reconcile() } catch { log("Failed to program the backend: \(error)") }
        }
        return false
    }

    func reconcile() throws {
        let result = try backend.reconcile(Array(leases.values))
        if options.verbosity > 0 && (result.added > 0 || result.removed > 0) {
            log("Backend: \(result.added) entries added, \(result.removed) removed")
        }
        // Each distinct failure once, not at every pass.
        let failures = Set(result.failures)
        for failure in failures.subtracting(reportedFailures) { log("Failed to program the backend: \(failure)") }
        reportedFailures = failures
    }

    private func renewLoop() async throws {
        guard !isReservation else { return }
        while true {
            let renewAt = expiry - options.renewMargin
            try await Task.sleep(until: renewAt, clock: .continuous)
            do {
                try await registry.renewLease(ownKey, ownAttributes, ttl: Int64(options.leaseTTL.components.seconds))
                expiry = .now + options.leaseTTL
                log("Lease renewed, new expiration: in \(options.leaseTTL)")
            } catch {
                let retry = min(Duration.seconds(60), options.renewMargin / 4)
                log("Error renewing lease (trying again in \(retry)): \(error)")
                try await Task.sleep(for: retry)
            }
        }
    }
}
