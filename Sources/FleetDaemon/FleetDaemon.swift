import EtcdClient
import FleetRegistry
import Foundation
import HTTPServer
import NIOSSL
import Platform
import Synchronization

/// fleetd: the agent, the engine (unless disabled) and the API listeners of one machine,
/// over one etcd connection.
public enum FleetDaemon {
    /// Runs until cancelled (SIGINT/SIGTERM), then stops the units it runs.
    public static func run(_ configuration: FleetConfiguration, ready: @escaping @Sendable ([String]) -> Void = { _ in }) async throws {
        FleetLog.verbosity = configuration.verbosity
        var endpoints: [EtcdEndpoint] = []
        for server in configuration.etcdServers { endpoints.append(try EtcdEndpoint(parsing: server)) }
        var tls: EtcdTLSConfiguration?
        if configuration.etcdCAFile != nil || configuration.etcdCertFile != nil {
            tls = EtcdTLSConfiguration(
                trustedCAFile: configuration.etcdCAFile, certificateFile: configuration.etcdCertFile, keyFile: configuration.etcdKeyFile)
        }
        let etcd = EtcdClientConfiguration(endpoints: endpoints, requestTimeout: configuration.etcdRequestTimeout, tls: tls)
        try await EtcdClient.withClient(etcd) { client in
            let registry = FleetRegistry(client: client, prefix: configuration.etcdKeyPrefix)
            let machineID = configuration.machineID
            let agent = FleetAgent(
                registry: registry,
                identity: .init(
                    machineID: machineID, publicIP: configuration.publicIP, metadata: configuration.metadata,
                    endpoint: configuration.listen.first, ttl: configuration.agentTTL))
            let manager = try await makeManager(configuration, agent: agent)
            await agent.attach(manager)
            let engine =
                configuration.disableEngine
                ? nil
                : EngineLoop(
                    registry: registry, machineID: machineID, interval: configuration.engineReconcileInterval,
                    grace: configuration.machineGrace, ttl: configuration.agentTTL)
            let api = FleetAPI(
                registry: registry, agent: agent, manager: manager, engine: engine, machineID: machineID,
                forwardingTLS: forwardingTLS(configuration))
            var listeners: [HTTP1Listener] = []
            for address in configuration.listen {
                let (socketAddress, secure) = try listenAddress(address)
                listeners.append(HTTP1Listener(address: socketAddress, responder: api, tls: secure ? try serverTLS(configuration) : nil))
            }
            let bound = BoundAddresses(expected: listeners.count, ready: ready)
            try await withTaskCancellationHandler {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for listener in listeners {
                        group.addTask {
                            try await listener.run { address in bound.add(listener.address.description) }
                        }
                    }
                    group.addTask { await agent.run() }
                    if let engine { group.addTask { await engine.run() } }
                    try await group.next()
                    group.cancelAll()
                }
            } onCancel: {}
            await agent.shutdown()
            for address in configuration.listen where address.hasPrefix("unix://") { unlink(String(address.dropFirst(7))) }
        }
    }

    static func makeManager(_ configuration: FleetConfiguration, agent: FleetAgent) async throws -> any UnitManager {
        let systemdRuns = SystemdBus.isSystemdRunning
            && (try? String(contentsOfFile: "/proc/1/comm", encoding: .utf8))?.hasPrefix("systemd") == true
        if configuration.unitManager == "systemd" || (configuration.unitManager == "auto" && systemdRuns) {
            let manager = SystemdUnitManager(unitDirectory: configuration.runtimeDirectory + "/units") { name in
                Task { await agent.unitChanged(name) }
            }
            // Early in boot the bus may not answer yet: try for half a minute.
            var attempt = 0
            while true {
                do {
                    try await manager.connect()
                    return manager
                } catch {
                    attempt += 1
                    guard attempt < 60 else {
                        throw FleetConfiguration.Failure(
                            message: "cannot reach systemd over D-Bus: \(error) (unit_manager=embedded runs units without it)")
                    }
                    try await Task.sleep(for: .milliseconds(500))
                }
            }
        }
        let machine = configuration.machineID
        return EmbeddedUnitManager(
            logDirectory: configuration.logDirectory + "/" + machine, runtimeDirectory: configuration.runtimeDirectory + "/" + machine
        ) { name in Task { await agent.unitChanged(name) } }
    }

    static func listenAddress(_ text: String) throws -> (HTTP1Listener.Address, secure: Bool) {
        if text.hasPrefix("unix://") { return (.unix(path: String(text.dropFirst(7))), false) }
        if text.hasPrefix("/") { return (.unix(path: text), false) }
        let url = try HTTPURL(parsing: text)
        return (.tcp(host: url.host, port: url.port), url.secure)
    }

    /// The context of an `https://` listener: TLS 1.2 or later, and with `api_cafile` a
    /// client certificate signed by that CA required (fleet's TCP API has no access
    /// control of its own; this is it).
    static func serverTLS(_ configuration: FleetConfiguration) throws -> NIOSSLContext {
        guard let certificateFile = configuration.apiCertFile, let keyFile = configuration.apiKeyFile else {
            throw FleetConfiguration.Failure(message: "listen: an https:// address needs api_certfile and api_keyfile")
        }
        do {
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem)))
            tls.minimumTLSVersion = .tlsv12
            if let ca = configuration.apiCAFile {
                tls.trustRoots = .file(ca)
                tls.certificateVerification = .noHostnameVerification
            }
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw FleetConfiguration.Failure(message: "listen: cannot use the API certificate \(certificateFile) or key \(keyFile): \(error)")
        }
    }

    /// How this machine reaches another one's `https://` API: trusting `api_cafile` (the
    /// system roots without it) and presenting its own API certificate.
    static func forwardingTLS(_ configuration: FleetConfiguration) -> EtcdTLSConfiguration? {
        guard configuration.apiCertFile != nil || configuration.apiCAFile != nil else { return nil }
        return EtcdTLSConfiguration(
            trustedCAFile: configuration.apiCAFile, certificateFile: configuration.apiCertFile, keyFile: configuration.apiKeyFile)
    }
}

/// Calls `ready` once every listener is bound.
private final class BoundAddresses: Sendable {
    private let state: Mutex<[String]>
    private let expected: Int
    private let ready: @Sendable ([String]) -> Void

    init(expected: Int, ready: @escaping @Sendable ([String]) -> Void) {
        self.expected = expected
        self.ready = ready
        state = Mutex([])
    }

    func add(_ address: String) {
        let all: [String]? = state.withLock {
            $0.append(address)
            return $0.count == expected ? $0 : nil
        }
        if let all { ready(all) }
    }
}
