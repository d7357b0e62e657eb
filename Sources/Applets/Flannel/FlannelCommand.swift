import CLI
import Flannel
import FlannelDaemon
import Net
import Platform

import Glibc

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `coreos flannel` / `flanneld`: flannel's daemon, plus `docker-opts` (mk-docker-opts.sh)
/// and `network create|show` (the configuration in etcd).
enum FlannelCommand {
    static let usage = """
        Usage: flanneld [flags]
               coreos flannel docker-opts [-f SUBNET_ENV] [-d FILE] [-k NAME] [-i] [-c] [-m]
               coreos flannel network create [flags] (JSON | --network CIDR [--backend TYPE] [--subnet-len N] [--vni N] [--port N] [--direct-routing]) [--force]
               coreos flannel network show [flags]

        Flags (each also FLANNELD_<NAME> in the environment, e.g. FLANNELD_ETCD_ENDPOINTS):
          --etcd-endpoints URLS             comma-separated (default http://127.0.0.1:4001,http://127.0.0.1:2379)
          --etcd-prefix PREFIX              (default /coreos.com/network)
          --etcd-keyfile/--etcd-certfile/--etcd-cafile PATH   TLS to etcd
          --etcd-username/--etcd-password   etcd authentication
          --etcd-api v3|v2                  etcd's v3 keyspace (flannel >= 0.18) or the v2 keys API (default v3)
          --iface NAME|IP                   external interface (repeatable; first match wins)
          --iface-regex REGEX               external interface by name or address (repeatable)
          --iface-can-reach IP              the interface the route to IP uses
          --public-ip IP                    address published in the lease (default: the interface's)
          --subnet-file PATH                (default /run/flannel/subnet.env)
          --subnet-lease-renew-margin N     renew N minutes (or a duration: 90s) before expiry (default 60)
          --subnet-lease-ttl DURATION       lease lifetime (default 24h, as flannel; shorter for labs)
          --ip-masq                         masquerade traffic leaving the flannel network
          --iptables-resync SECONDS         re-check the rules every N seconds (default 5)
          --iptables-forward-rules=false    do not add FORWARD accept rules
          --healthz-ip IP --healthz-port N  serve /healthz (port 0: off, the default)
          -v N                              log more (1: every kernel change)
          --version                         print the version

        """

