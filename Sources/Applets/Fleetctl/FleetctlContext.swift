import CLI
import EtcdClient
import FleetClient
import FleetRegistry
import Foundation
import GoFormat
import Glibc

/// One fleetctl run: its options, its output, the client and what it cached.
struct Context {
    let options: PFlagResult
    let io: StandardStreams
    let flags: [PFlag]
    var client: (any FleetClient)!
    var machineCache: [String: FleetSchema.Machine]?

    init(options: PFlagResult, io: StandardStreams, flags: [PFlag]) {
        self.options = options
        self.io = io
        self.flags = flags
    }

    /// A flag's value, or its default.
    func value(_ name: String) -> String {
        options.string(name) ?? flags.first { $0.name == name }?.defaultValue ?? ""
    }

    func flag(_ name: String) -> Bool { GoValues.parseBool(value(name)) ?? false }

    func number(_ name: String) -> Int { Int(value(name)) ?? 0 }

    var requestTimeout: Duration {
        .milliseconds(Int64((Double(value("request-timeout")) ?? 3) * 1000))
    }

    /// Connects as `--driver` says (through `--tunnel` when given) and runs `body`.
    mutating func withClient(_ body: (inout Context) async throws -> Int32) async throws -> Int32 {
        var endpoint = value("endpoint")
        var tunnel: SSHTunnel?
        defer { tunnel?.close() }
        let tunnelHost = value("tunnel")
        if !tunnelHost.isEmpty {
            let opened = try SSHTunnel.open(to: endpoint, through: tunnelHost, context: self)
            tunnel = opened
            endpoint = opened.localEndpoint
        }
        // fleetctl's --ca-file/--cert-file/--key-file serve an https:// API endpoint as well
        // as etcd; the --etcd-* spellings are etcd's only.
        let ca = value("ca-file")
        let cert = value("cert-file")
        let key = value("key-file")
        let tls =
            ca.isEmpty && cert.isEmpty
            ? nil
            : EtcdTLSConfiguration(
                trustedCAFile: ca.isEmpty ? nil : ca, certificateFile: cert.isEmpty ? nil : cert, keyFile: key.isEmpty ? nil : key)
        switch value("driver") {
        case "api":
            client = APIFleetClient(endpoint: try FleetEndpoint(endpoint, tls: tls), timeout: requestTimeout)
            return try await body(&self)
        case "etcd":
            var configuration = EtcdClientConfiguration(
                endpoints: try endpoint.split(separator: ",").map { try EtcdEndpoint(parsing: String($0)) }, requestTimeout: requestTimeout)
            let etcdCA = ca.isEmpty ? value("etcd-cafile") : ca
            let etcdCert = cert.isEmpty ? value("etcd-certfile") : cert
            let etcdKey = key.isEmpty ? value("etcd-keyfile") : key
            if !etcdCA.isEmpty || !etcdCert.isEmpty {
                configuration.tls = EtcdTLSConfiguration(
                    trustedCAFile: etcdCA.isEmpty ? nil : etcdCA, certificateFile: etcdCert.isEmpty ? nil : etcdCert,
                    keyFile: etcdKey.isEmpty ? nil : etcdKey)
            }
            let prefix = value("etcd-key-prefix")
            var context = self
            let status = try await EtcdClient.withClient(configuration) { etcd in
                var inner = context
                inner.client = EtcdFleetClient(registry: FleetRegistry(client: etcd, prefix: prefix))
                let result = try await body(&inner)
                context = inner
                return result
            }
            self = context
            return status
        default:
            throw FleetctlFailure("Unable to initialize client: unrecognized driver \"\(value("driver"))\"")
        }
    }

    // MARK: Machines and units

    mutating func machine(_ id: String) async -> FleetSchema.Machine? {
        if machineCache == nil {
            machineCache = [:]
            for machine in (try? await client.machines()) ?? [] { machineCache![machine.id] = machine }
        }
        return machineCache?[id]
    }

    /// `113f16a7.../172.17.8.103`, or the full ID with `--full`.
    mutating func machineLegend(_ id: String, full: Bool) async -> String {
        let legend = full ? id : String(id.prefix(8)) + "..."
        if let ip = await machine(id)?.primaryIP, !ip.isEmpty { return legend + "/" + ip }
        return legend
    }

    /// fleet's name mangling: the base name, `.service` added when no unit type is known.
    static func unitName(_ argument: String) -> String {
        let name = (argument as NSString).lastPathComponent
        let types = ["service", "socket", "busname", "target", "snapshot", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope"]
        if let dot = name.lastIndex(of: "."), types.contains(String(name[name.index(after: dot)...])) { return name }
        return name + ".service"
    }

    static func isGlobal(_ unit: FleetSchema.Unit) -> Bool {
        (unit.options ?? []).contains { $0.section == "X-Fleet" && $0.name == "Global" && GoValues.parseBool($0.value.lowercased()) == true }
    }

    static func unitFile(_ path: String) throws -> (text: String, options: [FleetSchema.UnitOption]) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw FleetctlFailure("failed reading \(path): \(error.localizedDescription)")
        }
        let file: UnitFile
        do {
            file = try UnitFile(parsing: text, file: path)
        } catch {
            throw FleetctlFailure("failed parsing unit file \(path): \(error)")
        }
        return (text, FleetSchema.options(of: file))
    }

    static func hash(_ options: [FleetSchema.UnitOption]) -> String {
        FleetUnitHash.of(options)
    }
}

