import CLI
import Cluster
import Glibc
import Node
import Platform
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `coreos cluster`: a local cluster for trying things: core nodes (etcd members) and
/// workers (etcd proxies), each a whole `coreos node`; as root each in its own network
/// namespace on a bridge, else processes on loopback ports.
enum ClusterCommand {
    static let usage = """
        Usage: coreos cluster COMMAND [flags]

        A local cluster of `coreos node`s: as root, each node in its own network namespace on
        the bridge cos-NAME (host .1, node i at .(10+i) of --subnet) with its own /run and
        /var/lib/coreos; without root (or with --loopback), processes on loopback ports and no
        flannel.

          up [--size N] [--workers M] [--backend vxlan|host-gw|udp] [--discovery]
             [--subnet 10.77.0] [--base-port 22379] [--loopback] [--machine-grace 20s]
                                 start N core nodes (etcd members, default 3) and M workers
                                 (etcd proxies, fleet metadata role=worker); --discovery forms
                                 etcd through a discovery service started on the host
          status                 one row per node: process, etcd role, fleet machine, subnet, units
          exec NODE -- COMMAND…  run COMMAND on NODE (its network, /run and /var/lib/coreos;
                                 etcdctl and fleetctl there reach the node's own etcd and fleetd)
          kill NODE              kill every process of NODE at once, as a power cut would
          restart NODE           kill NODE if it runs, then boot it again with its data
          down                   stop everything and remove every namespace, link, cgroup,
                                 process and file `up` made (also after a crash of `up`)

        Flags of every command:
          --name NAME   the cluster's name (default local; 1-8 letters or digits)
          --dir DIR     its files (default /var/lib/coreos-cluster/NAME as root,
                        ~/.local/share/coreos-cluster/NAME otherwise)
          --quiet       no progress, only errors and what was asked for

        """

    struct Options {
        var name = "local"
        var directory: String?
        var quiet = false
        var size = 3
        var workers = 0
        var backend = "vxlan"
        var discovery = false
        var subnet = "10.77.0"
        var basePort = 22379
        var loopback = false
        var machineGrace = "20s"
        var operands: [String] = []
        var command: [String] = []

        var resolvedDirectory: String {
            if let directory { return directory }
            if geteuid() == 0 { return "/var/lib/coreos-cluster/" + name }
            return (ProcessInfo.processInfo.environment["HOME"] ?? "/tmp") + "/.local/share/coreos-cluster/" + name
        }
    }

    @Sendable static func main(_ argv: [String], io: StandardStreams) async -> Int32 {
        var arguments = Array(argv.dropFirst())[...]
        var options = Options()
        while let word = arguments.popFirst() {
            if word == "--" {
                options.command = Array(arguments)
                break
            }
            var name = word
            var inline: String?
            if word.hasPrefix("--"), let equals = word.firstIndex(of: "=") {
                name = String(word[..<equals])
                inline = String(word[word.index(after: equals)...])
            }
            func value() -> String? { inline ?? arguments.popFirst() }
            func number() -> Int? { value().flatMap { Int($0) } }
            switch name {
            case "--name": options.name = value() ?? ""
            case "--dir": options.directory = value()
            case "--quiet", "-q": options.quiet = true
            case "--size": options.size = number() ?? -1
            case "--workers": options.workers = number() ?? -1
            case "--backend": options.backend = value() ?? ""
            case "--discovery": options.discovery = true
            case "--subnet": options.subnet = value() ?? ""
            case "--base-port": options.basePort = number() ?? -1
            case "--loopback": options.loopback = true
            case "--machine-grace": options.machineGrace = value() ?? ""
            case "-h", "--help":
                io.output.write(usage)
                return ExitStatus.success
            default:
                guard !word.hasPrefix("-") else {
                    io.error.line("coreos cluster: unknown flag \(word)")
                    return ExitStatus.usage
                }
                options.operands.append(word)
            }
        }
        // The command is the first word that is not a flag; flags go before or after it.
        guard !options.operands.isEmpty else {
            io.error.write(usage)
            return ExitStatus.usage
        }
        let subcommand = options.operands.removeFirst()
        if subcommand == "help" {
            io.output.write(usage)
            return ExitStatus.success
        }
        let progress = Progress(quiet: options.quiet, sink: io.error)
        do {
            switch subcommand {
            case "up":
                try requireOperands(options, 0, subcommand)
                return try await ClusterLifecycle.up(options, io: io, progress: progress)
            case "status":
                try requireOperands(options, 0, subcommand)
                return try await ClusterStatusQuery.status(options, io: io)
            case "exec":
                try requireOperands(options, 1, subcommand)
                guard !options.command.isEmpty else { throw ClusterError("exec needs a command after --: exec NODE -- COMMAND…") }
                return try ClusterLifecycle.exec(options)
            case "kill":
                try requireOperands(options, 1, subcommand)
                return try ClusterLifecycle.kill(options, progress: progress)
            case "restart":
                try requireOperands(options, 1, subcommand)
                return try await ClusterLifecycle.restart(options, progress: progress)
            case "down":
                try requireOperands(options, 0, subcommand)
                return try ClusterLifecycle.down(options, progress: progress)
            case "boot-node":
                try requireOperands(options, 1, subcommand)
                return try ClusterLifecycle.bootNode(options)
            default:
                io.error.line("coreos cluster: unknown command \(subcommand)\n\(usage)")
                return ExitStatus.usage
            }
        } catch let error as ClusterError {
            progress.finish()
            io.error.line("coreos cluster \(subcommand): \(error.message)")
            return ExitStatus.failure
        } catch {
            progress.finish()
            io.error.line("coreos cluster \(subcommand): \(error)")
            return ExitStatus.failure
        }
    }

    static func requireOperands(_ options: Options, _ count: Int, _ subcommand: String) throws(ClusterError) {
        guard options.operands.count == count else {
            throw ClusterError(count == 0 ? "unexpected argument \(options.operands[0])" : "\(subcommand) takes one node name (core1, worker2, …)")
        }
    }
}

/// Progress of long waits: one line rewritten in place on a terminal, a line per step
/// otherwise, nothing with `--quiet`.
final class Progress: Sendable {
    let quiet: Bool
    let terminal: Bool
    let sink: any TextSink
    private let open = Mutex(false)

    init(quiet: Bool, sink: any TextSink) {
        self.quiet = quiet
        self.sink = sink
        terminal = isatty(2) == 1
    }

    private let lastStable = Mutex("")

    /// A state that will change: on a terminal `stable + detail` rewritten in place, elsewhere
    /// `stable` once each time it changes (the detail, a clock, only on terminals).
    func update(_ stable: String, detail: String = "") {
        guard !quiet else { return }
        if terminal {
            sink.write("\r\u{1B}[K" + stable + detail)
            open.withLock { $0 = true }
            return
        }
        let changed = lastStable.withLock { last in
            defer { last = stable }
            return last != stable
        }
        if changed { sink.line(stable) }
    }

    /// A step done or begun: always its own line.
    func say(_ text: String) {
        guard !quiet else { return }
        finish()
        sink.line(text)
    }

    /// Ends a line left open by `update`.
    func finish() {
        guard terminal else { return }
        let wasOpen = open.withLock { value in
            defer { value = false }
            return value
        }
        if wasOpen { sink.write("\r\u{1B}[K") }
    }
}
