import Glibc
import Platform
import UnitFile

/// How unit commands reach systemd: over D-Bus when systemd runs the machine, else into a
/// queue file that the node's embedded supervisor (`coreos node`) reads at start.
public enum UnitCommandSink: Sendable {
    case systemd
    /// `<root>/run/coreos/cloudinit/unit-commands`, one `COMMAND UNIT` line each.
    case queueFile
}

/// Carries out a ``ProvisioningPlan`` on a ``TargetRoot``, in coreos-cloudinit's order:
/// hostname, users, SSH keys, files, units, then daemon-reload and unit commands. Files are
/// written atomically (temporary file in the same directory, mode, owner, fsync, rename).
public struct PlanApplier {
    public var target: TargetRoot
    public var commandSink: UnitCommandSink
    /// What was done, a line each, for the log.
    public private(set) var log: [String] = []

    public static let commandQueue = "/run/coreos/cloudinit/unit-commands"

    public init(target: TargetRoot, commandSink: UnitCommandSink? = nil) {
        self.target = target
        self.commandSink = commandSink ?? (target.isLiveSystem && SystemdBus.isSystemdRunning ? .systemd : .queueFile)
    }

    public mutating func apply(_ plan: ProvisioningPlan) throws(ProvisioningError) {
        if let hostname = plan.hostname { try setHostname(hostname) }
        for user in plan.users { try ensureUser(user) }
        for set in plan.sshKeySets { try authorize(set) }
        for file in plan.files + plan.unitFiles { try write(file) }
        for path in plan.masks { try mask(path) }
        for path in plan.unmasks { try unmask(path) }
        for unit in plan.enables { try enable(unit, plan: plan) }
        try runCommands(plan)
    }

    // MARK: hostname and users

    mutating func setHostname(_ name: String) throws(ProvisioningError) {
        guard !name.isEmpty, name.utf8.count <= 64, !name.contains("/"), !name.contains(where: \.isWhitespace) else {
            throw ProvisioningError("invalid hostname \"\(name)\"")
        }
        try write(.init(path: "/etc/hostname", bytes: Array((name + "\n").utf8), mode: 0o644, owner: ""))
        if target.isLiveSystem {
            guard sethostname(name, name.utf8.count) == 0 else {
                throw ProvisioningError("sethostname \(name): \(String(cString: strerror(errno)))")
            }
        }
        log.append("set hostname to \(name)")
    }

    mutating func ensureUser(_ user: CloudConfig.User) throws(ProvisioningError) {
        let chroot = target.isLiveSystem ? [] : ["--root", target.root]
        if target.account(named: user.name) != nil {
            guard !user.passwordHash.isEmpty else { return }
            try runTool(["usermod"] + chroot + ["--password", user.passwordHash, user.name])
            log.append("set password of user \(user.name)")
            return
        }
        var arguments = ["useradd"] + chroot
        if !user.passwordHash.isEmpty { arguments += ["--password", user.passwordHash] }
        if !user.gecos.isEmpty { arguments += ["--comment", user.gecos] }
        if !user.homeDirectory.isEmpty { arguments += ["--home-dir", user.homeDirectory] }
        arguments.append(user.noCreateHome ? "--no-create-home" : "--create-home")
        if !user.primaryGroup.isEmpty { arguments += ["--gid", user.primaryGroup] }
        if !user.groups.isEmpty { arguments += ["--groups", user.groups.joined(separator: ",")] }
        if user.noUserGroup { arguments.append("--no-user-group") }
        if user.system { arguments.append("--system") }
        if user.noLogInit { arguments.append("--no-log-init") }
        if !user.shell.isEmpty { arguments += ["--shell", user.shell] }
        arguments.append(user.name)
        try runTool(arguments)
        log.append("created user \(user.name)")
    }

    func runTool(_ arguments: [String]) throws(ProvisioningError) {
        guard let outcome = ChildProcess.run(arguments) else {
            throw ProvisioningError("cannot run \(arguments[0]) (is the passwd package installed?)")
        }
        guard outcome.status == 0 else {
            let said = outcome.output.trimmingSpaces
            throw ProvisioningError("\(arguments[0]) failed with status \(outcome.status)\(said.isEmpty ? "" : ": " + said)")
        }
    }

