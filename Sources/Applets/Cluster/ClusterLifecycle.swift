import CLI
import Cluster
import Glibc
import Node
import Platform

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `cluster up`, `exec`, `kill`, `restart`, `down` and the node's boot inside its namespace.
enum ClusterLifecycle {
    static let stateFile = "cluster.json"
    /// Paths a node in its namespace sees as its own (bound from `nodes/NAME/…`).
    static let nodeBinds = [("run", "/run"), ("var", "/var/lib/coreos")]
    static let standardPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    /// In the environment of every process `up` starts (and so of what they start), so that
    /// `down` finds them even when their command line does not say which cluster they serve.
    static let marker = "COREOS_CLUSTER_DIR="

    // MARK: up

    static func up(_ options: ClusterCommand.Options, io: StandardStreams, progress: Progress) async throws -> Int32 {
        let root = geteuid() == 0
        let mode: ClusterLayout.Mode = root && !options.loopback ? .namespaces : .loopback
        var layout = try ClusterLayout.make(
            name: options.name, size: options.size, workers: options.workers, mode: mode, backend: options.backend,
            subnetPrefix: options.subnet, basePort: options.basePort)
        let directory = absolute(options.resolvedDirectory)
        if mode == .namespaces {
            for (_, hidden) in nodeBinds + [("bin", "/usr/local/bin")] where directory == hidden || directory.hasPrefix(hidden + "/") {
                throw ClusterError("--dir \(directory) is under \(hidden), which every node sees as its own: choose another")
            }
        }
        if let earlier = try loadState(directory) {
            let alive = earlier.nodePIDs.filter { ClusterHost.isAlive($0.value) && owns(directory, $0.value) }
            guard alive.isEmpty else {
                throw ClusterError("cluster \(earlier.layout.name) in \(directory) is up (\(alive.keys.sorted().joined(separator: ", ")) running): `coreos cluster down` first")
            }
            progress.say("removing what an earlier run of cluster \(earlier.layout.name) left")
            _ = try teardown(name: earlier.layout.name, directory: directory, state: earlier, progress: progress)
        } else if !ClusterHost.namespaces(withPrefix: layout.namespacePrefix).isEmpty || !ClusterHost.links(named: layout.bridge).isEmpty {
            progress.say("removing what an earlier run of cluster \(layout.name) left")
            _ = try teardown(name: layout.name, directory: directory, state: nil, progress: progress)
        }

        let binary = NodeCommand.selfPath()
        var state = ClusterState(layout: layout, binary: binary)
        state.nodeEnvironment = ["FLEET_UNIT_MANAGER": "embedded", "FLEET_MACHINE_GRACE": options.machineGrace]
        // Bind targets every node needs on the host.
        if mode == .namespaces && !FileManager.default.fileExists(atPath: "/var/lib/coreos") {
            try FileManager.default.createDirectory(atPath: "/var/lib/coreos", withIntermediateDirectories: true)
            state.createdDirectories.append("/var/lib/coreos")
        }
        try makeDirectories(state, directory)
        try save(state, directory)

        if mode == .namespaces {
            progress.say("network: bridge \(layout.bridge) (\(layout.hostAddress)/24), \(layout.nodes.count) namespaces")
            try ClusterHost.createBridge(layout)
            for node in layout.nodes { try ClusterHost.createNamespace(layout, node) }
        }
        if options.discovery {
            layout.discoveryURL = try await startDiscovery(&state, directory, progress: progress)
            state.layout = layout
            try save(state, directory)
        }
        for node in layout.nodes {
            let config = ClusterCloudConfig.render(layout, node: node)
            try writeFile(config, directory + "/nodes/\(node.name)/cloud-config.yml")
        }
        progress.say("starting \(layout.cores.count) core node(s) and \(layout.workers.count) worker(s) (\(mode == .namespaces ? "namespaces" : "loopback ports"); logs in \(directory)/nodes/NODE/node.log)")
        for node in layout.nodes {
            state.nodePIDs[node.name] = try startNode(state, node, directory)
            try save(state, directory)
        }
        try await waitUntilUp(state, directory, nodes: layout.nodes, progress: progress)
        if !options.quiet {
            io.output.write(try await ClusterStatusQuery.table(state, directory))
            let first = layout.cores[0].name
            io.output.line("try:")
            io.output.line("  coreos cluster exec \(first) -- etcdctl member list")
            io.output.line("  coreos cluster exec \(first) -- fleetctl list-machines")
            io.output.line("  coreos cluster status")
            io.output.line("  coreos cluster down")
        }
        return ExitStatus.success
    }

