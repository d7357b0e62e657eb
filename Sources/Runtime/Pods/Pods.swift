public import Foundation
import Glibc

/// One app of a pod as the user asked for it.
public struct AppRequest: Sendable, Hashable, Codable {
    public var image: String
    public var name: String?
    public var exec: [String]?
    public var arguments: [String] = []
    public var user: String?
    public var group: String?
    public var workingDirectory: String?
    public var environment: [String: String] = [:]

    public init(image: String) { self.image = image }
}

/// Everything a pod is started from: written to the pod directory as `pod` (an appc
/// PodManifest with our settings under `coreos`), so `run-prepared`, `status`,
/// `cat-manifest` and `gc` need nothing else.
public struct PodManifest: Codable, Sendable, Hashable {
    public struct App: Codable, Sendable, Hashable {
        public struct Image: Codable, Sendable, Hashable {
            public var id: String
            public var name: String
        }

        public struct Exec: Codable, Sendable, Hashable {
            public var exec: [String]
            public var user: String
            public var group: String
            public var workingDirectory: String
            public var environment: [NameValue]
        }

        public var name: String
        public var image: Image
        public var app: Exec
        public var readOnlyRootFS: Bool
    }

    public struct NameValue: Codable, Sendable, Hashable {
        public var name: String
        public var value: String
    }

    public struct Volume: Codable, Sendable, Hashable {
        public var name: String
        public var kind: String
        public var source: String?
        public var readOnly: Bool?
        public var target: String

        public init(name: String, kind: String, source: String?, readOnly: Bool?, target: String) {
            self.name = name
            self.kind = kind
            self.source = source
            self.readOnly = readOnly
            self.target = target
        }
    }

    public struct Settings: Codable, Sendable, Hashable {
        public var network: String
        public var hostname: String
        public var limits: ResourceLimits
        public var capabilities: UInt64
        public var overlay: Bool
        public var dns: [String]?
        public var hostsEntries: [NameValue]?
        public var ports: [PortForward]?
        public var resourceLimits: [ResourceLimit]?
        /// `--private-users`: the pod runs in its own user namespace, its tree owned by
        /// the host IDs its 0 maps to.
        public var privateUsers: Bool?
        /// The networks' definitions as they were when the pod was prepared.
        public var networks: [NetworkDefinition]?
    }

    /// `--port NAME:[HOSTIP:]HOSTPORT` resolved against the apps' ports.
    public struct PortForward: Codable, Sendable, Hashable {
        public var name: String
        public var `protocol`: String
        public var podPort: Int
        public var hostPort: Int
        public var hostIP: String?
    }

    public var acKind = "PodManifest"
    public var acVersion = "0.8.11"
    public var apps: [App]
    public var volumes: [Volume]
    public var coreos: Settings
}

/// rkt's pod states, each a directory under `pods/`.
public enum PodState: String, Sendable, CaseIterable, Codable {
    case embryo, prepare, prepared, run, exitedGarbage = "exited-garbage", garbage

    /// The word `rkt list` shows, given whether the pod is locked (alive).
    public func shown(alive: Bool) -> String {
        switch self {
        case .embryo: "embryo"
        case .prepare: alive ? "preparing" : "aborted prepare"
        case .prepared: "prepared"
        case .run: alive ? "running" : "exited"
        case .exitedGarbage: alive ? "exited deleting" : "exited garbage"
        case .garbage: alive ? "deleting" : "garbage"
        }
    }
}

/// A pod on disk.
public struct Pod: Sendable, Hashable {
    public var uuid: String
    public var state: PodState
    public var directory: String

    public var manifestPath: String { directory + "/pod" }
}

/// Pods without a daemon: each is a directory whose parent names its state; transitions are
/// `rename(2)`s, and a pod is alive while some process holds an exclusive `flock` on its
/// directory (the `coreos run` that waits for it).
public struct PodStore: Sendable {
    public let directory: String
    /// The store (`--dir`) the pods directory is in; addresses and ID ranges live there.
    let storeDirectory: String

