import Glibc
import Platform
public import YAML

/// How one piece of user-data is applied.
public struct ProvisioningOptions: Sendable {
    public var root = TargetRoot("/")
    /// Where scripts are kept (coreos-cloudinit's `--workspace`), on the target.
    public var workspace = "/var/lib/coreos-cloudinit"
    /// The name of the key set in `authorized_keys.d` (`--ssh-key-name`).
    public var sshKeySetName = "coreos-cloudinit"
    /// Where unit commands go; nil: systemd when it runs the live system, else the queue file.
    public var commandSink: UnitCommandSink?
    /// `COREOS_PUBLIC_IPV4` and friends, used where the metadata has no address.
    public var environment: [String: String] = [:]
    public var limits = YAMLLimits()

    public init() {}
}

/// Applies user-data: substitution, recognition, validation, the plan, then the plan's
/// execution (or the script's run). Everything a user would want to read goes to `log`.
public enum Provisioner {
    public static func apply(
        userData: [UInt8], metadata: Metadata, options: ProvisioningOptions, log: (String) -> Void
    ) throws(ProvisioningError) {
        var metadata = metadata
        metadata.addresses = metadata.addresses.fillingGaps(from: options.environment)
        var config = CloudConfig()
        switch UserData.recognize(userData) {
        case .empty:
            log("user-data is empty; applying what the metadata says")
        case .ignition:
            log("Detected an Ignition config. Exiting...")
            return
        case .undecodable(let reason):
            throw ProvisioningError(reason)
        case .unrecognized:
            throw ProvisioningError(CloudConfigValidator.headerMessage, line: 1)
        case .script(let bytes):
            let script = VariableSubstitution.apply(bytes, addresses: metadata.addresses)
            try applyConfig(CloudConfig(), metadata: metadata, options: options, log: log)
            try run(script: script, options: options, log: log)
            return
        case .cloudConfig(let text):
            let substituted = VariableSubstitution.apply(text, addresses: metadata.addresses)
            let document: YAMLNode?
            do {
                document = try YAMLParser.parse(substituted, limits: options.limits)
            } catch {
                throw ProvisioningError(error.positioned, line: max(error.line, 1))
            }
            let findings = CloudConfigValidator.validate(document: document)
            for finding in findings { log(finding.description) }
            // Unknown and deprecated keys are only reported; a wrong type or value would
            // apply something the user did not write.
            if let blocking = findings.first(where: { $0.kind == .error || $0.message.hasPrefix("incorrect type") }) {
                throw ProvisioningError("the cloud-config is not valid; nothing was applied (\(blocking.description))", line: blocking.line)
            }
            config = CloudConfig(document: document)
        }
        try applyConfig(config, metadata: metadata, options: options, log: log)
    }

    static func applyConfig(
        _ config: CloudConfig, metadata: Metadata, options: ProvisioningOptions, log: (String) -> Void
    ) throws(ProvisioningError) {
        let plan = try ProvisioningPlan.make(
            for: config, metadata: metadata, currentHostname: options.root.currentHostname,
            sshKeySetName: options.sshKeySetName, read: { options.root.read($0) })
        var applier = PlanApplier(target: options.root, commandSink: options.commandSink)
        defer { applier.log.forEach(log) }
        try applier.apply(plan)
    }

    /// Saves the script under the workspace and runs it (directly: the kernel reads its
    /// `#!` line), with the target root as working directory. A non-zero exit is an error.
    static func run(script: [UInt8], options: ProvisioningOptions, log: (String) -> Void) throws(ProvisioningError) {
        var applier = PlanApplier(target: options.root, commandSink: .queueFile)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let path = PathText.clean(options.workspace + "/scripts/\(now.tv_sec)-\(getpid())")
        try applier.write(.init(path: path, bytes: script, mode: 0o700, owner: ""))
        applier.log.forEach(log)
        let hostPath = options.root.hostPath(path)
        let command = SystemdBus.isSystemdRunning && options.root.isLiveSystem
            ? ["systemd-run", "--wait", "--collect", "--quiet", "--unit", "coreos-cloudinit-\(now.tv_sec)-\(getpid())", hostPath]
            : [hostPath]
        // A child another thread forks while the script's file is still open for writing
        // holds it open until that child execs; exec then fails with ETXTBSY for a moment.
        var outcome = ChildProcess.run(command)
        var attempts = 1
        while outcome == nil && errno == ETXTBSY && attempts < 50 {
            usleep(10_000)
            outcome = ChildProcess.run(command)
            attempts += 1
        }
        guard let outcome else {
            throw ProvisioningError("cannot run the user-data script \(path): \(String(cString: strerror(errno)))")
        }
        for line in outcome.output.split(separator: "\n") { log("script: \(line)") }
        guard outcome.status == 0 else {
            throw ProvisioningError("the user-data script \(path) exited with status \(outcome.status)")
        }
        log("the user-data script \(path) exited with status 0")
    }
}
