import CLI
import EtcdClient
import FleetClient
import FleetRegistry
import Foundation
import GoFormat

/// `fleetctl`: fleet 1.0's command-line client, over fleetd's API (`--driver=api`, the
/// unix socket by default) or over etcd directly (`--driver=etcd`).
enum Fleetctl {
    static let globalFlags: [PFlag] = [
        PFlag("ca-file", .string, default: "", "Location of TLS CA file used to secure communication with the fleet API or etcd"),
        PFlag("cert-file", .string, default: "", "Location of TLS cert file used to secure communication with the fleet API or etcd"),
        PFlag("key-file", .string, default: "", "Location of TLS key file used to secure communication with the fleet API or etcd"),
        PFlag("etcd-cafile", .string, default: "", "Deprecated: --ca-file"),
        PFlag("etcd-certfile", .string, default: "", "Deprecated: --cert-file"),
        PFlag("etcd-keyfile", .string, default: "", "Deprecated: --key-file"),
        PFlag("debug", .bool, default: "false", "Print out more debug information to stderr"),
        PFlag("driver", .string, default: "api", "Adapter used to execute fleetctl commands. Options include \"api\" and \"etcd\"."),
        PFlag("endpoint", .string, default: "unix:///var/run/fleet.sock", "Location of the fleet API if --driver=api. Alternatively, if --driver=etcd, location of the etcd API."),
        PFlag("etcd-key-prefix", .string, default: "/_coreos.com/fleet/", "Keyspace for fleet data in etcd (development use only!)"),
        PFlag("experimental-api", .bool, default: "true", "Use the experimental HTTP API. This flag will be removed when the API is no longer considered experimental."),
        PFlag("known-hosts-file", .string, default: "~/.fleetctl/known_hosts", "File used to store remote machine fingerprints. Ignored if strict host key checking is disabled."),
        PFlag("request-timeout", .string, default: "3", "Amount of time in seconds to allow a single request before considering it failed."),
        PFlag("ssh-timeout", .string, default: "10", "Amount of time in seconds to allow for SSH connection initialization before failing."),
        PFlag("ssh-username", .string, default: "core", "Username to use when connecting to CoreOS instance."),
        PFlag("strict-host-key-checking", .bool, default: "true", "Verify host keys presented by remote machines before initiating SSH connections."),
        PFlag("tunnel", .string, default: "", "Establish an SSH tunnel through the provided address for communication with fleet and etcd."),
        PFlag("version", .bool, default: "false", "Print the version and exit"),
        PFlag("help", shorthand: "h", .bool, default: "false", "help for fleetctl"),
    ]

    /// Every subcommand's flags; fleetctl rejects a flag its command does not have.
    static let commandFlags: [String: [PFlag]] = {
        let block = [
            PFlag("block-attempts", .int, default: "0", "Wait until the units are in the wanted state, performing up to N attempts before giving up. A value of 0 indicates no limit. Does not apply to global units."),
            PFlag("no-block", .bool, default: "false", "Do not wait until the units have reached the wanted state before exiting. Always the case for global units."),
        ]
        let replace = PFlag("replace", .bool, default: "false", "Replace the old scheduled units in the cluster with new versions.")
        let sign = PFlag("sign", .bool, default: "false", "DEPRECATED - this option cannot be used")
        let full = PFlag("full", shorthand: "l", .bool, default: "false", "Do not ellipsize fields on output")
        let noLegend = PFlag("no-legend", .bool, default: "false", "Do not print a legend (column headers)")
        let sshPort = PFlag("ssh-port", .int, default: "22", "Connect to remote hosts over this port")
        return [
            "submit": [replace, sign],
            "load": block + [replace, sign],
            "start": block + [replace, sign],
            "stop": block,
            "unload": block,
            "restart": block,
            "destroy": [],
            "cat": [],
            "list-units": [full, noLegend, PFlag("fields", .string, default: "unit,machine,active,sub", "Columns to print for each Unit. Valid fields are \"active,hash,load,machine,sub,unit\"")],
            "list-unit-files": [full, noLegend, PFlag("fields", .string, default: "unit,hash,dstate,state,target", "Columns to print for each Unit file. Valid fields are \"desc,dstate,global,hash,state,target,tmachine,unit\"")],
            "list-machines": [full, noLegend, PFlag("fields", .string, default: "machine,ip,metadata", "Columns to print for each Machine. Valid fields are \"ip,machine,metadata\"")],
            "status": [sshPort, PFlag("lines", shorthand: "n", .int, default: "10", "Number of log lines to show")],
            "journal": [
                sshPort, PFlag("lines", .int, default: "10", "Number of recent log lines to return"),
                PFlag("follow", shorthand: "f", .bool, default: "false", "Continuously print new entries as they are appended to the journal."),
                PFlag("output", shorthand: "o", .string, default: "short", "Output mode. This will be passed unaltered to journalctl on the remote host, and hence supports the same modes."),
                PFlag("sudo", .bool, default: "false", "Execute journal command with sudo"),
            ],
            "ssh": [
                sshPort, PFlag("forward-agent", shorthand: "A", .bool, default: "false", "Forward local ssh-agent to target machine."),
                PFlag("machine", .string, default: "", "Open SSH connection to a specific machine."),
                PFlag("unit", .string, default: "", "Open SSH connection to machine running provided unit."),
            ],
            "version": [],
            "help": [],
        ]
    }()