    static func makeDirectories(_ state: ClusterState, _ directory: String) throws {
        let files = FileManager.default
        try files.createDirectory(atPath: directory + "/bin", withIntermediateDirectories: true)
        for node in state.layout.nodes {
            for (name, _) in nodeBinds {
                try files.createDirectory(atPath: directory + "/nodes/\(node.name)/\(name)", withIntermediateDirectories: true)
            }
        }
        // The applets by name for the nodes' units and for `exec`: bound over /usr/local/bin
        // in a node's namespace, first in PATH on loopback.
        let links = directory + "/bin"
        try? files.removeItem(atPath: links + "/coreos")
        try files.createSymbolicLink(atPath: links + "/coreos", withDestinationPath: state.binary)
        for applet in AppletTable.all {
            for name in applet.names where name != "coreos" {
                try? files.removeItem(atPath: links + "/" + name)
                try files.createSymbolicLink(atPath: links + "/" + name, withDestinationPath: "coreos")
            }
        }
    }

    /// Starts a node's root process in a session of its own: in namespaces mode
    /// `ip netns exec NS coreos cluster boot-node NODE`, which binds the node's directories
    /// and becomes `coreos node`.
    static func startNode(_ state: ClusterState, _ node: ClusterLayout.Node, _ directory: String) throws(ClusterError) -> Int32 {
        let boot = [state.binary, "cluster", "boot-node", "--dir", directory, node.name]
        var arguments = boot
        var path = standardPath
        if state.layout.mode == .namespaces {
            guard let ip = findExecutable("ip") else { throw ClusterError("ip (package iproute2) is not installed") }
            arguments = [ip, "netns", "exec", node.namespace] + boot
        } else {
            path = directory + "/bin:" + path
        }
        var environment = [
            "PATH=" + path, "HOME=" + (ProcessInfo.processInfo.environment["HOME"] ?? "/root"), "LANG=C.UTF-8", marker + directory,
        ]
        for (key, value) in state.nodeEnvironment.sorted(by: { $0.key < $1.key }) { environment.append(key + "=" + value) }
        // fleetd's API also on the node's address, first, so it is the machine's endpoint and
        // `fleetctl journal|status` on any node reach the unit's machine.
        let socket = state.layout.mode == .namespaces ? "/run/fleet.sock" : directory + "/nodes/\(node.name)/run/fleet.sock"
        environment.append("FLEET_LISTEN=http://\(node.address):\(node.fleetPort),unix://\(socket)")
        let log = directory + "/nodes/\(node.name)/node.log"
        guard let pid = Platform.ChildProcess.spawnDetached(arguments, environment: environment, logPath: log) else {
            throw ClusterError("cannot start \(node.name): \(String(cString: strerror(errno)))")
        }
        return pid
    }

