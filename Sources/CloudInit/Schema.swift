/// The shape of a cloud-config: every key coreos-cloudinit knows, its type, the variable it
/// becomes, and the values it accepts. The validator and the decoder both walk this table,
/// so a key added here is checked and applied without further code.
public indirect enum ValueType: Sendable {
    case string
    case bool
    case int
    case float
    case stringList
    case structure(Section)
    case structureList(Section)

    /// The word coreos-cloudinit uses in `incorrect type for "K" (want …)` (Go kinds).
    public var humanName: String {
        switch self {
        case .string: "string"
        case .bool: "bool"
        case .int: "int"
        case .float: "float64"
        case .stringList: "[]string"
        case .structure: "struct"
        case .structureList: "[]struct"
        }
    }
}

/// One key of a section.
public struct Field: Sendable {
    public var name: String
    public var type: ValueType
    /// The environment variable the value becomes (`ETCD_NAME`), for service sections.
    public var environment: String?
    /// Why the key is deprecated, if it is.
    public var deprecation: String?
    /// The values a non-empty string accepts.
    public var rule: ValueRule?

    init(_ name: String, _ type: ValueType, env: String? = nil, deprecated: String? = nil, rule: ValueRule? = nil) {
        self.name = name
        self.type = type
        self.environment = env
        self.deprecation = deprecated
        self.rule = rule
    }
}

/// The keys of a mapping, in declared order (the order service variables are written in).
public struct Section: Sendable {
    public var fields: [Field]

    public subscript(name: String) -> Field? { fields.first { $0.name == name } }
}

/// A check on a string value, named after the pattern coreos-cloudinit used.
public struct ValueRule: Sendable {
    public var pattern: String
    public var accepts: @Sendable (String) -> Bool

