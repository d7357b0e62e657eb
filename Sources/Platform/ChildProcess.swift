import Glibc

/// Runs a program to completion and collects what it printed: for the few system tools
/// (useradd, usermod) whose work we do not redo ourselves.
public enum ChildProcess {
    public struct Outcome: Sendable, Hashable {
        /// The exit status, or 128 + the signal that killed it.
        public var status: Int32
        /// Standard output and standard error together, as printed.
        public var output: String
    }

    /// Runs `arguments[0]` (looked up in PATH) with `arguments`, stdin from /dev/null.
    /// Returns nil when the program cannot be started.
    public static func run(_ arguments: [String], environment: [String]? = nil) -> Outcome? {
        guard !arguments.isEmpty else { return nil }
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { return nil }
        _ = fcntl(pipeEnds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeEnds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 2)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { $0.map { strdup($0) } + [nil] } ?? []
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let started =
            environment == nil
            ? posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
            : posix_spawnp(&pid, arguments[0], &actions, nil, argv, &envp)
        close(pipeEnds[1])
        guard started == 0 else {
            close(pipeEnds[0])
            return nil
        }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
            if count > 0 {
                // Keep what a tool says within reason.
                if output.count < 1 << 20 { output += buffer[0..<count] }
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        close(pipeEnds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Outcome(status: exitStatus, output: String(decoding: output, as: UTF8.self))
    }

    /// Starts `arguments[0]` (an absolute path) in a session of its own, stdin from
    /// /dev/null and stdout and stderr appended to `logPath`, and does not wait: for daemons
    /// that outlive the command starting them. Returns the PID, nil when it cannot start.
    public static func spawnDetached(_ arguments: [String], environment: [String], logPath: String) -> Int32? {
        guard !arguments.isEmpty else { return nil }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A session of its own: the terminal's Ctrl-C and hang-up do not reach it.
        // POSIX_SPAWN_SETSID (glibc 2.26), not imported by Swift.
        posix_spawnattr_setflags(&attributes, 0x80)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp = environment.map { strdup($0) } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, arguments[0], &actions, &attributes, argv, envp) == 0 else { return nil }
        return pid
    }
}
