import CLinux
import Foundation
import Glibc
import Net

/// What stage 1 needs to start one app: every path and string ready, so the C child only
/// makes system calls.
public struct Stage1Spec: Sendable {
    public struct Bind: Sendable, Hashable {
        public var source: String
        public var target: String
        public var readOnly: Bool
        public var isDirectory: Bool

        public init(source: String, target: String, readOnly: Bool, isDirectory: Bool) {
            self.source = source
            self.target = target
            self.readOnly = readOnly
            self.isDirectory = isDirectory
        }
    }

    public var rootfs = ""
    /// overlayfs mount options; nil binds `rootSource` instead (`--no-overlay`).
    public var overlayOptions: String?
    public var rootSource: String?
    public var arguments: [String] = []
    public var environment: [String] = []
    public var workingDirectory = "/"
    public var hostname = ""
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var supplementaryGroups: [UInt32] = []
    public var newNetwork = true
    public var readOnlyRootfs = false
    public var noNewPrivileges = false
    public var capabilities: UInt64 = Capabilities.defaultSet
    public var binds: [Bind] = []
    public var maskedPaths = [
        "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
        "/proc/scsi", "/proc/acpi", "/sys/firmware",
    ]
    public var readOnlyPaths = ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    public var cgroupProcs: [String] = []
    /// `enter`: join this PID's namespaces instead of making new ones.
    public var joinPID: Int32 = 0
    /// `enter` into one app of several: its tree inside the pod.
    public var joinRoot: String?
    /// Networks: their veths are made between clone and the app's start.
    public var networks: [PodNetwork] = []
    /// `(resource, soft, hard)` set before the app starts.
    public var resourceLimits: [ResourceLimit] = []
    /// `--private-users`: the host ID that the pod's 0 maps to (0: no user namespace).
    public var userNamespaceBase: UInt32 = 0

    public init() {}
}

/// The networks to attach, handed through C as the callback's context.
private final class AttachContext {
    let networks: [PodNetwork]
    init(_ networks: [PodNetwork]) { self.networks = networks }
}

private let attachNetwork: @convention(c) (pid_t, UnsafeMutableRawPointer?) -> Int32 = { pid, context in
    guard let context else { return EINVAL }
    for network in Unmanaged<AttachContext>.fromOpaque(context).takeUnretainedValue().networks {
        let status = PodNetworking.attach(network, pid: pid)
        if status != 0 { return status }
    }
    return 0
}

/// A resource limit by setrlimit's numbers.
public struct ResourceLimit: Sendable, Hashable, Codable {
    public var name: String
    public var resource: Int32
    public var soft: UInt64
    public var hard: UInt64

    /// `NOFILE=1024`, `NOFILE=1024:4096`, `CORE=unlimited`.
    public init(parsing text: String) throws(RuntimeError) {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw RuntimeError("--rlimit \(text): NAME=SOFT[:HARD]") }
        let name = parts[0].uppercased().replacingOccurrences(of: "RLIMIT_", with: "")
        let resource = coreos_rlimit_resource(name)
        guard resource >= 0 else { throw RuntimeError("--rlimit \(text): unknown limit \(parts[0])") }
        func value(_ word: Substring) throws(RuntimeError) -> UInt64 {
            if word == "unlimited" || word == "infinity" { return UInt64.max }
            guard let number = UInt64(word) else { throw RuntimeError("--rlimit \(text): \(word) is not a number") }
            return number
        }
        let values = parts[1].split(separator: ":")
        guard values.count == 1 || values.count == 2 else { throw RuntimeError("--rlimit \(text): NAME=SOFT[:HARD]") }
        self.name = name
        self.resource = resource
        soft = try value(values[0])
        hard = try value(values.count == 2 ? values[1] : values[0])
        guard soft <= hard else { throw RuntimeError("--rlimit \(text): the soft limit is above the hard one") }
    }
}

/// Capability names and rkt's default set.
public enum Capabilities {
    public static let names = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
        "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
        "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]

    /// rkt's (and Docker's) default: what an ordinary service needs, nothing that reaches
    /// the host (no SYS_ADMIN, NET_ADMIN, SYS_MODULE, …).
    public static let defaultSet: UInt64 = mask([
        "CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_KILL", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETFCAP", "CAP_SYS_CHROOT",
    ])

