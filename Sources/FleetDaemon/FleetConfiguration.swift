import Foundation
import Glibc

/// fleetd's settings: `/etc/fleet/fleet.conf` (INI-style `key=value` at the top level),
/// overridden by `FLEET_<KEY>` environment variables, overridden by command-line flags
/// (`--key=value` or `--key value`, dashes or underscores), as fleet reads them.
public struct FleetConfiguration: Sendable, Hashable {
    public var etcdServers = ["http://127.0.0.1:2379"]
    public var etcdKeyPrefix = "/_coreos.com/fleet/"
    public var etcdCAFile: String?
    public var etcdCertFile: String?
    public var etcdKeyFile: String?
    /// Per request; fleet's default is 1 s, which a busy etcd exceeds: ours is 5 s.
    public var etcdRequestTimeout = Duration.seconds(5)
    public var publicIP = ""
    public var metadata: [String: String] = [:]
    public var agentTTL = Duration.seconds(30)
    public var engineReconcileInterval = Duration.seconds(2)
    public var disableEngine = false
    /// Ours: how long a machine that stopped renewing its presence keeps its units.
    public var machineGrace = Duration.seconds(60)
    public var machineID = ""
    /// `unix:///path`, `http://host:port` or `https://host:port`, one or more.
    public var listen = ["unix:///var/run/fleet.sock"]
    /// Ours (fleet's TCP API has no authentication): the certificate and key an
    /// `https://` listener serves, and the CA whose client certificates it requires. The
    /// same files authenticate this machine when it forwards a request to another one.
    public var apiCertFile: String?
    public var apiKeyFile: String?
    public var apiCAFile: String?
    /// Ours: `auto` (systemd when it is PID 1, else embedded), `systemd`, `embedded`.
    public var unitManager = "auto"
    /// Ours: where the embedded supervisor keeps unit logs and notify sockets.
    public var logDirectory = "/var/log/fleet"
    public var runtimeDirectory = "/run/fleet"
    public var verbosity = 0
    public var configFile = "/etc/fleet/fleet.conf"

    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public init() {}

