import CloudInit
import Dispatch
import EtcdServer
import Foundation
import Journal
import Raft
import Runtime
import Storage
import UnitFile
import YAML

/// The parsers that read what a user, a peer or a disk hands over, each as a function of
/// raw bytes for a fuzzer (`coreos-fuzz`). A target may throw any of its typed errors; it
/// must not crash, hang or take memory without bound, whatever the bytes.
///
/// The gRPC handlers and the v2 HTTP query parser are fuzzed through a live server
/// instead (Tests/Fuzz/live-requests.py): that is their real input path.
public enum FuzzTargets {
    /// Each target's name, what it reads, and the function.
    public struct Target: Sendable {
        public let name: String
        public let summary: String
        public let run: @Sendable ([UInt8]) -> Void
    }

    public static let all: [Target] = [
        Target(name: "wal", summary: "a WAL segment of a member's data directory, opened", run: wal),
        Target(name: "snapshot-store", summary: "a Raft snapshot file in a data directory's snap/, opened", run: snapshotStore),
        Target(name: "etcd-snapshot", summary: "an etcd snapshot file (etcdctl snapshot status / restore)", run: etcdSnapshot),
        Target(name: "unit-file", summary: "a systemd unit file with [X-Fleet]", run: unitFile),
        Target(name: "cloud-config", summary: "user data: #cloud-config YAML, scripts, validation", run: cloudConfig),
        Target(name: "aci", summary: "an ACI archive (tar, gzip/bzip2/xz) imported into the image store", run: aci),
        Target(name: "docker-archive", summary: "a docker save archive imported into the image store", run: dockerArchive),
        Target(name: "image-manifests", summary: "OCI/Docker manifests, indexes, image configs and ACI manifests (JSON)", run: manifests),
        Target(name: "journal-match", summary: "journalctl matches, unit names, priorities, times and --grep patterns", run: journalMatch),
    ]

    public static func named(_ name: String) -> Target? { all.first { $0.name == name } }

    // MARK: Storage

    /// A scratch directory per process, emptied between inputs.
    static let scratch: String = {
        let path = NSTemporaryDirectory() + "coreos-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    static func freshDirectory(_ name: String) -> String {
        let path = scratch + "/" + name
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func write(_ bytes: [UInt8], to path: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }

    static func wal(_ bytes: [UInt8]) {
        let directory = freshDirectory("wal-member")
        try? FileManager.default.createDirectory(atPath: directory + "/wal", withIntermediateDirectories: true)
        write(bytes, to: directory + "/wal/0000000000000000-0000000000000000.wal")
        _ = try? DurableLog.open(path: directory, initialMembership: Membership(voters: [1]))
    }

    static func snapshotStore(_ bytes: [UInt8]) {
        let directory = freshDirectory("snap-member")
        try? FileManager.default.createDirectory(atPath: directory + "/snap", withIntermediateDirectories: true)
        write(bytes, to: directory + "/snap/0000000000000002-0000000000000010.snap")
        _ = try? DurableLog.open(path: directory, initialMembership: Membership(voters: [1]))
    }

    static func etcdSnapshot(_ bytes: [UInt8]) {
        let path = freshDirectory("etcd-snapshot") + "/snapshot.db"
        write(bytes, to: path)
        _ = try? EtcdSnapshotFile.status(path: path)
    }

    // MARK: Text formats

    static func unitFile(_ bytes: [UInt8]) {
        guard let unit = try? UnitFile(parsing: bytes, file: "fuzz.service") else { return }
        // What fleet and the supervisor read out of a parsed unit.
        for section in unit.sections {
            for entry in section.entries { _ = try? ExecCommand.parse(entry.value) }
        }
        _ = try? unit.serialized()
    }

    static func cloudConfig(_ bytes: [UInt8]) {
        _ = CloudConfigValidator.validate(userData: bytes)
        if case .cloudConfig(let text) = UserData.recognize(bytes) {
            _ = CloudConfig(document: try? YAMLParser.parse(text))
        }
        _ = VariableSubstitution.apply(bytes, addresses: MetadataAddresses(publicIPv4: "203.0.113.1", privateIPv4: "10.0.0.1"))
    }

    // MARK: Images

    static func importImage(_ bytes: [UInt8], fileName: String, reference: (String) -> ImageReference) {
        let directory = freshDirectory("images")
        let file = directory + "/" + fileName
        write(bytes, to: file)
        guard let store = try? ImageStore(directory: directory + "/store") else { return }
        var options = FetchOptions()
        options.verifySignatures = false
        options.pullPolicy = "new"
        let done = DispatchSemaphore(value: 0)
        let imported = reference(file)
        Task {
            _ = try? await store.fetch(imported, options: options)
            done.signal()
        }
        done.wait()
    }

    static func aci(_ bytes: [UInt8]) {
        importImage(bytes, fileName: "image.aci") { .aciFile($0) }
    }

    static func dockerArchive(_ bytes: [UInt8]) {
        importImage(bytes, fileName: "image.tar") { .dockerArchive(file: $0, tag: nil) }
    }

    static func manifests(_ bytes: [UInt8]) {
        let decoder = JSONDecoder()
        let data = Data(bytes)
        _ = try? decoder.decode(OCIManifest.self, from: data)
        _ = try? decoder.decode(OCIIndex.self, from: data)
        _ = try? decoder.decode(OCIImageConfig.self, from: data)
        _ = try? decoder.decode(ACIManifest.self, from: data)
        _ = try? decoder.decode([DockerArchiveEntry].self, from: data)
        _ = ImageReference(parsing: String(decoding: bytes, as: UTF8.self))
    }

    // MARK: Journal

    static func journalMatch(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        _ = try? JournalPathMatch.terms(for: text)
        _ = JournalMatches.unitTerms(text)
        _ = JournalMatches.mangleUnit(text)
        _ = try? JournalMatches.priorities(text)
        _ = try? JournalTime.parse(text, now: 1_700_000_000_000_000, utc: true)
        if let pattern = try? MessagePattern(text, caseSensitive: nil) {
            _ = pattern.match(ArraySlice(bytes))
        }
    }
}