    static func mask(_ list: [String]) -> UInt64 {
        list.reduce(0) { result, name in names.firstIndex(of: name).map { result | (1 << UInt64($0)) } ?? result }
    }

    /// `CAP_NET_ADMIN,cap_sys_time` or `net_admin` to a mask; unknown names are errors.
    public static func parse(_ text: String) throws(RuntimeError) -> UInt64 {
        var result: UInt64 = 0
        for raw in text.split(separator: ",") {
            let upper = raw.uppercased().filter { $0 != " " }
            let name = upper.hasPrefix("CAP_") ? upper : "CAP_" + upper
            guard let index = names.firstIndex(of: name) else { throw RuntimeError("unknown capability \(raw)") }
            result |= 1 << UInt64(index)
        }
        return result
    }
}

/// Keeps C strings alive for the duration of one call.
private final class CStrings {
    private var storage: [UnsafeMutablePointer<CChar>] = []

    func make(_ text: String) -> UnsafePointer<CChar> {
        let copy = strdup(text)!
        storage.append(copy)
        return UnsafePointer(copy)
    }

    func optional(_ text: String?) -> UnsafePointer<CChar>? { text.map(make) }

    /// A NULL-terminated array of strings.
    func array(_ texts: [String]) -> UnsafeMutablePointer<UnsafePointer<CChar>?> {
        let pointer = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: texts.count + 1)
        for (index, text) in texts.enumerated() { pointer[index] = make(text) }
        pointer[texts.count] = nil
        arrays.append(UnsafeMutableRawPointer(pointer))
        return pointer
    }

    private var arrays: [UnsafeMutableRawPointer] = []

    deinit {
        storage.forEach { free($0) }
        arrays.forEach { $0.deallocate() }
    }
}

/// Buffers handed to C for the duration of one call.
private final class Allocations {
    private var blocks: [UnsafeMutableRawPointer] = []

    /// A copy of `values` that lives as long as this object (never empty, so the pointer
    /// is valid even for no elements).
    func copy<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
        let pointer = UnsafeMutablePointer<T>.allocate(capacity: max(values.count, 1))
        if !values.isEmpty { pointer.initialize(from: values, count: values.count) }
        blocks.append(UnsafeMutableRawPointer(pointer))
        return pointer
    }

    deinit { blocks.forEach { $0.deallocate() } }
}

public enum Stage1 {
    /// Starts the app; returns the PID of the pod's init (its exit status is the app's).
    /// A started pod: the init's PID, and where the init reports each app's status.
    public struct Started: Sendable {
        public var pid: Int32
        public var statusDescriptor: Int32
    }

