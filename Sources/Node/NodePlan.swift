/// What a node runs, decided without running anything: the services in dependency order,
/// each as `coreos <applet>` with its environment (cloud-config's `coreos.etcd2`, `fleet`
/// and `flannel` sections become `ETCD_*`, `FLEET_*`, `FLANNELD_*` as on CoreOS, and the
/// node's defaults fill only what they leave unset).
public struct NodePlan: Sendable, Hashable {
    public enum Role: String, Sendable, Hashable, CaseIterable {
        /// Runs an etcd member.
        case core
        /// Runs a local etcd proxy to the core members.
        case worker
    }

    /// How the supervisor knows a service is up.
    public enum Readiness: Sendable, Hashable {
        /// `GET http://host:port/path` answers 200.
        case http(host: String, port: Int, path: String)
        /// The file exists and is not empty (flannel's `subnet.env`).
        case file(String)
        /// Something listens on the unix socket (fleetd's API).
        case unixSocket(String)
    }

    public struct Service: Sendable, Hashable {
        public var name: String
        /// Arguments after the coreos binary (`["etcd"]`).
        public var arguments: [String]
        public var environment: [String: String]
        public var readiness: Readiness
        /// Commands (coreos arguments) run once before the service starts; their failure is
        /// reported, not fatal.
        public var preparation: [[String]] = []
        /// What the user is told about it once it runs.
        public var summary: String
        /// The node goes on without it when it is not ready in time (it keeps being retried).
        public var optional = false
    }

    public struct Inputs: Sendable, Hashable {
        public var role: Role = .core
        public var dataDirectory: String
        /// Sockets, `subnet.env` and fleet's runtime files: `/run` for a real node.
        public var runDirectory: String
        public var machineID: String
        public var etcd: [String: String] = [:]
        public var fleet: [String: String] = [:]
        public var flannel: [String: String] = [:]
        /// nil when flannel can run; else why not (shown to the user).
        public var flannelUnavailable: String?
        /// The network a core node creates in etcd when there is none yet.
        public var flannelNetwork = NodePlan.defaultNetworkConfig

        public init(dataDirectory: String, runDirectory: String, machineID: String) {
            self.dataDirectory = dataDirectory
            self.runDirectory = runDirectory
            self.machineID = machineID
        }
    }

    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public var services: [Service]
    /// Said once before starting (e.g. why flannel does not run).
    public var notes: [String]

    /// The network flannel gets on a node whose etcd has no configuration yet.
    public static let defaultNetworkConfig = #"{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}"#

    public init(_ inputs: Inputs) throws(Failure) {
        var services: [Service] = []
        var notes: [String] = []

        var etcd = inputs.etcd
        let clientURLs = etcd["ETCD_ADVERTISE_CLIENT_URLS"] ?? etcd["ETCD_LISTEN_CLIENT_URLS"] ?? "http://127.0.0.1:2379"
        let localClient = Self.firstURL(etcd["ETCD_LISTEN_CLIENT_URLS"] ?? clientURLs)
        switch inputs.role {
        case .core:
            if etcd["ETCD_DATA_DIR"] == nil { etcd["ETCD_DATA_DIR"] = inputs.dataDirectory + "/etcd" }
            // As CoreOS's etcd2.service: members are named by machine, so discovery
            // never sees two called "default".
            if etcd["ETCD_NAME"] == nil && !inputs.machineID.isEmpty { etcd["ETCD_NAME"] = inputs.machineID }
        case .worker:
            guard etcd["ETCD_INITIAL_CLUSTER"] != nil || etcd["ETCD_DISCOVERY"] != nil else {
                throw Failure(
                    message: "a worker proxies to the core members: give coreos.etcd2.initial_cluster or discovery in the cloud-config")
            }
            etcd["ETCD_PROXY"] = "on"
            if etcd["ETCD_DATA_DIR"] == nil { etcd["ETCD_DATA_DIR"] = inputs.dataDirectory + "/etcd-proxy" }
        }
        let endpoint = "http://\(localClient.host):\(localClient.port)"
        services.append(
            Service(
                name: "etcd", arguments: ["etcd"], environment: etcd,
                readiness: .http(host: localClient.host, port: localClient.port, path: "/health"),
                summary: inputs.role == .core
                    ? "etcd member on \(endpoint) (data \(etcd["ETCD_DATA_DIR"] ?? ""))"
                    : "etcd proxy on \(endpoint) to the core members"))

        if let reason = inputs.flannelUnavailable {
            notes.append("flannel does not run here: \(reason); containers get no overlay network")
        } else {
            var flannel = inputs.flannel
            flannel["FLANNELD_ETCD_ENDPOINTS"] = flannel["FLANNELD_ETCD_ENDPOINTS"] ?? endpoint
            flannel["FLANNELD_SUBNET_FILE"] = flannel["FLANNELD_SUBNET_FILE"] ?? inputs.runDirectory + "/flannel/subnet.env"
            let subnetFile = flannel["FLANNELD_SUBNET_FILE"] ?? ""
            var create = ["flannel", "network", "create", "--etcd-endpoints", flannel["FLANNELD_ETCD_ENDPOINTS"] ?? endpoint]
            if let prefix = flannel["FLANNELD_ETCD_PREFIX"] { create += ["--etcd-prefix", prefix] }
            services.append(
                Service(
                    name: "flannel", arguments: ["flannel"], environment: flannel, readiness: .file(subnetFile),
                    preparation: inputs.role == .core ? [create + [inputs.flannelNetwork]] : [],
                    summary: "flannel, subnet in \(subnetFile)", optional: true))
        }

        var fleet = inputs.fleet
        fleet["FLEET_ETCD_SERVERS"] = fleet["FLEET_ETCD_SERVERS"] ?? endpoint
        if fleet["FLEET_MACHINE_ID"] == nil && !inputs.machineID.isEmpty { fleet["FLEET_MACHINE_ID"] = inputs.machineID }
        fleet["FLEET_RUNTIME_DIRECTORY"] = fleet["FLEET_RUNTIME_DIRECTORY"] ?? inputs.runDirectory + "/fleet"
        fleet["FLEET_LOG_DIRECTORY"] = fleet["FLEET_LOG_DIRECTORY"] ?? inputs.dataDirectory + "/fleet-logs"
        let socket = inputs.runDirectory + "/fleet.sock"
        fleet["FLEET_LISTEN"] = fleet["FLEET_LISTEN"] ?? "unix://" + socket
        if inputs.role == .worker, fleet["FLEET_METADATA"] == nil { fleet["FLEET_METADATA"] = "role=worker" }
        services.append(
            Service(
                name: "fleet", arguments: ["fleet"], environment: fleet, readiness: .unixSocket(socket),
                summary: "fleetd (machine \(fleet["FLEET_MACHINE_ID"] ?? "from /etc/machine-id")), API on unix://\(socket)"))

        self.services = services
        self.notes = notes
    }

    /// Host and port of the first URL of a comma-separated list (`http://a:2379,http://b:2379`).
    static func firstURL(_ list: String) -> (host: String, port: Int) {
        let first = list.split(separator: ",").first.map(String.init) ?? list
        var rest = Substring(first)
        if let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") { rest = rest[rest.index(colon, offsetBy: 3)...] }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]) else {
            return (String(rest), 2379)
        }
        var host = String(rest[..<colon])
        if host == "0.0.0.0" || host.isEmpty { host = "127.0.0.1" }
        return (host, port)
    }
}