    public init(directory: String) throws(RuntimeError) {
        storeDirectory = directory
        self.directory = directory + "/pods"
        for state in PodState.allCases { try ImageStore.makeDirectories(self.directory + "/" + state.rawValue) }
    }

    public static func newUUID() -> String {
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255) }
        bytes[6] = bytes[6] & 0x0f | 0x40
        bytes[8] = bytes[8] & 0x3f | 0x80
        let hex = TarStream.hex(bytes)
        let parts = [hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4), hex.dropFirst(20)]
        return parts.joined(separator: "-")
    }

    public func path(_ uuid: String, _ state: PodState) -> String { directory + "/" + state.rawValue + "/" + uuid }

    public func all() -> [Pod] {
        PodState.allCases.flatMap { state in
            ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/" + state.rawValue)) ?? []).map {
                Pod(uuid: $0, state: state, directory: path($0, state))
            }
        }
    }

    /// The pod whose UUID is or starts with `prefix` (at least 8 characters unless exact).
    public func find(_ prefix: String) throws(RuntimeError) -> Pod {
        let pods = all()
        if let exact = pods.first(where: { $0.uuid == prefix }) { return exact }
        let matches = prefix.count >= 8 ? pods.filter { $0.uuid.hasPrefix(prefix) } : []
        guard matches.count == 1 else {
            throw RuntimeError(matches.isEmpty ? "no pod with UUID \(prefix)" : "UUID prefix \(prefix) is ambiguous")
        }
        return matches[0]
    }

    /// Moves a pod to another state; nil when it was not in `from` any more (someone else won).
    public func move(_ pod: Pod, to state: PodState) throws(RuntimeError) -> Pod? {
        let target = path(pod.uuid, state)
        guard rename(pod.directory, target) == 0 else {
            if errno == ENOENT { return nil }
            throw RuntimeError("move pod \(pod.uuid) to \(state.rawValue): \(String(cString: strerror(errno)))")
        }
        return Pod(uuid: pod.uuid, state: state, directory: target)
    }

    /// An exclusive, non-blocking lock on the pod directory; the descriptor holds it.
    public static func lock(_ pod: Pod) -> Int32? {
        let descriptor = open(pod.directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            return nil
        }
        return descriptor
    }

    /// True while some process holds the pod's lock.
    public static func isAlive(_ pod: Pod) -> Bool {
        guard let descriptor = lock(pod) else { return FileManager.default.fileExists(atPath: pod.directory) }
        close(descriptor)
        return false
    }

    public func manifest(_ pod: Pod) throws(RuntimeError) -> PodManifest {
        guard let data = FileManager.default.contents(atPath: pod.manifestPath) else {
            throw RuntimeError("pod \(pod.uuid) has no manifest")
        }
        return try JSONCoding.decode(PodManifest.self, from: Array(data), what: "pod \(pod.uuid) manifest")
    }

    public static func readNumber(_ path: String) -> Int? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    public static func timestamp(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }

    /// The pod's places on its networks, while it has them.
    public func networks(_ pod: Pod) -> [PodNetwork] {
        FileManager.default.contents(atPath: pod.directory + "/net").flatMap { try? JSONDecoder().decode([PodNetwork].self, from: $0) } ?? []
    }

    /// Removes a pod that nobody runs: its cgroups and addresses (if any are left) and its directory.
    public func destroy(_ pod: Pod) throws(RuntimeError) {
        for network in networks(pod) { PodNetworking.detach(network) }
        UserNamespaces.release(store: storeDirectory, uuid: pod.uuid)
        PodNetworking.release(store: storeDirectory, uuid: pod.uuid)
        if let data = FileManager.default.contents(atPath: pod.directory + "/cgroups"),
            let cgroups = try? JSONDecoder().decode(PodCgroups.self, from: data)
        {
            cgroups.remove()
        }
        do {
            try FileManager.default.removeItem(atPath: pod.directory)
        } catch {
            throw RuntimeError("remove pod \(pod.uuid): \(error.localizedDescription)")
        }
    }
}
