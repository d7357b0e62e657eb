import CLI
import EtcdClient
import EtcdServer
import Platform

/// `coreos etcd discovery`: the discovery service (discovery.etcd.io's protocol) over a v3
/// store. Flags as ours (`--listen`, `--etcd-endpoints`, `--host`) or as Debian's
/// `discovery.etcd.io` names them (`--addr`, `--etcd`).
enum EtcdDiscoveryCommand {
    static let flags: [PFlag] = [
        PFlag("listen", .string, default: "http://127.0.0.1:8087", "URL to serve the discovery protocol on"),
        PFlag("addr", .string, default: "", "host:port to serve on (discovery.etcd.io's name for --listen)"),
        PFlag("etcd-endpoints", .string, default: "127.0.0.1:2379", "comma separated endpoints of the store keeping the registry"),
        PFlag("etcd", .string, default: "", "the store's endpoint (discovery.etcd.io's name for --etcd-endpoints)"),
        PFlag("host", .string, default: "", "prefix of the token URLs handed out (default: http:// and the request's Host)"),
        PFlag("help", shorthand: "h", .bool, default: "false", "help for discovery"),
    ]

    static func run(_ arguments: [String], io: StandardStreams) async -> Int32 {
        let parsed: PFlagResult
        do { parsed = try PFlagParser(flags).parse(arguments) } catch {
            io.error.line("coreos etcd discovery: \(error.message)")
            return ExitStatus.usage
        }
        if parsed.bool("help") {
            io.output.write(
                "Usage: coreos etcd discovery [flags]\n\n"
                    + flags.map { "  --\($0.name) (default \($0.defaultValue)): \($0.usage)" }.joined(separator: "\n") + "\n")
            return ExitStatus.success
        }
        guard parsed.operands.isEmpty else {
            io.error.line("coreos etcd discovery: unexpected argument \(parsed.operands[0])")
            return ExitStatus.usage
        }
        var listen = parsed.string("listen") ?? "http://127.0.0.1:8087"
        if let addr = parsed.string("addr"), !addr.isEmpty { listen = "http://" + (addr.hasPrefix(":") ? "0.0.0.0" + addr : addr) }
        let endpointText = parsed.string("etcd").flatMap { $0.isEmpty ? nil : $0 } ?? parsed.string("etcd-endpoints") ?? "127.0.0.1:2379"
        let service: DiscoveryService
        do {
            let url = try HTTPURL(parsing: listen)
            let endpoints = try endpointText.split(separator: ",").map { try EtcdEndpoint(parsing: String($0)) }
            service = DiscoveryService(
                listenHost: url.host == "localhost" ? "127.0.0.1" : url.host, listenPort: url.port, publicURL: parsed.string("host") ?? "",
                etcd: EtcdClientConfiguration(endpoints: endpoints))
        } catch {
            io.error.line("coreos etcd discovery: \(error)")
            return ExitStatus.usage
        }
        Termination.install()
        let errors = io.error
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await service.run { address in errors.line("etcd discovery: serving on \(address), registry in \(endpointText)") }
                }
                group.addTask { await Termination.wait() }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            io.error.line("coreos etcd discovery: \(error)")
            return ExitStatus.failure
        }
        return ExitStatus.success
    }
}