    static let summaries: [(String, String)] = [
        ("cat", "Output the contents of a submitted unit"),
        ("destroy", "Destroy one or more units in the cluster"),
        ("help", "Help about any command"),
        ("journal", "Print the journal of a unit in the cluster to stdout"),
        ("list-machines", "Enumerate the current hosts in the cluster"),
        ("list-unit-files", "List the units that exist in the cluster."),
        ("list-units", "List the current state of units in the cluster"),
        ("load", "Schedule one or more units in the cluster, first submitting them if necessary."),
        ("restart", "Instruct systemd to rolling restart one or more units in the cluster."),
        ("ssh", "Open interactive shell on a machine in the cluster"),
        ("start", "Instruct systemd to start one or more units in the cluster, first submitting and loading if necessary."),
        ("status", "Output the status of one or more units in the cluster"),
        ("stop", "Instruct systemd to stop one or more units in the cluster."),
        ("submit", "Upload one or more units to the cluster without starting them"),
        ("unload", "Unschedule one or more units in the cluster."),
        ("version", "Print the version and exit"),
    ]

    @Sendable static func main(_ argv: [String], io: StandardStreams) async -> Int32 {
        var arguments = Array(argv.dropFirst())
        // The command is the first operand; flags may come before or after it (cobra).
        let parser = PFlagParser(globalFlags + Array(Set(commandFlags.values.flatMap { $0 })).sorted { $0.name < $1.name })
        let parsed: PFlagResult
        do {
            parsed = try parser.parse(arguments)
        } catch {
            io.error.line("Error: \(error)")
            io.error.line("Run 'fleetctl help' for usage.")
            return 1
        }
        var options = parsed
        let environment = ProcessEnvironment.current
        for flag in globalFlags where !options.isSet(flag.name) {
            if let value = environment["FLEETCTL_" + flag.name.uppercased().replacingOccurrences(of: "-", with: "_")], !value.isEmpty {
                options.values[flag.name] = value
            }
        }
        arguments = options.operands + (options.afterDashDash ?? [])
        if options.bool("version") { arguments = ["version"] }
        if arguments.isEmpty || options.bool("help") {
            io.output.write(usage(arguments.first))
            return 0
        }
        let command = arguments.removeFirst()
        guard let allowed = commandFlags[command] else {
            io.error.line("Error: unknown command \"\(command)\" for \"fleetctl\"")
            io.error.line("Run 'fleetctl help' for usage.")
            return 1
        }
        let allowedNames = Set((globalFlags + allowed).map(\.name))
        if let stray = options.values.keys.sorted().first(where: { !allowedNames.contains($0) && parsed.isSet($0) }) {
            io.error.line("Error: unknown flag: --\(stray)")
            io.error.line("Run 'fleetctl help \(command)' for usage.")
            return 1
        }
        if options.bool("sign") {
            io.error.line("WARNING: The signed/verified units feature is DEPRECATED and cannot be used.")
            return 2
        }
        switch command {
        case "version":
            io.output.line("fleetctl version \(FleetVersionText.fleetctl)")
            return 0
        case "help":
            io.output.write(usage(arguments.first))
            return 0
        default: break
        }
        var context = Context(options: options, io: io, flags: globalFlags + allowed)
        do {
            return try await context.withClient { context in
                try await context.run(command, arguments)
            }
        } catch let error as FleetctlFailure {
            io.error.line(error.message)
            return 1
        } catch {
            io.error.line("Error: \(error)")
            return 1
        }
    }

    static func usage(_ command: String?) -> String {
        if let command, let flags = commandFlags[command], let summary = summaries.first(where: { $0.0 == command })?.1 {
            var text = "\(summary)\n\nUsage:\n  fleetctl \(command) [flags]\n"
            if !flags.isEmpty {
                text += "\nFlags:\n" + GoTabWriter.format(flags.map { ["  --\($0.name)", $0.usage] })
            }
            return text
        }
        var text = "fleetctl is a command-line interface to fleet, the cluster-wide CoreOS init system.\n\nUsage:\n  fleetctl [command]\n\nAvailable Commands:\n"
        text += GoTabWriter.format(summaries.map { ["  \($0.0)", $0.1] })
        text += "\nGlobal Flags:\n" + GoTabWriter.format(globalFlags.filter { !$0.name.hasPrefix("etcd-c") && !$0.name.hasPrefix("etcd-k") || $0.name == "etcd-key-prefix" }.map { ["  --\($0.name)", $0.usage] })
        text += "\nUse \"fleetctl [command] --help\" for more information about a command.\n"
        return text
    }
}

enum FleetVersionText {
    static let fleetctl = "1.0.0"
}

/// A failure fleetctl reports as it is (its own words), exit status 1.
struct FleetctlFailure: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
