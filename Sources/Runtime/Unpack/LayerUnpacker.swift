import CLinux
import Glibc
import Platform

/// What an unpack may do and how much it may write.
public struct UnpackPolicy: Sendable, Hashable {
    /// Character and block device nodes (a runtime rendering `/dev` content needs them;
    /// an image usually should not carry any).
    public var allowDevices = false
    /// Owners from the archive are applied when we are root; otherwise files are ours.
    public var preserveOwners = getuid() == 0
    /// Logical bytes of all regular files together (a sparse 10 GB claim counts fully).
    public var maxBytes: Int64 = 8 << 30
    public var maxEntries = 1_000_000
    /// Keep whiteouts as overlayfs understands them (a 0/0 character device for a deleted
    /// name, `trusted.overlay.opaque=y` on an opaque directory) instead of applying them:
    /// for a layer unpacked on its own, to be stacked with the others as lower directories.
    public var overlayWhiteouts = false

    public init() {}
}

/// Applies tar layers to a directory the way OCI and appc define it: entries in order,
/// `.wh.NAME` deletes NAME from lower layers, `.wh..wh..opq` empties a directory of what
/// lower layers put there, hard links, symbolic links, devices, owners, modes, mtimes and
/// extended attributes. Every path is resolved with `openat2(RESOLVE_IN_ROOT)` from a
/// descriptor of the target, so neither `..`, nor an absolute path, nor a symbolic link
/// planted by an earlier entry can reach outside it; entries naming such paths are refused.
public final class LayerUnpacker {
    public let rootPath: String
    public let policy: UnpackPolicy
    private let root: Int32
    private var bytesWritten: Int64 = 0
    private var entries = 0

    public init(rootPath: String, policy: UnpackPolicy = UnpackPolicy()) throws(RuntimeError) {
        self.rootPath = rootPath
        self.policy = policy
        mkdir(rootPath, 0o755)
        root = open(rootPath, coreos_o_path | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw RuntimeError("open \(rootPath): \(Self.errorText())") }
    }

    deinit { close(root) }

    static func errorText() -> String { String(cString: strerror(errno)) }

