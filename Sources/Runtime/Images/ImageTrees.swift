import Foundation
import Glibc

extension ImageStore {
    /// Where `record`'s rendered tree lives.
    public func treePath(_ record: ImageRecord) -> String {
        directory + "/trees/" + record.id.replacingOccurrences(of: ":", with: "-")
    }

    /// The image's root file system as overlayfs lower directories, top first: each OCI
    /// layer unpacked once into `trees/layer-<diff_id>/rootfs` with overlayfs whiteouts
    /// (so images that share layers share their trees), an ACI once whole. Each layer's
    /// blob digest and diff_id are checked while it is unpacked.
    public func render(_ record: ImageRecord, policy: UnpackPolicy = UnpackPolicy()) throws(RuntimeError) -> [String] {
        switch record.kind {
        case .aci:
            // Its own tree on top of its dependencies' (appc: dependencies first, in order).
            let own = try renderTree(treePath(record), label: record.id) { (rootfs) throws(RuntimeError) in
                try renderACI(into: rootfs, record, policy: policy)
            }
            var trees = [own]
            for dependency in try dependencies(of: record).reversed() { trees += try render(dependency, policy: policy) }
            return trees
        case .oci:
            let (manifest, config) = try ociParts(record)
            guard config.rootfs.diff_ids.count == manifest.layers.count else {
                throw RuntimeError("image \(record.id): \(manifest.layers.count) layers but \(config.rootfs.diff_ids.count) diff_ids")
            }
            var layerPolicy = policy
            layerPolicy.overlayWhiteouts = true
            var trees: [String] = []
            for (layer, diffID) in zip(manifest.layers, config.rootfs.diff_ids) {
                trees.append(try renderTree(Self.layerTreePath(directory, diffID), label: diffID) { (rootfs) throws(RuntimeError) in
                    let unpacker = try LayerUnpacker(rootPath: rootfs, policy: layerPolicy)
                    let digests = try unpacker.apply(TarStream(path: blobPath(layer.digest)))
                    guard digests.stored == layer.digest else {
                        throw RuntimeError("layer \(layer.digest): stored blob has digest \(digests.stored)")
                    }
                    guard digests.uncompressed == diffID else {
                        throw RuntimeError("layer \(layer.digest): diff_id is \(digests.uncompressed), the config says \(diffID)")
                    }
                })
            }
            return trees.reversed()
        }
    }

    static func layerTreePath(_ directory: String, _ diffID: String) -> String {
        directory + "/trees/layer-" + diffID.replacingOccurrences(of: ":", with: "-")
    }

    /// A tree made once: rendered into tmp/, marked `rendered`, renamed into place.
    func renderTree(_ tree: String, label: String, _ make: (String) throws(RuntimeError) -> Void) throws(RuntimeError) -> String {
        if FileManager.default.fileExists(atPath: tree + "/rendered") { return tree + "/rootfs" }
        return try locked { () throws(RuntimeError) -> String in
            if FileManager.default.fileExists(atPath: tree + "/rendered") { return tree + "/rootfs" }
            try? FileManager.default.removeItem(atPath: tree)
            let scratch = temporaryPath("tree")
            do throws(RuntimeError) {
                try Self.makeDirectories(scratch + "/rootfs")
                try make(scratch + "/rootfs")
                try writeAtomically(scratch + "/rendered", Array("\(label)\n".utf8))
                guard rename(scratch, tree) == 0 else { throw RuntimeError("rename \(tree): \(String(cString: strerror(errno)))") }
            } catch {
                try? FileManager.default.removeItem(atPath: scratch)
                throw error
            }
            return tree + "/rootfs"
        }
    }

    /// A file of the image as the stacked trees show it (top first; an overlay whiteout
    /// hides it), for reading the image's /etc/passwd and /etc/group.
    public static func file(_ path: String, in trees: [String]) -> String? {
        for tree in trees {
            var info = stat()
            guard lstat(tree + path, &info) == 0 else { continue }
            if info.st_mode & S_IFMT == S_IFCHR && info.st_rdev == 0 { return nil }
            return tree + path
        }
        return nil
    }