    /// `^0?[0-7]{3,4}$`
    static let permissions = ValueRule(pattern: "^0?[0-7]{3,4}$") { text in
        let bytes = Array(text.utf8)
        guard bytes.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "7")).contains($0) }) else { return false }
        return bytes.count == 3 || bytes.count == 4 || bytes.count == 5 && bytes[0] == UInt8(ascii: "0")
    }

    static func oneOf(_ values: [String]) -> ValueRule {
        ValueRule(pattern: "^(" + values.joined(separator: "|") + ")$") { values.contains($0) }
    }

    /// `[day ]hh:mm` as locksmith reads a reboot window start (`Thu 04:00`, `4:0`).
    static let windowStart = ValueRule(
        pattern: "^((?i:sun|mon|tue|wed|thu|fri|sat|sun) )?0*([0-9]|1[0-9]|2[0-3]):0*([0-9]|[1-5][0-9])$"
    ) { text in
        var rest = Substring(text)
        if let space = rest.firstIndex(of: " ") {
            let day = rest[..<space].lowercased()
            guard ["sun", "mon", "tue", "wed", "thu", "fri", "sat"].contains(day) else { return false }
            rest = rest[rest.index(after: space)...]
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        func number(_ part: Substring, below limit: Int) -> Bool {
            let significant = part.drop { $0 == "0" }
            guard part.allSatisfy(\.isASCIIDigit), significant.count <= 2 else { return false }
            // `0*` then one or two digits: "00" is fine (zeros, then the digit 0).
            guard !part.isEmpty else { return false }
            return (Int(significant) ?? 0) < limit
        }
        return number(parts[0], below: 24) && number(parts[1], below: 60)
    }

    /// A Go duration as locksmith reads a window length (`1h30m`, `90m`, `.5h`).
    static let windowLength = ValueRule(pattern: "^[-+]?([0-9]*(\\.[0-9]*)?[a-z]+)+$") { text in
        var bytes = Substring(text).utf8[...]
        if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        guard !bytes.isEmpty else { return false }
        // Groups of digits[.digits] followed by at least one lowercase letter.
        while !bytes.isEmpty {
            bytes = bytes.drop { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
            if bytes.first == UInt8(ascii: ".") {
                bytes = bytes.dropFirst().drop { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
            }
            let letters = bytes.prefix { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) }
            guard !letters.isEmpty else { return false }
            bytes = bytes.dropFirst(letters.count)
        }
        return true
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

/// The cloud-config schema of coreos-cloudinit's last release.
public enum CloudConfigSchema {
    public static let encodings = ["b64", "base64", "gz", "gzip", "gz+b64", "gz+base64", "gzip+b64", "gzip+base64"]
    public static let unitCommands = [
        "start", "stop", "restart", "reload", "try-restart", "reload-or-restart", "reload-or-try-restart",
    ]

    static let remoteFetch = "trying to fetch from a remote endpoint introduces too many intermittent errors"
    static let etcd2Only = "etcd2 options no longer work for etcd"

    public static let user = Section(fields: [
        Field("name", .string),
        Field("passwd", .string),
        Field("ssh_authorized_keys", .stringList),
        Field("coreos_ssh_import_github", .string, deprecated: remoteFetch),
        Field("coreos_ssh_import_github_users", .stringList, deprecated: remoteFetch),
        Field("coreos_ssh_import_url", .string, deprecated: remoteFetch),
        Field("gecos", .string),
        Field("homedir", .string),
        Field("no_create_home", .bool),
        Field("primary_group", .string),
        Field("groups", .stringList),
        Field("no_user_group", .bool),
        Field("system", .bool),
        Field("no_log_init", .bool),
        Field("shell", .string),
    ])

    public static let file = Section(fields: [
        Field("encoding", .string, rule: .oneOf(encodings)),
        Field("content", .string),
        Field("owner", .string),
        Field("path", .string),
        Field("permissions", .string, rule: .permissions),
    ])

    public static let dropIn = Section(fields: [Field("name", .string), Field("content", .string)])

    public static let unit = Section(fields: [
        Field("name", .string),
        Field("runtime", .bool),
        Field("enable", .bool),
        Field("content", .string),
        Field("command", .string, rule: .oneOf(unitCommands)),
        Field("mask", .bool),
        Field("drop_ins", .structureList(dropIn)),
    ])

    /// etcd 0.4's options; deprecated as a whole.
    public static let etcd = Section(fields: [
        Field("addr", .string, env: "ETCD_ADDR"),
        Field("advertise_client_urls", .string, env: "ETCD_ADVERTISE_CLIENT_URLS", deprecated: etcd2Only),
        Field("bind_addr", .string, env: "ETCD_BIND_ADDR"),
        Field("ca_file", .string, env: "ETCD_CA_FILE"),
        Field("cert_file", .string, env: "ETCD_CERT_FILE"),
        Field("cluster_active_size", .int, env: "ETCD_CLUSTER_ACTIVE_SIZE"),
        Field("cluster_remove_delay", .float, env: "ETCD_CLUSTER_REMOVE_DELAY"),
        Field("cluster_sync_interval", .float, env: "ETCD_CLUSTER_SYNC_INTERVAL"),
        Field("cors", .string, env: "ETCD_CORS"),
        Field("data_dir", .string, env: "ETCD_DATA_DIR"),
        Field("discovery", .string, env: "ETCD_DISCOVERY"),
        Field("discovery_fallback", .string, env: "ETCD_DISCOVERY_FALLBACK", deprecated: etcd2Only),
        Field("discovery_srv", .string, env: "ETCD_DISCOVERY_SRV", deprecated: etcd2Only),
        Field("discovery_proxy", .string, env: "ETCD_DISCOVERY_PROXY", deprecated: etcd2Only),
        Field("election_timeout", .int, env: "ETCD_ELECTION_TIMEOUT", deprecated: etcd2Only),
        Field("force_new_cluster", .bool, env: "ETCD_FORCE_NEW_CLUSTER", deprecated: etcd2Only),
        Field("graphite_host", .string, env: "ETCD_GRAPHITE_HOST"),
        Field("heartbeat_interval", .int, env: "ETCD_HEARTBEAT_INTERVAL", deprecated: etcd2Only),
        Field("http_read_timeout", .float, env: "ETCD_HTTP_READ_TIMEOUT"),
        Field("http_write_timeout", .float, env: "ETCD_HTTP_WRITE_TIMEOUT"),
        Field("initial_advertise_peer_urls", .string, env: "ETCD_INITIAL_ADVERTISE_PEER_URLS", deprecated: etcd2Only),
        Field("initial_cluster", .string, env: "ETCD_INITIAL_CLUSTER", deprecated: etcd2Only),
        Field("initial_cluster_state", .string, env: "ETCD_INITIAL_CLUSTER_STATE", deprecated: etcd2Only),
        Field("initial_cluster_token", .string, env: "ETCD_INITIAL_CLUSTER_TOKEN", deprecated: etcd2Only),
        Field("key_file", .string, env: "ETCD_KEY_FILE"),
        Field("listen_client_urls", .string, env: "ETCD_LISTEN_CLIENT_URLS", deprecated: etcd2Only),
        Field("listen_peer_urls", .string, env: "ETCD_LISTEN_PEER_URLS", deprecated: etcd2Only),
        Field("max_result_buffer", .int, env: "ETCD_MAX_RESULT_BUFFER"),
        Field("max_retry_attempts", .int, env: "ETCD_MAX_RETRY_ATTEMPTS"),
        Field("max_snapshots", .int, env: "ETCD_MAX_SNAPSHOTS", deprecated: etcd2Only),
        Field("max_wals", .int, env: "ETCD_MAX_WALS", deprecated: etcd2Only),
        Field("name", .string, env: "ETCD_NAME"),
        Field("peer_addr", .string, env: "ETCD_PEER_ADDR"),
        Field("peer_bind_addr", .string, env: "ETCD_PEER_BIND_ADDR"),
        Field("peer_ca_file", .string, env: "ETCD_PEER_CA_FILE"),
        Field("peer_cert_file", .string, env: "ETCD_PEER_CERT_FILE"),
        Field("peer_election_timeout", .int, env: "ETCD_PEER_ELECTION_TIMEOUT"),
        Field("peer_heartbeat_interval", .int, env: "ETCD_PEER_HEARTBEAT_INTERVAL"),
        Field("peer_key_file", .string, env: "ETCD_PEER_KEY_FILE"),
        Field("peers", .string, env: "ETCD_PEERS"),
        Field("peers_file", .string, env: "ETCD_PEERS_FILE"),
        Field("proxy", .string, env: "ETCD_PROXY", deprecated: etcd2Only),
        Field("retry_interval", .float, env: "ETCD_RETRY_INTERVAL"),
        Field("snapshot", .bool, env: "ETCD_SNAPSHOT"),
        Field("snapshot_count", .int, env: "ETCD_SNAPSHOTCOUNT"),
        Field("trace", .string, env: "ETCD_TRACE"),
        Field("verbose", .bool, env: "ETCD_VERBOSE"),
        Field("very_verbose", .bool, env: "ETCD_VERY_VERBOSE"),
        Field("very_very_verbose", .bool, env: "ETCD_VERY_VERY_VERBOSE"),
    ])

    public static let etcd2 = Section(fields: [
        Field("advertise_client_urls", .string, env: "ETCD_ADVERTISE_CLIENT_URLS"),
        Field("ca_file", .string, env: "ETCD_CA_FILE", deprecated: "ca_file obsoleted by trusted_ca_file and client_cert_auth"),
        Field("cert_file", .string, env: "ETCD_CERT_FILE"),
        Field("client_cert_auth", .bool, env: "ETCD_CLIENT_CERT_AUTH"),
        Field("cors", .string, env: "ETCD_CORS"),
        Field("data_dir", .string, env: "ETCD_DATA_DIR"),
        Field("debug", .bool, env: "ETCD_DEBUG"),
        Field("discovery", .string, env: "ETCD_DISCOVERY"),
        Field("discovery_fallback", .string, env: "ETCD_DISCOVERY_FALLBACK"),
        Field("discovery_srv", .string, env: "ETCD_DISCOVERY_SRV"),
        Field("discovery_proxy", .string, env: "ETCD_DISCOVERY_PROXY"),
        Field("election_timeout", .int, env: "ETCD_ELECTION_TIMEOUT"),
        Field("enable_pprof", .bool, env: "ETCD_ENABLE_PPROF"),
        Field("force_new_cluster", .bool, env: "ETCD_FORCE_NEW_CLUSTER"),
        Field("heartbeat_interval", .int, env: "ETCD_HEARTBEAT_INTERVAL"),
        Field("initial_advertise_peer_urls", .string, env: "ETCD_INITIAL_ADVERTISE_PEER_URLS"),
        Field("initial_cluster", .string, env: "ETCD_INITIAL_CLUSTER"),
        Field("initial_cluster_state", .string, env: "ETCD_INITIAL_CLUSTER_STATE"),
        Field("initial_cluster_token", .string, env: "ETCD_INITIAL_CLUSTER_TOKEN"),
        Field("key_file", .string, env: "ETCD_KEY_FILE"),
        Field("listen_client_urls", .string, env: "ETCD_LISTEN_CLIENT_URLS"),
        Field("listen_peer_urls", .string, env: "ETCD_LISTEN_PEER_URLS"),
        Field("log_package_levels", .string, env: "ETCD_LOG_PACKAGE_LEVELS"),
        Field("max_snapshots", .int, env: "ETCD_MAX_SNAPSHOTS"),
        Field("max_wals", .int, env: "ETCD_MAX_WALS"),
        Field("name", .string, env: "ETCD_NAME"),
        Field(
            "peer_ca_file", .string, env: "ETCD_PEER_CA_FILE",
            deprecated: "peer_ca_file obsoleted peer_trusted_ca_file and peer_client_cert_auth"),
        Field("peer_cert_file", .string, env: "ETCD_PEER_CERT_FILE"),
        Field("peer_key_file", .string, env: "ETCD_PEER_KEY_FILE"),
        Field("peer_client_cert_auth", .bool, env: "ETCD_PEER_CLIENT_CERT_AUTH"),
        Field("peer_trusted_ca_file", .string, env: "ETCD_PEER_TRUSTED_CA_FILE"),
        Field("proxy", .string, env: "ETCD_PROXY", rule: .oneOf(["on", "off", "readonly"])),
        Field("proxy_dial_timeout", .int, env: "ETCD_PROXY_DIAL_TIMEOUT"),
        Field("proxy_failure_wait", .int, env: "ETCD_PROXY_FAILURE_WAIT"),
        Field("proxy_read_timeout", .int, env: "ETCD_PROXY_READ_TIMEOUT"),
        Field("proxy_refresh_interval", .int, env: "ETCD_PROXY_REFRESH_INTERVAL"),
        Field("proxy_write_timeout", .int, env: "ETCD_PROXY_WRITE_TIMEOUT"),
        Field("snapshot_count", .int, env: "ETCD_SNAPSHOT_COUNT"),
        Field("strict_reconfig_check", .bool, env: "ETCD_STRICT_RECONFIG_CHECK"),
        Field("trusted_ca_file", .string, env: "ETCD_TRUSTED_CA_FILE"),
        Field("wal_dir", .string, env: "ETCD_WAL_DIR"),
    ])

    public static let fleet = Section(fields: [
        Field("agent_ttl", .string, env: "FLEET_AGENT_TTL"),
        Field("authorized_keys_file", .string, env: "FLEET_AUTHORIZED_KEYS_FILE"),
        Field("disable_engine", .bool, env: "FLEET_DISABLE_ENGINE"),
        Field("engine_reconcile_interval", .float, env: "FLEET_ENGINE_RECONCILE_INTERVAL"),
        Field("etcd_cafile", .string, env: "FLEET_ETCD_CAFILE"),
        Field("etcd_certfile", .string, env: "FLEET_ETCD_CERTFILE"),
        Field("etcd_keyfile", .string, env: "FLEET_ETCD_KEYFILE"),
        Field("etcd_key_prefix", .string, env: "FLEET_ETCD_KEY_PREFIX"),
        Field("etcd_request_timeout", .float, env: "FLEET_ETCD_REQUEST_TIMEOUT"),
        Field("etcd_servers", .string, env: "FLEET_ETCD_SERVERS"),
        Field("etcd_username", .string, env: "FLEET_ETCD_USERNAME"),
        Field("etcd_password", .string, env: "FLEET_ETCD_PASSWORD"),
        Field("metadata", .string, env: "FLEET_METADATA"),
        Field("public_ip", .string, env: "FLEET_PUBLIC_IP"),
        Field("token_limit", .int, env: "FLEET_TOKEN_LIMIT"),
        Field("verbosity", .int, env: "FLEET_VERBOSITY"),
        Field("verify_units", .bool, env: "FLEET_VERIFY_UNITS"),
    ])

    public static let flannel = Section(fields: [
        Field("etcd_endpoints", .string, env: "FLANNELD_ETCD_ENDPOINTS"),
        Field("etcd_cafile", .string, env: "FLANNELD_ETCD_CAFILE"),
        Field("etcd_certfile", .string, env: "FLANNELD_ETCD_CERTFILE"),
        Field("etcd_keyfile", .string, env: "FLANNELD_ETCD_KEYFILE"),
        Field("etcd_prefix", .string, env: "FLANNELD_ETCD_PREFIX"),
        Field("etcd_username", .string, env: "FLANNELD_ETCD_USERNAME"),
        Field("etcd_password", .string, env: "FLANNELD_ETCD_PASSWORD"),
        Field("ip_masq", .string, env: "FLANNELD_IP_MASQ"),
        Field("subnet_file", .string, env: "FLANNELD_SUBNET_FILE"),
        Field("interface", .string, env: "FLANNELD_IFACE"),
        Field("public_ip", .string, env: "FLANNELD_PUBLIC_IP"),
    ])

    public static let locksmith = Section(fields: [
        Field("endpoint", .string, env: "LOCKSMITHD_ENDPOINT"),
        Field("etcd_cafile", .string, env: "LOCKSMITHD_ETCD_CAFILE"),
        Field("etcd_certfile", .string, env: "LOCKSMITHD_ETCD_CERTFILE"),
        Field("etcd_keyfile", .string, env: "LOCKSMITHD_ETCD_KEYFILE"),
        Field("etcd_username", .string, env: "LOCKSMITHD_ETCD_USERNAME"),
        Field("etcd_password", .string, env: "LOCKSMITHD_ETCD_PASSWORD"),
        Field("group", .string, env: "LOCKSMITHD_GROUP"),
        Field("window_start", .string, env: "REBOOT_WINDOW_START", rule: .windowStart),
        Field("window_length", .string, env: "REBOOT_WINDOW_LENGTH", rule: .windowLength),
    ])

    public static let update = Section(fields: [
        Field("reboot_strategy", .string, env: "REBOOT_STRATEGY", rule: .oneOf(["etcd-lock", "reboot", "off"])),
        Field("group", .string, env: "GROUP"),
        Field("server", .string, env: "SERVER"),
    ])

    public static let oem = Section(fields: [
        Field("id", .string, env: "ID"),
        Field("name", .string, env: "NAME"),
        Field("version_id", .string, env: "VERSION_ID"),
        Field("home_url", .string, env: "HOME_URL"),
        Field("bug_report_url", .string, env: "BUG_REPORT_URL"),
    ])

    public static let coreos = Section(fields: [
        Field("etcd", .structure(etcd), deprecated: "etcd is no longer shipped in Container Linux; use etcd2 (served by coreos etcd)"),
        Field("etcd2", .structure(etcd2)),
        Field("flannel", .structure(flannel)),
        Field("fleet", .structure(fleet)),
        Field("locksmith", .structure(locksmith)),
        Field("oem", .structure(oem)),
        Field("update", .structure(update)),
        Field("units", .structureList(unit)),
    ])

    public static let root = Section(fields: [
        Field("ssh_authorized_keys", .stringList),
        Field("coreos", .structure(coreos)),
        Field("write_files", .structureList(file)),
        Field("hostname", .string),
        Field("users", .structureList(user)),
        Field("manage_etc_hosts", .string),
    ])
}