import Fleet
import UnitFile

/// A unit's content hash as the registry computes it (SHA-1 of the serialized options).
enum FleetUnitHash {
    static func of(_ options: [FleetSchema.UnitOption]) -> String {
        FleetUnit.hash(of: (try? FleetSchema.text(of: options)) ?? "")
    }
}

/// `--tunnel`: the system `ssh` forwards a local unix socket to the endpoint, as
/// fleetctl's built-in SSH client dialled through the tunnel host.
struct SSHTunnel {
    let process: Process
    let localEndpoint: String
    let socket: String?

    static func open(to endpoint: String, through host: String, context: Context) throws -> SSHTunnel {
        let url = endpoint.hasPrefix("unix://") || endpoint.hasPrefix("/") ? nil : try HTTPURL(parsing: endpoint)
        // The socket goes in a fresh 0700 directory: at a predictable path in a shared
        // /tmp, another user could bind it first and receive fleetctl's requests.
        var template = Array((NSTemporaryDirectory() + "fleetctl-tunnel-XXXXXX").utf8CString)
        guard mkdtemp(&template) != nil else {
            throw FleetctlFailure("Unable to initialize client: mkdtemp: \(String(cString: strerror(errno)))")
        }
        let local = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/api.sock"
        var remote: String
        var localEndpoint: String
        if let url {
            remote = url.hostPort
            localEndpoint = "unix://" + local
            if context.value("driver") == "etcd" {
                // etcd's gRPC needs a TCP port: forward a free local port instead.
                let port = Int.random(in: 20000...60000)
                remote = url.hostPort
                localEndpoint = "http://127.0.0.1:\(port)"
                rmdir((local as NSString).deletingLastPathComponent)
                return try start(context: context, host: host, forward: "127.0.0.1:\(port):\(remote)", localEndpoint: localEndpoint, socket: nil)
            }
        } else {
            remote = endpoint.hasPrefix("unix://") ? String(endpoint.dropFirst(7)) : endpoint
            localEndpoint = "unix://" + local
        }
        do {
            return try start(context: context, host: host, forward: "\(local):\(remote)", localEndpoint: localEndpoint, socket: local)
        } catch {
            unlink(local)
            rmdir((local as NSString).deletingLastPathComponent)
            throw error
        }
    }

    private static func start(context: Context, host: String, forward: String, localEndpoint: String, socket: String?) throws -> SSHTunnel {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ssh")
        var arguments = SSHCommand.options(context) + ["-N", "-o", "ExitOnForwardFailure=yes", "-L", forward]
        var target = host
        if let colon = host.lastIndex(of: ":"), !host.contains("]") || host.hasSuffix("]") == false {
            arguments += ["-p", String(host[host.index(after: colon)...])]
            target = String(host[..<colon])
        }
        arguments.append(context.value("ssh-username") + "@" + target)
        process.arguments = arguments
        do {
            try process.run()
        } catch {
            throw FleetctlFailure("Unable to initialize client: failed initializing SSH client: \(error.localizedDescription)")
        }
        let deadline = Date().addingTimeInterval(Double(context.value("ssh-timeout")) ?? 10)
        while Date() < deadline {
            if !process.isRunning { throw FleetctlFailure("Unable to initialize client: failed initializing SSH client: ssh exited with \(process.terminationStatus)") }
            if let socket, FileManager.default.fileExists(atPath: socket) { return SSHTunnel(process: process, localEndpoint: localEndpoint, socket: socket) }
            if socket == nil { usleep(300_000); return SSHTunnel(process: process, localEndpoint: localEndpoint, socket: nil) }
            usleep(50_000)
        }
        process.terminate()
        throw FleetctlFailure("Unable to initialize client: failed initializing SSH client: timed out")
    }

    func close() {
        if process.isRunning { process.terminate() }
        if let socket {
            unlink(socket)
            rmdir((socket as NSString).deletingLastPathComponent)
        }
    }
}

/// The `ssh` options fleetctl's flags stand for.
enum SSHCommand {
    static func options(_ context: Context) -> [String] {
        var options = ["-o", "ConnectTimeout=\(Int(Double(context.value("ssh-timeout")) ?? 10))"]
        if context.flag("strict-host-key-checking") {
            var file = context.value("known-hosts-file")
            if file.hasPrefix("~/") { file = NSHomeDirectory() + file.dropFirst(1) }
            try? FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            options += ["-o", "UserKnownHostsFile=\(file)", "-o", "StrictHostKeyChecking=ask"]
        } else {
            options += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        }
        return options
    }
}