    /// A tar path as components inside the root; nil for the root itself. Absolute paths
    /// and `..` are refused rather than reinterpreted.
    public static func components(of path: String) throws(RuntimeError) -> [String]? {
        guard !path.hasPrefix("/") else { throw RuntimeError("entry \(path): absolute paths are not allowed in a layer") }
        var parts: [String] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            guard part != ".." else { throw RuntimeError("entry \(path): \"..\" is not allowed in a layer") }
            parts.append(String(part))
        }
        return parts.isEmpty ? nil : parts
    }

    /// Applies one layer; returns its digests. `stripPrefix` drops a leading directory
    /// (`rootfs` of an ACI: the manifest beside it is not part of the tree).
    @discardableResult
    public func apply(_ stream: TarStream, stripPrefix: String? = nil) throws(RuntimeError) -> StreamDigests {
        var createdHere = Set<String>()
        var directoryTimes: [([String], ArchiveEntry)] = []
        while let entry = try stream.nextEntry() {
            entries += 1
            guard entries <= policy.maxEntries else { throw RuntimeError("more than \(policy.maxEntries) entries") }
            guard var parts = try Self.components(of: entry.path) else { continue }
            if let stripPrefix {
                guard parts.first == stripPrefix else { continue }
                parts.removeFirst()
                if parts.isEmpty { continue }
            }
            let name = parts[parts.count - 1]
            let parentParts = Array(parts.dropLast())
            if name.hasPrefix(".wh.") {
                try whiteout(name: name, parent: parentParts, createdHere: createdHere)
                continue
            }
            let parent = try openDirectory(parentParts, create: true)
            defer { close(parent) }
            try place(entry, name: name, parent: parent, parts: parts, stream: stream, stripPrefix: stripPrefix)
            createdHere.insert(parts.joined(separator: "/"))
            if entry.kind == .directory { directoryTimes.append((parts, entry)) }
        }
        // Directory times last: creating their children changed them.
        for (parts, entry) in directoryTimes.reversed() {
            let parent = try openDirectory(Array(parts.dropLast()), create: false)
            defer { close(parent) }
            var times = [timespec(tv_sec: entry.mtimeSeconds, tv_nsec: entry.mtimeNanoseconds), timespec(tv_sec: entry.mtimeSeconds, tv_nsec: entry.mtimeNanoseconds)]
            utimensat(parent, parts[parts.count - 1], &times, AT_SYMLINK_NOFOLLOW)
        }
        return try stream.finish()
    }

    /// The directory at `parts`, resolved inside the root (symbolic links followed as if
    /// the root were `/`); missing directories are made (0755) when `create`.
    func openDirectory(_ parts: [String], create: Bool) throws(RuntimeError) -> Int32 {
        let flags = coreos_o_path | O_DIRECTORY | O_CLOEXEC
        if parts.isEmpty { return dup(root) }
        let whole = coreos_openat2(root, parts.joined(separator: "/"), flags, 0, coreos_resolve_in_root)
        if whole >= 0 { return whole }
        guard errno == ENOENT, create else {
            throw RuntimeError("\(parts.joined(separator: "/")): \(Self.errorText())")
        }
        var current = dup(root)
        for index in parts.indices {
            let prefix = parts[...index].joined(separator: "/")
            var next = coreos_openat2(root, prefix, flags, 0, coreos_resolve_in_root)
            if next < 0 && errno == ENOENT {
                mkdirat(current, parts[index], 0o755)
                next = coreos_openat2(root, prefix, flags, 0, coreos_resolve_in_root)
            }
            close(current)
            guard next >= 0 else { throw RuntimeError("\(prefix): \(Self.errorText())") }
            current = next
        }
        return current
    }

    private func whiteout(name: String, parent parentParts: [String], createdHere: Set<String>) throws(RuntimeError) {
        if policy.overlayWhiteouts {
            let parent = try openDirectory(parentParts, create: true)
            defer { close(parent) }
            if name == ".wh..wh..opq" {
                let directory = openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                guard directory >= 0 else { throw RuntimeError("open \(parentParts.joined(separator: "/")): \(Self.errorText())") }
                defer { close(directory) }
                guard coreos_fsetxattr(directory, "trusted.overlay.opaque", "y", 1, 0) == 0 else {
                    throw RuntimeError("mark \(parentParts.joined(separator: "/")) opaque: \(Self.errorText())")
                }
                return
            }
            let hidden = String(name.dropFirst(4))
            let prefix = parentParts.isEmpty ? "" : parentParts.joined(separator: "/") + "/"
            guard !hidden.isEmpty, hidden != ".", hidden != "..", !hidden.contains("/"), !createdHere.contains(prefix + hidden) else { return }
            try removeTree(parent, hidden)
            guard mknodat(parent, hidden, S_IFCHR, 0) == 0 else { throw RuntimeError("whiteout \(prefix + hidden): \(Self.errorText())") }
            return
        }
        guard let parent = try? openDirectory(parentParts, create: false) else { return }
        defer { close(parent) }
        let prefix = parentParts.isEmpty ? "" : parentParts.joined(separator: "/") + "/"
        if name == ".wh..wh..opq" {
            // Opaque: what lower layers put in this directory goes; this layer's entries stay.
            for child in FileSystem.entryNames(inDirectoryDescriptor: parent) where !createdHere.contains(prefix + child) {
                try removeTree(parent, child)
            }
            return
        }
        let hidden = String(name.dropFirst(4))
        guard !hidden.isEmpty, hidden != ".", hidden != "..", !createdHere.contains(prefix + hidden) else { return }
        try removeTree(parent, hidden)
    }

    /// Removes `name` in `directory`, recursively, without following symbolic links.
    func removeTree(_ directory: Int32, _ name: String) throws(RuntimeError) {
        guard let type = FileSystem.entryType(in: directory, name: name) else { return }
        if type == .directory {
            let child = openat(directory, name, coreos_o_path | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if child >= 0 {
                for entry in FileSystem.entryNames(inDirectoryDescriptor: child) { try removeTree(child, entry) }
                close(child)
            }
            guard unlinkat(directory, name, AT_REMOVEDIR) == 0 else { throw RuntimeError("remove \(name): \(Self.errorText())") }
        } else {
            guard unlinkat(directory, name, 0) == 0 else { throw RuntimeError("remove \(name): \(Self.errorText())") }
        }
    }

    private func place(
        _ entry: ArchiveEntry, name: String, parent: Int32, parts: [String], stream: TarStream, stripPrefix: String?
    ) throws(RuntimeError) {
        let path = parts.joined(separator: "/")
        let existingType = FileSystem.entryType(in: parent, name: name)
        let exists = existingType != nil
        let existingIsDirectory = existingType == .directory
        if exists && !(entry.kind == .directory && existingIsDirectory) { try removeTree(parent, name) }
        let owner = policy.preserveOwners ? (uid_t(truncatingIfNeeded: entry.uid), gid_t(truncatingIfNeeded: entry.gid)) : nil
        var times = [timespec(tv_sec: entry.mtimeSeconds, tv_nsec: entry.mtimeNanoseconds), timespec(tv_sec: entry.mtimeSeconds, tv_nsec: entry.mtimeNanoseconds)]
        switch entry.kind {
        case .directory:
            if !existingIsDirectory, mkdirat(parent, name, 0o700) != 0 {
                throw RuntimeError("mkdir \(path): \(Self.errorText())")
            }
            let descriptor = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard descriptor >= 0 else { throw RuntimeError("open \(path): \(Self.errorText())") }
            defer { close(descriptor) }
            try finishAttributes(descriptor, entry: entry, owner: owner, path: path)
        case .regular:
            guard entry.size >= 0, entry.size <= policy.maxBytes - bytesWritten else {
                throw RuntimeError("entry \(path) claims \(entry.size) bytes: more than the \(policy.maxBytes)-byte limit of an image")
            }
            bytesWritten += entry.size
            let descriptor = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw RuntimeError("create \(path): \(Self.errorText())") }
            defer { close(descriptor) }
            let size = entry.size
            try stream.readData { (block, offset) throws(RuntimeError) in
                guard offset >= 0, offset + Int64(block.count) <= size else {
                    throw RuntimeError("entry \(path): data beyond its declared size")
                }
                var written = 0
                while written < block.count {
                    let count = pwrite(descriptor, block.baseAddress! + written, block.count - written, off_t(offset) + off_t(written))
                    if count < 0 && errno == EINTR { continue }
                    guard count > 0 else { throw RuntimeError("write \(path): \(Self.errorText())") }
                    written += count
                }
            }
            // Holes at the end of a sparse file.
            guard ftruncate(descriptor, off_t(size)) == 0 else { throw RuntimeError("truncate \(path): \(Self.errorText())") }
            try finishAttributes(descriptor, entry: entry, owner: owner, path: path)
            futimens(descriptor, &times)
        case .symlink:
            guard let target = entry.linkTarget, !target.isEmpty else { throw RuntimeError("entry \(path): symbolic link without a target") }
            guard symlinkat(target, parent, name) == 0 else { throw RuntimeError("symlink \(path): \(Self.errorText())") }
            if let owner { fchownat(parent, name, owner.0, owner.1, AT_SYMLINK_NOFOLLOW) }
            utimensat(parent, name, &times, AT_SYMLINK_NOFOLLOW)
        case .hardlink:
            guard let target = entry.linkTarget, var targetParts = try Self.components(of: target) else {
                throw RuntimeError("entry \(path): hard link without a target")
            }
            if let stripPrefix {
                guard targetParts.first == stripPrefix, targetParts.count > 1 else {
                    throw RuntimeError("entry \(path): hard link to \(target) outside the tree")
                }
                targetParts.removeFirst()
            }
            let targetParent = try openDirectory(Array(targetParts.dropLast()), create: false)
            defer { close(targetParent) }
            guard linkat(targetParent, targetParts[targetParts.count - 1], parent, name, 0) == 0 else {
                throw RuntimeError("link \(path) to \(target): \(Self.errorText())")
            }
        case .characterDevice, .blockDevice:
            guard policy.allowDevices else { throw RuntimeError("entry \(path): device nodes are not allowed in this image") }
            let type: mode_t = entry.kind == .characterDevice ? S_IFCHR : S_IFBLK
            guard mknodat(parent, name, type | mode_t(entry.mode & 0o777), dev_t(coreos_makedev(entry.deviceMajor, entry.deviceMinor))) == 0 else {
                throw RuntimeError("mknod \(path): \(Self.errorText())")
            }
            try attributesByName(parent, name: name, entry: entry, owner: owner, path: path, times: &times)
        case .fifo:
            guard mknodat(parent, name, S_IFIFO | mode_t(entry.mode & 0o777), 0) == 0 else {
                throw RuntimeError("mkfifo \(path): \(Self.errorText())")
            }
            try attributesByName(parent, name: name, entry: entry, owner: owner, path: path, times: &times)
        case .socket:
            break
        }
    }

    /// Owner, then mode (chown clears set-id bits), then extended attributes.
    private func finishAttributes(_ descriptor: Int32, entry: ArchiveEntry, owner: (uid_t, gid_t)?, path: String) throws(RuntimeError) {
        if let owner, fchown(descriptor, owner.0, owner.1) != 0 {
            throw RuntimeError("chown \(path): \(Self.errorText())")
        }
        guard fchmod(descriptor, mode_t(entry.mode & 0o7777)) == 0 else { throw RuntimeError("chmod \(path): \(Self.errorText())") }
        for (name, value) in entry.xattrs {
            let status = value.withUnsafeBytes { coreos_fsetxattr(descriptor, name, $0.baseAddress, $0.count, 0) }
            // A file system without xattrs, or a namespace we may not write, is not fatal.
            if status != 0 && errno != ENOTSUP && errno != EPERM { throw RuntimeError("setxattr \(name) on \(path): \(Self.errorText())") }
        }
    }

    private func attributesByName(
        _ parent: Int32, name: String, entry: ArchiveEntry, owner: (uid_t, gid_t)?, path: String, times: inout [timespec]
    ) throws(RuntimeError) {
        if let owner { fchownat(parent, name, owner.0, owner.1, AT_SYMLINK_NOFOLLOW) }
        fchmodat(parent, name, mode_t(entry.mode & 0o7777), 0)
        utimensat(parent, name, &times, AT_SYMLINK_NOFOLLOW)
    }
}
