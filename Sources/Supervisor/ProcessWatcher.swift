import CLinux
import Foundation
import Glibc
import Synchronization

/// One thread that waits, with epoll, on every descriptor the supervisor cares about:
/// a pidfd per running process (readable once it exits), each unit's notify socket and
/// each unit's output pipe. Handlers run on that thread and must be short: they reap,
/// read what is there and hand events on.
public final class ProcessWatcher: Sendable {
    /// The watcher of this process (one epoll thread is enough for thousands of units).
    public static let shared = ProcessWatcher()

    private let epoll: Int32
    private let handlers = Mutex<[Int32: @Sendable (Int32) -> Void]>([:])

    private init() {
        epoll = coreos_epoll_create()
        let thread = Thread { [self] in loop() }
        thread.name = "supervisor-epoll"
        thread.start()
    }

    /// Calls `handler(fd)` on the watcher thread whenever `fd` is readable or hung up,
    /// until `stopWatching(fd)`.
    func watch(_ fd: Int32, _ handler: @escaping @Sendable (Int32) -> Void) {
        handlers.withLock { $0[fd] = handler }
        _ = coreos_epoll_watch(epoll, fd)
    }

    /// Stops watching and closes `fd`.
    func stopWatching(_ fd: Int32) {
        _ = coreos_epoll_unwatch(epoll, fd)
        handlers.withLock { _ = $0.removeValue(forKey: fd) }
        close(fd)
    }

    /// Calls `handler` once, on the watcher thread, with how process `pid` ended. The
    /// process must be a child of this one (or an orphan it adopted as subreaper) for its
    /// status to be known; another process's end reads as a clean exit.
    public func watchExit(of pid: Int32, _ handler: @escaping @Sendable (ServiceExit) -> Void) {
        let fd = coreos_pidfd_open(pid)
        guard fd >= 0 else {
            // Gone already (and reaped elsewhere), or pidfds are unsupported: report at once.
            handler(Self.reap(pid) ?? .exited(code: 0))
            return
        }
        watch(fd) { [self] fd in
            stopWatching(fd)
            handler(Self.reap(pid) ?? .exited(code: 0))
        }
    }

    private static func reap(_ pid: Int32) -> ServiceExit? {
        var exited: Int32 = 0
        var code: Int32 = 0
        guard coreos_reap(pid, &exited, &code) == pid else { return nil }
        return exited == 1 ? .exited(code: code) : .killed(signal: code)
    }

    private func loop() {
        var ready = [Int32](repeating: 0, count: 64)
        while true {
            let count = coreos_epoll_wait(epoll, &ready, Int32(ready.count))
            if count < 0 {
                if errno == EINTR { continue }
                return
            }
            for index in 0..<Int(count) {
                let fd = ready[index]
                if let handler = handlers.withLock({ $0[fd] }) { handler(fd) }
            }
        }
    }
}
