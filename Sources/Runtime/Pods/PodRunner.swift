import CLinux
import Foundation
import Glibc

/// How a pod is to run (rkt's `run`/`prepare` flags).
public struct PodOptions: Sendable {
    public var apps: [AppRequest] = []
    /// `host`, `none` or `default`.
    public var network = "default"
    public var hostname: String?
    public var limits = ResourceLimits()
    public var capsRetain: UInt64?
    public var capsRemove: UInt64 = 0
    public var overlay = true
    public var readOnlyRootfs = false
    public var inheritEnvironment = false
    /// `--set-env-file` then `--set-env`, later ones winning.
    public var setEnvironment: [(String, String)] = []
    public var volumes: [PodManifest.Volume] = []
    public var processEnvironment: [String: String] = [:]
    /// `--dns` servers (written to the pod's /etc/resolv.conf); `host` copies the host's.
    public var dns: [String] = []
    /// `--hosts-entry IP=HOSTNAME` lines for the pod's /etc/hosts.
    public var hostsEntries: [(String, String)] = []
    /// `--port NAME:[HOSTIP:]HOSTPORT`.
    public var ports: [String] = []
    /// `--rlimit NAME=SOFT[:HARD]`.
    public var resourceLimits: [ResourceLimit] = []
    /// `--private-users`: a user namespace; the pod gets its own copy of the tree (as
    /// rkt, which required --no-overlay for it).
    public var privateUsers = false
    /// rkt's `--local-config`: where `net.d/*.conf` define further networks.
    public var localConfig = "/etc/rkt"

    public init() {}
}

/// prepare → prepared → run → exited, as rkt does it, with stage 1 in C.
public final class PodRunner {
    public let images: ImageStore
    public let pods: PodStore

