import Crypto
import Foundation
import Glibc

/// One image in the store.
public struct ImageRecord: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable { case aci, oci }

    /// `sha512-<64 hex>` for an ACI (rkt's image ID), `sha256:<hex>` (the manifest digest) for OCI.
    public var id: String
    public var kind: Kind
    public var name: String
    /// The ACI `version` label or the OCI tag.
    public var version: String
    /// ACI: the SHA-512 (hex) of the uncompressed tar kept in `blobs/sha512`.
    public var blob: String?
    /// The digest of the image manifest in `blobs/sha256`: OCI's, or a copy of an ACI's
    /// `manifest` file (so reading it does not reopen the ACI).
    public var manifest: String?
    public var importTime: Double
    public var lastUsed: Double
    /// Bytes of the blobs as stored.
    public var size: Int64
    public var source: String

    /// `name:version` as `image list` shows it.
    public var reference: String { version.isEmpty ? name : "\(name):\(version)" }
}

/// The content-addressed image store (`--dir`, rkt's `/var/lib/rkt` made OCI-native):
/// `blobs/sha256/<hex>` (OCI manifests, configs and layers as stored), `blobs/sha512/<hex>`
/// (ACIs, uncompressed), `images/<id>.json` (one record per image), `trees/<id>/rootfs`
/// (an image rendered once, with a `rendered` mark written last) and `tmp/` (imports in
/// progress, on the same file system so they land by `rename`). Mutations hold an
/// exclusive `flock` on `lock`; an interrupted import leaves only `tmp/` files, which the
/// next `gc` removes.
public final class ImageStore {
    public let directory: String

    public init(directory: String) throws(RuntimeError) {
        self.directory = directory
        for sub in ["", "/blobs/sha256", "/blobs/sha512", "/images", "/trees", "/tmp"] {
            try Self.makeDirectories(directory + sub)
        }
    }

