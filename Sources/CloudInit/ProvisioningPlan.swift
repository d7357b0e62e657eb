import UnitFile

/// Why a config cannot be applied, with the line of the entry at fault when it has one.
public struct ProvisioningError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var line: Int

    public init(_ message: String, line: Int = 0) {
        self.message = message
        self.line = line
    }

    public var description: String { line > 0 ? "line \(line): \(message)" : message }
}

/// Everything a config will do to a machine, computed before anything is done: files with
/// their bytes, modes and owners, unit masks and enables, unit commands. Building it reads
/// the target (existing `/etc/environment`, `update.conf`) but changes nothing, so a config
/// with one bad file writes none.
public struct ProvisioningPlan: Sendable, Hashable {
    public struct FileWrite: Sendable, Hashable {
        /// Absolute path on the target machine (the root is prefixed when applying).
        public var path: String
        public var bytes: [UInt8]
        public var mode: UInt32
        /// `user`, `user:group` or `:group`, as chown(1) takes it; empty: root.
        public var owner: String
    }

    /// Keys a user gets, kept as a named set in `~/.ssh/authorized_keys.d` (update-ssh-keys' layout).
    public struct SSHKeySet: Sendable, Hashable {
        public var user: String
        public var set: String
        public var keys: [String]
    }

    public struct UnitCommand: Sendable, Hashable {
        public var command: String
        public var unit: String
    }

    public var hostname: String?
    public var users: [CloudConfig.User] = []
    /// Keys for `update-ssh-keys`-style sets: the user, the set name, the keys.
    public var sshKeySets: [SSHKeySet] = []
    public var files: [FileWrite] = []
    /// Unit files and drop-ins, written after `files`.
    public var unitFiles: [FileWrite] = []
    /// Unit paths to point at /dev/null.
    public var masks: [String] = []
    /// Unit paths whose /dev/null link goes away.
    public var unmasks: [String] = []
    /// Units to enable through their `[Install]` section.
    public var enables: [String] = []
    public var daemonReload = false
    public var commands: [UnitCommand] = []
}

/// What a datasource said about the machine besides user-data.
public struct Metadata: Sendable, Hashable {
    public var hostname = ""
    public var sshPublicKeys: [String] = []
    public var addresses = MetadataAddresses()

    public init(hostname: String = "", sshPublicKeys: [String] = [], addresses: MetadataAddresses = MetadataAddresses()) {
        self.hostname = hostname
        self.sshPublicKeys = sshPublicKeys
        self.addresses = addresses
    }
}

/// Where generated service settings go. The unit names are CoreOS's, so units users wrote
/// against CoreOS (`After=etcd2.service`) keep working; on a coreos node they run
/// `coreos etcd`, `coreos fleet` and `coreos flannel`.
public enum ServiceUnits {
    public static let etcd = "etcd.service"
    public static let etcd2 = "etcd2.service"
    public static let fleet = "fleet.service"
    public static let locksmith = "locksmithd.service"
    public static let updateEngine = "update-engine.service"
    public static let networkd = "systemd-networkd.service"
    public static let dropInName = "20-cloudinit.conf"
    public static let flannelOptions = "/run/flannel/options.env"
}

