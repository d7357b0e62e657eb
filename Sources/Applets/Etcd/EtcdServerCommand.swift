import CLI
import EtcdClient
import EtcdServer
import Foundation
import Net
import Platform

/// `coreos etcd [flags]`: the server, with etcd 3.4's flag names (Go `flag` syntax) and
/// their `ETCD_*` variables. Flags of what is not built yet are absent (an unknown flag is
/// an error) or refused with a reason (`--wal-dir`), never silently ignored.
enum EtcdServerCommand {
    static let flags: [GoFlag] = [
        GoFlag(["name"], .string, default: "\"default\"", "Human-readable name for this member."),
        GoFlag(["data-dir"], .string, default: "\"${name}.etcd\"", "Path to the data directory."),
        GoFlag(["listen-client-urls"], .string, default: "\"http://localhost:2379\"", "List of URLs to listen on for client traffic."),
        GoFlag(["advertise-client-urls"], .string, default: "\"http://localhost:2379\"", "List of this member's client URLs to advertise to the public."),
        GoFlag(["listen-peer-urls"], .string, default: "\"http://localhost:2380\"", "List of URLs to listen on for peer traffic."),
        GoFlag(["initial-advertise-peer-urls"], .string, default: "\"http://localhost:2380\"", "List of this member's peer URLs to advertise to the rest of the cluster."),
        GoFlag(["initial-cluster"], .string, default: "\"default=http://localhost:2380\"", "Initial cluster configuration for bootstrapping."),
        GoFlag(["initial-cluster-state"], .string, default: "\"new\"", "Initial cluster state ('new' or 'existing')."),
        GoFlag(["initial-cluster-token"], .string, default: "\"etcd-cluster\"", "Initial cluster token for the etcd cluster during bootstrap."),
        GoFlag(["heartbeat-interval"], .int, default: "100", "Time (in milliseconds) of a heartbeat interval."),
        GoFlag(["election-timeout"], .int, default: "1000", "Time (in milliseconds) for an election to timeout."),
        GoFlag(["max-request-bytes"], .int, default: "1572864", "Maximum client request size in bytes the server will accept."),
        GoFlag(["max-txn-ops"], .int, default: "128", "Maximum number of operations permitted in a transaction."),
        GoFlag(["quota-backend-bytes"], .int, default: "0", "Raise alarms when backend size exceeds the given quota (0 defaults to low space quota)."),
        GoFlag(["snapshot-count"], .int, default: "100000", "Number of committed transactions to trigger a snapshot to disk."),
        GoFlag(["experimental-slow-disk-leader-transfer"], .duration, default: "100ms", "A leader whose WAL syncs take this long five times in a row hands leadership to a caught-up follower (0 disables; not in etcd 3.4)."),
        GoFlag(["experimental-watch-progress-notify-interval"], .duration, default: "10m0s", "Duration of periodic watch progress notifications."),
        GoFlag(["auto-compaction-mode"], .string, default: "\"periodic\"", "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention."),
        GoFlag(["auto-compaction-retention"], .string, default: "\"0\"", "Auto compaction retention for mvcc key value store. 0 means disable auto compaction."),
        GoFlag(["wal-dir"], .string, default: "\"\"", "Path to the dedicated wal directory."),
        GoFlag(["enable-v2"], .bool, default: "true", "Accept etcd V2 client requests."),
        GoFlag(["logger"], .string, default: "\"capnslog\"", "Specify 'zap' for structured logging or 'capnslog'."),
        GoFlag(["log-level"], .string, default: "\"info\"", "Configures log level. Only supports debug, info, warn, error, panic, or fatal."),
        GoFlag(["log-outputs"], .string, default: "\"default\"", "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets."),
        GoFlag(["discovery"], .string, default: "\"\"", "Discovery URL used to bootstrap the cluster."),
        GoFlag(["discovery-fallback"], .string, default: "\"proxy\"", "Valid values include 'exit', 'proxy'"),
        GoFlag(["discovery-srv"], .string, default: "\"\"", "DNS domain used to bootstrap initial cluster."),
        GoFlag(["discovery-srv-name"], .string, default: "\"\"", "Service name to query when using DNS discovery."),
        GoFlag(["proxy"], .string, default: "\"off\"", "Proxy mode setting ('off', 'readonly' or 'on')."),
        GoFlag(["proxy-refresh-interval"], .int, default: "30000", "Time (in milliseconds) of the endpoints refresh interval."),
        GoFlag(["force-new-cluster"], .bool, default: "false", "Force to create a new one member cluster."),
        GoFlag(["experimental-max-learners"], .int, default: "1", "Sets the maximum number of learners that can be available in the cluster membership."),
        GoFlag(["pre-vote"], .bool, default: "false", "Enable to run an additional Raft election phase."),
        GoFlag(["v2-shared-keyspace"], .bool, default: "false", "Mirror v2 keys into the v3 keyspace (a TTL becomes a lease per key)."),
        GoFlag(["cert-file"], .string, default: "\"\"", "Path to the client server TLS cert file."),
        GoFlag(["key-file"], .string, default: "\"\"", "Path to the client server TLS key file."),
        GoFlag(["trusted-ca-file"], .string, default: "\"\"", "Path to the client server TLS trusted CA cert file."),
        GoFlag(["client-cert-auth"], .bool, default: "false", "Enable client cert authentication."),
        GoFlag(["auto-tls"], .bool, default: "false", "Client TLS using generated certificates."),
        GoFlag(["peer-cert-file"], .string, default: "\"\"", "Path to the peer server TLS cert file."),
        GoFlag(["peer-key-file"], .string, default: "\"\"", "Path to the peer server TLS key file."),
        GoFlag(["peer-trusted-ca-file"], .string, default: "\"\"", "Path to the peer server TLS trusted CA file."),
        GoFlag(["peer-client-cert-auth"], .bool, default: "false", "Enable peer client cert authentication."),
        GoFlag(["peer-auto-tls"], .bool, default: "false", "Peer TLS using generated certificates"),
        GoFlag(["cipher-suites"], .string, default: "\"\"", "Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go)."),
        GoFlag(["auth-token"], .string, default: "\"simple\"", "Specify auth token specific options."),
        GoFlag(["auth-token-ttl"], .int, default: "300", "The lifetime in seconds of the auth token."),
        GoFlag(["bcrypt-cost"], .int, default: "10", "Specify bcrypt algorithm cost factor for auth password hashing."),
        GoFlag(["config-file"], .string, default: "\"\"", "Path to the server configuration file (etcd's YAML; flags and ETCD_* variables are then ignored)."),
        GoFlag(["version"], .bool, default: "false", "Print the version and exit."),
        GoFlag(["listen-metrics-urls"], .string, default: "\"\"", "List of URLs to listen on for the metrics and health endpoints."),
        GoFlag(["max-concurrent-streams"], .int, default: "4294967295", "Maximum concurrent streams that each client can open at a time."),
        GoFlag(["strict-reconfig-check"], .bool, default: "true", "Reject reconfiguration requests that would cause quorum loss."),
        GoFlag(["cors"], .string, default: "\"\"", "Comma-separated white list of origins for CORS, or cross-origin resource sharing, (empty or * means allow all)."),
        GoFlag(["host-whitelist"], .string, default: "\"*\"", "Acceptable hostnames from HTTP client requests, if server is not secure (empty means allow all)."),
        GoFlag(["debug"], .bool, default: "false", "Enable debug-level logging for etcd."),
        GoFlag(["client-crl-file"], .string, default: "\"\"", "Path to the client certificate revocation list file."),
        GoFlag(["peer-crl-file"], .string, default: "\"\"", "Path to the peer certificate revocation list file."),
        GoFlag(["client-cert-allowed-hostname"], .string, default: "\"\"", "Allowed TLS hostname for client cert authentication."),
        GoFlag(["peer-cert-allowed-cn"], .string, default: "\"\"", "Allowed CN for inter peer authentication."),
        GoFlag(["peer-cert-allowed-hostname"], .string, default: "\"\"", "Allowed TLS hostname for inter peer authentication."),
        GoFlag(["help", "h"], .bool, "show help"),
    ] + acceptedWithoutEffect.map { GoFlag([$0.name], $0.kind, default: $0.shownDefault, $0.usage) }

