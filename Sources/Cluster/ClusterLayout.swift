/// A local cluster's shape, decided before anything is created: node names, roles,
/// addresses, ports, machine IDs, and the names of the namespaces and links that carry
/// them. Every name is derived from the cluster's name, so `cluster down` can find what an
/// earlier run made even when that run crashed before writing its state.
public struct ClusterLayout: Codable, Sendable, Hashable {
    /// Where the nodes live.
    public enum Mode: String, Codable, Sendable, Hashable {
        /// As root: each node in its own network namespace on a bridge, with its own address,
        /// its own `/run` and `/var/lib/coreos` (a real multi-host network on one machine).
        case namespaces
        /// Without root: nodes as processes on loopback ports; no flannel.
        case loopback
    }

    public enum Role: String, Codable, Sendable, Hashable {
        /// Runs an etcd member, flannel and fleetd.
        case core
        /// Runs an etcd proxy to the core members, flannel and fleetd (metadata `role=worker`).
        case worker
    }

    public struct Node: Codable, Sendable, Hashable {
        /// `core1`, `worker2`: what `cluster exec|kill|restart` take.
        public var name: String
        public var role: Role
        /// 1-based position among all nodes (cores first).
        public var index: Int
        public var address: String
        public var clientPort: Int
        public var peerPort: Int
        /// fleet's machine ID (32 hex digits; the first 8 say the role and number).
        public var machineID: String
        /// The network namespace (namespaces mode).
        public var namespace: String
        /// The host's end of the node's veth (namespaces mode).
        public var hostLink: String

        /// fleetd's HTTP API (other machines ask it for unit journals and states).
        public var fleetPort: Int { clientPort == 2379 ? 49153 : clientPort + 5 }
        public var clientURL: String { "http://\(address):\(clientPort)" }
        public var peerURL: String { "http://\(address):\(peerPort)" }
    }

    public var name: String
    public var mode: Mode
    /// flannel's backend: `vxlan`, `host-gw` or `udp`.
    public var backend: String
    /// The bridge network's first three octets (`10.77.0`): the host is `.1`, node i is `.(10+i)`.
    public var subnetPrefix: String
    public var nodes: [Node]
    /// The discovery token URL when the cluster forms by discovery, else nil (static).
    public var discoveryURL: String?

    /// The host's address on the bridge.
    public var hostAddress: String { subnetPrefix + ".1" }
    /// The bridge the nodes' veths hang on.
    public var bridge: String { "cos-" + name }
    /// The prefix of every node namespace's name.
    public var namespacePrefix: String { "coreos-\(name)-" }
    /// The cgroup (under the hierarchy's root) holding one cgroup per node.
    public var cgroupName: String { "coreos-cluster-" + name }
    public var cores: [Node] { nodes.filter { $0.role == .core } }
    public var workers: [Node] { nodes.filter { $0.role == .worker } }
    /// `core1=http://…:2380,core2=…`: etcd's static initial cluster.
    public var initialCluster: String { cores.map { "\($0.name)=\($0.peerURL)" }.joined(separator: ",") }
    /// flannel's network configuration, as `coreos flannel network create` takes it.
    public var flannelNetwork: String { #"{"Network":"10.5.0.0/16","Backend":{"Type":"\#(backend)"}}"# }

    public func node(named name: String) -> Node? { nodes.first { $0.name == name } }

    public static let backends = ["vxlan", "host-gw", "udp"]
    public static let maximumCores = 7
    public static let maximumWorkers = 20

    /// The layout of a cluster of `size` core nodes and `workers` workers.
    /// - Parameter basePort: loopback mode's first client port (node i uses base + 10(i−1) and the next).
    public static func make(
        name: String, size: Int, workers: Int, mode: Mode, backend: String = "vxlan", subnetPrefix: String = "10.77.0",
        basePort: Int = 22379
    ) throws(ClusterError) -> ClusterLayout {
        guard let first = name.first, first.isASCII, first.isLowercase, name.count <= 8,
            name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber) })
        else {
            throw ClusterError("the cluster's name is 1 to 8 lower-case letters or digits, starting with a letter (got \"\(name)\")")
        }
        guard (1...maximumCores).contains(size) else {
            throw ClusterError("--size is the number of etcd members: 1 to \(maximumCores) (got \(size))")
        }
        guard (0...maximumWorkers).contains(workers) else {
            throw ClusterError("--workers is 0 to \(maximumWorkers) (got \(workers))")
        }
        guard backends.contains(backend) else {
            throw ClusterError("--backend is one of \(backends.joined(separator: ", ")) (got \(backend))")
        }
        let octets = subnetPrefix.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 3, octets.allSatisfy({ UInt8($0) != nil }) else {
            throw ClusterError("--subnet is the first three octets of a /24, like 10.77.0 (got \(subnetPrefix))")
        }
        guard mode == .namespaces || (1024...(65535 - 10 * (size + workers))).contains(basePort) else {
            throw ClusterError("--base-port leaves no room for \(size + workers) nodes (got \(basePort))")
        }
        var nodes: [Node] = []
        let roles = Array(repeating: Role.core, count: size) + Array(repeating: Role.worker, count: workers)
        var counts: [Role: Int] = [:]
        for (offset, role) in roles.enumerated() {
            let index = offset + 1
            let number = (counts[role] ?? 0) + 1
            counts[role] = number
            let nodeName = "\(role.rawValue)\(number)"
            let address = mode == .namespaces ? "\(subnetPrefix).\(10 + index)" : "127.0.0.1"
            let client = mode == .namespaces ? 2379 : basePort + 10 * offset
            nodes.append(
                Node(
                    name: nodeName, role: role, index: index, address: address, clientPort: client,
                    peerPort: mode == .namespaces ? 2380 : client + 1,
                    machineID: machineID(cluster: name, role: role, number: number),
                    namespace: "coreos-\(name)-\(nodeName)", hostLink: "cos-\(name)-\(index)"))
        }
        return ClusterLayout(name: name, mode: mode, backend: backend, subnetPrefix: subnetPrefix, nodes: nodes)
    }

    /// `c0000001…` for core1, `d0000002…` for worker2, then 24 hex digits of the cluster's
    /// name hashed, so two clusters never share machine IDs and a reader sees which is which.
    static func machineID(cluster: String, role: Role, number: Int) -> String {
        let number = String(number)
        let head = (role == .core ? "c" : "d") + String(repeating: "0", count: max(0, 7 - number.count)) + number
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var digits = ""
        for round in 0..<2 {
            for byte in Array("coreos-cluster/\(round)/\(cluster)".utf8) {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
            digits += hex(hash, width: 16)
        }
        return head + digits.prefix(24)
    }

    static func hex(_ value: UInt64, width: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}

/// What went wrong, said so the user can act on it.
public struct ClusterError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