    /// The set goes to `~/.ssh/authorized_keys.d/<set>`; `authorized_keys` is then rebuilt
    /// from every set in name order, as update-ssh-keys does.
    mutating func authorize(_ set: ProvisioningPlan.SSHKeySet) throws(ProvisioningError) {
        guard let account = target.account(named: set.user) else {
            throw ProvisioningError("cannot authorize SSH keys: user \(set.user) does not exist")
        }
        let sshDirectory = PathText.clean(account.home + "/.ssh")
        let setDirectory = sshDirectory + "/authorized_keys.d"
        try makeDirectories(setDirectory, mode: 0o700, uid: account.uid, gid: account.gid)
        let owner = "\(account.uid):\(account.gid)"
        try write(.init(path: setDirectory + "/" + set.set, bytes: Array((set.keys.joined(separator: "\n") + "\n").utf8), mode: 0o600, owner: owner))
        var merged = ""
        for name in FileSystem.entryNames(inDirectory: target.hostPath(setDirectory)).sorted() {
            guard let bytes = target.read(setDirectory + "/" + name) else { continue }
            var text = String(decoding: bytes, as: UTF8.self)
            if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
            merged += text
        }
        try write(.init(path: sshDirectory + "/authorized_keys", bytes: Array(merged.utf8), mode: 0o600, owner: owner))
        log.append("authorized \(set.keys.count) SSH key(s) for \(set.user)")
    }

    // MARK: files

