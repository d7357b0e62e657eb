import Cluster
import Glibc
import Platform

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What `coreos cluster` does to the host: the bridge, namespaces and veths (through
/// iproute2's `ip`, as an administrator would), the nodes' cgroups, and finding and killing
/// every process a node owns. Each step can be undone by name, so `down` works from the
/// layout alone.
enum ClusterHost {
    // MARK: Network

    static func ip(_ arguments: [String]) throws(ClusterError) {
        guard let outcome = Platform.ChildProcess.run(["ip"] + arguments) else {
            throw ClusterError("cannot run ip (package iproute2)")
        }
        guard outcome.status == 0 else {
            throw ClusterError("ip \(arguments.joined(separator: " ")): \(trimmed(outcome.output))")
        }
    }

    /// The bridge with the host's address, then each node's namespace wired to it.
    static func createBridge(_ layout: ClusterLayout) throws(ClusterError) {
        try ip(["link", "add", layout.bridge, "type", "bridge"])
        try ip(["addr", "add", layout.hostAddress + "/24", "dev", layout.bridge])
        try ip(["link", "set", layout.bridge, "up"])
    }

    static func createNamespace(_ layout: ClusterLayout, _ node: ClusterLayout.Node) throws(ClusterError) {
        try ip(["netns", "add", node.namespace])
        try ip(["link", "add", node.hostLink, "type", "veth", "peer", "name", "eth0", "netns", node.namespace])
        try ip(["link", "set", node.hostLink, "master", layout.bridge, "up"])
        try ip(["-n", node.namespace, "link", "set", "lo", "up"])
        try ip(["-n", node.namespace, "addr", "add", node.address + "/24", "dev", "eth0"])
        try ip(["-n", node.namespace, "link", "set", "eth0", "up"])
        try ip(["-n", node.namespace, "route", "add", "default", "via", layout.hostAddress])
    }

    /// Namespaces named `prefix…`, as `ip netns list` shows them.
    static func namespaces(withPrefix prefix: String) -> [String] {
        let output = Platform.ChildProcess.run(["ip", "netns", "list"])?.output ?? ""
        return output.split(separator: "\n").compactMap { line in
            let name = String(line.split(separator: " ").first ?? "")
            return name.hasPrefix(prefix) ? name : nil
        }
    }

    /// Host links named exactly `name` or `name-…`.
    static func links(named name: String) -> [String] {
        let output = Platform.ChildProcess.run(["ip", "-o", "link", "show"])?.output ?? ""
        return output.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ":", maxSplits: 2)
            guard fields.count > 1 else { return nil }
            let link = String(trimmed(String(fields[1])).split(separator: "@").first ?? "")
            return link == name || link.hasPrefix(name + "-") ? link : nil
        }
    }

    // MARK: cgroups

    struct CgroupMount: Hashable {
        var path: String
        /// The controllers of a v1 hierarchy (`memory`, `cpu,cpuacct`); empty for cgroup2.
        var controllers: Set<String>
        var isUnified: Bool { controllers.isEmpty }
    }

    static func cgroupMounts() -> [CgroupMount] {
        guard let text = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return [] }
        var mounts: [CgroupMount] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 4 else { continue }
            if fields[2] == "cgroup2" {
                mounts.append(CgroupMount(path: String(fields[1]), controllers: []))
            } else if fields[2] == "cgroup" {
                let options = Set(fields[3].split(separator: ",").map(String.init))
                // Named hierarchies (systemd's) and cpuset (needs cpus and mems first) are left alone.
                guard !options.contains(where: { $0.hasPrefix("name=") }), !options.contains("cpuset") else { continue }
                let known = ["memory", "cpu", "cpuacct", "pids", "freezer", "blkio", "devices", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc"]
                mounts.append(CgroupMount(path: String(fields[1]), controllers: options.intersection(known)))
            }
        }
        return mounts
    }

    /// This process's cgroup in `mount`'s hierarchy (from /proc/self/cgroup).
    static func ownCgroup(in mount: CgroupMount) -> String {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return "/" }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let controllers = Set(fields[1].split(separator: ",").map(String.init))
            if mount.isUnified ? fields[0] == "0" && fields[1].isEmpty : !controllers.isEmpty && controllers == mount.controllers {
                return String(fields[2])
            }
        }
        return "/"
    }

    /// Puts this process into `coreos-cluster-<name>/<node>` below its own cgroup in every
    /// hierarchy it can, so the node and all it starts (services, units, pods) can be found
    /// and killed together.
    static func joinNodeCgroups(cluster: String, node: String) {
        for mount in cgroupMounts() {
            let own = ownCgroup(in: mount)
            let directory = mount.path + (own == "/" ? "" : own) + "/coreos-cluster-\(cluster)/\(node)"
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            if !write(String(getpid()), to: directory + "/cgroup.procs") { rmdir(directory) }
        }
    }

    /// Every `coreos-cluster-<name>` directory in every hierarchy (to depth 5).
    static func clusterCgroups(_ cluster: String) -> [String] {
        var found: [String] = []
        func walk(_ directory: String, depth: Int) {
            guard depth <= 5, let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
            for entry in entries {
                let path = directory + "/" + entry
                var status = stat()
                guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else { continue }
                if entry == "coreos-cluster-" + cluster { found.append(path) } else { walk(path, depth: depth + 1) }
            }
        }
        for mount in cgroupMounts() { walk(mount.path, depth: 0) }
        return found
    }

    /// PIDs in `directory` and every cgroup below it.
    static func processes(inCgroup directory: String) -> Set<pid_t> {
        var pids = Set<pid_t>()
        if let text = try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8) {
            for line in text.split(separator: "\n") { if let pid = pid_t(line) { pids.insert(pid) } }
        }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            var status = stat()
            let path = directory + "/" + entry
            if lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR { pids.formUnion(processes(inCgroup: path)) }
        }
        return pids
    }

    /// Removes a cgroup directory and those below it (they must be empty of processes).
    @discardableResult
    static func removeCgroup(_ directory: String) -> Bool {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            var status = stat()
            let path = directory + "/" + entry
            if lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR { removeCgroup(path) }
        }
        return rmdir(directory) == 0 || errno == ENOENT
    }

    // MARK: Processes

    /// Parent of every process now, from /proc/*/stat.
    static func parents() -> [pid_t: pid_t] {
        var parents: [pid_t: pid_t] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // After "(comm)": state, then the parent's PID.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = pid_t(fields[1]) { parents[pid] = parent }
        }
        return parents
    }

    /// `roots` and all their descendants that are alive.
    static func withDescendants(_ roots: Set<pid_t>) -> Set<pid_t> {
        let parents = parents()
        var children: [pid_t: [pid_t]] = [:]
        for (pid, parent) in parents { children[parent, default: []].append(pid) }
        var result = Set<pid_t>()
        var queue = Array(roots.filter { parents[$0] != nil })
        while let pid = queue.popLast() {
            guard result.insert(pid).inserted else { continue }
            queue += children[pid] ?? []
        }
        return result
    }

    /// Whether the process's command line contains `text` or its environment has the entry
    /// `variable` exactly.
    static func mentions(_ pid: pid_t, _ text: String, environment variable: String) -> Bool {
        if let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
            String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(text)
        {
            return true
        }
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
        return data.split(separator: 0).contains { $0.elementsEqual(variable.utf8) }
    }

    /// Processes whose command line mentions `text` or whose environment has `variable`,
    /// except this one and its ancestors.
    static func processes(mentioning text: String, environment variable: String) -> Set<pid_t> {
        let parents = parents()
        var exempt = Set<pid_t>()
        var pid = getpid()
        while pid > 1 {
            exempt.insert(pid)
            pid = parents[pid] ?? 0
        }
        var found = Set<pid_t>()
        for candidate in parents.keys where !exempt.contains(candidate) && mentions(candidate, text, environment: variable) {
            found.insert(candidate)
        }
        return found
    }

    /// SIGKILLs what `find` returns until it returns nothing (up to 10 s): a machine that
    /// loses power, for the node's processes. Returns whether all are gone.
    static func killAll(_ find: () -> Set<pid_t>) -> Bool {
        for _ in 0..<100 {
            let pids = find().subtracting([getpid()])
            if pids.isEmpty { return true }
            for pid in pids { kill(pid, SIGKILL) }
            // Reap our own children among them.
            var status: Int32 = 0
            while waitpid(-1, &status, WNOHANG) > 0 {}
            usleep(100_000)
        }
        return find().isEmpty
    }

    static func isAlive(_ pid: pid_t) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        // A zombie is not running. /proc/PID/stat can fail to read while the process
        // executes a new program (ip → coreos cluster boot-node → coreos node): the
        // signal test decides then.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return true }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    // MARK: Files

    static func trimmed(_ text: String) -> String {
        String(text.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }

    @discardableResult
    static func write(_ text: String, to path: String) -> Bool {
        let descriptor = open(path, O_WRONLY)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) } == bytes.count
    }

    /// Mount points at or below `directory` in this mount namespace.
    static func mounts(below directory: String) -> [String] {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { return nil }
            let point = String(fields[4])
            return point == directory || point.hasPrefix(directory + "/") ? point : nil
        }
    }
}
