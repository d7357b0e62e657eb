import CLI
import CloudInit
import Glibc

/// `coreos cloudinit` / `coreos-cloudinit`: coreos-cloudinit's flags over the CloudInit module.
enum CloudInitCommand {
    static let flags: [GoFlag] = [
        GoFlag(["from-file"], .string, "Read user-data from provided file"),
        GoFlag(["from-url"], .string, "Download user-data from provided URL"),
        GoFlag(["from-configdrive"], .string, "Read data from provided cloud-drive directory"),
        GoFlag(["from-ec2-metadata"], .string, "Download EC2 data from the provided url"),
        GoFlag(["from-proc-cmdline"], .bool, "Parse /proc/cmdline for 'cloud-config-url'"),
        GoFlag(["oem"], .string, "Use the settings specific to the provided OEM (ec2-compat, rackspace-onmetal)"),
        GoFlag(["convert-netconf"], .string, "Read the network config provided in cloud-drive and translate it (not supported)"),
        GoFlag(["workspace"], .string, "Base directory coreos-cloudinit should use to store data"),
        GoFlag(["ssh-key-name"], .string, "Add SSH keys to the system with the given name"),
        GoFlag(["validate"], .bool, "[EXPERIMENTAL] Validate the user-data but do not apply it to the system"),
        GoFlag(["ignore-failure"], .bool, "Exits with 0 status in the event of malformed input from user-data"),
        GoFlag(["root"], .string, "Apply to this directory as the machine's root (default /)"),
        GoFlag(["timeout"], .duration, "How long to wait for a datasource (default 5m)"),
        GoFlag(["version"], .bool, "Print the version and exit"),
        GoFlag(["help", "h"], .bool, "Print this help and exit"),
    ]

    static let oems: [String: [Datasource]] = [
        "ec2-compat": [.ec2Metadata("http://169.254.169.254/"), .configDrive("/media/configdrive")],
        "rackspace-onmetal": [.configDrive("/media/configdrive")],
        "openstack": [.ec2Metadata("http://169.254.169.254/"), .configDrive("/media/configdrive")],
    ]

    static func main(_ argv: [String], _ io: StandardStreams) async -> Int32 {
        let parser = GoFlagParser(flags)
        let options: GoFlagResult
        do {
            options = try parser.parse(Array(argv.dropFirst()))
        } catch {
            io.error.line("\(error)")
            io.error.write(usage())
            return ExitStatus.usage
        }
        if options.bool("help") {
            io.output.write(usage())
            return ExitStatus.success
        }
        if options.bool("version") {
            io.output.line("coreos-cloudinit 1.14.0 (coreos)")
            return ExitStatus.success
        }
        if !options.arguments.isEmpty {
            io.error.line("unexpected argument: \(options.arguments[0])")
            return ExitStatus.usage
        }
        if let netconf = options.string("convert-netconf"), !netconf.isEmpty {
            io.error.line("--convert-netconf=\(netconf) is not supported: configure networking with systemd-networkd units (coreos.units)")
            return ExitStatus.usage
        }
        var sources: [Datasource] = []
        if let path = options.string("from-file") { sources.append(.file(path)) }
        if let url = options.string("from-url") { sources.append(.url(url)) }
        if let path = options.string("from-configdrive") { sources.append(.configDrive(path)) }
        if let url = options.string("from-ec2-metadata") { sources.append(.ec2Metadata(url)) }
        if options.bool("from-proc-cmdline") {
            sources.append(.procCmdline(ProcessEnvironment.current["COREOS_CLOUDINIT_PROC_CMDLINE"] ?? "/proc/cmdline"))
        }
        if let oem = options.string("oem") {
            guard let preset = oems[oem] else {
                io.error.line("Invalid option to --oem: \"\(oem)\" (known: \(oems.keys.sorted().joined(separator: ", ")))")
                return ExitStatus.usage
            }
            sources += preset
        }
        guard !sources.isEmpty else {
            io.error.line("Provide at least one of --from-file, --from-configdrive, --from-ec2-metadata, --from-url, --from-proc-cmdline or --oem")
            return ExitStatus.usage
        }
        let ignoreFailure = options.bool("ignore-failure")
        let log: @Sendable (String) -> Void = { io.error.line($0) }

        // A single local file needs no polling: a missing one is an error now.
        if sources.count == 1, case .file(let path) = sources[0], access(path, F_OK) != 0 {
            io.error.line("open \(path): \(String(cString: strerror(errno)))")
            return ExitStatus.failure
        }
        let timeout = options.string("timeout").flatMap(GoValues.parseDuration) ?? .seconds(300)
        guard let delivered = await DatasourcePoller.first(of: sources, timeout: timeout, log: log) else {
            io.error.line("No datasources available in time")
            return ExitStatus.failure
        }

        if options.bool("validate") {
            let findings = CloudConfigValidator.validate(userData: delivered.userData)
            for finding in findings { io.output.line(finding.description) }
            return findings.isEmpty ? ExitStatus.success : ExitStatus.failure
        }

        var provisioning = ProvisioningOptions()
        provisioning.root = TargetRoot(options.string("root") ?? "/")
        if let workspace = options.string("workspace") { provisioning.workspace = workspace }
        if let name = options.string("ssh-key-name") { provisioning.sshKeySetName = name }
        provisioning.environment = ProcessEnvironment.current
        var result = delivered
        // The system (OEM) config goes first, unless it is what was asked for.
        let systemConfig = "/usr/share/oem/cloud-config.yml"
        if let bytes = provisioning.root.read(systemConfig), !sources.contains(.file(provisioning.root.hostPath(systemConfig))) {
            log("applying the system config \(systemConfig)")
            do {
                try Provisioner.apply(userData: bytes, metadata: Metadata(), options: provisioning, log: log)
            } catch {
                log("\(systemConfig): \(error)")
                if !ignoreFailure { return ExitStatus.failure }
            }
        }
        log("applying user-data from \(result.source)")
        do {
            try Provisioner.apply(userData: result.userData, metadata: result.metadata, options: provisioning, log: log)
        } catch {
            log("\(error)")
            return ignoreFailure ? ExitStatus.success : ExitStatus.failure
        }
        result.userData = []
        return ExitStatus.success
    }

    static func usage() -> String {
        "Usage: coreos-cloudinit [options]\n\n" + GoFlagParser.helpRows(flags).joined(separator: "\n") + "\n"
    }
}