    @Sendable static func main(_ argv: [String], io: StandardStreams) async -> Int32 {
        let arguments = Array(argv.dropFirst())
        switch arguments.first {
        case "docker-opts": return dockerOptions(Array(arguments.dropFirst()), io: io)
        case "network": return await networkCommand(Array(arguments.dropFirst()), io: io)
        default: break
        }
        let options: FlannelOptions
        do {
            options = try FlannelOptions.parse(arguments: arguments, environment: ProcessEnvironment.current)
        } catch {
            io.error.line("flanneld: \(error)")
            return ExitStatus.usage
        }
        if options.showHelp {
            io.output.write(usage)
            return ExitStatus.success
        }
        if options.showVersion {
            io.output.line(FlannelDaemon.version)
            return ExitStatus.success
        }
        Termination.install()
        let log: FlannelDaemon.Log = { message in io.error.line(logPrefix() + message) }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await FlannelDaemon.run(options, log: log) }
                group.addTask { await Termination.wait() }
                try await group.next()
                group.cancelAll()
            }
        } catch is CancellationError {
        } catch {
            io.error.line(logPrefix() + "\(error)")
            return ExitStatus.failure
        }
        log("Exiting cleanly...")
        return ExitStatus.success
    }

    /// klog's line header, as flanneld prints it: `I1127 19:04:05.123456    4242 `.
    static func logPrefix() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        localtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let micros = String(now.tv_nsec / 1000)
        let pid = String(getpid())
        let date = "I" + two(parts.tm_mon + 1) + two(parts.tm_mday)
        let time = two(parts.tm_hour) + ":" + two(parts.tm_min) + ":" + two(parts.tm_sec)
        let fraction = String(repeating: "0", count: max(0, 6 - micros.count)) + micros
        let padding = String(repeating: " ", count: max(0, 7 - pid.count))
        return date + " " + time + "." + fraction + " " + padding + pid + " "
    }

    // MARK: docker-opts

    /// mk-docker-opts.sh: Docker's `--bip`, `--mtu` and `--ip-masq` from subnet.env.
    static func dockerOptions(_ arguments: [String], io: StandardStreams) -> Int32 {
        var subnetFile = "/run/flannel/subnet.env"
        var destination: String?
        var combinedName = "DOCKER_OPTS"
        var individual = false
        var combined = false
        var omitMasquerade = false
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            index += 1
            func value() -> String? {
                guard index < arguments.count else { return nil }
                defer { index += 1 }
                return arguments[index]
            }
            switch word {
            case "-f": guard let path = value() else { return missing(word, io) }; subnetFile = path
            case "-d": guard let path = value() else { return missing(word, io) }; destination = path
            case "-k": guard let name = value() else { return missing(word, io) }; combinedName = name
            case "-i": individual = true
            case "-c": combined = true
            case "-m": omitMasquerade = true
            case "-h", "--help":
                io.output.line("Usage: coreos flannel docker-opts [-f SUBNET_ENV] [-d FILE] [-k NAME] [-i] [-c] [-m]")
                return ExitStatus.success
            default:
                io.error.line("docker-opts: unknown option \(word)")
                return ExitStatus.usage
            }
        }
        if !individual && !combined { (individual, combined) = (true, true) }
        guard let text = try? String(contentsOfFile: subnetFile, encoding: .utf8) else {
            io.error.line("docker-opts: cannot read \(subnetFile) (is flanneld running?)")
            return ExitStatus.failure
        }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        guard let subnet = values["FLANNEL_SUBNET"], let mtu = values["FLANNEL_MTU"] else {
            io.error.line("docker-opts: \(subnetFile) has no FLANNEL_SUBNET or FLANNEL_MTU")
            return ExitStatus.failure
        }
        var options: [(String, String)] = [("DOCKER_OPT_BIP", "--bip=\(subnet)")]
        if !omitMasquerade {
            options.append(("DOCKER_OPT_IPMASQ", "--ip-masq=\(values["FLANNEL_IPMASQ"] == "true" ? "false" : "true")"))
        }
        options.append(("DOCKER_OPT_MTU", "--mtu=\(mtu)"))
        var output = ""
        if individual {
            for (name, value) in options { output += "\(name)=\"\(value)\"\n" }
        }
        if combined {
            output += "\(combinedName)=\" \(options.map(\.1).joined(separator: " "))\"\n"
        }
        if let destination {
            do {
                try SubnetEnvironment.write(output, to: destination)
            } catch {
                io.error.line("docker-opts: cannot write \(destination): \(error)")
                return ExitStatus.failure
            }
        } else {
            io.output.write(output)
        }
        return ExitStatus.success
    }

    static func missing(_ flag: String, _ io: StandardStreams) -> Int32 {
        io.error.line("docker-opts: \(flag) needs an argument")
        return ExitStatus.usage
    }

    // MARK: network create | show

    static func networkCommand(_ arguments: [String], io: StandardStreams) async -> Int32 {
        guard let verb = arguments.first, verb == "create" || verb == "show" else {
            io.error.line("usage: coreos flannel network create|show [flags]")
            return ExitStatus.usage
        }
        var rest: [String] = []
        var json: String?
        var network: String?
        var backend = "vxlan"
        var extra: [String: String] = [:]
        var force = false
        var index = 1
        let words = arguments
        while index < words.count {
            let word = words[index]
            index += 1
            let name = word.hasPrefix("--") ? String(word.dropFirst(2)) : word
            switch name {
            case "network", "backend", "subnet-len", "vni", "port":
                guard index < words.count else {
                    io.error.line("network \(verb): --\(name) needs a value")
                    return ExitStatus.usage
                }
                let value = words[index]
                index += 1
                switch name {
                case "network": network = value
                case "backend": backend = value
                default: extra[name] = value
                }
            case "direct-routing": extra["direct-routing"] = "true"
            case "force": force = true
            default:
                if !word.hasPrefix("-") && verb == "create" && json == nil {
                    json = word
                } else {
                    rest.append(word)
                    if !word.contains("="), index < words.count, !words[index].hasPrefix("-"),
                        FlannelOptions.takesValue(word)
                    {
                        rest.append(words[index])
                        index += 1
                    }
                }
            }
        }
        let options: FlannelOptions
        do {
            options = try FlannelOptions.parse(arguments: rest, environment: ProcessEnvironment.current)
        } catch {
            io.error.line("network \(verb): \(error)")
            return ExitStatus.usage
        }
        if verb == "create" {
            if json == nil, let network {
                var fields = ["\"Network\":\"\(network)\""]
                if let length = extra["subnet-len"] { fields.append("\"SubnetLen\":\(length)") }
                var backendFields = ["\"Type\":\"\(backend)\""]
                if let vni = extra["vni"] { backendFields.append("\"VNI\":\(vni)") }
                if let port = extra["port"] { backendFields.append("\"Port\":\(port)") }
                if extra["direct-routing"] != nil { backendFields.append("\"DirectRouting\":true") }
                fields.append("\"Backend\":{\(backendFields.joined(separator: ","))}")
                json = "{" + fields.joined(separator: ",") + "}"
            }
            guard let json else {
                io.error.line("network create: give the configuration as JSON or with --network CIDR")
                return ExitStatus.usage
            }
            do {
                var config = try FlannelConfig(json: json)
                try config.check()
                _ = try BackendSettings(config)
            } catch {
                io.error.line("network create: invalid configuration: \(error)")
                return ExitStatus.failure
            }
            let replace = force
            do {
                try await FlannelDaemon.withRegistry(options) { registry in
                    if !replace, let existing = try await registry.networkConfig(), existing != json {
                        throw FlannelError(
                            "\(options.etcdPrefix)/config already holds a different configuration (\(existing)); --force replaces it")
                    }
                    try await registry.setNetworkConfig(json)
                }
            } catch {
                io.error.line("network create: \(error)")
                return ExitStatus.failure
            }
            io.output.line(json)
            return ExitStatus.success
        }
        do {
            let (config, leases) = try await FlannelDaemon.withRegistry(options) { registry in
                (try await registry.networkConfig(), try await registry.leases().records)
            }
            guard let config else {
                io.error.line("network show: \(options.etcdPrefix)/config does not exist")
                return ExitStatus.failure
            }
            io.output.line(config)
            let rows = leases.sorted { ($0.key.ipv4?.address.bits ?? 0) < ($1.key.ipv4?.address.bits ?? 0) }
            if !rows.isEmpty {
                io.output.line()
                var table = [["SUBNET", "PUBLIC IP", "BACKEND", "VTEP MAC", "KIND"]]
                for lease in rows {
                    table.append([
                        lease.key.description, lease.attributes.publicIP, lease.attributes.backendType,
                        lease.attributes.vtepMAC ?? "-", lease.expires ? "lease" : "reservation",
                    ])
                }
                let widths = (0..<5).map { column in table.map { $0[column].count }.max() ?? 0 }
                for row in table {
                    var line = ""
                    for (column, cell) in row.enumerated() {
                        line += cell
                        if column < row.count - 1 { line += String(repeating: " ", count: widths[column] + 2 - cell.count) }
                    }
                    io.output.line(line)
                }
            }
        } catch {
            io.error.line("network show: \(error)")
            return ExitStatus.failure
        }
        return ExitStatus.success
    }
}
