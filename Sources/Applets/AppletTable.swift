public import CLI

/// The busybox table: every applet this build ships, one row each. Adding an applet
/// is one line here; `coreos --help`, `coreos install-links` and argv[0] dispatch all
/// read this table. Only applets that work are listed.
public enum AppletTable {
    public static var all: [Applet] {
        [
            Applet("etcd", summary: "etcd 3.4-compatible member (static clusters, v3 API) and `benchmark` load generator", run: EtcdCommand.main),
            Applet("etcdctl", summary: "command line client for etcd's v3 API (etcdctl 3.4 compatible)", run: Etcdctl.main),
            Applet(
                "cloudinit", aliases: ["coreos-cloudinit"],
                summary: "provision a machine from cloud-config (coreos-cloudinit compatible)", run: CloudInitCommand.main),
            Applet(
                "journal", aliases: ["journalctl"], summary: "query the systemd journal (journalctl 252 compatible)",
                run: JournalCommand.main),
            Applet(
                "fleet", aliases: ["fleetd"], summary: "fleet 1.0-compatible cluster scheduler daemon (agent, engine, API v1)",
                run: FleetCommand.main),
            Applet("fleetctl", summary: "command line client for fleet (fleetctl 1.0 compatible)", run: Fleetctl.main),
            Applet(
                "flannel", aliases: ["flanneld"],
                summary: "overlay network daemon (flannel compatible): subnet leases in etcd, vxlan, host-gw and udp backends",
                run: FlannelCommand.main),
            Applet(
                "node", summary: "a whole CoreOS machine: cloud-config, then etcd, flannel and fleetd, supervised",
                run: NodeCommand.main),
            Applet(
                "cluster", summary: "a local multi-node cluster of coreos nodes: up, status, exec, kill, restart, down",
                run: ClusterCommand.main),
            Applet(
                "run", aliases: ["rkt"],
                summary: "daemonless container runtime (rkt compatible): ACI, OCI and registry images, pods",
                run: RunCommand.main),
            Applet(
                "systemd-escape", summary: "escape strings for systemd unit names (systemd-escape compatible)",
                run: SystemdEscapeCommand.main)
        ]
    }

    /// The applet answering to `name` (canonical name or alias).
    public static func applet(named name: String) -> Applet? {
        all.first { $0.names.contains(name) }
    }
}
