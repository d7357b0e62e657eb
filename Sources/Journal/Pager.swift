#if canImport(Glibc)
    import Glibc
#endif

/// journalctl's pager: when standard output is a terminal, output goes through
/// `$SYSTEMD_PAGER`, `$PAGER` or `less` (then `more`), with `LESS=FRSXMK` unless set
/// (`+G` added to start at the end for `-e`). A pager of `cat` or empty means none.
public final class Pager {
    private var child: pid_t = 0

    public init() {}

    /// Starts the pager behind file descriptor 1, if there is a terminal to page on.
    public func start(jumpToEnd: Bool) {
        guard isatty(1) == 1 else { return }
        let environment = ProcessEnvironment()
        let configured = environment["SYSTEMD_PAGER"] ?? environment["PAGER"]
        if let configured, configured.isEmpty || configured == "cat" { return }
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { return }
        var less = environment["LESS"] ?? "FRSXMK"
        if jumpToEnd { less += " +G" }
        let candidates = configured.map { [["/bin/sh", "-c", $0]] } ?? [["less"], ["more"]]
        for command in candidates {
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, pipeEnds[0], 0)
            posix_spawn_file_actions_addclose(&actions, pipeEnds[1])
            var variables = environment.entries.filter { !$0.hasPrefix("LESS=") && !$0.hasPrefix("LESSCHARSET=") }
            variables += ["LESS=\(less)", "LESSCHARSET=utf-8"]
            let arguments = command.map { strdup($0) } + [nil]
            let envp = variables.map { strdup($0) } + [nil]
            defer {
                arguments.forEach { free($0) }
                envp.forEach { free($0) }
            }
            var pid: pid_t = 0
            if posix_spawnp(&pid, command[0], &actions, nil, arguments, envp) == 0 {
                child = pid
                dup2(pipeEnds[1], 1)
                break
            }
        }
        close(pipeEnds[0])
        close(pipeEnds[1])
    }

    /// Whether standard output still has a reader (a follower stops when its pipe or
    /// socket is closed at the other end).
    public static func standardOutputHasReader() -> Bool {
        var status = stat()
        guard fstat(1, &status) == 0 else { return false }
        let kind = status.st_mode & S_IFMT
        guard kind == S_IFIFO || kind == S_IFSOCK else { return true }
        var poller = pollfd(fd: 1, events: 0, revents: 0)
        return poll(&poller, 1, 0) == 0 || poller.revents & Int16(POLLERR | POLLHUP) == 0
    }

    /// Closes the pager's input and waits until the user quits it.
    public func finish() {
        guard child > 0 else { return }
        close(1)
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        child = 0
    }
}

/// The process environment as `NAME=value` strings and by name.
struct ProcessEnvironment {
    var entries: [String] = []

    init() {
        var pointer = environ
        while let entry = pointer.pointee {
            entries.append(String(cString: entry))
            pointer += 1
        }
    }

    subscript(name: String) -> String? {
        let prefix = name + "="
        return entries.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }
}
