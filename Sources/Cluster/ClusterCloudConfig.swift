/// The cloud-config each node of a local cluster boots with: the same `coreos.etcd2`,
/// `coreos.fleet` and `coreos.flannel` sections a CoreOS machine of such a cluster would
/// carry (contrib/examples/cloud-config/ has them for real machines), so `coreos node`
/// reads a cluster node exactly as it reads a machine.
public enum ClusterCloudConfig {
    /// The YAML text for `node`. Agents announce themselves every `agentTTL` seconds.
    public static func render(_ layout: ClusterLayout, node: ClusterLayout.Node, agentTTL: String = "10s") -> String {
        var lines = [
            "#cloud-config",
            "# \(node.name) of the local cluster \"\(layout.name)\", written by `coreos cluster up`.",
            "coreos:",
            "  etcd2:",
        ]
        let loopbackClient = layout.mode == .namespaces ? ",http://127.0.0.1:\(node.clientPort)" : ""
        switch node.role {
        case .core:
            lines += [
                "    name: \(node.name)",
                "    listen_peer_urls: \(node.peerURL)",
                "    initial_advertise_peer_urls: \(node.peerURL)",
                "    listen_client_urls: \(node.clientURL)\(loopbackClient)",
                "    advertise_client_urls: \(node.clientURL)",
                "    initial_cluster_token: coreos-cluster-\(layout.name)",
            ]
        case .worker:
            // The proxy serves the node's own processes only, as on a CoreOS worker.
            lines += [
                "    proxy: \"on\"",
                "    listen_client_urls: http://127.0.0.1:\(node.clientPort)",
            ]
        }
        if let discovery = layout.discoveryURL {
            lines.append("    discovery: \(discovery)")
        } else {
            lines.append("    initial_cluster: \(layout.initialCluster)")
        }
        lines += [
            "  fleet:",
            "    public_ip: \(node.address)",
            "    metadata: role=\(node.role.rawValue),node=\(node.name)",
            "    agent_ttl: \(agentTTL)",
        ]
        if layout.mode == .namespaces {
            lines += [
                "  flannel:",
                "    interface: \(node.address)",
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