    /// Renders `record` into `destination` (which may exist), without touching `trees/`.
    public func renderInto(_ destination: String, _ record: ImageRecord, policy: UnpackPolicy = UnpackPolicy()) throws(RuntimeError) {
        try Self.makeDirectories(destination)
        let unpacker = try LayerUnpacker(rootPath: destination, policy: policy)
        switch record.kind {
        case .aci:
            for dependency in try dependencies(of: record) { try renderInto(destination, dependency, policy: policy) }
            try renderACI(into: destination, record, policy: policy, unpacker: unpacker)
        case .oci:
            let (manifest, config) = try ociParts(record)
            guard config.rootfs.diff_ids.count == manifest.layers.count else {
                throw RuntimeError("image \(record.id): \(manifest.layers.count) layers but \(config.rootfs.diff_ids.count) diff_ids")
            }
            for (layer, diffID) in zip(manifest.layers, config.rootfs.diff_ids) {
                let digests = try unpacker.apply(TarStream(path: blobPath(layer.digest)))
                guard digests.stored == layer.digest else {
                    throw RuntimeError("layer \(layer.digest): stored blob has digest \(digests.stored)")
                }
                guard digests.uncompressed == diffID else {
                    throw RuntimeError("layer \(layer.digest): diff_id is \(digests.uncompressed), the config says \(diffID)")
                }
            }
        }
    }

    /// An ACI's own rootfs (without its dependencies).
    func renderACI(into destination: String, _ record: ImageRecord, policy: UnpackPolicy, unpacker: LayerUnpacker? = nil) throws(RuntimeError) {
        guard let blob = record.blob else { throw RuntimeError("image \(record.id) has no blob") }
        let target: LayerUnpacker
        if let unpacker {
            target = unpacker
        } else {
            target = try LayerUnpacker(rootPath: destination, policy: policy)
        }
        let digests = try target.apply(TarStream(path: blobPath(blob), sha512: true), stripPrefix: "rootfs")
        guard digests.uncompressedSHA512 == "sha512-" + blob else {
            throw RuntimeError("image \(record.id): the stored ACI no longer matches its digest")
        }
    }

    /// An ACI's dependencies, from the store (by image ID, else by name), in the order the
    /// manifest lists them; a loop or a missing one is an error.
    func dependencies(of record: ImageRecord, seen: Set<String> = []) throws(RuntimeError) -> [ImageRecord] {
        guard record.kind == .aci else { return [] }
        let manifest = try JSONCoding.decode(ACIManifest.self, from: try manifestBytes(record), what: "ACI manifest")
        var result: [ImageRecord] = []
        for dependency in manifest.dependencies ?? [] {
            let found: ImageRecord
            do {
                found = try resolve(dependency.imageID ?? dependency.imageName)
            } catch {
                throw RuntimeError("\(record.name) depends on \(dependency.imageName), which is not in the store; fetch it first")
            }
            guard !seen.contains(found.id), found.id != record.id else { throw RuntimeError("\(record.name): dependency loop through \(found.name)") }
            result.append(found)
            _ = try dependencies(of: found, seen: seen.union([record.id]))
        }
        return result
    }

    public func ociParts(_ record: ImageRecord) throws(RuntimeError) -> (OCIManifest, OCIImageConfig) {
        guard record.kind == .oci, let digest = record.manifest else { throw RuntimeError("image \(record.id) is not an OCI image") }
        let manifest = try JSONCoding.decode(OCIManifest.self, from: try readBlob(digest), what: "manifest \(digest)")
        let config = try JSONCoding.decode(OCIImageConfig.self, from: try readBlob(manifest.config.digest), what: "config \(manifest.config.digest)")
        return (manifest, config)
    }