    public init(images: ImageStore, pods: PodStore) {
        self.images = images
        self.pods = pods
    }

    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// Fetches and renders the images, resolves each app and writes the pod; returns it in
    /// the `prepared` state.
    public func prepare(_ options: PodOptions, fetch: FetchOptions = FetchOptions()) async throws(RuntimeError) -> Pod {
        guard !options.apps.isEmpty else { throw RuntimeError("at least one image is required") }
        guard options.apps.count <= 64 else { throw RuntimeError("a pod holds at most 64 apps") }
        let networkNames = options.network.split(separator: ",").map(String.init)
        var definitions: [NetworkDefinition] = []
        if networkNames != ["host"] && networkNames != ["none"] {
            let configured = try NetworkDefinition.configured(localConfig: options.localConfig)
            for name in networkNames {
                if name == "default" {
                    definitions.append(try NetworkDefinition.builtIn())
                } else if let definition = configured[name] {
                    definitions.append(definition)
                } else {
                    throw RuntimeError("--net=\(options.network): no network \(name) (host, none, default, or one of \(options.localConfig)/net.d: \(configured.keys.sorted().joined(separator: ", ")))")
                }
            }
            guard Set(networkNames).count == networkNames.count else { throw RuntimeError("--net=\(options.network): a network is named twice") }
        }
        let uuid = PodStore.newUUID()
        let embryo = pods.path(uuid, .embryo)
        try ImageStore.makeDirectories(embryo)
        guard var pod = try pods.move(Pod(uuid: uuid, state: .embryo, directory: embryo), to: .prepare) else {
            throw RuntimeError("pod \(uuid) vanished while preparing")
        }
        guard let lock = PodStore.lock(pod) else { throw RuntimeError("cannot lock pod \(uuid)") }
        defer { close(lock) }
        do throws(RuntimeError) {
            var apps: [PodManifest.App] = []
            var declaredPorts: [ACIManifest.Port] = []
            for request in options.apps {
                let record = try await images.fetch(ImageReference(parsing: request.image), options: fetch)
                let trees = try images.render(record)
                declaredPorts += try ports(of: record)
                var resolved = try resolveApp(request, record: record, trees: trees, options: options)
                // Two apps from the same image get distinct names (busybox, busybox-2).
                var suffix = 2
                let base = resolved.name
                while apps.contains(where: { $0.name == resolved.name }) {
                    resolved.name = "\(base)-\(suffix)"
                    suffix += 1
                }
                apps.append(resolved)
                let name = resolved.name
                for sub in ["/overlay/\(name)/upper", "/overlay/\(name)/work", "/rootfs/\(name)", "/apps/\(name)"] {
                    try ImageStore.makeDirectories(pod.directory + sub)
                }
                if options.overlay && !options.privateUsers {
                    try ImageStore.makeDirectories(pod.directory + "/overlay/\(name)")
                    try images.writeAtomically(pod.directory + "/apps/\(name)/tree", Array(trees.joined(separator: ":").utf8))
                } else {
                    try images.renderInto(pod.directory + "/apps/\(name)/copy", record)
                }
            }
            var forwards: [PodManifest.PortForward] = []
            for text in options.ports {
                let parts = text.split(separator: ":").map(String.init)
                guard parts.count == 2 || parts.count == 3, let hostPort = Int(parts[parts.count - 1]), (1...65535).contains(hostPort) else {
                    throw RuntimeError("--port \(text): NAME:[HOSTIP:]HOSTPORT")
                }
                guard let port = declaredPorts.first(where: { $0.name == parts[0] }) else {
                    throw RuntimeError("--port \(text): no app declares a port named \(parts[0]) (declared: \(declaredPorts.map(\.name).joined(separator: ", ")))")
                }
                guard !definitions.isEmpty else {
                    throw RuntimeError("--port needs a network of the pod's own (with --net=host the app's ports are the host's)")
                }
                forwards.append(.init(name: port.name, protocol: port.protocol, podPort: port.port, hostPort: hostPort, hostIP: parts.count == 3 ? parts[1] : nil))
            }
            var capabilities = options.capsRetain ?? Capabilities.defaultSet
            capabilities &= ~options.capsRemove
            let manifest = PodManifest(
                apps: apps, volumes: options.volumes,
                coreos: .init(
                    network: options.network, hostname: options.hostname ?? "rkt-\(uuid)", limits: options.limits,
                    capabilities: capabilities, overlay: options.overlay && !options.privateUsers, dns: options.dns,
                    hostsEntries: options.hostsEntries.map { PodManifest.NameValue(name: $0.0, value: $0.1) },
                    ports: forwards.isEmpty ? nil : forwards,
                    resourceLimits: options.resourceLimits.isEmpty ? nil : options.resourceLimits,
                    privateUsers: options.privateUsers ? true : nil,
                    networks: definitions.isEmpty ? nil : definitions))
            try images.writeAtomically(pod.manifestPath, JSONCoding.encode(manifest, pretty: true))
            guard let prepared = try pods.move(pod, to: .prepared) else { throw RuntimeError("pod \(uuid) vanished while preparing") }
            pod = prepared
            return pod
        } catch {
            _ = try? pods.move(pod, to: .garbage)
            throw error
        }
    }

