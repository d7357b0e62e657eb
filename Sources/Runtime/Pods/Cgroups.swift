import Foundation
import Glibc

/// Resource limits of a pod (rkt's `--memory`, `--cpu`, and the appc isolators).
public struct ResourceLimits: Sendable, Hashable, Codable {
    public var memoryBytes: Int64?
    /// CPU in thousandths of a core (`--cpu=750m` = 750, `--cpu=2` = 2000).
    public var cpuMillis: Int64?

    public init(memoryBytes: Int64? = nil, cpuMillis: Int64? = nil) {
        self.memoryBytes = memoryBytes
        self.cpuMillis = cpuMillis
    }

    /// `128M`, `1G`, `512Ki`, `1000000` (bytes).
    public static func parseMemory(_ text: String) throws(RuntimeError) -> Int64 {
        let units: [(String, Int64)] = [
            ("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40), ("K", 1000), ("M", 1_000_000),
            ("G", 1_000_000_000), ("T", 1_000_000_000_000),
        ]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            guard let number = Int64(text.dropLast(suffix.count)), number > 0 else { break }
            return number * factor
        }
        guard let number = Int64(text), number > 0 else { throw RuntimeError("invalid memory limit \(text) (e.g. 128M, 1Gi)") }
        return number
    }

    /// `750m` or `2`.
    public static func parseCPU(_ text: String) throws(RuntimeError) -> Int64 {
        if text.hasSuffix("m"), let millis = Int64(text.dropLast()), millis > 0 { return millis }
        if let cores = Double(text), cores > 0 { return Int64(cores * 1000) }
        throw RuntimeError("invalid CPU limit \(text) (e.g. 750m, 2)")
    }
}

/// The pod's cgroups, under the caller's own (so under systemd the pod stays in the calling
/// unit's cgroup and `systemctl stop` reaches it). cgroup v1, hybrid and v2 are told apart
/// at run time from /proc/self/cgroup and the mounts.
public struct PodCgroups: Sendable, Hashable, Codable {
    /// Directories made for the pod, deepest last.
    public var directories: [String]
    /// Their `cgroup.procs` (v2) or `tasks`-equivalent `cgroup.procs` (v1) files.
    public var procsFiles: [String] { directories.map { $0 + "/cgroup.procs" } }

    static let root = "/sys/fs/cgroup"

    /// Makes `coreos-pod-<uuid>` under the caller's cgroup in each hierarchy a limit needs
    /// (and in the v2 or named systemd one, so the pod can be found and killed as a whole).
    public static func create(uuid: String, limits: ResourceLimits) throws(RuntimeError) -> PodCgroups {
        let name = "coreos-pod-" + uuid
        var directories: [String] = []
        var pending: [(String, String)] = []
        let membership = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? ""
        let unified = isCgroup2(root) ? root : (isCgroup2(root + "/unified") ? root + "/unified" : nil)
        let v2Controllers = unified.flatMap { try? String(contentsOfFile: $0 + "/cgroup.controllers", encoding: .utf8) } ?? ""
        for line in membership.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let controllers = fields[1].split(separator: ",").map(String.init)
            let path = String(fields[2])
            if controllers.isEmpty, let unified {
                let directory = unified + path + (path.hasSuffix("/") ? "" : "/") + name
                directories.append(directory)
                if let memory = limits.memoryBytes, v2Controllers.contains("memory") {
                    pending.append((directory + "/memory.max", String(memory)))
                    pending.append((directory + "/memory.swap.max", "0"))
                }
                if let cpu = limits.cpuMillis, v2Controllers.contains("cpu") {
                    pending.append((directory + "/cpu.max", "\(cpu * 100) 100000"))
                }
            } else if controllers.contains("memory"), let memory = limits.memoryBytes, !v2Controllers.contains("memory") {
                let directory = root + "/memory" + path + (path.hasSuffix("/") ? "" : "/") + name
                directories.append(directory)
                pending.append((directory + "/memory.limit_in_bytes", String(memory)))
                if FileManager.default.fileExists(atPath: root + "/memory" + path + "/memory.memsw.limit_in_bytes") {
                    pending.append((directory + "/memory.memsw.limit_in_bytes", String(memory)))
                }
            } else if controllers.contains("cpu"), let cpu = limits.cpuMillis, !v2Controllers.contains("cpu") {
                let base = root + "/" + fields[1]
                let directory = base + path + (path.hasSuffix("/") ? "" : "/") + name
                directories.append(directory)
                pending.append((directory + "/cpu.cfs_period_us", "100000"))
                pending.append((directory + "/cpu.cfs_quota_us", String(cpu * 100)))
            }
        }
        if limits.memoryBytes != nil && !pending.contains(where: { $0.0.contains("memory.") }) {
            throw RuntimeError("--memory: no memory cgroup controller is available here")
        }
        if limits.cpuMillis != nil && !pending.contains(where: { $0.0.contains("cpu.") }) {
            throw RuntimeError("--cpu: no cpu cgroup controller is available here")
        }
        let cgroups = PodCgroups(directories: directories)
        for directory in directories where mkdir(directory, 0o755) != 0 && errno != EEXIST {
            let reason = String(cString: strerror(errno))
            cgroups.remove()
            throw RuntimeError("mkdir \(directory): \(reason)")
        }
        for (file, value) in pending {
            guard let handle = FileHandle(forWritingAtPath: file) else {
                cgroups.remove()
                throw RuntimeError("cannot open \(file)")
            }
            do {
                try handle.write(contentsOf: Data(value.utf8))
                try handle.close()
            } catch {
                cgroups.remove()
                throw RuntimeError("write \(value) to \(file): \(error.localizedDescription)")
            }
        }
        return cgroups
    }

    /// Only a cgroup2 hierarchy has `cgroup.controllers` at its root.
    static func isCgroup2(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/cgroup.controllers")
    }

    /// Kills what is left in the pod's cgroups and removes them (gc, rm, and the end of `run`).
    public func remove() {
        for directory in directories.reversed() {
            if let pids = try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8) {
                for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
            }
            for _ in 0..<50 {
                if rmdir(directory) == 0 || errno == ENOENT { break }
                usleep(10_000)
            }
        }
    }

    /// True when the pod's memory cgroup recorded an OOM kill.
    public var sawOutOfMemory: Bool {
        for directory in directories {
            if let events = try? String(contentsOfFile: directory + "/memory.events", encoding: .utf8),
                events.split(separator: "\n").contains(where: { $0.hasPrefix("oom_kill ") && !$0.hasSuffix(" 0") })
            {
                return true
            }
            if let control = try? String(contentsOfFile: directory + "/memory.oom_control", encoding: .utf8),
                control.split(separator: "\n").contains(where: { $0.hasPrefix("oom_kill ") && !$0.hasSuffix(" 0") })
            {
                return true
            }
        }
        return false
    }
}
