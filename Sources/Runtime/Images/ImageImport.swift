import Foundation
import Glibc

/// An image as a user names it on the command line.
public enum ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// A name (`NAME[:VERSION]`) or an ID already in the store.
    case stored(String)
    /// An `.aci` file (`PATH.aci` or `file://PATH`).
    case aciFile(String)
    /// `oci:DIR[:TAG]`, skopeo's name for an OCI image layout.
    case ociLayout(directory: String, tag: String?)
    /// `docker-archive:FILE[:TAG]`: what `docker save` and skopeo write.
    case dockerArchive(file: String, tag: String?)
    /// `docker://HOST[:PORT]/NAME[:TAG]`.
    case registry(String)
    /// `https://…/x.aci`.
    case aciURL(String)

    public init(parsing text: String) {
        func pathAndTag(_ rest: Substring) -> (String, String?) {
            guard let colon = rest.firstIndex(of: ":") else { return (String(rest), nil) }
            return (String(rest[..<colon]), String(rest[rest.index(after: colon)...]))
        }
        if text.hasPrefix("oci:") {
            let (directory, tag) = pathAndTag(text.dropFirst(4))
            self = .ociLayout(directory: directory, tag: tag)
        } else if text.hasPrefix("docker-archive:") {
            let (file, tag) = pathAndTag(text.dropFirst(15))
            self = .dockerArchive(file: file, tag: tag)
        } else if text.hasPrefix("docker://") {
            self = .registry(String(text.dropFirst(9)))
        } else if text.hasPrefix("file://") {
            self = .aciFile(String(text.dropFirst(7)))
        } else if text.hasPrefix("https://") || text.hasPrefix("http://") {
            self = .aciURL(text)
        } else if text.hasSuffix(".aci") || text.hasPrefix("/") || text.hasPrefix("./") {
            self = .aciFile(text)
        } else {
            self = .stored(text)
        }
    }

    public var description: String {
        switch self {
        case .stored(let name): name
        case .aciFile(let path): path
        case .ociLayout(let directory, let tag): "oci:\(directory)" + (tag.map { ":\($0)" } ?? "")
        case .dockerArchive(let file, let tag): "docker-archive:\(file)" + (tag.map { ":\($0)" } ?? "")
        case .registry(let name): "docker://\(name)"
        case .aciURL(let url): url
        }
    }
}

/// How images are fetched from the network.
public struct FetchOptions: Sendable {
    /// Plain HTTP registries (rkt's `--insecure-options=http`).
    public var insecureHTTP = false
    /// Called with (blob, bytes so far, total) while blobs download.
    public var progress: (@Sendable (String, Int64, Int64) -> Void)?
    /// rkt's `--pull-policy`: `new` uses a stored copy when there is one (run's default),
    /// `update` asks the registry again (fetch's default), `never` only uses the store.
    public var pullPolicy = "update"
    /// ACIs must carry a detached signature (`X.aci.asc`) by a trusted key, unless
    /// `--insecure-options=image`.
    public var verifySignatures = true

    public init() {}
}

extension ImageStore {
    /// The image `reference` names, imported first when it is not a stored name.
    public func fetch(_ reference: ImageReference, options: FetchOptions = FetchOptions()) async throws(RuntimeError) -> ImageRecord {
        if case .aciURL(let url) = reference {
            if options.pullPolicy != "update", let stored = records().last(where: { $0.source == url }) { return stored }
            guard url.hasPrefix("https://") || options.insecureHTTP else {
                throw RuntimeError("\(url): plain HTTP needs --insecure-options=http")
            }
            // The ACI and its signature land in tmp/ and are imported from there.
            let local = temporaryPath("download") + ".aci"
            defer {
                unlink(local)
                unlink(local + ".asc")
            }
            guard try await Download.file(url, to: local, progress: options.progress) else { throw RuntimeError("\(url): not found (404)") }
            if options.verifySignatures {
                guard try await Download.file(url + ".asc", to: local + ".asc", progress: nil) else {
                    throw RuntimeError("\(url) has no signature (\(url).asc); skip the check with --insecure-options=image")
                }
            }
            var record = try fetchLocal(.aciFile(local), verifySignatures: options.verifySignatures)
            record.source = url
            return try locked { () throws(RuntimeError) in try keep(record) }
        }
        if case .registry(let name) = reference {
            let parsed = try RegistryReference(parsing: name)
            if options.pullPolicy != "update", let stored = records().last(where: { $0.source == "docker://\(parsed)" }) {
                return stored
            }
            guard options.pullPolicy != "never" else { throw RuntimeError("docker://\(parsed) is not in the store and --pull-policy=never") }
            return try await importFromRegistry(RegistryClient(reference: parsed, insecureHTTP: options.insecureHTTP, progress: options.progress))
        }
        return try fetchLocal(reference, verifySignatures: options.verifySignatures)
    }

