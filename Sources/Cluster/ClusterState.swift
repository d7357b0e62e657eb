/// What `cluster up` started, kept as `cluster.json` in the cluster's directory: written
/// before anything is created and after every process started, so `down`, `kill` and
/// `restart` of a later run (or after a crash) know what to stop.
public struct ClusterState: Codable, Sendable, Hashable {
    public var layout: ClusterLayout
    /// The binary the nodes run.
    public var binary: String
    /// Node name → PID of its `coreos node` process (its processes' root).
    public var nodePIDs: [String: Int32] = [:]
    /// Host-side helpers (discovery's etcd and the discovery service) → PID.
    public var helperPIDs: [String: Int32] = [:]
    /// The cgroup directory holding the nodes' cgroups, nil when none could be made.
    public var cgroupDirectory: String?
    /// Environment every node gets (fleet's settings the cloud-config has no key for).
    public var nodeEnvironment: [String: String] = [:]
    /// Directories outside `--dir` that `up` had to create (removed by `down` when empty).
    public var createdDirectories: [String] = []

    public init(layout: ClusterLayout, binary: String) {
        self.layout = layout
        self.binary = binary
    }
}

/// One node as `cluster status` found it.
public struct NodeObservation: Sendable, Hashable {
    public var processRunning = false
    /// etcd's view: `leader`, `member`, `down` (listed but not answering), `proxy`, `-` (unknown).
    public var etcd = "-"
    /// Whether fleet lists the node's machine now.
    public var machinePresent = false
    /// flannel's subnet leased to the node's address, `-` when none.
    public var subnet = "-"
    /// The fleet units on the node's machine with their active state (`httpd.service:active`).
    public var units: [String] = []

    public init() {}
}

/// `cluster status`'s table: one row per node, columns fixed (Documentation/applets/cluster.md
/// describes them; scripts may parse them).
public enum ClusterStatusTable {
    public static let columns = ["NODE", "ROLE", "PROCESS", "ADDRESS", "ETCD", "MACHINE", "FLEET", "SUBNET", "UNITS"]

    public static func render(_ layout: ClusterLayout, observations: [String: NodeObservation], etcdNote: String?) -> String {
        var rows = [columns]
        for node in layout.nodes {
            let seen = observations[node.name] ?? NodeObservation()
            let address = layout.mode == .namespaces ? node.address : "127.0.0.1:\(node.clientPort)"
            rows.append([
                node.name, node.role.rawValue, seen.processRunning ? "running" : "stopped", address, seen.etcd,
                String(node.machineID.prefix(8)), seen.machinePresent ? "present" : "absent", seen.subnet,
                seen.units.isEmpty ? "-" : seen.units.joined(separator: ","),
            ])
        }
        var widths = Array(repeating: 0, count: columns.count)
        for row in rows { for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) } }
        var text = ""
        for row in rows {
            let cells = row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count + 2)
            }
            text += cells.joined() + "\n"
        }
        let running = layout.nodes.filter { observations[$0.name]?.processRunning == true }.count
        let members = layout.cores.filter { ["leader", "member"].contains(observations[$0.name]?.etcd) }.count
        let leader = layout.nodes.first { observations[$0.name]?.etcd == "leader" }?.name ?? "none"
        let machines = layout.nodes.filter { observations[$0.name]?.machinePresent == true }.count
        text += "cluster \(layout.name): \(running)/\(layout.nodes.count) nodes running, etcd \(members)/\(layout.cores.count) members (leader \(leader)), fleet \(machines) machines"
        if let etcdNote { text += "; " + etcdNote }
        return text + "\n"
    }
}
