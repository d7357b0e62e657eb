import CLinux
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
    /// The default network: the veth is made between clone and the app's start.
    public var network: PodNetwork?

    public init() {}
}

/// The network to attach, handed through C as the callback's context.
private final class AttachContext {
    let network: PodNetwork
    init(_ network: PodNetwork) { self.network = network }
}

private let attachNetwork: @convention(c) (pid_t, UnsafeMutableRawPointer?) -> Int32 = { pid, context in
    guard let context else { return EINVAL }
    return PodNetworking.attach(Unmanaged<AttachContext>.fromOpaque(context).takeUnretainedValue().network, pid: pid)
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

public enum Stage1 {
    /// Starts the app; returns the PID of the pod's init (its exit status is the app's).
    public static func spawn(_ spec: Stage1Spec) throws(RuntimeError) -> Int32 {
        let strings = CStrings()
        var binds = spec.binds.map { bind in
            coreos_bind(
                source: strings.make(bind.source), target: strings.make(bind.target), read_only: bind.readOnly ? 1 : 0,
                is_directory: bind.isDirectory ? 1 : 0)
        }
        var groups = spec.supplementaryGroups.map { gid_t($0) }
        let masked = strings.array(spec.maskedPaths)
        let readOnly = strings.array(spec.readOnlyPaths)
        let cgroups = strings.array(spec.cgroupProcs)
        var namespaces = coreos_clone_new_mount() | coreos_clone_new_pid() | coreos_clone_new_uts() | coreos_clone_new_ipc()
        if spec.newNetwork { namespaces |= coreos_clone_new_net() }
        var error = [CChar](repeating: 0, count: 512)
        let attach = spec.network.map(AttachContext.init)
        var address: [UInt8] = []
        var gateway: [UInt8] = []
        if let network = spec.network {
            do {
                address = try IPv4Address(parsing: network.address).octets
                gateway = try IPv4Address(parsing: network.gateway).octets
            } catch {
                throw RuntimeError("network: \(error)")
            }
        }
        let pid = withExtendedLifetime(attach) { binds.withUnsafeMutableBufferPointer { bindBuffer in
            groups.withUnsafeMutableBufferPointer { groupBuffer in
                var c = coreos_stage1_spec()
                c.rootfs = strings.make(spec.rootfs)
                c.overlay_options = strings.optional(spec.overlayOptions)
                c.root_source = strings.optional(spec.rootSource)
                c.argv = UnsafePointer(strings.array(spec.arguments))
                c.envp = UnsafePointer(strings.array(spec.environment))
                c.cwd = strings.make(spec.workingDirectory)
                c.hostname = strings.make(spec.hostname)
                c.uid = spec.uid
                c.gid = spec.gid
                c.groups = UnsafePointer(groupBuffer.baseAddress)
                c.group_count = groupBuffer.count
                c.namespaces = namespaces
                c.readonly_rootfs = spec.readOnlyRootfs ? 1 : 0
                c.no_new_privileges = spec.noNewPrivileges ? 1 : 0
                c.capabilities = spec.capabilities
                c.binds = UnsafePointer(bindBuffer.baseAddress)
                c.bind_count = bindBuffer.count
                c.masked_paths = UnsafePointer(masked)
                c.masked_count = spec.maskedPaths.count
                c.readonly_paths = UnsafePointer(readOnly)
                c.readonly_count = spec.readOnlyPaths.count
                c.cgroup_procs = UnsafePointer(cgroups)
                c.cgroup_count = spec.cgroupProcs.count
                c.join_pid = spec.joinPID
                return address.withUnsafeBufferPointer { addressBuffer in
                    gateway.withUnsafeBufferPointer { gatewayBuffer in
                        if let network = spec.network, let attach {
                            c.net_interface = strings.make(network.podInterface)
                            c.net_address = addressBuffer.baseAddress
                            c.net_gateway = gatewayBuffer.baseAddress
                            c.net_prefix = Int32(network.prefixLength)
                            c.net_mtu = UInt32(network.mtu)
                            c.before_start = attachNetwork
                            c.before_start_context = Unmanaged.passUnretained(attach).toOpaque()
                        }
                        return coreos_stage1_spawn(&c, &error, error.count)
                    }
                }
            }
        } }
        guard pid > 0 else {
            throw RuntimeError(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return pid
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