    /// Waits until every node says it is up, showing how many are; fails naming the nodes
    /// that died or did not come up, with the end of their logs.
    static func waitUntilUp(_ state: ClusterState, _ directory: String, nodes: [ClusterLayout.Node], progress: Progress) async throws {
        let started = ContinuousClock.now
        let limit = Duration.seconds(240)
        // A node is given up on when two looks in a row find its process gone.
        var seenDead: Set<String> = []
        while true {
            var up: [String] = []
            var dead: [String] = []
            for node in nodes {
                let log = (try? String(contentsOfFile: directory + "/nodes/\(node.name)/node.log", encoding: .utf8)) ?? ""
                if log.contains("coreos node is up") {
                    up.append(node.name)
                } else if let pid = state.nodePIDs[node.name], !ClusterHost.isAlive(pid) {
                    if seenDead.contains(node.name) { dead.append(node.name) }
                    seenDead.insert(node.name)
                } else {
                    seenDead.remove(node.name)
                }
            }
            let elapsed = Int((ContinuousClock.now - started) / .seconds(1))
            if up.count == nodes.count {
                progress.say("all \(nodes.count) node(s) up in \(elapsed) s")
                return
            }
            if !dead.isEmpty || ContinuousClock.now - started > limit {
                let failing = dead.isEmpty ? nodes.map(\.name).filter { !up.contains($0) } : dead
                var message = dead.isEmpty ? "not up after \(limit): " : "exited before coming up: "
                message += failing.joined(separator: ", ")
                for name in failing {
                    let log = (try? String(contentsOfFile: directory + "/nodes/\(name)/node.log", encoding: .utf8)) ?? ""
                    message += "\n--- \(directory)/nodes/\(name)/node.log (end) ---\n" + log.split(separator: "\n").suffix(8).joined(separator: "\n")
                }
                throw ClusterError(message + "\n(`coreos cluster down` removes what was started)")
            }
            progress.update("waiting for the nodes: \(up.count)/\(nodes.count) up", detail: " (\(elapsed) s)")
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// The discovery service of `--discovery`: a one-member etcd for its registry and
    /// `coreos etcd discovery` in front of it, on the host; returns a new token's URL.
    static func startDiscovery(_ state: inout ClusterState, _ directory: String, progress: Progress) async throws -> String {
        let layout = state.layout
        let etcdPort = layout.mode == .namespaces ? 32379 : layout.nodes[0].clientPort - 100
        let servicePort = layout.mode == .namespaces ? 8087 : layout.nodes[0].clientPort - 90
        let serviceHost = layout.mode == .namespaces ? layout.hostAddress : "127.0.0.1"
        let data = directory + "/discovery"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let environment = ["PATH=" + standardPath, "LANG=C.UTF-8", marker + directory]
        let client = "http://127.0.0.1:\(etcdPort)"
        let peer = "http://127.0.0.1:\(etcdPort + 1)"
        guard
            let etcd = Platform.ChildProcess.spawnDetached(
                [
                    state.binary, "etcd", "--name", "discovery", "--data-dir", data + "/etcd", "--listen-client-urls", client,
                    "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                    "--initial-cluster", "discovery=" + peer,
                ], environment: environment, logPath: data + "/etcd.log")
        else { throw ClusterError("cannot start the discovery service's etcd") }
        state.helperPIDs["discovery-etcd"] = etcd
        try save(state, directory)
        try await waitFor("the discovery service's etcd (\(data)/etcd.log)", progress: progress) {
            NodeSupervisor.httpGet(host: "127.0.0.1", port: etcdPort, path: "/health")?.status == 200
        }
        guard
            let service = Platform.ChildProcess.spawnDetached(
                [state.binary, "etcd", "discovery", "--listen", "http://\(serviceHost):\(servicePort)", "--etcd-endpoints", "127.0.0.1:\(etcdPort)"],
                environment: environment, logPath: data + "/discovery.log")
        else { throw ClusterError("cannot start the discovery service") }
        state.helperPIDs["discovery"] = service
        try save(state, directory)
        var token = ""
        try await waitFor("the discovery service (\(data)/discovery.log)", progress: progress) {
            guard let answer = NodeSupervisor.httpGet(host: serviceHost, port: servicePort, path: "/new?size=\(layout.cores.count)"),
                answer.status == 200
            else { return false }
            token = ClusterHost.trimmed(answer.body)
            return token.hasPrefix("http")
        }
        progress.say("discovery: \(token)")
        return token
    }

    static func waitFor(_ what: String, progress: Progress, seconds: Int = 60, _ ready: () -> Bool) async throws {
        let started = ContinuousClock.now
        while !ready() {
            let elapsed = ContinuousClock.now - started
            guard elapsed < .seconds(seconds) else { throw ClusterError("\(what) did not answer in \(seconds) s") }
            progress.update("waiting for \(what)", detail: " (\(Int(elapsed / .seconds(1))) s)")
            try await Task.sleep(for: .milliseconds(200))
        }
        progress.finish()
    }

    // MARK: boot-node (inside the node's namespace)

    /// Runs as `ip netns exec NS coreos cluster boot-node --dir DIR NODE` (or directly on
    /// loopback): joins the node's cgroups, makes the node's directories its /run and
    /// /var/lib/coreos and the applets its /usr/local/bin (in the mount namespace `ip netns
    /// exec` made), then becomes `coreos node`.
    static func bootNode(_ options: ClusterCommand.Options) throws -> Int32 {
        let directory = absolute(options.resolvedDirectory)
        guard let state = try loadState(directory) else { throw ClusterError("no cluster in \(directory)") }
        guard let node = state.layout.node(named: options.operands[0]) else { throw ClusterError("no node \(options.operands[0])") }
        let nodeDirectory = directory + "/nodes/" + node.name
        if geteuid() == 0 { ClusterHost.joinNodeCgroups(cluster: state.layout.name, node: node.name) }
        var arguments = [
            state.binary, "node", "--config", nodeDirectory + "/cloud-config.yml", "--role", node.role.rawValue, "--machine-id", node.machineID,
            "--no-provision", "--flannel-network", state.layout.flannelNetwork,
        ]
        if state.layout.mode == .namespaces {
            // Nothing mounted here may reach the host's mount namespace.
            guard mount(nil, "/", nil, UInt(MS_REC | MS_SLAVE), nil) == 0 else {
                throw ClusterError("cannot make / a slave mount: \(String(cString: strerror(errno)))")
            }
            for (name, target) in nodeBinds + [("../../bin", "/usr/local/bin")] {
                let source = nodeDirectory + "/" + name
                guard mount(source, target, nil, UInt(MS_BIND), nil) == 0 else {
                    throw ClusterError("cannot bind \(source) to \(target): \(String(cString: strerror(errno)))")
                }
            }
        } else {
            arguments += ["--data-dir", nodeDirectory + "/var", "--run-dir", nodeDirectory + "/run"]
        }
        let argv = arguments.map { strdup($0) } + [nil]
        execv(state.binary, argv)
        throw ClusterError("cannot run \(state.binary): \(String(cString: strerror(errno)))")
    }

    // MARK: exec, kill, restart

    static func exec(_ options: ClusterCommand.Options) throws -> Int32 {
        let directory = absolute(options.resolvedDirectory)
        let (state, node) = try stateAndNode(options, directory)
        guard let pid = state.nodePIDs[node.name], ClusterHost.isAlive(pid), owns(directory, pid) else {
            throw ClusterError("\(node.name) is not running (`coreos cluster restart \(node.name)` boots it)")
        }
        var arguments = options.command
        if state.layout.mode == .namespaces {
            guard let nsenter = findExecutable("nsenter") else { throw ClusterError("nsenter (package util-linux) is not installed") }
            // Entering a mount namespace moves to its root: keep the caller's directory, so
            // relative paths (`fleetctl start contrib/examples/…`) mean what they say.
            arguments = [nsenter, "--target", String(pid), "--net", "--mount", "--wd=" + FileManager.default.currentDirectoryPath, "--"] + arguments
        } else {
            let environment = ProcessInfo.processInfo.environment
            setenv("PATH", directory + "/bin:" + (environment["PATH"] ?? standardPath), 1)
            setenv("ETCDCTL_ENDPOINTS", "http://127.0.0.1:\(node.clientPort)", 1)
            setenv("FLEETCTL_ENDPOINT", "unix://\(directory)/nodes/\(node.name)/run/fleet.sock", 1)
        }
        let argv = arguments.map { strdup($0) } + [nil]
        execvp(arguments[0], argv)
        throw ClusterError("cannot run \(arguments[0]): \(String(cString: strerror(errno)))")
    }

    static func kill(_ options: ClusterCommand.Options, progress: Progress) throws -> Int32 {
        let directory = absolute(options.resolvedDirectory)
        let (state, node) = try stateAndNode(options, directory)
        guard killNode(state, node, directory) else { throw ClusterError("some processes of \(node.name) survived SIGKILL") }
        progress.say("\(node.name): killed")
        return ExitStatus.success
    }

    static func restart(_ options: ClusterCommand.Options, progress: Progress) async throws -> Int32 {
        let directory = absolute(options.resolvedDirectory)
        var (state, node) = try stateAndNode(options, directory)
        guard killNode(state, node, directory) else { throw ClusterError("some processes of \(node.name) survived SIGKILL") }
        // The log restarts too, so "is up" is this boot's.
        let log = directory + "/nodes/\(node.name)/node.log"
        if let old = FileManager.default.contents(atPath: log) {
            _ = FileManager.default.createFile(atPath: log + ".previous", contents: old)
            try? FileManager.default.removeItem(atPath: log)
        }
        state.nodePIDs[node.name] = try startNode(state, node, directory)
        try save(state, directory)
        try await waitUntilUp(state, directory, nodes: [node], progress: progress)
        return ExitStatus.success
    }

    /// Kills every process of the node (its cgroups, its root process and their
    /// descendants) and removes its cgroups.
    static func killNode(_ state: ClusterState, _ node: ClusterLayout.Node, _ directory: String) -> Bool {
        let cgroups = ClusterHost.clusterCgroups(state.layout.name).map { $0 + "/" + node.name }
        let root = state.nodePIDs[node.name].flatMap { owns(directory, $0) ? $0 : nil }
        let gone = ClusterHost.killAll {
            var pids = Set(cgroups.flatMap { ClusterHost.processes(inCgroup: $0) })
            if let root, ClusterHost.isAlive(root) { pids.insert(root) }
            return ClusterHost.withDescendants(pids)
        }
        for cgroup in cgroups { ClusterHost.removeCgroup(cgroup) }
        return gone
    }

    // MARK: down

    static func down(_ options: ClusterCommand.Options, progress: Progress) throws -> Int32 {
        let directory = absolute(options.resolvedDirectory)
        let state = try? loadState(directory)
        let name = state?.layout.name ?? options.name
        let remaining = try teardown(name: name, directory: directory, state: state, progress: progress)
        guard remaining.isEmpty else {
            throw ClusterError("could not remove: " + remaining.joined(separator: "; "))
        }
        progress.say("cluster \(name): down, nothing left")
        return ExitStatus.success
    }

    /// Removes everything a run of cluster `name` made; returns what could not be removed.
    static func teardown(name: String, directory: String, state: ClusterState?, progress: Progress) throws -> [String] {
        var remaining: [String] = []
        if let state {
            for node in state.layout.nodes where !killNode(state, node, directory) { remaining.append("processes of \(node.name)") }
        }
        // Whatever is left: in the cluster's cgroups, or naming its directory, with descendants.
        let cgroups = ClusterHost.clusterCgroups(name)
        let helpers = Set((state?.helperPIDs.values).map(Array.init) ?? []).filter { owns(directory, $0) }
        if !ClusterHost.killAll({
            ClusterHost.withDescendants(
                Set(cgroups.flatMap { ClusterHost.processes(inCgroup: $0) }).union(ClusterHost.processes(mentioning: directory + "/", environment: marker + directory)).union(helpers))
        }) {
            remaining.append("processes")
        }
        for cgroup in cgroups where !ClusterHost.removeCgroup(cgroup) { remaining.append("cgroup \(cgroup)") }
        // A namespace's veth goes with it, a little later (the kernel frees namespaces
        // asynchronously): what is left is judged after deleting everything and waiting.
        let prefix = "coreos-\(name)-"
        for namespace in ClusterHost.namespaces(withPrefix: prefix) { try? ClusterHost.ip(["netns", "delete", namespace]) }
        for link in ClusterHost.links(named: "cos-" + name) { try? ClusterHost.ip(["link", "delete", link]) }
        for _ in 0..<50 where !ClusterHost.links(named: "cos-" + name).isEmpty { usleep(100_000) }
        remaining += ClusterHost.namespaces(withPrefix: prefix).map { "namespace \($0)" }
        remaining += ClusterHost.links(named: "cos-" + name).map { "link \($0)" }
        // Nothing should be mounted below the directory; never delete through a mount.
        for point in ClusterHost.mounts(below: directory).reversed() { umount2(point, Int32(MNT_DETACH)) }
        if !ClusterHost.mounts(below: directory).isEmpty {
            remaining.append("mounts below \(directory)")
        } else if FileManager.default.fileExists(atPath: directory + "/" + stateFile) || state != nil {
            do { try FileManager.default.removeItem(atPath: directory) } catch { remaining.append("\(directory): \(error)") }
            // The default location's parent, and what `up` made outside, when now empty.
            let parent = String(directory[..<(directory.lastIndex(of: "/") ?? directory.startIndex)])
            if parent.hasSuffix("/coreos-cluster") { rmdir(parent) }
            for made in state?.createdDirectories ?? [] { rmdir(made) }
        }
        return remaining
    }

    // MARK: State

    static func loadState(_ directory: String) throws(ClusterError) -> ClusterState? {
        guard let data = FileManager.default.contents(atPath: directory + "/" + stateFile) else { return nil }
        do {
            return try JSONDecoder().decode(ClusterState.self, from: data)
        } catch {
            throw ClusterError("\(directory)/\(stateFile) is damaged (\(error)); `coreos cluster down --name NAME --dir \(directory)` removes the cluster by its names")
        }
    }

    static func save(_ state: ClusterState, _ directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeFile(String(decoding: try encoder.encode(state), as: UTF8.self) + "\n", directory + "/" + stateFile)
    }

    static func writeFile(_ text: String, _ path: String) throws {
        try FileManager.default.createDirectory(atPath: String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]), withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    static func stateAndNode(_ options: ClusterCommand.Options, _ directory: String) throws -> (ClusterState, ClusterLayout.Node) {
        guard let state = try loadState(directory) else {
            throw ClusterError("no cluster in \(directory) (`coreos cluster up` starts one)")
        }
        guard let node = state.layout.node(named: options.operands[0]) else {
            throw ClusterError("no node \(options.operands[0]) in cluster \(state.layout.name) (nodes: \(state.layout.nodes.map(\.name).joined(separator: ", ")))")
        }
        return (state, node)
    }

    /// Whether `pid` is one of this cluster's processes (its command line names the directory):
    /// a recorded PID may have been reused since.
    static func owns(_ directory: String, _ pid: Int32) -> Bool {
        ClusterHost.mentions(pid, directory + "/", environment: marker + directory)
    }

    static func absolute(_ path: String) -> String {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        if trimmed.hasPrefix("/") { return trimmed }
        return FileManager.default.currentDirectoryPath + "/" + trimmed
    }

    static func findExecutable(_ name: String) -> String? {
        for directory in standardPath.split(separator: ":") where access("\(directory)/\(name)", X_OK) == 0 {
            return "\(directory)/\(name)"
        }
        return nil
    }
}