    /// Starts one app (`spec`), or a pod of several (`spec` first, then `others`, each
    /// with `rootfs` as its path inside `podRoot`).
    public static func spawn(_ spec: Stage1Spec, others: [Stage1Spec] = [], podRoot: String? = nil) throws(RuntimeError) -> Started {
        let strings = CStrings()
        let memory = Allocations()
        var namespaces = coreos_clone_new_mount() | coreos_clone_new_pid() | coreos_clone_new_uts() | coreos_clone_new_ipc()
        if spec.newNetwork { namespaces |= coreos_clone_new_net() }
        func make(_ app: Stage1Spec) -> coreos_stage1_spec {
            var c = coreos_stage1_spec()
            c.rootfs = strings.make(app.rootfs)
            c.overlay_options = strings.optional(app.overlayOptions)
            c.root_source = strings.optional(app.rootSource)
            c.argv = UnsafePointer(strings.array(app.arguments))
            c.envp = UnsafePointer(strings.array(app.environment))
            c.cwd = strings.make(app.workingDirectory)
            c.hostname = strings.make(app.hostname)
            c.uid = app.uid
            c.gid = app.gid
            c.groups = UnsafePointer(memory.copy(app.supplementaryGroups.map { gid_t($0) }))
            c.group_count = app.supplementaryGroups.count
            c.namespaces = namespaces
            c.readonly_rootfs = app.readOnlyRootfs ? 1 : 0
            c.no_new_privileges = app.noNewPrivileges ? 1 : 0
            c.capabilities = app.capabilities
            c.binds = UnsafePointer(memory.copy(app.binds.map { bind in
                coreos_bind(
                    source: strings.make(bind.source), target: strings.make(bind.target), read_only: bind.readOnly ? 1 : 0,
                    is_directory: bind.isDirectory ? 1 : 0)
            }))
            c.bind_count = app.binds.count
            c.masked_paths = UnsafePointer(strings.array(app.maskedPaths))
            c.masked_count = app.maskedPaths.count
            c.readonly_paths = UnsafePointer(strings.array(app.readOnlyPaths))
            c.readonly_count = app.readOnlyPaths.count
            c.cgroup_procs = UnsafePointer(strings.array(app.cgroupProcs))
            c.cgroup_count = app.cgroupProcs.count
            c.join_pid = app.joinPID
            c.join_root = strings.optional(app.joinRoot)
            c.status_fd = -1
            c.rlimits = UnsafePointer(memory.copy(app.resourceLimits.map { coreos_rlimit(resource: $0.resource, soft: $0.soft, hard: $0.hard) }))
            c.rlimit_count = app.resourceLimits.count
            c.userns_base = app.userNamespaceBase
            return c
        }
        var pod = make(spec)
        let extra = others.map { app -> UnsafePointer<coreos_stage1_spec>? in UnsafePointer(memory.copy([make(app)])) }
        pod.extra_apps = UnsafePointer(memory.copy(extra))
        pod.extra_app_count = others.count
        pod.pod_root = strings.optional(podRoot)
        let attach = spec.networks.isEmpty ? nil : AttachContext(spec.networks)
        if let attach {
            var interfaces: [coreos_interface] = []
            for network in spec.networks {
                var interface = coreos_interface()
                interface.name = strings.make(network.podInterface)
                do {
                    let address = try IPv4Address(parsing: network.address).octets
                    let gateway = try IPv4Address(parsing: network.gateway).octets
                    interface.address = (address[0], address[1], address[2], address[3])
                    interface.gateway = (gateway[0], gateway[1], gateway[2], gateway[3])
                } catch {
                    throw RuntimeError("network \(network.name): \(error)")
                }
                interface.prefix = Int32(network.prefixLength)
                interface.mtu = UInt32(network.mtu)
                interface.default_route = network.defaultRoute ? 1 : 0
                interfaces.append(interface)
            }
            pod.interfaces = UnsafePointer(memory.copy(interfaces))
            pod.interface_count = interfaces.count
            pod.before_start = attachNetwork
            pod.before_start_context = Unmanaged.passUnretained(attach).toOpaque()
        }
        var statusPipe: [Int32] = [-1, -1]
        if spec.joinPID == 0 {
            guard pipe(&statusPipe) == 0 else { throw RuntimeError("pipe: \(String(cString: strerror(errno)))") }
            _ = fcntl(statusPipe[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(statusPipe[1], F_SETFD, FD_CLOEXEC)
            pod.status_fd = statusPipe[1]
        }
        var error = [CChar](repeating: 0, count: 512)
        let pid = withExtendedLifetime((attach, strings, memory)) { coreos_stage1_spawn(&pod, &error, error.count) }
        if statusPipe[1] >= 0 { close(statusPipe[1]) }
        guard pid > 0 else {
            if statusPipe[0] >= 0 { close(statusPipe[0]) }
            throw RuntimeError(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return Started(pid: pid, statusDescriptor: statusPipe[0])
    }

    /// Each app's status as the pod's init reported it (by app index), read after the
    /// pod ended; closes the descriptor.
    public static func appStatuses(_ started: Started) -> [Int: Int32] {
        guard started.statusDescriptor >= 0 else { return [:] }
        defer { close(started.statusDescriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(started.statusDescriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        var statuses: [Int: Int32] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, let index = Int(fields[0]), let status = Int32(fields[1]) { statuses[index] = status }
        }
        return statuses
    }

    /// Waits for `pid`; its status as a shell reports it (128 + signal when killed).
    public static func wait(_ pid: Int32) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 254 }
        }
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