    /// Creates the missing directories of `path` (absolute on the target), 0755 unless
    /// `mode` says otherwise for the last one.
    func makeDirectories(_ path: String, mode: mode_t = 0o755, uid: UInt32? = nil, gid: UInt32? = nil) throws(ProvisioningError) {
        var current = ""
        let components = path.split(separator: "/")
        for (index, component) in components.enumerated() {
            current += "/" + component
            let host = target.hostPath(current)
            var info = stat()
            if lstat(host, &info) == 0 {
                if info.st_mode & S_IFMT == S_IFDIR { continue }
                if info.st_mode & S_IFMT == S_IFLNK, !target.isLiveSystem {
                    throw ProvisioningError("\(current) is a symbolic link inside the target root; refusing to follow it")
                }
                if info.st_mode & S_IFMT == S_IFLNK, stat(host, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { continue }
                throw ProvisioningError("cannot create directory \(current): a file is in the way")
            }
            let isLast = index == components.count - 1
            guard mkdir(host, isLast ? mode : 0o755) == 0 || errno == EEXIST else {
                throw ProvisioningError("cannot create directory \(current): \(String(cString: strerror(errno)))")
            }
            if isLast {
                chmod(host, mode)
                if uid != nil || gid != nil { chown(host, uid ?? UInt32.max, gid ?? UInt32.max) }
            }
        }
    }

    mutating func write(_ file: ProvisioningPlan.FileWrite) throws(ProvisioningError) {
        let directory = PathText.directory(of: file.path)
        try makeDirectories(directory)
        let ids = try target.owner(file.owner)
        let host = target.hostPath(file.path)
        var info = stat()
        if lstat(host, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
            throw ProvisioningError("cannot write \(file.path): it is a directory")
        }
        var template = Array((target.hostPath(directory == "/" ? "" : directory) + "/.coreos-cloudinit-XXXXXX").utf8CString)
        let descriptor = mkstemp(&template)
        guard descriptor >= 0 else {
            throw ProvisioningError("cannot write \(file.path): \(String(cString: strerror(errno)))")
        }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var failure: String?
        file.bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let count = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                offset += count
            }
        }
        if failure == nil, fchmod(descriptor, file.mode) != 0 { failure = String(cString: strerror(errno)) }
        if failure == nil, ids.uid != nil || ids.gid != nil, fchown(descriptor, ids.uid ?? UInt32.max, ids.gid ?? UInt32.max) != 0 {
            failure = "chown \(file.owner): " + String(cString: strerror(errno))
        }
        if failure == nil, fsync(descriptor) != 0 { failure = String(cString: strerror(errno)) }
        close(descriptor)
        if failure == nil, rename(temporary, host) != 0 { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(temporary)
            throw ProvisioningError("cannot write \(file.path): \(failure)")
        }
        log.append("wrote \(file.path) (\(file.bytes.count) bytes, mode \(String(file.mode, radix: 8)))")
    }

    // MARK: units

    mutating func mask(_ path: String) throws(ProvisioningError) {
        try makeDirectories(PathText.directory(of: path))
        let host = target.hostPath(path)
        unlink(host)
        guard symlink("/dev/null", host) == 0 else {
            throw ProvisioningError("cannot mask \(path): \(String(cString: strerror(errno)))")
        }
        log.append("masked \(path)")
    }

    mutating func unmask(_ path: String) throws(ProvisioningError) {
        var buffer = [CChar](repeating: 0, count: 64)
        let count = readlink(target.hostPath(path), &buffer, buffer.count - 1)
        guard count > 0, String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) == "/dev/null" else { return }
        guard unlink(target.hostPath(path)) == 0 else {
            throw ProvisioningError("cannot unmask \(path): \(String(cString: strerror(errno)))")
        }
        log.append("unmasked \(path)")
    }

    static let unitSearchPath = ["/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"]

    /// What `systemctl enable` does for a unit's `[Install]` section: links in the
    /// `.wants/` and `.requires/` directories of its targets, and its aliases.
    mutating func enable(_ unit: String, plan: ProvisioningPlan) throws(ProvisioningError) {
        guard let directory = Self.unitSearchPath.first(where: { target.read($0 + "/" + unit) != nil }),
            let bytes = target.read(directory + "/" + unit)
        else { throw ProvisioningError("cannot enable \(unit): no unit file found") }
        let file: UnitFile
        do {
            file = try UnitFile(parsing: bytes, file: directory + "/" + unit)
        } catch {
            throw ProvisioningError("cannot enable \(unit): \(error)")
        }
        let unitPath = directory + "/" + unit
        var links: [String] = []
        for (key, suffix) in [("WantedBy", ".wants"), ("RequiredBy", ".requires")] {
            for value in file.values(key, in: "Install") {
                for targetUnit in value.split(separator: " ") where UnitName.isValid(String(targetUnit)) {
                    links.append("/etc/systemd/system/\(targetUnit)\(suffix)/\(unit)")
                }
            }
        }
        for value in file.values("Alias", in: "Install") {
            for alias in value.split(separator: " ") where UnitName.isValid(String(alias)) {
                links.append("/etc/systemd/system/\(alias)")
            }
        }
        for link in links {
            try makeDirectories(PathText.directory(of: link))
            let host = target.hostPath(link)
            unlink(host)
            guard symlink(unitPath, host) == 0 else {
                throw ProvisioningError("cannot enable \(unit): \(link): \(String(cString: strerror(errno)))")
            }
        }
        log.append(links.isEmpty ? "\(unit) has no [Install] section; nothing to enable" : "enabled \(unit)")
    }

    mutating func runCommands(_ plan: ProvisioningPlan) throws(ProvisioningError) {
        guard plan.daemonReload || !plan.commands.isEmpty else { return }
        switch commandSink {
        case .systemd:
            do {
                let bus = try SystemdBus()
                if plan.daemonReload { try bus.reload() }
                for command in plan.commands {
                    try bus.unitCommand(command.command, unit: command.unit)
                    log.append("\(command.command) \(command.unit)")
                }
            } catch {
                throw ProvisioningError("systemd: \(error)")
            }
        case .queueFile:
            var lines = String(decoding: target.read(Self.commandQueue) ?? [], as: UTF8.self)
            if plan.daemonReload { lines += "daemon-reload\n" }
            for command in plan.commands { lines += "\(command.command) \(command.unit)\n" }
            try write(.init(path: Self.commandQueue, bytes: Array(lines.utf8), mode: 0o644, owner: ""))
        }
    }
}