    /// etcd 3.4 flags this member takes and names in its log without acting on them: each
    /// tunes a part it does not have (bbolt, pprof, the v2 proxy's timers) or a check it
    /// does differently. A start with one of them set is logged with the reason.
    static let acceptedWithoutEffect: [(name: String, kind: GoFlag.Kind, shownDefault: String, usage: String, reason: String)] = [
        ("backend-batch-interval", .duration, "0s", "BackendBatchInterval is the maximum time before commit the backend transaction.", "there is no bbolt backend; the store commits with each WAL sync"),
        ("backend-batch-limit", .int, "0", "BackendBatchLimit is the maximum operations before commit the backend transaction.", "there is no bbolt backend; the store commits with each WAL sync"),
        ("experimental-backend-bbolt-freelist-type", .string, "\"map\"", "ExperimentalBackendFreelistType specifies the type of freelist that boltdb backend uses(array and map are supported types)", "there is no bbolt backend"),
        ("experimental-compaction-batch-limit", .int, "1000", "Sets the maximum revisions deleted in each compaction batch.", "compaction is applied in one step"),
        ("experimental-corrupt-check-time", .duration, "0s", "Duration of time between cluster corruption check passes.", "periodic corruption checks are not built; hashkv compares members on demand"),
        ("experimental-enable-lease-checkpoint", .bool, "false", "Enable to persist lease remaining TTL to prevent indefinite auto-renewal of long lived leases.", "lease checkpoints are not built"),
        ("experimental-enable-v2v3", .string, "\"\"", "v3 prefix for serving emulated v2 state.", "v2 emulated over v3 is not built; --v2-shared-keyspace mirrors v2 keys into v3"),
        ("experimental-initial-corrupt-check", .bool, "false", "Enable to check data corruption before serving any client/peer traffic.", "the start-up corruption check is not built"),
        ("experimental-peer-skip-client-san-verification", .bool, "false", "Skip verification of SAN field in client certificate for peer connections.", "peer client certificates are checked against the CA only"),
        ("experimental-warning-apply-duration", .duration, "100ms", "Time duration after which a warning is generated if request takes more time.", "slow applies are not logged"),
        ("enable-pprof", .bool, "false", "Enable runtime profiling data via HTTP server. Address is at client URL + \"/debug/pprof/\"", "Go's pprof does not exist here"),
        ("grpc-keepalive-min-time", .duration, "5s", "Minimum interval duration that a client should wait before pinging server.", "HTTP/2 pings are answered whenever they come"),
        ("grpc-keepalive-interval", .duration, "2h0m0s", "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).", "the server sends no keepalive pings"),
        ("grpc-keepalive-timeout", .duration, "20s", "Additional duration of wait before closing a non-responsive connection (0 to disable).", "the server sends no keepalive pings"),
        ("initial-election-tick-advance", .bool, "true", "Whether to fast-forward initial election ticks on boot for faster election.", "a lone member campaigns at once; others wait one election timeout"),
        ("log-package-levels", .string, "\"\"", "(To be deprecated) Specify a particular log level for each etcd package (eg: 'etcdmain=CRITICAL,etcdserver=DEBUG').", "one level for the whole log (--log-level)"),
        ("max-snapshots", .int, "5", "Maximum number of snapshot files to retain (0 is unlimited).", "the store keeps its own newest snapshots"),
        ("max-wals", .int, "5", "Maximum number of wal files to retain (0 is unlimited).", "WAL segments are removed once a snapshot covers them"),
        ("metrics", .string, "\"basic\"", "Set level of detail for exported metrics, specify 'extensive' to include histogram metrics.", "one metrics level"),
        ("discovery-proxy", .string, "\"\"", "HTTP proxy to use for traffic to discovery service.", "discovery connects directly"),
        ("proxy-failure-wait", .int, "5000", "Time (in milliseconds) an endpoint will be held in a failed state.", "the proxy retries the next member at once"),
        ("proxy-dial-timeout", .int, "1000", "Time (in milliseconds) for a dial to timeout.", "the proxy uses its own connect timeout"),
        ("proxy-write-timeout", .int, "5000", "Time (in milliseconds) for a write to timeout.", "the proxy uses its own timeouts"),
        ("proxy-read-timeout", .int, "0", "Time (in milliseconds) for a read to timeout.", "the proxy uses its own timeouts"),
    ]