    /// The settings fleetd runs with: defaults, then the file, the environment and flags.
    public static func load(arguments: [String], environment: [String: String]) throws(Failure) -> FleetConfiguration {
        var configuration = FleetConfiguration()
        var flags: [(String, String)] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            guard argument.hasPrefix("-") else { throw Failure(message: "unexpected argument \(argument)") }
            var name = String(argument.drop { $0 == "-" })
            var value: String
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            } else if Self.booleanFlags.contains(name.replacingOccurrences(of: "-", with: "_")) {
                value = "true"
            } else {
                index += 1
                guard index < arguments.count else { throw Failure(message: "flag needs an argument: -\(name)") }
                value = arguments[index]
            }
            flags.append((name.replacingOccurrences(of: "-", with: "_"), value))
            index += 1
        }
        if let file = flags.last(where: { $0.0 == "config" })?.1 { configuration.configFile = file }
        if let text = try? String(contentsOfFile: configuration.configFile, encoding: .utf8) {
            for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = rawLine.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
                if line.hasPrefix("[") { break }  // options live outside any section
                guard let equals = line.firstIndex(of: "=") else {
                    throw Failure(message: "\(configuration.configFile):\(number + 1): expected key=value, got \"\(line)\"")
                }
                let key = line[..<equals].trimmingCharacters(in: .whitespaces)
                let value = Self.unquote(line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces))
                do {
                    try configuration.set(key, value)
                } catch {
                    throw Failure(message: "\(configuration.configFile):\(number + 1): \(error.message)")
                }
            }
        }
        for key in Self.keys {
            if let value = environment["FLEET_" + key.uppercased()] {
                do {
                    try configuration.set(key, value)
                } catch {
                    throw Failure(message: "FLEET_\(key.uppercased()): \(error.message)")
                }
            }
        }
        for (key, value) in flags where key != "config" { try configuration.set(key, value) }
        if configuration.machineID.isEmpty {
            let text = (try? String(contentsOfFile: "/etc/machine-id", encoding: .utf8)) ?? ""
            configuration.machineID = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !configuration.machineID.isEmpty else {
                throw Failure(message: "no machine ID: /etc/machine-id is missing or empty and --machine-id was not given")
            }
        }
        if configuration.publicIP.isEmpty { configuration.publicIP = Self.detectPublicIP() }
        if configuration.listen.contains(where: { $0.hasPrefix("https://") }),
            configuration.apiCertFile == nil || configuration.apiKeyFile == nil
        {
            throw Failure(message: "listen: an https:// address needs api_certfile and api_keyfile")
        }
        return configuration
    }

    static let booleanFlags: Set<String> = ["disable_engine", "version", "help"]
    static let keys = [
        "etcd_servers", "etcd_key_prefix", "etcd_cafile", "etcd_certfile", "etcd_keyfile", "etcd_request_timeout", "public_ip",
        "metadata", "agent_ttl", "engine_reconcile_interval", "disable_engine", "machine_grace", "machine_id", "listen",
        "api_certfile", "api_keyfile", "api_cafile", "unit_manager", "log_directory", "runtime_directory", "verbosity",
    ]

    mutating func set(_ key: String, _ value: String) throws(Failure) {
        switch key {
        case "etcd_servers": etcdServers = Self.list(value)
        case "etcd_key_prefix": etcdKeyPrefix = value.hasSuffix("/") ? value : value + "/"
        case "etcd_cafile": etcdCAFile = value.isEmpty ? nil : value
        case "etcd_certfile": etcdCertFile = value.isEmpty ? nil : value
        case "etcd_keyfile": etcdKeyFile = value.isEmpty ? nil : value
        case "etcd_request_timeout": etcdRequestTimeout = try Self.seconds(value, key)
        case "public_ip": publicIP = value
        case "metadata": metadata = try Self.metadata(value)
        case "agent_ttl": agentTTL = try Self.duration(value, key)
        case "engine_reconcile_interval": engineReconcileInterval = try Self.seconds(value, key)
        case "disable_engine": disableEngine = try Self.boolean(value, key)
        case "machine_grace": machineGrace = try Self.duration(value, key)
        case "machine_id": machineID = value
        case "listen": listen = Self.list(value)
        case "api_certfile": apiCertFile = value.isEmpty ? nil : value
        case "api_keyfile": apiKeyFile = value.isEmpty ? nil : value
        case "api_cafile": apiCAFile = value.isEmpty ? nil : value
        case "unit_manager":
            guard ["auto", "systemd", "embedded"].contains(value) else {
                throw Failure(message: "unit_manager must be auto, systemd or embedded, not \(value)")
            }
            unitManager = value
        case "log_directory": logDirectory = value
        case "runtime_directory": runtimeDirectory = value
        case "verbosity":
            guard let level = Int(value) else { throw Failure(message: "verbosity must be a number, not \(value)") }
            verbosity = level
        case "authorized_keys_file", "enable_grpc", "token_limit", "etcd_username", "etcd_password":
            break  // fleet 1.0 settings with no meaning here
        default: throw Failure(message: "unknown option \(key)")
        }
    }

    static func unquote(_ value: String) -> String {
        if value.count >= 2, value.first == "\"", value.last == "\"" { return String(value.dropFirst().dropLast()) }
        return value
    }

    /// `["http://a:2379","http://b:2379"]` (the sample file's form) or `a,b`.
    static func list(_ value: String) -> [String] {
        var text = value.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        return text.split(separator: ",").map { unquote($0.trimmingCharacters(in: .whitespaces)) }.filter { !$0.isEmpty }
    }

    /// `region=us-west,az=us-west-1` (fleet also takes a repeated key: the last wins here).
    static func metadata(_ value: String) throws(Failure) -> [String: String] {
        var result: [String: String] = [:]
        for pair in value.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].trimmingCharacters(in: .whitespaces).isEmpty else {
                throw Failure(message: "metadata must be key=value pairs separated by commas, got \"\(pair)\"")
            }
            result[parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        return result
    }

    /// Go durations (`30s`, `1m30s`, `500ms`).
    static func duration(_ value: String, _ key: String) throws(Failure) -> Duration {
        var rest = Substring(value)
        var total = Duration.zero
        guard !rest.isEmpty else { throw Failure(message: "\(key): empty duration") }
        if let seconds = Double(rest) { return .milliseconds(Int64(seconds * 1000)) }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter || $0 == "µ" }
            rest = rest.dropFirst(unit.count)
            guard let amount = Double(number) else { throw Failure(message: "\(key): invalid duration \(value)") }
            let scale: Double
            switch unit {
            case "h": scale = 3600
            case "m": scale = 60
            case "s": scale = 1
            case "ms": scale = 0.001
            case "us", "µs": scale = 0.000001
            case "ns": scale = 0.000000001
            default: throw Failure(message: "\(key): invalid duration \(value)")
            }
            total += .nanoseconds(Int64(amount * scale * 1e9))
        }
        return total
    }

    /// Seconds as a number (`etcd_request_timeout=1.5`) or a Go duration.
    static func seconds(_ value: String, _ key: String) throws(Failure) -> Duration {
        if let seconds = Double(value), seconds >= 0 { return .milliseconds(Int64(seconds * 1000)) }
        return try duration(value, key)
    }

    static func boolean(_ value: String, _ key: String) throws(Failure) -> Bool {
        switch value.lowercased() {
        case "1", "t", "true", "yes": return true
        case "0", "f", "false", "no": return false
        default: throw Failure(message: "\(key): not a boolean: \(value)")
        }
    }

    /// The address of the interface that holds the default route (fleet's guess), else the
    /// first non-loopback IPv4 address.
    static func detectPublicIP() -> String {
        var interfaces: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&interfaces) == 0 else { return "" }
        defer { freeifaddrs(interfaces) }
        var routed = ""
        if let routes = try? String(contentsOfFile: "/proc/net/route", encoding: .utf8) {
            for line in routes.split(separator: "\n").dropFirst() {
                let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
                if fields.count > 2, fields[1] == "00000000" { routed = String(fields[0]) }
            }
        }
        var first = ""
        var cursor = interfaces
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            var text = [CChar](repeating: 0, count: 64)
            address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { inet in
                var raw = inet.pointee.sin_addr
                _ = inet_ntop(AF_INET, &raw, &text, socklen_t(text.count))
            }
            let ip = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let name = String(cString: entry.pointee.ifa_name)
            if name == routed { return ip }
            if first.isEmpty, !ip.hasPrefix("127.") { first = ip }
        }
        return first
    }
}
