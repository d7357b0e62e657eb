public import CLI
import Platform

/// The one dispatcher: argv[0] names an applet (a symlink such as `etcdctl -> coreos`),
/// or `coreos <applet> …`, or one of coreos's own commands.
public enum MultiCall {
    public static let version = "0.1.0"

    /// Runs the right applet and returns the exit status.
    public static func run(_ arguments: [String], io: StandardStreams = .process) async -> Int32 {
        let invokedAs = arguments.first.map(Self.basename) ?? "coreos"
        if invokedAs != "coreos", let applet = AppletTable.applet(named: invokedAs) {
            return await applet.run(arguments, io)
        }
        return await runCoreOS(Array(arguments.dropFirst()), io: io)
    }

    static func basename(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? path
    }

    static func runCoreOS(_ arguments: [String], io: StandardStreams) async -> Int32 {
        guard let first = arguments.first else {
            io.output.write(usage())
            return ExitStatus.success
        }
        let rest = Array(arguments.dropFirst())
        switch first {
        case "-h", "--help", "help":
            io.output.write(usage())
            return ExitStatus.success
        case "--version", "version":
            io.output.write(versionText())
            return ExitStatus.success
        case "install-links":
            return InstallLinksCommand.run(rest, io: io)
        case "self-check":
            return selfCheck(io: io)
        case "--list":
            for applet in AppletTable.all { io.output.line(applet.name) }
            return ExitStatus.success
        default:
            if let applet = AppletTable.applet(named: first) {
                return await applet.run(arguments, io)
            }
            io.error.line("coreos: unknown applet '\(first)'")
            io.error.write(usage())
            return ExitStatus.usage
        }
    }

    static func usage() -> String {
        var text = """
            coreos \(version): the CoreOS cluster stack in one binary.

            Usage: coreos APPLET [ARGUMENTS...]
                   APPLET [ARGUMENTS...]          (through a link named after the applet)
                   coreos install-links [--dir DIR] [--force] [NAME...]
                   coreos self-check               (exercise the linked C libraries)
                   coreos --version | --list | --help

            Applets:

            """
        let width = AppletTable.all.map { $0.names.joined(separator: ", ").count }.max() ?? 0
        for applet in AppletTable.all {
            let names = applet.names.joined(separator: ", ")
            text += "  " + names + String(repeating: " ", count: width - names.count + 2) + applet.summary + "\n"
        }
        return text
    }

    static func selfCheck(io: StandardStreams) -> Int32 {
        let results = SelfCheck.run()
        for result in results {
            io.output.line("\(result.passed ? "ok  " : "FAIL") \(result.component): \(result.detail)")
        }
        return results.allSatisfy(\.passed) ? ExitStatus.success : ExitStatus.failure
    }

    static func versionText() -> String {
        let libraries = LinkedLibraryVersions.current()
        return """
            coreos \(version)
            libsystemd \(libraries.systemd ?? "unknown")\(libraries.systemdPath.map { " (\($0))" } ?? "")
            libyaml \(libraries.yaml)
            libarchive \(libraries.archive) (\(libraries.archiveDetails))
            glibc \(libraries.libc)

            """
    }
}
