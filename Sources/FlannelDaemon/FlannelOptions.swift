import CLI

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// flanneld's settings: its flags (`--name value`, `--name=value`, `-name`), each also
/// `FLANNELD_<NAME>` in the environment (upper case, dashes as underscores); a flag given
/// on the command line wins over the environment.
public struct FlannelOptions: Sendable, Hashable {
    public var etcdEndpoints = ["http://127.0.0.1:4001", "http://127.0.0.1:2379"]
    public var etcdPrefix = "/coreos.com/network"
    public var etcdKeyFile: String?
    public var etcdCertFile: String?
    public var etcdCAFile: String?
    public var etcdUsername: String?
    public var etcdPassword: String?
    /// `v3` (flannel ≥ 0.18) or `v2` (the keys API, flannel ≤ 0.17 and CoreOS).
    public var etcdAPI = "v3"
    public var interfaces: [String] = []
    public var interfacePatterns: [String] = []
    public var interfaceCanReach: String?
    public var publicIP: String?
    public var subnetFile = "/run/flannel/subnet.env"
    /// Renew this long before the lease expires (flannel: minutes, 1…1439; default 60).
    public var renewMargin: Duration = .seconds(3600)
    /// The lease's lifetime: flannel's fixed 24 h; shorter only for tests and labs.
    public var leaseTTL: Duration = .seconds(86400)
    public var ipMasquerade = false
    public var iptablesResync: Duration = .seconds(5)
    public var iptablesForwardRules = true
    public var healthzIP = "0.0.0.0"
    public var healthzPort = 0
    public var verbosity = 0
    public var showVersion = false
    public var showHelp = false

    public init() {}

    struct Flag: Sendable {
        enum Kind: Sendable { case string, bool, list }
        var name: String
        var kind: Kind
        var apply: @Sendable (inout FlannelOptions, String) throws(FlannelError) -> Void
    }

    static let flags: [Flag] = [
        Flag(name: "etcd-endpoints", kind: .string) { options, value throws(FlannelError) in
            options.etcdEndpoints = value.split(separator: ",").map { String($0).trimmed }.filter { !$0.isEmpty }
            if options.etcdEndpoints.isEmpty { throw FlannelError("--etcd-endpoints: no endpoint given") }
        },
        Flag(name: "etcd-prefix", kind: .string) { options, value in options.etcdPrefix = value },
        Flag(name: "etcd-keyfile", kind: .string) { options, value in options.etcdKeyFile = value },
        Flag(name: "etcd-certfile", kind: .string) { options, value in options.etcdCertFile = value },
        Flag(name: "etcd-cafile", kind: .string) { options, value in options.etcdCAFile = value },
        Flag(name: "etcd-username", kind: .string) { options, value in options.etcdUsername = value },
        Flag(name: "etcd-password", kind: .string) { options, value in options.etcdPassword = value },
        Flag(name: "etcd-api", kind: .string) { options, value throws(FlannelError) in
            guard value == "v2" || value == "v3" else { throw FlannelError("--etcd-api: \(value.debugDescription) is neither v3 nor v2") }
            options.etcdAPI = value
        },
        Flag(name: "iface", kind: .list) { options, value in options.interfaces.append(value) },
        Flag(name: "iface-regex", kind: .list) { options, value in options.interfacePatterns.append(value) },
        Flag(name: "iface-can-reach", kind: .string) { options, value in options.interfaceCanReach = value },
        Flag(name: "public-ip", kind: .string) { options, value in options.publicIP = value },
        Flag(name: "subnet-file", kind: .string) { options, value in options.subnetFile = value },
        Flag(name: "subnet-lease-renew-margin", kind: .string) { options, value throws(FlannelError) in
            options.renewMargin = try duration(value, flag: "subnet-lease-renew-margin", bareUnit: 60)
        },
        Flag(name: "subnet-lease-ttl", kind: .string) { options, value throws(FlannelError) in
            options.leaseTTL = try duration(value, flag: "subnet-lease-ttl", bareUnit: 1)
        },
        Flag(name: "ip-masq", kind: .bool) { options, value throws(FlannelError) in
            options.ipMasquerade = try boolean(value, flag: "ip-masq")
        },
        Flag(name: "iptables-resync", kind: .string) { options, value throws(FlannelError) in
            options.iptablesResync = try duration(value, flag: "iptables-resync", bareUnit: 1)
        },
        Flag(name: "iptables-forward-rules", kind: .bool) { options, value throws(FlannelError) in
            options.iptablesForwardRules = try boolean(value, flag: "iptables-forward-rules")
        },
        Flag(name: "healthz-ip", kind: .string) { options, value in options.healthzIP = value },
        Flag(name: "healthz-port", kind: .string) { options, value throws(FlannelError) in
            guard let port = Int(value), (0...65535).contains(port) else { throw FlannelError("--healthz-port: \(value.debugDescription) is not a port") }
            options.healthzPort = port
        },
        Flag(name: "v", kind: .string) { options, value throws(FlannelError) in
            guard let level = Int(value) else { throw FlannelError("-v: \(value.debugDescription) is not a number") }
            options.verbosity = level
        },
        Flag(name: "version", kind: .bool) { options, value throws(FlannelError) in
            options.showVersion = try boolean(value, flag: "version")
        },
        Flag(name: "help", kind: .bool) { options, value in options.showHelp = true },
        Flag(name: "h", kind: .bool) { options, value in options.showHelp = true },
    ]