    func resolveApp(_ request: AppRequest, record: ImageRecord, trees: [String], options: PodOptions) throws(RuntimeError) -> PodManifest.App {
        var exec: [String] = []
        var imageEnvironment: [(String, String)] = []
        var user = "0"
        var group = "0"
        var workingDirectory = "/"
        switch record.kind {
        case .aci:
            let manifest = try JSONCoding.decode(ACIManifest.self, from: try images.manifestBytes(record), what: "ACI manifest")
            exec = (manifest.app?.exec ?? []) + request.arguments
            imageEnvironment = (manifest.app?.environment ?? []).map { ($0.name, $0.value) }
            user = manifest.app?.user ?? "0"
            group = manifest.app?.group ?? "0"
            workingDirectory = manifest.app?.workingDirectory ?? "/"
        case .oci:
            let (_, config) = try images.ociParts(record)
            let execution = config.config
            exec = (execution?.Entrypoint ?? []) + (request.arguments.isEmpty ? (execution?.Cmd ?? []) : request.arguments)
            imageEnvironment = (execution?.Env ?? []).compactMap { entry in
                entry.firstIndex(of: "=").map { (String(entry[..<$0]), String(entry[entry.index(after: $0)...])) }
            }
            if let text = execution?.User, !text.isEmpty {
                let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
                user = parts[0]
                group = parts.count > 1 ? parts[1] : ""
            }
            if let directory = execution?.WorkingDir, !directory.isEmpty { workingDirectory = directory }
        }
        if let override = request.exec { exec = override + request.arguments }
        guard !exec.isEmpty else { throw RuntimeError("image \(record.reference) names no program; give one with --exec") }
        // rkt's precedence: inherited < image < --set-env-file < --set-env < per-app --environment.
        var environment: [(String, String)] = []
        func set(_ name: String, _ value: String) {
            environment.removeAll { $0.0 == name }
            environment.append((name, value))
        }
        if options.inheritEnvironment { for (name, value) in options.processEnvironment.sorted(by: { $0.key < $1.key }) { set(name, value) } }
        for (name, value) in imageEnvironment { set(name, value) }
        for (name, value) in options.setEnvironment { set(name, value) }
        for (name, value) in request.environment.sorted(by: { $0.key < $1.key }) { set(name, value) }
        if !environment.contains(where: { $0.0 == "PATH" }) { environment.insert(("PATH", Self.defaultPath), at: 0) }
        let name = request.name ?? Self.appName(record.name)
        set("AC_APP_NAME", name)
        let passwd = ImageStore.file("/etc/passwd", in: trees)
        let uid = try Self.resolveID(request.user ?? user, file: passwd, what: "user")
        let gid = try Self.resolveID(
            request.group ?? (group.isEmpty ? nil : group) ?? Self.primaryGroup(uid, passwd: passwd), file: ImageStore.file("/etc/group", in: trees),
            what: "group")
        return PodManifest.App(
            name: name, image: .init(id: record.id, name: record.reference),
            app: .init(
                exec: exec, user: String(uid), group: String(gid), workingDirectory: request.workingDirectory ?? workingDirectory,
                environment: environment.map { PodManifest.NameValue(name: $0.0, value: $0.1) }),
            readOnlyRootFS: options.readOnlyRootfs)
    }

    /// The ports an image declares: ACI `app.ports`, OCI `ExposedPorts` (`80/tcp` → `80-tcp`).
    func ports(of record: ImageRecord) throws(RuntimeError) -> [ACIManifest.Port] {
        switch record.kind {
        case .aci:
            let manifest = try JSONCoding.decode(ACIManifest.self, from: try images.manifestBytes(record), what: "ACI manifest")
            return manifest.app?.ports ?? []
        case .oci:
            let (_, config) = try images.ociParts(record)
            return (config.config?.ExposedPorts ?? [:]).keys.sorted().compactMap { key in
                let parts = key.split(separator: "/")
                guard let number = parts.first.flatMap({ Int($0) }) else { return nil }
                let proto = parts.count > 1 ? String(parts[1]) : "tcp"
                return ACIManifest.Port(name: "\(number)-\(proto)", protocol: proto, port: number)
            }
        }
    }

