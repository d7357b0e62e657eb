import CDynamicLibraries
import CLinux
import CSystemd
import Foundation
import Glibc
import Synchronization

/// A unit's captured output: each process writes into a pipe of its own, and the watcher
/// thread passes its lines on, to journald when it runs (`journal`), else to
/// `<directory>/<unit>.log` in journalctl's short format (`Nov 27 15:30:06 host sh[1234]:
/// line`), which is what `fleetctl journal` prints.
///
/// Into the journal each line goes with `SYSLOG_IDENTIFIER` and `SYSLOG_PID` of the process
/// that wrote it and `OBJECT_SYSTEMD_UNIT=<unit>`: journald trusts that field from root, so
/// `journalctl -u <unit>` finds the lines although no systemd put the process in a unit.
public final class ServiceOutput: Sendable {
    public let path: String
    private let unit: String
    private let journal: Bool
    private let directory: String
    /// Opened at the first line: a unit that prints nothing costs no file (creating
    /// thousands of files is most of what starting thousands of quiet units costs).
    private let file = Mutex<Int32>(-1)
    private let hostname: String
    private let partial = Mutex<[Int32: [UInt8]]>([:])

    public init(directory: String, unit: String, journal: Bool = false) {
        self.unit = unit
        self.journal = journal
        self.directory = directory
        path = directory + "/" + unit + ".log"
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        hostname = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit {
        let descriptor = file.withLock { $0 }
        if descriptor >= 0 { close(descriptor) }
    }

    private func descriptor() -> Int32 {
        file.withLock { descriptor in
            if descriptor < 0 {
                descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
                if descriptor < 0, errno == ENOENT {
                    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                    descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
                }
            }
            return descriptor
        }
    }

    /// A pipe for one process: returns the write end for the child (the caller closes it
    /// after the fork) and starts copying what arrives on the read end.
    func pipe(identifier: @escaping @Sendable () -> (name: String, pid: Int32)) throws(ServiceProcess.Failure) -> Int32 {
        var ends: [Int32] = [0, 0]
        guard coreos_pipe_cloexec(&ends) == 0 else { throw ServiceProcess.Failure(message: "pipe: \(String(cString: strerror(errno)))") }
        let reader = ends[0]
        _ = fcntl(reader, F_SETFL, fcntl(reader, F_GETFL) | O_NONBLOCK)
        ProcessWatcher.shared.watch(reader) { [self] fd in drain(fd, identifier: identifier()) }
        return ends[1]
    }

    /// A line written by the supervisor itself (systemd's "Started …", "… failed").
    public func note(_ message: String) {
        append(line: Array(message.utf8), identifier: ("fleetd", getpid()))
    }

    /// Whether journald takes entries here (its native socket exists).
    public static var journaldRuns: Bool {
        var status = stat()
        return stat("/run/systemd/journal/socket", &status) == 0 && status.st_mode & S_IFMT == S_IFSOCK
    }

    private func drain(_ fd: Int32, identifier: (name: String, pid: Int32)) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count > 0 {
                var pending = partial.withLock { $0.removeValue(forKey: fd) ?? [] } + buffer[0..<count]
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    append(line: Array(pending[..<newline]), identifier: identifier)
                    pending.removeSubrange(...newline)
                }
                if !pending.isEmpty { partial.withLock { $0[fd] = pending } }
                continue
            }
            if count < 0 && (errno == EAGAIN || errno == EINTR) { return }
            // End of output: flush a last unterminated line.
            if let rest = partial.withLock({ $0.removeValue(forKey: fd) }), !rest.isEmpty { append(line: rest, identifier: identifier) }
            ProcessWatcher.shared.stopWatching(fd)
            return
        }
    }

    private func append(line: [UInt8], identifier: (name: String, pid: Int32)) {
        if journal {
            send(line: line, identifier: identifier)
            return
        }
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var stamp = [CChar](repeating: 0, count: 32)
        strftime(&stamp, stamp.count, "%b %d %H:%M:%S", &parts)
        let prefix = "\(String(decoding: stamp.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)) \(hostname) \(identifier.name)[\(identifier.pid)]: "
        let text = Array(prefix.utf8) + line + [UInt8(ascii: "\n")]
        let file = descriptor()
        guard file >= 0 else { return }  // nowhere to write: the output is lost, the unit runs on
        _ = text.withUnsafeBytes { write(file, $0.baseAddress, $0.count) }
    }
}

extension ServiceOutput {
    /// One line as a journal entry (native protocol: the line may hold any bytes but NUL).
    fileprivate func send(line: [UInt8], identifier: (name: String, pid: Int32)) {
        let fields: [[UInt8]] = [
            Array("MESSAGE=".utf8) + line, Array("PRIORITY=6".utf8), Array("SYSLOG_IDENTIFIER=\(identifier.name)".utf8),
            Array("SYSLOG_PID=\(identifier.pid)".utf8), Array("OBJECT_SYSTEMD_UNIT=\(unit)".utf8),
        ]
        let buffers = fields.map { field -> UnsafeMutableRawBufferPointer in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: field.count, alignment: 1)
            field.withUnsafeBytes { buffer.copyMemory(from: $0) }
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        var vectors = buffers.map { iovec(iov_base: $0.baseAddress, iov_len: $0.count) }
        _ = sd_journal_sendv(&vectors, Int32(vectors.count))
    }
}

/// A unit's `NOTIFY_SOCKET` (`Type=notify`): a datagram socket the service sends
/// `READY=1`, `STATUS=…`, `MAINPID=…` and `STOPPING=1` to.
final class NotifySocket: Sendable {
    let path: String
    private let fd: Int32

    init(path: String, onMessage: @escaping @Sendable ([String: String]) -> Void) throws(ServiceProcess.Failure) {
        self.path = path
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw ServiceProcess.Failure(message: "notify socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw ServiceProcess.Failure(message: "notify socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let message = String(cString: strerror(errno))
            Glibc.close(fd)
            throw ServiceProcess.Failure(message: "binding \(path): \(message)")
        }
        ProcessWatcher.shared.watch(fd) { fd in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = recv(fd, &buffer, buffer.count, 0)
                guard count > 0 else { return }
                var fields: [String: String] = [:]
                for line in String(decoding: buffer[0..<count], as: UTF8.self).split(separator: "\n") {
                    guard let equals = line.firstIndex(of: "=") else { continue }
                    fields[String(line[..<equals])] = String(line[line.index(after: equals)...])
                }
                onMessage(fields)
            }
        }
    }

    func close() {
        ProcessWatcher.shared.stopWatching(fd)
        unlink(path)
    }
}
