import CLI
import CloudInit
import Glibc
import Net
import Node
import Platform
import YAML

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `coreos node`: a whole CoreOS machine from one binary: provisioning from cloud-config,
/// then etcd (or a worker's proxy), flannel and fleetd, started in order and supervised.
enum NodeCommand {
    static let usage = """
        Usage: coreos node [--config CLOUD-CONFIG] [--role core|worker] [--data-dir DIR] [--run-dir DIR] [--machine-id ID]
                           [--flannel-network JSON] [--no-provision] [--systemd-units DIR]

        Provisions the machine from the cloud-config (the OEM system config
        /usr/share/oem/cloud-config.yml first, then CLOUD-CONFIG), then runs its services as
        children of this process, each started when the one before is ready and restarted if
        it exits: the etcd member (a local proxy on a worker), flannel (as root), fleetd.
        The config's coreos.etcd2, coreos.fleet and coreos.flannel sections are their
        ETCD_*, FLEET_* and FLANNELD_* settings, as on CoreOS (such variables in the
        environment apply where the config says nothing). With no arguments: a
        single-node stack on loopback. SIGINT or SIGTERM stop everything.

          --config PATH      cloud-config to apply and to take the services' settings from
          --role core|worker core runs an etcd member, worker an etcd proxy (default: worker
                             when the config's etcd2 section says proxy: on, else core)
          --data-dir DIR     etcd data and service logs (default /var/lib/coreos as root)
          --run-dir DIR      fleet.sock, flannel/subnet.env, fleet's runtime files (default /run as root)
          --machine-id ID    fleet's machine ID (default /etc/machine-id)
          --flannel-network JSON  the network a core node creates in etcd when there is none
                             (default {"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}})
          --no-provision     take the services' settings from the config but apply nothing
                             to this machine (coreos cluster's nodes share the host's files)
          --systemd-units DIR  write etcd.service, flanneld.service, fleet.service and their
                             drop-ins to DIR instead (for hosts where systemd supervises), and exit

        """