    /// The image manifest as stored: the ACI `manifest`, or the OCI manifest JSON.
    public func manifestBytes(_ record: ImageRecord) throws(RuntimeError) -> [UInt8] {
        switch record.kind {
        case .oci:
            guard let digest = record.manifest else { throw RuntimeError("image \(record.id) has no manifest") }
            return try readBlob(digest)
        case .aci:
            if let digest = record.manifest { return try readBlob(digest) }
            // Records from before the manifest was kept beside the ACI.
            guard let blob = record.blob else { throw RuntimeError("image \(record.id) has no blob") }
            let stream = try TarStream(path: blobPath(blob))
            while let entry = try stream.nextEntry() {
                guard (try? LayerUnpacker.components(of: entry.path)) == ["manifest"] else { continue }
                var bytes: [UInt8] = []
                try stream.readData { (block, _) throws(RuntimeError) in bytes += block }
                return bytes
            }
            throw RuntimeError("image \(record.id): no manifest in the ACI")
        }
    }

    /// Every blob of `record` re-read and checked against its digest.
    public func verify(_ record: ImageRecord) throws(RuntimeError) {
        switch record.kind {
        case .aci:
            guard let blob = record.blob else { throw RuntimeError("image \(record.id) has no blob") }
            let stream = try TarStream(path: blobPath(blob), sha512: true)
            while try stream.nextEntry() != nil {}
            guard try stream.finish().uncompressedSHA512 == "sha512-" + blob else {
                throw RuntimeError("image \(record.id): blob \(blob) does not match its digest")
            }
        case .oci:
            let (manifest, _) = try ociParts(record)
            for digest in [record.manifest ?? "", manifest.config.digest] + manifest.layers.map(\.digest) {
                let stream = try TarStream.raw(path: blobPath(digest))
                guard try stream.finish().stored == digest else { throw RuntimeError("blob \(digest) does not match its digest") }
            }
        }
    }

    /// Removes the image's record and tree; blobs no image uses any more go with them.
    public func remove(_ record: ImageRecord) throws(RuntimeError) {
        try locked { () throws(RuntimeError) in
            unlink(directory + "/images/" + Self.recordFileName(record.id))
            try removeUnusedBlobs()
        }
    }

    /// Blobs, trees and temporary files that no image record refers to.
    func removeUnusedBlobs() throws(RuntimeError) {
        var used = Set<String>()
        var trees = Set<String>()
        for record in records() {
            trees.insert(URL(fileURLWithPath: treePath(record)).lastPathComponent)
            if let blob = record.blob { used.insert(blob) }
            if let digest = record.manifest { used.insert(String(digest.dropFirst(7))) }
            if let (manifest, config) = try? ociParts(record) {
                for item in [manifest.config.digest] + manifest.layers.map(\.digest) { used.insert(String(item.dropFirst(7))) }
                for diffID in config.rootfs.diff_ids {
                    trees.insert(URL(fileURLWithPath: Self.layerTreePath(directory, diffID)).lastPathComponent)
                }
            }
        }
        for kind in ["sha256", "sha512"] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory + "/blobs/" + kind)) ?? [] where !used.contains(name) {
                unlink(directory + "/blobs/\(kind)/\(name)")
            }
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory + "/trees")) ?? [] where !trees.contains(name) {
            try? FileManager.default.removeItem(atPath: directory + "/trees/" + name)
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory + "/tmp")) ?? [] {
            try? FileManager.default.removeItem(atPath: directory + "/tmp/" + name)
        }
    }

    /// `image gc`: images not used within `gracePeriod` seconds go, then unused blobs,
    /// trees and leftovers of interrupted imports.
    public func collectGarbage(gracePeriod: Double) throws(RuntimeError) -> [ImageRecord] {
        try locked { () throws(RuntimeError) -> [ImageRecord] in
            let cutoff = Self.now - gracePeriod
            let expired = records().filter { $0.lastUsed < cutoff }
            for record in expired {
                unlink(directory + "/images/" + Self.recordFileName(record.id))
            }
            try removeUnusedBlobs()
            return expired
        }
    }
}
