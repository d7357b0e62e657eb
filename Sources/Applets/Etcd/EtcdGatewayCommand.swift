import CLI
import EtcdClient
import EtcdServer
import Platform

/// `coreos etcd grpc-proxy start` and `coreos etcd gateway start` (etcd's two proxies,
/// one implementation here: the L7 proxy of `EtcdProxy`, which also covers what the L4
/// gateway did) with etcd's flag names.
enum EtcdGatewayCommand {
    static let flags: [PFlag] = [
        PFlag("endpoints", .string, default: "127.0.0.1:2379", "comma separated etcd cluster endpoints"),
        PFlag("listen-addr", .string, default: "127.0.0.1:23790", "listen address"),
        PFlag("read-only", .bool, default: "false", "refuse every request that changes the cluster"),
        PFlag("refresh-interval", .duration, default: "30s", "how often the member list is read again"),
        PFlag("cacert", .string, default: "", "verify certificates of TLS-enabled secure etcd servers using this CA bundle"),
        PFlag("cert", .string, default: "", "identify secure client using this TLS certificate file"),
        PFlag("key", .string, default: "", "identify secure client using this TLS key file"),
        PFlag("listen-cipher-suites", .string, default: "", "comma-separated TLS cipher suites between clients and the proxy (empty: the library's)"),
        PFlag("help", shorthand: "h", .bool, default: "false", "help"),
    ]

    static func run(_ arguments: [String], io: StandardStreams) async -> Int32 {
        let name = arguments.first ?? "grpc-proxy"
        // cobra takes the flags on either side of `start` (`etcd gateway --endpoints=X start`).
        let parsed: PFlagResult
        do { parsed = try PFlagParser(flags).parse(Array(arguments.dropFirst())) } catch {
            io.error.line("coreos etcd \(name): \(error.message)")
            return ExitStatus.usage
        }
        guard parsed.operands == ["start"] || parsed.bool("help") else {
            io.error.line("Usage: coreos etcd \(name) start [flags]")
            return ExitStatus.usage
        }
        if parsed.bool("help") {
            io.output.write(
                "Usage: coreos etcd \(name) start [flags]\n\n"
                    + flags.map { "  --\($0.name) (default \($0.defaultValue)): \($0.usage)" }.joined(separator: "\n") + "\n")
            return ExitStatus.success
        }
        var proxy = EtcdProxyConfiguration()
        do {
            proxy.endpoints = try (parsed.string("endpoints") ?? "127.0.0.1:2379").split(separator: ",").map {
                try EtcdEndpoint(parsing: String($0))
            }
            let listen = try EtcdEndpoint(parsing: parsed.string("listen-addr") ?? "127.0.0.1:23790")
            proxy.listenHost = listen.host == "localhost" ? "127.0.0.1" : listen.host
            proxy.listenPort = listen.port
        } catch {
            io.error.line("coreos etcd \(name): \(error)")
            return ExitStatus.usage
        }
        proxy.readOnly = parsed.bool("read-only")
        if let text = parsed.string("refresh-interval"), let interval = GoValues.parseDuration(text), interval > .zero {
            proxy.refreshInterval = interval
        }
        let ca = parsed.string("cacert") ?? "", cert = parsed.string("cert") ?? "", key = parsed.string("key") ?? ""
        if name == "grpc-proxy", !cert.isEmpty {
            do {
                if let commonName = try commonName(ofCertificateFile: cert) {
                    io.error.line("coreos etcd grpc-proxy: cert has non empty Common Name (\(commonName))")
                    return 1
                }
            } catch {
                io.error.line("coreos etcd grpc-proxy: cannot read the certificate \(cert): \(error)")
                return 1
            }
        }
        if !ca.isEmpty || !cert.isEmpty {
            proxy.tls = EtcdTLSConfiguration(
                trustedCAFile: ca.isEmpty ? nil : ca, certificateFile: cert.isEmpty ? nil : cert, keyFile: key.isEmpty ? nil : key)
        }
        Termination.install()
        // etcd 3.4's gateway and grpc-proxy log with zap.
        let log = ServerLog(format: .zap)
        let endpoints = proxy.endpoints.map { "\($0.host):\($0.port)" }
        return await EtcdServerCommand.runProxy(proxy, io: io) { address in
            if name == "gateway" {
                log.info(
                    "tcpproxy", "ready to proxy client requests to \(endpoints)", caller: "tcpproxy/userspace.go:90",
                    message: "ready to proxy client requests", ["endpoints": .strings(endpoints)])
            } else {
                log.info("etcdmain", "started gRPC proxy", caller: "etcdmain/grpc_proxy.go:240", ["address": .string(address)])
            }
        }
    }
}
