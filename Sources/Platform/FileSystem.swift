import CLinux
import Glibc

/// Small file-system queries with POSIX calls.
public enum FileSystem {
    public enum FileType: Sendable, Hashable {
        case regular, directory, symbolicLink, other
    }

    /// The type of the entry at `path` itself (links are not followed), or nil if absent.
    public static func entryType(atPath path: String) -> FileType? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return type(of: info.st_mode)
    }

    static func type(of mode: mode_t) -> FileType {
        switch mode & S_IFMT {
        case S_IFREG: .regular
        case S_IFDIR: .directory
        case S_IFLNK: .symbolicLink
        default: .other
        }
    }
}

extension FileSystem {
    /// The file's bytes, nil when it cannot be opened. Reading stops once more than `limit`
    /// bytes arrived, so a caller can tell "too large" (count > limit) from "all of it".
    public static func contents(atPath path: String, limit: Int) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count <= limit {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                bytes += buffer[0..<count]
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        return bytes
    }

    /// The type of `name` inside the directory open as `directory` (links not followed).
    public static func entryType(in directory: Int32, name: String) -> FileType? {
        var info = stat()
        guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        return type(of: info.st_mode)
    }

    /// The names in the directory at `path` (without `.` and `..`); empty when unreadable.
    public static func entryNames(inDirectory path: String) -> [String] {
        guard let stream = opendir(path) else { return [] }
        return names(of: stream)
    }

    /// The names in the directory open as `descriptor` (any descriptor of it, `O_PATH`
    /// included); the descriptor stays open.
    public static func entryNames(inDirectoryDescriptor descriptor: Int32) -> [String] {
        let own = openat(descriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard own >= 0 else { return [] }
        guard let stream = fdopendir(own) else {
            close(own)
            return []
        }
        return names(of: stream)
    }

    private static func names(of stream: OpaquePointer) -> [String] {
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

/// A one-shot TCP connect, to explain why an endpoint cannot be reached in the words Go's
/// dialer uses (`connect: connection refused`).
public enum TCPProbe {
    /// nil when a connection to `host:port` (IPv4 literal) succeeds within `timeoutMilliseconds`,
    /// else Go's description of the failure.
    public static func connectFailure(host: String, port: Int, timeoutMilliseconds: Int32 = 500) -> String? {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(truncatingIfNeeded: port)).bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var code = result == 0 ? 0 : errno
        if code == EINPROGRESS {
            var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
            if poll(&poller, 1, timeoutMilliseconds) <= 0 { return "i/o timeout" }
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &code, &length)
        }
        guard code != 0 else { return nil }
        let text = String(cString: strerror(code))
        return "connect: " + text.prefix(1).lowercased() + text.dropFirst()
    }
}

/// SIGINT/SIGTERM/SIGHUP as a flag that long-running commands poll, so they can release
/// what they hold (a lock, a lease) before exiting.
public enum Termination {
    public static func install() { coreos_install_termination_handlers() }

    /// The signal that asked us to stop, if any.
    public static var signal: Int32? {
        let number = coreos_termination_signal()
        return number == 0 ? nil : number
    }

    /// Returns when a termination signal arrives (or the task is cancelled).
    public static func wait() async {
        while signal == nil && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}