extension ProvisioningPlan {
    /// The plan for `config` on a machine whose current files `read` returns (by absolute
    /// target path; nil when absent). `currentHostname` names the machine when the config
    /// sets no hostname (for `manage_etc_hosts`).
    public static func make(
        for config: CloudConfig, metadata: Metadata = Metadata(), currentHostname: String,
        sshKeySetName: String = "coreos-cloudinit", read: (String) -> [UInt8]?
    ) throws(ProvisioningError) -> ProvisioningPlan {
        var plan = ProvisioningPlan()
        let hostname = config.hostname.isEmpty ? metadata.hostname : config.hostname
        if !hostname.isEmpty { plan.hostname = hostname }
        plan.users = config.users.filter { !$0.name.isEmpty }
        let coreKeys = config.sshAuthorizedKeys.map { $0.trimmingSpaces } + metadata.sshPublicKeys.map { $0.trimmingSpaces }
        if !coreKeys.filter({ !$0.isEmpty }).isEmpty {
            plan.sshKeySets.append(SSHKeySet(user: "core", set: sshKeySetName, keys: coreKeys.filter { !$0.isEmpty }))
        }
        for user in plan.users where !user.sshAuthorizedKeys.isEmpty {
            plan.sshKeySets.append(SSHKeySet(user: user.name, set: sshKeySetName, keys: user.sshAuthorizedKeys.map { $0.trimmingSpaces }))
        }

        for file in config.writeFiles { plan.files.append(try writeFile(file)) }
        if let oem = oemRelease(config.oem) { plan.files.append(oem) }
        if !config.update.isEmpty { plan.files.append(updateConf(config.update, read: read)) }
        switch config.manageEtcHosts {
        case "": break
        case "localhost":
            let name = plan.hostname ?? currentHostname
            plan.files.append(FileWrite(path: "/etc/hosts", bytes: Array("127.0.0.1 \(name)\n".utf8), mode: 0o644, owner: ""))
        default:
            throw ProvisioningError("Invalid option to manage_etc_hosts: \(config.manageEtcHosts) (only \"localhost\" is supported)")
        }
        if !config.flannel.isEmpty {
            let text = config.flannel.variables.map { "\($0.name)=\($0.value)" }.joined(separator: "\n")
            plan.files.append(FileWrite(path: ServiceUnits.flannelOptions, bytes: Array(text.utf8), mode: 0o644, owner: ""))
        }
        let addresses = metadata.addresses.environment
        if !addresses.isEmpty && !plan.files.contains(where: { $0.path == "/etc/environment" }) {
            plan.files.append(environmentFile(addresses, existing: read("/etc/environment")))
        }

        var units = config.units
        for (settings, unit) in [
            (config.etcd, ServiceUnits.etcd), (config.etcd2, ServiceUnits.etcd2), (config.fleet, ServiceUnits.fleet),
            (config.locksmith, ServiceUnits.locksmith),
        ] where !settings.isEmpty {
            var dropIn = "[Service]\n"
            for variable in settings.variables {
                dropIn += "Environment=\"\(Self.quotedForSystemd(variable.name + "=" + variable.value))\"\n"
            }
            units.append(CloudConfig.Unit(name: unit, runtime: true, dropIns: [.init(name: ServiceUnits.dropInName, content: dropIn)]))
        }
        if let strategy = config.update.value(of: "reboot_strategy") {
            if strategy == "off" {
                units.append(CloudConfig.Unit(name: ServiceUnits.locksmith, runtime: true, mask: true, command: "stop"))
            } else {
                units.append(CloudConfig.Unit(name: ServiceUnits.locksmith, runtime: true, command: "restart"))
            }
        }
        if config.update.value(of: "group") != nil || config.update.value(of: "server") != nil {
            units.append(CloudConfig.Unit(name: ServiceUnits.updateEngine, runtime: true, command: "restart"))
        }
        try plan.addUnits(units)
        return plan
    }

    static func writeFile(_ file: CloudConfig.File) throws(ProvisioningError) -> FileWrite {
        guard !file.path.isEmpty else { throw ProvisioningError("write_files entry has no path", line: file.line) }
        let bytes: [UInt8]
        do {
            bytes = try ContentEncoding.decode(file.content, encoding: file.encoding)
        } catch {
            throw ProvisioningError("content of \(file.path) cannot be decoded as \"\(file.encoding)\": \(error)", line: file.line)
        }
        var mode: UInt32 = 0o644
        if !file.permissions.isEmpty {
            guard ValueRule.permissions.accepts(file.permissions), let parsed = UInt32(file.permissions, radix: 8) else {
                throw ProvisioningError("invalid permissions \(file.permissions) for \(file.path)", line: file.line)
            }
            mode = parsed
        }
        let path = PathText.clean("/" + file.path)
        guard path != "/" else { throw ProvisioningError("write_files path \(file.path) names the root", line: file.line) }
        return FileWrite(path: path, bytes: bytes, mode: mode, owner: file.owner)
    }

    static func oemRelease(_ oem: CloudConfig.Settings) -> FileWrite? {
        guard let id = oem.value(of: "id") else { return nil }
        var text = "ID=\(id)\n"
        text += "VERSION_ID=\(oem.value(of: "version_id") ?? "")\n"
        text += "NAME=\(goQuoted(oem.value(of: "name") ?? ""))\n"
        text += "HOME_URL=\(goQuoted(oem.value(of: "home_url") ?? ""))\n"
        text += "BUG_REPORT_URL=\(goQuoted(oem.value(of: "bug_report_url") ?? ""))\n"
        return FileWrite(path: "/etc/oem-release", bytes: Array(text.utf8), mode: 0o644, owner: "")
    }