    /// Whether `word` (`--name` or `-name`) is a flag that takes a value in the next word.
    public static func takesValue(_ word: String) -> Bool {
        let name = word.drop { $0 == "-" }
        return flags.first { $0.name == name }.map { $0.kind != .bool } ?? false
    }

    /// Defaults, then `FLANNELD_*` from `environment`, then `arguments`.
    public static func parse(arguments: [String], environment: [String: String]) throws(FlannelError) -> FlannelOptions {
        var options = FlannelOptions()
        for flag in flags {
            let variable = "FLANNELD_" + String(flag.name.uppercased().map { $0 == "-" ? "_" : $0 })
            guard let value = environment[variable], flag.name != "help", flag.name != "h" else { continue }
            if flag.kind == .list {
                for item in value.split(separator: ",") { try flag.apply(&options, String(item).trimmed) }
            } else {
                try flag.apply(&options, value)
            }
        }
        var fromCommandLine: Set<String> = []
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            index += 1
            guard word.hasPrefix("-"), word.count > 1 else {
                throw FlannelError("unexpected argument \(word.debugDescription) (flanneld takes only flags)")
            }
            var body = word.dropFirst()
            if body.hasPrefix("-") { body = body.dropFirst() }
            var name = String(body)
            var value: String?
            if let equals = body.firstIndex(of: "=") {
                name = String(body[..<equals])
                value = String(body[body.index(after: equals)...])
            }
            guard let flag = flags.first(where: { $0.name == name }) else {
                throw FlannelError("flag provided but not defined: -\(name)")
            }
            if flag.kind == .list, !fromCommandLine.contains(name) {
                // The command line replaces the environment's list rather than adding to it.
                if name == "iface" { options.interfaces = [] } else { options.interfacePatterns = [] }
            }
            fromCommandLine.insert(name)
            if flag.kind == .bool {
                try flag.apply(&options, value ?? "true")
                continue
            }
            if value == nil {
                guard index < arguments.count else { throw FlannelError("flag needs an argument: -\(name)") }
                value = arguments[index]
                index += 1
            }
            try flag.apply(&options, value ?? "")
        }
        if options.renewMargin >= options.leaseTTL {
            throw FlannelError(
                "--subnet-lease-renew-margin (\(options.renewMargin)) must be shorter than the lease's \(options.leaseTTL)")
        }
        return options
    }

    /// A Go duration (`90s`, `1h30m`) or a bare number of `bareUnit` seconds (flannel's
    /// renew margin is in minutes).
    static func duration(_ text: String, flag: String, bareUnit: Int64) throws(FlannelError) -> Duration {
        if let number = Int64(text) {
            guard number > 0 else { throw FlannelError("--\(flag): must be positive, got \(text)") }
            return .seconds(number * bareUnit)
        }
        guard let parsed = GoValues.parseDuration(text) else {
            throw FlannelError("--\(flag): \(text.debugDescription) is not a duration (like 90s or 1h)")
        }
        guard parsed > .zero else { throw FlannelError("--\(flag): must be positive, got \(text)") }
        return parsed
    }

    static func boolean(_ text: String, flag: String) throws(FlannelError) -> Bool {
        switch text.lowercased() {
        case "1", "t", "true": return true
        case "0", "f", "false": return false
        default: throw FlannelError("invalid boolean value \(text.debugDescription) for -\(flag)")
        }
    }
}

extension String {
    fileprivate var trimmed: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
