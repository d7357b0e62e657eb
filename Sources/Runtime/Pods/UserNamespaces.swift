import Glibc
import Platform

/// Host ID ranges for pods in their own user namespace (`--private-users`): 65536 IDs
/// each, above 2^24 (clear of ordinary users and of the usual /etc/subuid ranges), taken
/// by O_EXCL files under `<store>/userns/` like the network's addresses.
public enum UserNamespaces {
    static let first: UInt32 = 1 << 24
    static let size: UInt32 = 65536

    public static func allocate(store: String, uuid: String) throws(RuntimeError) -> UInt32 {
        let directory = store + "/userns"
        try ImageStore.makeDirectories(directory)
        for slot in UInt32(0)..<4096 {
            let base = first + slot * size
            let descriptor = open(directory + "/" + String(base), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                if errno == EEXIST { continue }
                throw RuntimeError("allocate a user namespace range: \(String(cString: strerror(errno)))")
            }
            _ = uuid.utf8CString.withUnsafeBufferPointer { write(descriptor, $0.baseAddress, $0.count - 1) }
            close(descriptor)
            return base
        }
        throw RuntimeError("no free user namespace range left")
    }

    public static func release(store: String, uuid: String) {
        let directory = store + "/userns"
        for name in FileSystem.entryNames(inDirectory: directory) {
            let path = directory + "/" + name
            if FileSystem.contents(atPath: path, limit: 64).map({ String(decoding: $0, as: UTF8.self) }) == uuid { unlink(path) }
        }
    }

    /// The pod's tree must be reachable by the unprivileged IDs its root maps to: every
    /// directory above it needs the search bit for others.
    public static func checkReachable(_ path: String) throws(RuntimeError) {
        var current = ""
        for component in path.split(separator: "/").dropLast() {
            current += "/" + component
            var info = stat()
            guard lstat(current, &info) == 0 else { continue }
            guard info.st_mode & S_IFMT != S_IFDIR || info.st_mode & 0o001 != 0 else {
                throw RuntimeError("--private-users: \(current) is not searchable by others (mode \(String(info.st_mode & 0o777, radix: 8))); the pod's IDs could not reach its tree")
            }
        }
    }

    /// Adds `base` to the owner and group of everything under `root` (links not followed),
    /// keeping set-id bits that chown clears.
    public static func shiftOwnership(of root: String, by base: UInt32) throws(RuntimeError) {
        try shift(root, base: base)
        for name in FileSystem.entryNames(inDirectory: root) { try walk(root + "/" + name, base: base) }
    }

    private static func walk(_ path: String, base: UInt32) throws(RuntimeError) {
        try shift(path, base: base)
        if FileSystem.entryType(atPath: path) == .directory {
            for name in FileSystem.entryNames(inDirectory: path) { try walk(path + "/" + name, base: base) }
        }
    }

    private static func shift(_ path: String, base: UInt32) throws(RuntimeError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw RuntimeError("stat \(path): \(String(cString: strerror(errno)))") }
        guard info.st_uid < size, info.st_gid < size else { return }
        guard lchown(path, info.st_uid + base, info.st_gid + base) == 0 else {
            throw RuntimeError("chown \(path): \(String(cString: strerror(errno)))")
        }
        if info.st_mode & S_IFMT != S_IFLNK, info.st_mode & (S_ISUID | S_ISGID) != 0 {
            chmod(path, info.st_mode & 0o7777)
        }
    }
}