    @Sendable static func main(_ argv: [String], io: StandardStreams) async -> Int32 {
        var configPath: String?
        var role: NodePlan.Role?
        let root = geteuid() == 0
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "/tmp"
        var dataDirectory = root ? "/var/lib/coreos" : home + "/.local/share/coreos"
        var runDirectory: String?
        var machineID: String?
        var unitDirectory: String?
        var flannelNetwork: String?
        var provision = true
        var arguments = Array(argv.dropFirst())[...]
        while let word = arguments.popFirst() {
            var name = word
            var inline: String?
            if let equals = word.firstIndex(of: "=") {
                name = String(word[..<equals])
                inline = String(word[word.index(after: equals)...])
            }
            func value() -> String? { inline ?? arguments.popFirst() }
            switch name {
            case "-h", "--help":
                io.output.write(usage)
                return ExitStatus.success
            case "--config": configPath = value()
            case "--data-dir": if let text = value() { dataDirectory = text }
            case "--run-dir": runDirectory = value()
            case "--machine-id": machineID = value()
            case "--systemd-units": unitDirectory = value()
            case "--flannel-network": flannelNetwork = value()
            case "--no-provision": provision = false
            case "--role":
                guard let text = value(), let parsed = NodePlan.Role(rawValue: text) else {
                    io.error.line("coreos node: --role is core or worker")
                    return ExitStatus.usage
                }
                role = parsed
            default:
                io.error.line("coreos node: unknown argument \(word)\n\(usage)")
                return ExitStatus.usage
            }
        }
        let binary = selfPath()
        var inputs = NodePlan.Inputs(
            dataDirectory: dataDirectory, runDirectory: runDirectory ?? (root ? "/run" : dataDirectory + "/run"),
            machineID: machineID ?? (unitDirectory == nil ? loadMachineID(dataDirectory) : ""))
        inputs.role = role ?? .core
        if let flannelNetwork { inputs.flannelNetwork = flannelNetwork }
        // Settings in this process's environment count as the config's, which overrides them.
        for (name, value) in ProcessInfo.processInfo.environment {
            if name.hasPrefix("ETCD_") { inputs.etcd[name] = value }
            if name.hasPrefix("FLEET_") { inputs.fleet[name] = value }
            if name.hasPrefix("FLANNELD_") { inputs.flannel[name] = value }
        }
        if unitDirectory != nil {
            // Units run under systemd as root; whether flannel can run here does not matter.
        } else if !root {
            inputs.flannelUnavailable = "not running as root (it programs the kernel's routes)"
        } else if (try? RouteNetlink().links()) == nil {
            inputs.flannelUnavailable = "rtnetlink is not available"
        }

        // Provisioning: the system config, then the user's; their service sections become settings.
        var configs: [String] = []
        if FileManager.default.fileExists(atPath: "/usr/share/oem/cloud-config.yml") { configs.append("/usr/share/oem/cloud-config.yml") }
        if let configPath { configs.append(configPath) }
        let addresses = machineAddresses()
        for var path in configs {
            guard let raw = FileManager.default.contents(atPath: path) else {
                io.error.line("coreos node: cannot read \(path)")
                return ExitStatus.failure
            }
            // $private_ipv4 and friends, as a datasource would fill them in: this machine's
            // address on its default route.
            let bytes = VariableSubstitution.apply(Array(raw), addresses: addresses)
            if bytes != Array(raw) && unitDirectory == nil && provision {
                let copy = dataDirectory + "/cloud-config.substituted.yml"
                do {
                    try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
                    try Data(bytes).write(to: URL(fileURLWithPath: copy))
                } catch {
                    io.error.line("coreos node: cannot write \(copy): \(error)")
                    return ExitStatus.failure
                }
                path = copy
            }
            let document: YAMLNode?
            do {
                document = try YAMLParser.parse(bytes)
            } catch {
                io.error.line("coreos node: \(path): \(error)")
                return ExitStatus.failure
            }
            let config = CloudConfig(document: document)
            for variable in config.etcd2.variables { inputs.etcd[variable.name] = variable.value }
            for variable in config.fleet.variables { inputs.fleet[variable.name] = variable.value }
            for variable in config.flannel.variables { inputs.flannel[variable.name] = variable.value }
            if unitDirectory != nil || !provision { continue }  // writing units provisions nothing
            io.error.line("coreos node: provisioning from \(path)")
            let status = NodeSupervisor.runToCompletion(binary, ["cloudinit", "--from-file", path])
            if status != 0 {
                io.error.line("coreos node: coreos cloudinit --from-file \(path) exited \(status)")
                return ExitStatus.failure
            }
        }

        // A config that makes etcd a proxy is a worker's, unless --role says otherwise.
        if role == nil && ["on", "readonly"].contains(inputs.etcd["ETCD_PROXY"] ?? "") { inputs.role = .worker }
        let plan: NodePlan
        do {
            plan = try NodePlan(inputs)
        } catch {
            io.error.line("coreos node: \(error)")
            return ExitStatus.failure
        }
        if let unitDirectory {
            // systemd supervises instead: write the units and leave.
            do {
                for file in SystemdUnits.files(for: plan, binary: binary) {
                    let path = unitDirectory + "/" + file.path
                    let directory = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                    try file.content.write(toFile: path, atomically: true, encoding: .utf8)
                    io.output.line(path)
                }
            } catch {
                io.error.line("coreos node: --systemd-units \(unitDirectory): \(error)")
                return ExitStatus.failure
            }
            return ExitStatus.success
        }
        Termination.install()
        let supervisor = NodeSupervisor(
            binary: binary, plan: plan, logDirectory: dataDirectory + "/logs", log: { io.error.line("coreos node: " + $0) })
        let socket = inputs.runDirectory + "/fleet.sock"
        let logs = dataDirectory + "/logs"
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await supervisor.run {
                        io.output.line("coreos node is up:")
                        for service in plan.services { io.output.line("  \(service.name): \(service.summary)") }
                        io.output.line("logs in \(logs); try:")
                        io.output.line("  etcdctl member list")
                        io.output.line("  fleetctl --endpoint unix://\(socket) list-machines")
                        io.output.line("  fleetctl --endpoint unix://\(socket) start contrib/examples/hello.service")
                    }
                }
                group.addTask { await Termination.wait() }
                try await group.next()
                group.cancelAll()
                try await group.waitForAll()
            }
        } catch is CancellationError {
        } catch {
            io.error.line("coreos node: \(error)")
            return ExitStatus.failure
        }
        io.error.line("coreos node: stopped")
        return ExitStatus.success
    }

    /// The IPv4 address of the interface of the default route (else the first address that
    /// is not loopback) as both private and public address: what `$private_ipv4` and
    /// `$public_ipv4` mean on a machine without a metadata service.
    static func machineAddresses() -> MetadataAddresses {
        guard let netlink = try? RouteNetlink(), let addresses = try? netlink.addresses() else { return MetadataAddresses() }
        let defaultInterface = (try? netlink.routes())?.first { $0.destination.prefixLength == 0 }?.outputInterface
        let usable = addresses.filter { !$0.address.description.hasPrefix("127.") }
        let chosen = usable.first { $0.index == defaultInterface } ?? usable.first
        let text = chosen?.address.description
        return MetadataAddresses(publicIPv4: text, privateIPv4: text)
    }

    static func selfPath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// /etc/machine-id, else one made once and kept in the data directory.
    static func loadMachineID(_ dataDirectory: String) -> String {
        for path in ["/etc/machine-id", dataDirectory + "/machine-id"] {
            if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                let trimmed = String(text.filter { !$0.isWhitespace })
                if !trimmed.isEmpty { return trimmed }
            }
        }
        let made = String(UUID().uuidString.lowercased().filter { $0 != "-" })
        try? FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        try? made.write(toFile: dataDirectory + "/machine-id", atomically: true, encoding: .utf8)
        return made
    }
}