    /// `/etc/coreos/update.conf` rewritten: lines for the keys set are replaced where they
    /// are, missing keys appended in sorted order, every other line kept.
    static func updateConf(_ update: CloudConfig.Settings, read: (String) -> [UInt8]?) -> FileWrite {
        let existing = read("/etc/coreos/update.conf") ?? read("/usr/share/coreos/update.conf") ?? []
        var lines = String(decoding: existing, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        var pending = Dictionary(update.variables.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
        for index in lines.indices {
            for (name, value) in pending where lines[index].hasPrefix(name + "=") {
                lines[index] = "\(name)=\(value)"
                pending[name] = nil
            }
        }
        for name in pending.keys.sorted() { lines.append("\(name)=\(pending[name] ?? "")") }
        return FileWrite(path: "/etc/coreos/update.conf", bytes: Array((lines.joined(separator: "\n") + "\n").utf8), mode: 0o644, owner: "")
    }

    /// `/etc/environment` with the `COREOS_*` addresses set, other lines kept in place.
    static func environmentFile(_ addresses: [(name: String, value: String)], existing: [UInt8]?) -> FileWrite {
        var lines = String(decoding: existing ?? [], as: UTF8.self).split(separator: "\n").map(String.init)
        var pending = addresses
        for index in lines.indices {
            if let position = pending.firstIndex(where: { lines[index].hasPrefix($0.name + "=") }) {
                lines[index] = "\(pending[position].name)=\(pending[position].value)"
                pending.remove(at: position)
            }
        }
        lines += pending.map { "\($0.name)=\($0.value)" }
        return FileWrite(path: "/etc/environment", bytes: Array((lines.joined(separator: "\n") + "\n").utf8), mode: 0o644, owner: "")
    }

    mutating func addUnits(_ units: [CloudConfig.Unit]) throws(ProvisioningError) {
        var networkChanged = false
        for unit in units {
            guard !unit.name.isEmpty else { throw ProvisioningError("unit has no name", line: unit.line) }
            let isNetwork = [".network", ".netdev", ".link"].contains { unit.name.hasSuffix($0) }
            // networkd's files are not units; they only need to be plain file names.
            if isNetwork {
                guard !unit.name.contains("/"), unit.name.utf8.count <= 255 else {
                    throw ProvisioningError("invalid network file name \"\(unit.name)\"", line: unit.line)
                }
            } else {
                do {
                    _ = try UnitName(unit.name)
                } catch {
                    throw ProvisioningError("invalid unit name \"\(unit.name)\": \(error)", line: unit.line)
                }
            }
            let directory = (unit.runtime ? "/run" : "/etc") + (isNetwork ? "/systemd/network" : "/systemd/system")
            let path = directory + "/" + unit.name
            if !unit.content.isEmpty {
                if !isNetwork {
                    do {
                        _ = try UnitFile(parsing: unit.content, file: unit.name)
                    } catch {
                        throw ProvisioningError("unit \(unit.name) has invalid content: \(error)", line: unit.line)
                    }
                }
                unitFiles.append(FileWrite(path: path, bytes: Array(unit.content.utf8), mode: 0o644, owner: ""))
                daemonReload = true
            }
            for dropIn in unit.dropIns where !dropIn.name.isEmpty && !dropIn.content.isEmpty {
                guard !dropIn.name.contains("/"), dropIn.name != "..", dropIn.name != "." else {
                    throw ProvisioningError("invalid drop-in name \"\(dropIn.name)\" for \(unit.name)", line: unit.line)
                }
                unitFiles.append(FileWrite(path: "\(path).d/\(dropIn.name)", bytes: Array(dropIn.content.utf8), mode: 0o644, owner: ""))
                daemonReload = true
            }
            if unit.mask {
                masks.append(path)
                daemonReload = true
            } else if unit.runtime {
                unmasks.append(path)
            }
            if isNetwork {
                if !unit.content.isEmpty || !unit.dropIns.isEmpty { networkChanged = true }
            } else if unit.enable {
                enables.append(unit.name)
            }
            if !unit.command.isEmpty {
                guard CloudConfigSchema.unitCommands.contains(unit.command) else {
                    throw ProvisioningError("invalid command \"\(unit.command)\" for \(unit.name)", line: unit.line)
                }
                commands.append(UnitCommand(command: unit.command, unit: unit.name))
            }
        }
        if networkChanged {
            // networkd first, so units started below find their network.
            commands.insert(UnitCommand(command: "restart", unit: ServiceUnits.networkd), at: 0)
        }
    }

    /// A value inside `Environment="…"`: quotes and backslashes escaped, `%` doubled (systemd
    /// expands specifiers there), newlines written as `\n`.
    static func quotedForSystemd(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "%": out += "%%"
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// Go's `%q` for the printable ASCII that os-release values hold.
    static func goQuoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    out += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

extension String {
    var trimmingSpaces: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