    func fetchLocal(_ reference: ImageReference, verifySignatures: Bool = true) throws(RuntimeError) -> ImageRecord {
        switch reference {
        case .stored(let name): return try resolve(name)
        case .aciFile(let path):
            let trust = TrustStore(storeDirectory: directory)
            return try locked { () throws(RuntimeError) in
                try importACI(path: path) { (name) throws(RuntimeError) in
                    guard verifySignatures else { return }
                    let signature = path + ".asc"
                    guard FileManager.default.fileExists(atPath: signature) else {
                        throw RuntimeError("\(path) has no signature (\(signature)); skip the check with --insecure-options=image")
                    }
                    try trust.verify(file: path, signature: signature, name: name)
                }
            }
        case .ociLayout(let directory, let tag):
            return try locked { () throws(RuntimeError) in try importOCILayout(directory: directory, tag: tag) }
        case .dockerArchive(let file, let tag):
            return try locked { () throws(RuntimeError) in try importDockerArchive(file: file, tag: tag) }
        case .registry(let name):
            throw RuntimeError("docker://\(name) needs the network")
        case .aciURL(let url):
            throw RuntimeError("\(url) needs the network")
        }
    }

    /// Keeps `record`, merging with an existing record of the same image (first import
    /// time kept).
    func keep(_ record: ImageRecord) throws(RuntimeError) -> ImageRecord {
        var record = record
        if let existing = records().first(where: { $0.id == record.id }) { record.importTime = existing.importTime }
        try save(record)
        return record
    }

    // MARK: ACI