    /// `example.com/busybox` → `busybox`, lower-case letters, digits and `-` only.
    static func appName(_ imageName: String) -> String {
        let last = imageName.split(separator: "/").last.map(String.init) ?? imageName
        let cleaned = String(last.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" })
        return cleaned.isEmpty ? "app" : cleaned
    }

    /// A name or number, names looked up in the image's passwd or group file.
    static func resolveID(_ text: String, file: String?, what: String) throws(RuntimeError) -> UInt32 {
        if let number = UInt32(text) { return number }
        let lines = (file.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? "").split(separator: "\n")
        for line in lines {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count >= 3, fields[0] == text, let number = UInt32(fields[2]) { return number }
        }
        throw RuntimeError("\(what) \(text) is not in the image's /etc/\(what == "user" ? "passwd" : "group")")
    }

    static func primaryGroup(_ uid: UInt32, passwd: String?) -> String {
        let lines = (passwd.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? "").split(separator: "\n")
        for line in lines {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count >= 4, UInt32(fields[2]) == uid { return String(fields[3]) }
        }
        return "0"
    }

    /// Runs a prepared pod in the foreground and returns the app's status. The pod's lock is
    /// held until this process exits, which is what makes the pod "running".
    public func runPrepared(_ prepared: Pod) throws(RuntimeError) -> Int32 {
        guard let lock = PodStore.lock(prepared) else { throw RuntimeError("pod \(prepared.uuid) is in use") }
        guard let pod = try pods.move(prepared, to: .run) else {
            close(lock)
            throw RuntimeError("pod \(prepared.uuid) is not prepared any more")
        }
        // The lock descriptor stays open (and locked) until we exit: rkt's liveness rule.
        _ = lock
        let manifest = try pods.manifest(pod)
        let cgroups = try PodCgroups.create(uuid: pod.uuid, limits: manifest.coreos.limits)
        defer { cgroups.remove() }
        try images.writeAtomically(pod.directory + "/cgroups", JSONCoding.encode(cgroups), durable: false)
        let several = manifest.apps.count > 1
        var networks: [PodNetwork] = []
        defer {
            for network in networks { PodNetworking.detach(network) }
            if !networks.isEmpty { PodNetworking.release(store: images.directory, uuid: pod.uuid) }
        }
        let definitions = manifest.coreos.networks ?? []
        // The default route: through the first network that is a gateway, else the first.
        let routed = definitions.firstIndex(where: \.isGateway) ?? 0
        for (index, definition) in definitions.enumerated() {
            networks.append(
                try PodNetworking.allocate(store: images.directory, uuid: pod.uuid, on: definition, index: index, defaultRoute: index == routed))
        }
        if !networks.isEmpty {
            try images.writeAtomically(pod.directory + "/net", JSONCoding.encode(networks), durable: false)
            for network in networks { try PodNetworking.prepareHost(network) }
        }
        let network = networks.first
        if let network, let forwards = manifest.coreos.ports {
            try PodNetworking.forward(forwards, to: network, uuid: pod.uuid, add: true)
        }
        defer {
            if let network, let forwards = manifest.coreos.ports {
                try? PodNetworking.forward(forwards, to: network, uuid: pod.uuid, add: false)
            }
        }
        var usernsBase: UInt32 = 0
        if manifest.coreos.privateUsers == true {
            try UserNamespaces.checkReachable(pod.directory + "/apps")
            usernsBase = try UserNamespaces.allocate(store: images.directory, uuid: pod.uuid)
            for app in manifest.apps {
                try UserNamespaces.shiftOwnership(of: pod.directory + "/apps/\(app.name)/copy", by: usernsBase)
            }
        }
        defer { if usernsBase != 0 { UserNamespaces.release(store: images.directory, uuid: pod.uuid) } }
        let shared = try sharedBinds(pod, manifest)
        var specs: [Stage1Spec] = []
        for app in manifest.apps {
            var spec = Stage1Spec()
            spec.rootfs = several ? Self.appRoot(app.name) : pod.directory + "/rootfs/" + app.name
            if manifest.coreos.overlay {
                let tree = (try? String(contentsOfFile: pod.directory + "/apps/\(app.name)/tree", encoding: .utf8)) ?? ""
                for layer in tree.split(separator: ":") where !FileManager.default.fileExists(atPath: String(layer)) {
                    throw RuntimeError("pod \(pod.uuid): the image tree \(layer) is gone")
                }
                spec.overlayOptions = "lowerdir=\(tree),upperdir=\(pod.directory)/overlay/\(app.name)/upper,workdir=\(pod.directory)/overlay/\(app.name)/work"
            } else {
                spec.rootSource = pod.directory + "/apps/\(app.name)/copy"
            }
            spec.arguments = app.app.exec
            spec.environment = app.app.environment.map { "\($0.name)=\($0.value)" }
            spec.workingDirectory = app.app.workingDirectory
            spec.hostname = manifest.coreos.hostname
            spec.uid = UInt32(app.app.user) ?? 0
            spec.gid = UInt32(app.app.group) ?? 0
            spec.newNetwork = manifest.coreos.network != "host"
            spec.readOnlyRootfs = app.readOnlyRootFS
            spec.capabilities = manifest.coreos.capabilities
            spec.binds = shared
            spec.resourceLimits = manifest.coreos.resourceLimits ?? []
            spec.userNamespaceBase = usernsBase
            specs.append(spec)
        }
        specs[0].cgroupProcs = cgroups.procsFiles
        specs[0].networks = networks
        try images.writeAtomically(pod.directory + "/started", Array("\(ImageStore.now)\n".utf8), durable: false)
        if several { try ImageStore.makeDirectories(pod.directory + "/stage1") }
        let started = try Stage1.spawn(specs[0], others: Array(specs.dropFirst()), podRoot: several ? pod.directory + "/stage1" : nil)
        try images.writeAtomically(pod.directory + "/pid", Array("\(started.pid)\n".utf8), durable: false)
        coreos_forward_stop_signals(started.pid)
        let status = Stage1.wait(started.pid)
        let statuses = Stage1.appStatuses(started)
        for (index, app) in manifest.apps.enumerated() {
            // An app the init never reported died with the pod (the init was killed).
            let code = statuses[index] ?? status
            try? images.writeAtomically(pod.directory + "/apps/\(app.name)/exit", Array("\(code)\n".utf8), durable: false)
            if code == 137 && cgroups.sawOutOfMemory {
                try? images.writeAtomically(pod.directory + "/apps/\(app.name)/oom", [])
            }
        }
        return status
    }

    /// Where an app's tree is inside a pod of several apps (rkt's layout).
    static func appRoot(_ name: String) -> String { "/opt/stage2/\(name)/rootfs" }

    /// /etc/hosts always (the pod's name resolves), /etc/resolv.conf when there is a
    /// network to resolve on (--dns servers, else the host's), and the volumes: the same
    /// for every app.
    func sharedBinds(_ pod: Pod, _ manifest: PodManifest) throws(RuntimeError) -> [Stage1Spec.Bind] {
        var binds: [Stage1Spec.Bind] = []
        var hosts = "127.0.0.1\tlocalhost \(manifest.coreos.hostname)\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        for entry in manifest.coreos.hostsEntries ?? [] { hosts += "\(entry.name)\t\(entry.value)\n" }
        try images.writeAtomically(pod.directory + "/hosts", Array(hosts.utf8), durable: false)
        binds.append(.init(source: pod.directory + "/hosts", target: "/etc/hosts", readOnly: false, isDirectory: false))
        let servers = manifest.coreos.dns ?? []
        if manifest.coreos.network != "none" || !servers.isEmpty {
            var resolv = ""
            if servers.isEmpty || servers == ["host"] {
                resolv = (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""
            } else {
                resolv = servers.map { "nameserver \($0)\n" }.joined()
            }
            try images.writeAtomically(pod.directory + "/resolv.conf", Array(resolv.utf8), durable: false)
            binds.append(.init(source: pod.directory + "/resolv.conf", target: "/etc/resolv.conf", readOnly: false, isDirectory: false))
        }
        for volume in manifest.volumes {
            switch volume.kind {
            case "host":
                guard let source = volume.source else { throw RuntimeError("volume \(volume.name): kind=host needs source=") }
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory) else {
                    throw RuntimeError("volume \(volume.name): \(source) does not exist")
                }
                binds.append(.init(source: source, target: volume.target, readOnly: volume.readOnly ?? false, isDirectory: isDirectory.boolValue))
            case "empty":
                let directory = pod.directory + "/volumes/" + volume.name
                try ImageStore.makeDirectories(directory)
                binds.append(.init(source: directory, target: volume.target, readOnly: volume.readOnly ?? false, isDirectory: true))
            default:
                throw RuntimeError("volume \(volume.name): unknown kind \(volume.kind) (host or empty)")
            }
        }
        return binds
    }

    /// `enter`: a command in the namespaces of a running pod.
    public func enter(_ pod: Pod, app name: String?, command: [String]) throws(RuntimeError) -> Int32 {
        guard pod.state == .run, PodStore.isAlive(pod), let pid = PodStore.readNumber(pod.directory + "/pid") else {
            throw RuntimeError("pod \(pod.uuid) is not running")
        }
        let manifest = try pods.manifest(pod)
        guard let app = name.map({ name in manifest.apps.first { $0.name == name } }) ?? manifest.apps.first else {
            throw RuntimeError("pod \(pod.uuid) has no app \(name ?? "")")
        }
        guard name != nil || manifest.apps.count == 1 else {
            throw RuntimeError("pod \(pod.uuid) has several apps; name one with --app (\(manifest.apps.map(\.name).joined(separator: ", ")))")
        }
        // Join the init's namespaces (the apps share them), then the app's tree.
        var spec = Stage1Spec()
        spec.joinPID = Int32(pid)
        spec.joinRoot = manifest.apps.count > 1 ? Self.appRoot(app.name) : nil
        spec.arguments = command
        spec.environment = app.app.environment.map { "\($0.name)=\($0.value)" }
        spec.capabilities = manifest.coreos.capabilities
        return Stage1.wait(try Stage1.spawn(spec).pid)
    }
}