    static func makeDirectories(_ path: String) throws(RuntimeError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw RuntimeError("mkdir \(current): \(String(cString: strerror(errno)))")
            }
        }
    }

    // MARK: locking

    /// Runs `body` holding the store's exclusive lock.
    func locked<T>(_ body: () throws(RuntimeError) -> T) throws(RuntimeError) -> T {
        let descriptor = open(directory + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw RuntimeError("open \(directory)/lock: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw RuntimeError("lock \(directory): \(String(cString: strerror(errno)))") }
        }
        return try body()
    }

    // MARK: records

    public func records() -> [ImageRecord] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/images")) ?? []
        return names.filter { $0.hasSuffix(".json") }.compactMap { name in
            guard let data = FileManager.default.contents(atPath: directory + "/images/" + name) else { return nil }
            return try? JSONDecoder().decode(ImageRecord.self, from: data)
        }.sorted { $0.importTime < $1.importTime }
    }

    static func recordFileName(_ id: String) -> String { id.replacingOccurrences(of: ":", with: "-") + ".json" }

    func save(_ record: ImageRecord) throws(RuntimeError) {
        try writeAtomically(directory + "/images/" + Self.recordFileName(record.id), JSONCoding.encode(record, pretty: true))
    }

    /// The image `reference` names: an ID (or a unique prefix of at least 12 characters),
    /// `NAME:VERSION`, or `NAME` (the newest import of that name).
    public func resolve(_ reference: String) throws(RuntimeError) -> ImageRecord {
        let all = records()
        if let exact = all.first(where: { $0.id == reference }) { return exact }
        let normalized = reference.replacingOccurrences(of: "sha256-", with: "sha256:")
        if reference.count >= 12 {
            let matches = all.filter { $0.id.hasPrefix(normalized) }
            if matches.count == 1 { return matches[0] }
            if matches.count > 1 { throw RuntimeError("image ID prefix \(reference) is ambiguous") }
        }
        if let byReference = all.last(where: { $0.reference == reference }) { return byReference }
        if let byName = all.last(where: { $0.name == reference }) { return byName }
        throw RuntimeError("no image \(reference) in the store \(directory)")
    }

    public func blobPath(_ digest: String) -> String {
        if digest.hasPrefix("sha256:") { return directory + "/blobs/sha256/" + digest.dropFirst(7) }
        return directory + "/blobs/sha512/" + digest
    }

    public func readBlob(_ digest: String, limit: Int = 16 << 20) throws(RuntimeError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: blobPath(digest)) else {
            throw RuntimeError("blob \(digest) is missing from the store")
        }
        guard data.count <= limit else { throw RuntimeError("blob \(digest) is larger than \(limit) bytes") }
        return Array(data)
    }

    // MARK: writing

    func temporaryPath(_ hint: String) -> String {
        directory + "/tmp/\(hint)-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    }

    /// Writes a file whole or not at all (temporary file in the store, fsync, rename).
    /// `durable: false` skips the fsync, for run-time state a crash makes moot anyway (a
    /// pod's pid and start time).
    public func writeAtomically(_ path: String, _ bytes: [UInt8], durable: Bool = true) throws(RuntimeError) {
        let temporary = temporaryPath("write")
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw RuntimeError("create \(temporary): \(String(cString: strerror(errno)))") }
        let complete = bytes.withUnsafeBytes { Self.writeAll(descriptor, $0) } && (!durable || fsync(descriptor) == 0)
        close(descriptor)
        guard complete, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw RuntimeError("write \(path): \(String(cString: strerror(errno)))")
        }
    }

    static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            offset += count
        }
        return true
    }

    /// Copies the file at `source` into `blobs/sha256`, checking it against `expected`
    /// (when given) while copying. Returns the digest and size.
    @discardableResult
    func ingestBlob(from source: String, expected: String?, maxBytes: Int64 = 16 << 30) throws(RuntimeError) -> (digest: String, size: Int64) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw RuntimeError("open \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        if let expected, FileManager.default.fileExists(atPath: blobPath(expected)) {
            var info = stat()
            fstat(input, &info)
            return (expected, Int64(info.st_size))
        }
        let temporary = temporaryPath("blob")
        let output = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw RuntimeError("create \(temporary): \(String(cString: strerror(errno)))") }
        var hash = SHA256()
        var size: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var failure: String?
        while failure == nil {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { failure = "read \(source): \(String(cString: strerror(errno)))" }
            if count <= 0 { break }
            size += Int64(count)
            if size > maxBytes { failure = "\(source) is larger than \(maxBytes) bytes" }
            buffer.withUnsafeBytes { hash.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            if !buffer.withUnsafeBytes({ Self.writeAll(output, UnsafeRawBufferPointer(rebasing: $0[0..<count])) }) {
                failure = "write \(temporary): \(String(cString: strerror(errno)))"
            }
        }
        if failure == nil && fsync(output) != 0 { failure = "fsync: \(String(cString: strerror(errno)))" }
        close(output)
        let digest = "sha256:" + TarStream.hex(hash.finalize())
        if failure == nil, let expected, expected != digest {
            failure = "\(source): digest mismatch: expected \(expected), got \(digest)"
        }
        guard failure == nil, rename(temporary, blobPath(digest)) == 0 else {
            unlink(temporary)
            throw RuntimeError(failure ?? "rename into the store: \(String(cString: strerror(errno)))")
        }
        return (digest, size)
    }

    func ingestBytes(_ bytes: [UInt8]) throws(RuntimeError) -> String {
        var hash = SHA256()
        bytes.withUnsafeBytes { hash.update(bufferPointer: $0) }
        let digest = "sha256:" + TarStream.hex(hash.finalize())
        if !FileManager.default.fileExists(atPath: blobPath(digest)) { try writeAtomically(blobPath(digest), bytes) }
        return digest
    }

    static var now: Double {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
