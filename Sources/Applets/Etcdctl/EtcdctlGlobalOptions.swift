import CLI
import EtcdClient
import GoFormat

/// etcdctl's global flags, also read from `ETCDCTL_<FLAG>` environment variables.
struct EtcdctlGlobalOptions: Sendable {
    static let flags: [PFlag] = [
        PFlag("cacert", .string, default: "", "verify certificates of TLS-enabled secure servers using this CA bundle"),
        PFlag("cert", .string, default: "", "identify secure client using this TLS certificate file"),
        PFlag(
            "command-timeout", .duration, default: "5s", "timeout for short running command (excluding dial timeout)"),
        PFlag("debug", .bool, default: "false", "enable client-side debug logging"),
        PFlag("dial-timeout", .duration, default: "2s", "dial timeout for client connections"),
        PFlag(
            "discovery-srv", shorthand: "d", .string, default: "",
            "domain name to query for SRV records describing cluster endpoints"),
        PFlag("discovery-srv-name", .string, default: "", "service name to query when using DNS discovery"),
        PFlag("endpoints", .stringSlice, default: "[127.0.0.1:2379]", "gRPC endpoints"),
        PFlag("hex", .bool, default: "false", "print byte strings as hex encoded strings"),
        PFlag("insecure-discovery", .bool, default: "true", "accept insecure SRV records describing cluster endpoints"),
        PFlag(
            "insecure-skip-tls-verify", .bool, default: "false",
            "skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)"),
        PFlag("insecure-transport", .bool, default: "true", "disable transport security for client connections"),
        PFlag("keepalive-time", .duration, default: "2s", "keepalive time for client connections"),
        PFlag("keepalive-timeout", .duration, default: "6s", "keepalive timeout for client connections"),
        PFlag("key", .string, default: "", "identify secure client using this TLS key file"),
        PFlag(
            "password", .string, default: "",
            "password for authentication (if this option is used, --user option shouldn't include password)"),
        PFlag(
            "user", .string, default: "", "username[:password] for authentication (prompt if password is not supplied)"),
        PFlag(
            "write-out", shorthand: "w", .string, default: "simple",
            "set the output format (fields, json, protobuf, simple, table)"),
    ]

    var endpoints: [String]
    var dialTimeout: Duration
    var commandTimeout: Duration
    var writeOut: String
    var hex: Bool
    var tls: EtcdTLSConfiguration?
    var credentials: (user: String, password: String)?

    init(flags: PFlagResult, environment: [String: String]) throws(EtcdctlFailure) {
        var values: [String: String] = [:]
        for flag in Self.flags {
            let variable = "ETCDCTL_" + flag.name.uppercased().replacingDashes()
            let fromEnvironment = environment[variable]
            let fromFlag = flags.string(flag.name)
            if fromEnvironment != nil && fromFlag != nil {
                // etcdctl 3.4 refuses ambiguous configuration (pkg/flags, logged at CRITICAL level).
                throw EtcdctlFailure(
                    EtcdctlExit.error,
                    "\(GoLogTime.capnslog()) C | pkg/flags: conflicting environment variable \"\(variable)\" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)"
                )
            }
            values[flag.name] = fromFlag ?? fromEnvironment ?? flag.defaultValue
        }
        func duration(_ name: String) -> Duration { GoValues.parseDuration(values[name] ?? "") ?? .seconds(5) }
        var endpointList = values["endpoints"] ?? ""
        if endpointList.hasPrefix("[") && endpointList.hasSuffix("]") { endpointList = String(endpointList.dropFirst().dropLast()) }
        endpoints = endpointList.split(separator: ",").map(String.init)
        dialTimeout = duration("dial-timeout")
        commandTimeout = duration("command-timeout")
        writeOut = values["write-out"] ?? "simple"
        hex = GoValues.parseBool(values["hex"] ?? "") ?? false
        let cacert = values["cacert"].flatMap { $0.isEmpty ? nil : $0 }
        let cert = values["cert"].flatMap { $0.isEmpty ? nil : $0 }
        let key = values["key"].flatMap { $0.isEmpty ? nil : $0 }
        let skipVerify = GoValues.parseBool(values["insecure-skip-tls-verify"] ?? "") ?? false
        if cacert != nil || cert != nil || key != nil || skipVerify {
            tls = EtcdTLSConfiguration(trustedCAFile: cacert, certificateFile: cert, keyFile: key, insecureSkipVerify: skipVerify)
        }
        if let user = values["user"], !user.isEmpty {
            if let colon = user.firstIndex(of: ":") {
                credentials = (String(user[..<colon]), String(user[user.index(after: colon)...]))
            } else if let password = values["password"], !password.isEmpty {
                credentials = (user, password)
            } else {
                throw EtcdctlFailure(EtcdctlExit.badArgs, "password is required (--password or --user=name:password)")
            }
        }
    }

    var clientConfiguration: EtcdClientConfiguration {
        let parsed = endpoints.compactMap { try? EtcdEndpoint(parsing: $0) }
        return EtcdClientConfiguration(
            endpoints: parsed, dialTimeout: dialTimeout, requestTimeout: commandTimeout, tls: tls, credentials: credentials)
    }
}

extension String {
    fileprivate func replacingDashes() -> String { String(map { $0 == "-" ? "_" : $0 }) }
}