    /// An ACI (any compression): stored uncompressed under its SHA-512, which names it.
    /// Only `manifest` and `rootfs/…` may be in it.
    func importACI(path: String, verify: (String) throws(RuntimeError) -> Void = { _ in }) throws(RuntimeError) -> ImageRecord {
        let temporary = temporaryPath("aci")
        let output = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw RuntimeError("create \(temporary): \(String(cString: strerror(errno)))") }
        var closed = false
        defer {
            if !closed { close(output) }
            unlink(temporary)
        }
        let stream = try TarStream(path: path, tee: output, sha512: true)
        var manifestBytes: [UInt8]?
        while let entry = try stream.nextEntry() {
            guard let parts = try LayerUnpacker.components(of: entry.path) else { continue }
            if parts == ["manifest"] {
                guard entry.kind == .regular, entry.size <= 1 << 20 else { throw RuntimeError("\(path): the manifest is not a small file") }
                var bytes: [UInt8] = []
                try stream.readData { (block, _) throws(RuntimeError) in bytes += block }
                manifestBytes = bytes
            } else if parts[0] != "rootfs" {
                throw RuntimeError("\(path): \(entry.path) is outside rootfs/ (an ACI holds only manifest and rootfs)")
            }
        }
        let digests = try stream.finish()
        guard let manifestBytes else { throw RuntimeError("\(path): no manifest (is it an ACI?)") }
        let manifest = try JSONCoding.decode(ACIManifest.self, from: manifestBytes, what: "\(path): manifest")
        guard manifest.acKind == "ImageManifest" else { throw RuntimeError("\(path): acKind is \(manifest.acKind), not ImageManifest") }
        try verify(manifest.name)
        guard fsync(output) == 0 else { throw RuntimeError("fsync \(temporary): \(String(cString: strerror(errno)))") }
        close(output)
        closed = true
        let full = String((digests.uncompressedSHA512 ?? "").dropFirst(7))
        guard rename(temporary, blobPath(full)) == 0 else {
            throw RuntimeError("rename into the store: \(String(cString: strerror(errno)))")
        }
        let now = Self.now
        return try keep(
            ImageRecord(
                id: "sha512-" + full.prefix(64), kind: .aci, name: manifest.name, version: manifest.label("version") ?? "",
                blob: full, manifest: try ingestBytes(manifestBytes), importTime: now, lastUsed: now, size: digests.uncompressedBytes,
                source: path))
    }

    // MARK: registry

    /// A Docker Registry v2 image: manifest (lists resolved for this machine), config and
    /// layers into `blobs/sha256`, each checked against its digest. Partial downloads stay
    /// in `tmp/partial-<digest>` and are resumed by the next fetch.
    func importFromRegistry(_ client: RegistryClient) async throws(RuntimeError) -> ImageRecord {
        let (manifestBytes, manifestDigest) = try await client.manifest()
        let manifest = try JSONCoding.decode(OCIManifest.self, from: manifestBytes, what: "\(client.reference) manifest")
        var size = Int64(manifestBytes.count)
        for blob in [manifest.config] + manifest.layers {
            size += blob.size
            guard !FileManager.default.fileExists(atPath: blobPath(blob.digest)) else { continue }
            guard blob.digest.hasPrefix("sha256:"), blob.digest.count == 71, blob.digest.dropFirst(7).allSatisfy(\.isHexDigit) else {
                throw RuntimeError("\(client.reference): unsupported digest \(blob.digest)")
            }
            let partial = directory + "/tmp/partial-" + blob.digest.dropFirst(7)
            try await client.download(blob, to: partial)
            guard rename(partial, blobPath(blob.digest)) == 0 else {
                throw RuntimeError("rename into the store: \(String(cString: strerror(errno)))")
            }
        }
        _ = try JSONCoding.decode(OCIImageConfig.self, from: try readBlob(manifest.config.digest), what: "config \(manifest.config.digest)")
        return try locked { () throws(RuntimeError) -> ImageRecord in
            guard try ingestBytes(manifestBytes) == manifestDigest else { throw RuntimeError("\(client.reference): manifest digest changed") }
            let reference = client.reference
            let now = Self.now
            let name = reference.registry == "registry-1.docker.io" ? "docker.io/" + reference.repository : reference.registry + "/" + reference.repository
            return try keep(
                ImageRecord(
                    id: manifestDigest, kind: .oci, name: name, version: reference.reference, blob: nil, manifest: manifestDigest,
                    importTime: now, lastUsed: now, size: size, source: "docker://\(reference)"))
        }
    }

    // MARK: OCI layout

    func importOCILayout(directory: String, tag: String?) throws(RuntimeError) -> ImageRecord {
        guard FileManager.default.fileExists(atPath: directory + "/oci-layout") else {
            throw RuntimeError("\(directory) is not an OCI image layout (no oci-layout file)")
        }
        let indexBytes = try readSmallFile(directory + "/index.json")
        let index = try JSONCoding.decode(OCIIndex.self, from: indexBytes, what: "\(directory)/index.json")
        var descriptor: OCIDescriptor
        if let tag {
            guard let named = index.manifests.last(where: { $0.referenceName == tag }) else {
                let tags = index.manifests.compactMap(\.referenceName)
                throw RuntimeError("\(directory) has no image tagged \(tag) (tags: \(tags.isEmpty ? "none" : tags.joined(separator: ", ")))")
            }
            descriptor = named
        } else if index.manifests.count == 1 {
            descriptor = index.manifests[0]
        } else if let latest = index.manifests.last(where: { $0.referenceName == "latest" }) {
            descriptor = latest
        } else {
            throw RuntimeError("\(directory) holds \(index.manifests.count) images; name one as oci:\(directory):TAG")
        }
        let blobs = directory + "/blobs/"
        func layoutBlob(_ digest: String) throws(RuntimeError) -> String {
            let parts = digest.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0] == "sha256", parts[1].count == 64, parts[1].allSatisfy(\.isHexDigit) else {
                throw RuntimeError("unsupported digest \(digest)")
            }
            return blobs + parts[0] + "/" + parts[1]
        }
        // Nested indexes: choose this machine's platform at each level.
        var depth = 0
        while MediaType.isIndex(descriptor.mediaType) {
            depth += 1
            guard depth < 8 else { throw RuntimeError("\(directory): indexes nested too deep") }
            let nested = try JSONCoding.decode(OCIIndex.self, from: try readSmallFile(try layoutBlob(descriptor.digest)), what: descriptor.digest)
            descriptor = try Self.choosePlatform(nested.manifests, in: directory)
        }
        let manifestPath = try layoutBlob(descriptor.digest)
        try ingestBlob(from: manifestPath, expected: descriptor.digest)
        let manifest = try JSONCoding.decode(OCIManifest.self, from: try readBlob(descriptor.digest), what: "manifest \(descriptor.digest)")
        var size = descriptor.size
        for blob in [manifest.config] + manifest.layers {
            size += try ingestBlob(from: try layoutBlob(blob.digest), expected: blob.digest).size
        }
        _ = try JSONCoding.decode(OCIImageConfig.self, from: try readBlob(manifest.config.digest), what: "config \(manifest.config.digest)")
        // The layout's reference names the image (`busybox:1.35` or `busybox`), else the directory does.
        let reference = tag ?? descriptor.referenceName ?? URL(fileURLWithPath: directory).lastPathComponent
        let (name, version) = Self.splitNameAndTag(reference)
        let now = Self.now
        return try keep(
            ImageRecord(
                id: descriptor.digest, kind: .oci, name: name, version: version, blob: nil,
                manifest: descriptor.digest, importTime: now, lastUsed: now, size: size, source: "oci:\(directory)"))
    }

    /// `host:5000/a/b:tag` → (`host:5000/a/b`, `tag`); no tag → `latest`.
    static func splitNameAndTag(_ reference: String) -> (String, String) {
        guard let colon = reference.lastIndex(of: ":"), !reference[colon...].contains("/") else { return (reference, "latest") }
        return (String(reference[..<colon]), String(reference[reference.index(after: colon)...]))
    }

    static var machineArchitecture: String {
        var names = utsname()
        uname(&names)
        let machine = withUnsafeBytes(of: names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        switch machine {
        case "x86_64": return "amd64"
        case "aarch64": return "arm64"
        case "i686", "i386": return "386"
        default: return machine
        }
    }

    static func choosePlatform(_ manifests: [OCIDescriptor], in source: String) throws(RuntimeError) -> OCIDescriptor {
        let architecture = machineArchitecture
        if let match = manifests.first(where: { $0.platform?.os == "linux" && $0.platform?.architecture == architecture }) {
            return match
        }
        if let unlabelled = manifests.first(where: { $0.platform == nil }) { return unlabelled }
        let offered = manifests.compactMap { $0.platform.map { "\($0.os)/\($0.architecture)" } }
        throw RuntimeError("\(source) has no image for linux/\(architecture) (it has \(offered.joined(separator: ", ")))")
    }

    static func isGzipFile(_ path: String) -> Bool {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var magic: [UInt8] = [0, 0]
        return read(descriptor, &magic, 2) == 2 && magic == [0x1f, 0x8b]
    }

    func readSmallFile(_ path: String, limit: Int = 16 << 20) throws(RuntimeError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuntimeError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard data.count <= limit else { throw RuntimeError("\(path) is larger than \(limit) bytes") }
        return Array(data)
    }

    // MARK: docker-archive

    /// `docker save` output, old layout (`<id>/layer.tar`, `<id>.json`) or new (an OCI
    /// layout inside): unpacked into `tmp/`, then stored as an OCI image.
    func importDockerArchive(file: String, tag: String?) throws(RuntimeError) -> ImageRecord {
        let scratch = temporaryPath("docker-archive")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var policy = UnpackPolicy()
        policy.preserveOwners = false
        let unpacker = try LayerUnpacker(rootPath: scratch, policy: policy)
        try unpacker.apply(TarStream(path: file))
        let entries = try JSONCoding.decode(
            [DockerArchiveEntry].self, from: try readSmallFile(scratch + "/manifest.json"), what: "\(file): manifest.json")
        let entry: DockerArchiveEntry
        if let tag {
            guard let tagged = entries.first(where: { ($0.RepoTags ?? []).contains { $0 == tag || $0.hasSuffix("/" + tag) || $0.hasSuffix(":" + tag) } })
            else { throw RuntimeError("\(file) has no image tagged \(tag)") }
            entry = tagged
        } else {
            guard entries.count == 1 else { throw RuntimeError("\(file) holds \(entries.count) images; name one as docker-archive:\(file):TAG") }
            entry = entries[0]
        }
        func inside(_ relative: String) throws(RuntimeError) -> String {
            guard let parts = try LayerUnpacker.components(of: relative) else { throw RuntimeError("\(file): empty path in manifest.json") }
            return scratch + "/" + parts.joined(separator: "/")
        }
        let config = try ingestBlob(from: try inside(entry.Config), expected: nil)
        var layers: [OCIDescriptor] = []
        var size = config.size
        for layer in entry.Layers {
            let path = try inside(layer)
            let stored = try ingestBlob(from: path, expected: nil)
            let type = Self.isGzipFile(path) ? MediaType.ociLayerGzip : MediaType.ociLayer
            layers.append(OCIDescriptor(mediaType: type, digest: stored.digest, size: stored.size))
            size += stored.size
        }
        let manifest = OCIManifest(config: OCIDescriptor(mediaType: MediaType.ociConfig, digest: config.digest, size: config.size), layers: layers)
        let manifestBytes = JSONCoding.encode(manifest)
        let digest = try ingestBytes(manifestBytes)
        _ = try JSONCoding.decode(OCIImageConfig.self, from: try readBlob(config.digest), what: "\(file): \(entry.Config)")
        let repoTag = entry.RepoTags?.first ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        let (name, version) = Self.splitNameAndTag(repoTag)
        let now = Self.now
        return try keep(
            ImageRecord(
                id: digest, kind: .oci, name: name, version: version, blob: nil, manifest: digest,
                importTime: now, lastUsed: now, size: size + Int64(manifestBytes.count), source: "docker-archive:\(file)"))
    }
}