    static func run(_ arguments: [String], io: StandardStreams, environment: [String: String]) async -> Int32 {
        let parsed: GoFlagResult
        do {
            parsed = try GoFlagParser(flags).parse(arguments)
        } catch {
            io.error.line("etcd: \(error.message)")
            return ExitStatus.usage
        }
        if parsed.bool("help") {
            io.output.write("Usage: coreos etcd [flags]\n" + GoFlagParser.helpRows(flags).joined(separator: "\n") + "\n")
            return ExitStatus.success
        }
        guard parsed.arguments.isEmpty else {
            io.error.line("etcd: '\(parsed.arguments[0])' is not a valid flag")
            return ExitStatus.usage
        }
        if parsed.bool("version") {
            io.output.write(
                "etcd Version: \(EtcdVersion.server)\nGit SHA: coreos \(MultiCall.version)\nGo Version: none (Swift)\nGo OS/Arch: linux/\(Self.architecture)\n")
            return ExitStatus.success
        }
        func fromCommandLine(_ name: String) -> String? {
            parsed.string(name) ?? environment["ETCD_" + String(name.uppercased().map { $0 == "-" ? "_" : $0 })]
        }
        // etcd: with a configuration file, the other flags and ETCD_* variables are ignored.
        var fileSettings: [String: String]?
        if let path = fromCommandLine("config-file"), !path.isEmpty {
            guard let bytes = FileManager.default.contents(atPath: path) else {
                io.error.line("etcd: error verifying flags, open \(path): no such file or directory. See 'etcd --help'.")
                return ExitStatus.usage
            }
            do {
                fileSettings = try EtcdConfigFile.settings(Array(bytes), path: path)
            } catch {
                io.error.line("etcd: \(error)")
                return ExitStatus.usage
            }
        }
        func setting(_ name: String) -> String? {
            if let fileSettings { return fileSettings[name] }
            return fromCommandLine(name)
        }
        var configuration = EtcdServerConfiguration()
        if let name = setting("name") { configuration.name = name }
        configuration.dataDirectory = setting("data-dir")
        if let urls = setting("listen-client-urls") { configuration.listenClientURLs = urls.split(separator: ",").map(String.init) }
        if let urls = setting("advertise-client-urls") { configuration.advertiseClientURLs = urls.split(separator: ",").map(String.init) }
        if let urls = setting("initial-advertise-peer-urls") {
            configuration.initialAdvertisePeerURLs = urls.split(separator: ",").map(String.init)
        }
        if let urls = setting("listen-peer-urls") { configuration.listenPeerURLs = urls.split(separator: ",").map(String.init) }
        configuration.initialCluster = setting("initial-cluster")
        if let state = setting("initial-cluster-state") {
            guard state == "new" || state == "existing" else {
                io.error.line("etcd: invalid value \"\(state)\" for flag -initial-cluster-state: invalid value \"\(state)\"")
                return ExitStatus.usage
            }
            configuration.initialClusterState = state == "existing" ? .existing : .new
        }
        if let token = setting("initial-cluster-token") { configuration.initialClusterToken = token }
        if let value = setting("heartbeat-interval"), let milliseconds = Int(value) { configuration.heartbeatInterval = milliseconds }
        if let value = setting("election-timeout"), let milliseconds = Int(value) { configuration.electionTimeout = milliseconds }
        if let value = setting("max-request-bytes"), let bytes = Int(value) { configuration.maxRequestBytes = bytes }
        if let value = setting("max-txn-ops"), let count = Int(value) { configuration.maxTxnOperations = count }
        if let value = setting("quota-backend-bytes"), let bytes = Int64(value) { configuration.quotaBackendBytes = bytes }
        if let value = setting("snapshot-count"), let count = UInt64(value), count > 0 { configuration.snapshotCount = count }
        if let value = setting("experimental-slow-disk-leader-transfer") {
            guard let threshold = GoValues.parseDuration(value), threshold >= .zero else {
                io.error.line("etcd: invalid value \"\(value)\" for flag -experimental-slow-disk-leader-transfer: parse error")
                return ExitStatus.usage
            }
            configuration.slowDiskLeaderTransfer = threshold
        }
        if let value = setting("experimental-watch-progress-notify-interval"), let interval = GoValues.parseDuration(value),
            interval > .zero
        {
            configuration.watchProgressNotifyInterval = interval
        }
        do {
            configuration.autoCompaction = try AutoCompaction.parse(
                mode: setting("auto-compaction-mode"), retention: setting("auto-compaction-retention"),
                parseDuration: GoValues.parseDuration)
        } catch {
            io.error.line("etcd: \(error)")
            return ExitStatus.usage
        }
        let logger = setting("logger") ?? "capnslog"
        guard let format = ServerLog.Format(rawValue: logger) else {
            io.error.line("etcd: unknown logger option \"\(logger)\"")
            return ExitStatus.usage
        }
        let levelName = setting("debug").map { $0 == "true" || $0 == "1" } == true ? "debug" : setting("log-level") ?? "info"
        guard let level = ServerLog.Level(flag: levelName) else {
            io.error.line("etcd: unrecognized level: \"\(levelName)\"")
            return ExitStatus.usage
        }
        let outputs = (setting("log-outputs") ?? "default").split(separator: ",").map { ServerLog.Output(flag: String($0)) }
        do {
            configuration.log = try ServerLog.open(format: format, level: level, outputs: outputs)
        } catch {
            io.error.line("etcd: \(error)")
            return ExitStatus.usage
        }
        if format == .capnslog, setting("logger") != nil {
            io.error.line("[WARNING] Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead")
        }
        if let walDirectory = setting("wal-dir"), !walDirectory.isEmpty { configuration.walDirectory = walDirectory }
        // Certificate checks this member does not make yet: refused, since accepting them
        // would let in peers or clients the administrator meant to keep out.
        for name in ["peer-crl-file", "client-cert-allowed-hostname", "peer-cert-allowed-cn", "peer-cert-allowed-hostname"] {
            if let value = setting(name), !value.isEmpty {
                io.error.line("etcd: --\(name) is not supported by this build yet (refusing to start without the check it asks for)")
                return ExitStatus.usage
            }
        }
        if let value = setting("max-concurrent-streams") {
            guard let streams = UInt32(value), streams > 0 else {
                io.error.line("etcd: invalid value \"\(value)\" for flag -max-concurrent-streams: parse error")
                return ExitStatus.usage
            }
            configuration.maxConcurrentStreams = streams
        }
        if let urls = setting("listen-metrics-urls"), !urls.isEmpty {
            configuration.listenMetricsURLs = urls.split(separator: ",").map(String.init)
        }
        if let value = setting("strict-reconfig-check") { configuration.strictReconfigCheck = value == "true" || value == "1" }
        let ignored = Self.acceptedWithoutEffect.compactMap { flag -> String? in
            guard let value = setting(flag.name), value != flag.shownDefault.trimmingCharacters(in: ["\""]) else { return nil }
            return "--\(flag.name)=\(value) has no effect here: \(flag.reason)"
        }
        for note in ignored { configuration.log.warning("etcdmain", note, caller: "etcdmain/config.go") }
        if let url = setting("discovery"), !url.isEmpty { configuration.discoveryURL = url }
        if let domain = setting("discovery-srv"), !domain.isEmpty { configuration.discoverySRV = domain }
        if let name = setting("discovery-srv-name") { configuration.discoverySRVName = name }
        if let fallback = setting("discovery-fallback") {
            guard let value = EtcdServerConfiguration.DiscoveryFallback(rawValue: fallback) else {
                io.error.line("etcd: invalid value \"\(fallback)\" for flag -discovery-fallback: valid values are 'exit', 'proxy'")
                return ExitStatus.usage
            }
            configuration.discoveryFallback = value
        }
        if configuration.discoveryURL != nil && configuration.discoverySRV != nil {
            io.error.line("etcd: multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\" or \"discovery-srv\"")
            return ExitStatus.usage
        }
        if let value = setting("enable-v2") { configuration.enableV2 = value == "true" || value == "1" }
        if let value = setting("v2-shared-keyspace") { configuration.v2SharedKeyspace = value == "true" || value == "1" }
        if let value = setting("force-new-cluster") { configuration.forceNewCluster = value == "true" || value == "1" }
        if let value = setting("experimental-max-learners") {
            guard let count = Int(value), count >= 1 else {
                io.error.line("etcd: --experimental-max-learners must be at least 1, got \(value)")
                return ExitStatus.usage
            }
            configuration.maxLearners = count
        }
        func flag(_ name: String) -> Bool { setting(name).map { $0 == "true" || $0 == "1" } ?? false }
        func path(_ name: String) -> String? { setting(name).flatMap { $0.isEmpty ? nil : $0 } }
        // The client side's flags, and the same with `peer-` for the peer side.
        func tls(_ prefix: String) -> TLSSettings {
            var settings = TLSSettings()
            settings.certificateFile = path(prefix + "cert-file")
            settings.keyFile = path(prefix + "key-file")
            settings.trustedCAFile = path(prefix + "trusted-ca-file")
            settings.clientCertificateAuth = flag(prefix + "client-cert-auth")
            settings.autoTLS = flag(prefix + "auto-tls")
            settings.cipherSuites = (setting("cipher-suites") ?? "").split(separator: ",").map { String($0) }
            return settings
        }
        configuration.clientTLS = tls("")
        configuration.clientTLS.revocationListFile = path("client-crl-file")
        configuration.peerTLS = tls("peer-")
        if let value = setting("auth-token") {
            guard value == "simple" || value.hasPrefix("jwt,") else {
                io.error.line("etcd: unknown token type \"\(value)\": want simple or jwt,pub-key=…,priv-key=…,sign-method=…")
                return ExitStatus.usage
            }
            configuration.authToken = value
        }
        if let value = setting("auth-token-ttl") {
            guard let seconds = Int(value), seconds > 0 else {
                io.error.line("etcd: invalid value \"\(value)\" for flag -auth-token-ttl")
                return ExitStatus.usage
            }
            configuration.authTokenTTL = .seconds(seconds)
        }
        if let value = setting("bcrypt-cost") {
            guard let cost = Int(value), (4...31).contains(cost) else {
                io.error.line("etcd: invalid --bcrypt-cost \"\(value)\": must be between 4 and 31")
                return ExitStatus.usage
            }
            configuration.bcryptCost = cost
        }
        if let value = setting("pre-vote") { configuration.preVote = value == "true" || value == "1" }
        let proxyMode = setting("proxy") ?? "off"
        guard ["off", "on", "readonly"].contains(proxyMode) else {
            io.error.line("etcd: invalid value \"\(proxyMode)\" for flag -proxy: valid values are 'off', 'readonly' or 'on'")
            return ExitStatus.usage
        }
        var proxy = EtcdProxyConfiguration()
        proxy.readOnly = proxyMode == "readonly"
        if let value = setting("proxy-refresh-interval"), let milliseconds = Int(value), milliseconds > 0 {
            proxy.refreshInterval = .milliseconds(milliseconds)
        }
        // The v2 proxy (by flag, or discovery's fallback) listens on the first client URL.
        func proxyListens(on urls: [String]) -> Bool {
            do {
                let url = try HTTPURL(parsing: urls.first ?? "http://127.0.0.1:2379")
                proxy.listenHost = url.host == "localhost" ? "127.0.0.1" : url.host
                proxy.listenPort = url.port
                return true
            } catch {
                io.error.line("etcd: invalid --listen-client-urls: \(error)")
                return false
            }
        }
        Termination.install()
        if proxyMode != "off" {
            guard proxyListens(on: configuration.listenClientURLs) else { return ExitStatus.usage }
            // etcd's v2-era proxy: the cluster's peer URLs come from --initial-cluster, or
            // from the discovery token when only --discovery is given.
            let cluster = configuration.initialCluster ?? ""
            proxy.peerURLs = cluster.split(separator: ",").compactMap { item in
                item.firstIndex(of: "=").map { String(item[item.index(after: $0)...]) }
            }
            if cluster.isEmpty, let discovery = configuration.discoveryURL, !discovery.isEmpty {
                do {
                    proxy.peerURLs = try await Bootstrap.proxyPeerURLs(discoveryURL: discovery)
                } catch {
                    io.error.line("etcd: proxy: \(error)")
                    return 1
                }
            }
            return await runProxy(proxy, io: io)
        }
        let settings = configuration
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await EtcdServer.run(settings)
                }
                group.addTask {
                    await Termination.wait()
                }
                try await group.next()
                group.cancelAll()
            }
        } catch let error as EtcdServerError where error.proxyPeerURLs != nil {
            io.error.line("etcd: \(error)")
            proxy.peerURLs = error.proxyPeerURLs ?? []
            guard proxyListens(on: settings.listenClientURLs) else { return ExitStatus.usage }
            return await runProxy(proxy, io: io)
        } catch {
            io.error.line("etcd: \(error)")
            return 1
        }
        return ExitStatus.success
    }

    static var architecture: String {
        #if arch(x86_64)
            "amd64"
        #elseif arch(arm64)
            "arm64"
        #else
            "unknown"
        #endif
    }

    /// Runs the proxy until terminated.
    /// - Parameter announce: logs that it serves (each kind of proxy in etcd's words);
    ///   by default the v2 proxy's line.
    static func runProxy(
        _ proxy: EtcdProxyConfiguration, io: StandardStreams, announce: (@Sendable (String) -> Void)? = nil
    ) async -> Int32 {
        let log = ServerLog()
        let announce =
            announce ?? { address in
                log.info(
                    "etcdmain", "v2 proxy started listening on client requests on \"\(address)\"\(proxy.readOnly ? " (read-only)" : "")",
                    caller: "etcdmain/etcd.go:542")
            }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await EtcdProxy.run(proxy) { address in
                        announce(address)
                        SystemdNotify.send("READY=1")
                    }
                }
                group.addTask { await Termination.wait() }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            io.error.line("etcd: \(error)")
            return 1
        }
        return ExitStatus.success
    }
}
