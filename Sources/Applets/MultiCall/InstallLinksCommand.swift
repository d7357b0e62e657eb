import CLI
import Glibc
import Platform

/// `coreos install-links [--dir DIR] [--force] [NAME...]`: one symlink per applet name,
/// pointing at this executable, like `busybox --install -s`.
///
/// Idempotent: a link that already points here is left alone. Anything else in the way
/// (a regular file, a link elsewhere) is kept unless `--force` is given, and then it is
/// replaced atomically (a new link renamed over it).
enum InstallLinksCommand {
    static let options = OptionParser([
        OptionSpec(long: "dir", short: "d", argument: .required),
        OptionSpec(long: "force", short: "f"),
        OptionSpec(long: "help", short: "h"),
    ])

    static func run(_ arguments: [String], io: StandardStreams) -> Int32 {
        let parsed: ParsedOptions
        do { parsed = try options.parse(arguments) } catch {
            io.error.line("coreos install-links: \(error.message)")
            return ExitStatus.usage
        }
        if parsed.has("help") {
            io.output.line("Usage: coreos install-links [--dir DIR] [--force] [NAME...]")
            io.output.line(
                "Creates a symlink named after each applet (default: all) in DIR (default: beside this binary).")
            return ExitStatus.success
        }
        guard let executable = currentExecutable() else {
            io.error.line("coreos install-links: cannot resolve /proc/self/exe: errno \(errno)")
            return ExitStatus.failure
        }
        let directory =
            parsed.last("dir") ?? String(executable[..<(executable.lastIndex(of: "/") ?? executable.endIndex)])
        let allNames = AppletTable.all.flatMap(\.names)
        let names = parsed.operands.isEmpty ? allNames : parsed.operands
        if let unknown = names.first(where: { !allNames.contains($0) }) {
            io.error.line("coreos install-links: '\(unknown)' is not an applet of this build")
            return ExitStatus.usage
        }
        let force = parsed.has("force")
        var status = ExitStatus.success
        for name in names {
            let link = directory + "/" + name
            switch install(link: link, target: executable, force: force) {
            case .created: io.output.line("\(link) -> \(executable)")
            case .alreadyPresent: break
            case .conflict(let what):
                io.error.line("coreos install-links: \(link) exists and is \(what); use --force to replace it")
                status = ExitStatus.failure
            case .failed(let code):
                io.error.line("coreos install-links: cannot create \(link): \(String(cString: strerror(code)))")
                status = ExitStatus.failure
            }
        }
        return status
    }

    enum Outcome: Equatable {
        case created, alreadyPresent
        case conflict(String)
        case failed(Int32)
    }

    static func install(link: String, target: String, force: Bool) -> Outcome {
        if let existing = FileSystem.entryType(atPath: link) {
            switch existing {
            case .symbolicLink:
                if readLink(link) == target { return .alreadyPresent }
                if !force { return .conflict("a symlink to \(readLink(link) ?? "?")") }
            case .directory:
                return .conflict("a directory")
            case .regular, .other:
                if !force { return .conflict("a regular file") }
            }
            let temporary = link + ".coreos-new"
            unlink(temporary)
            if symlink(target, temporary) != 0 { return .failed(errno) }
            if rename(temporary, link) != 0 {
                let code = errno
                unlink(temporary)
                return .failed(code)
            }
            return .created
        }
        return symlink(target, link) == 0 ? .created : .failed(errno)
    }

    static func currentExecutable() -> String? { readLink("/proc/self/exe") }

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlink(path, &buffer, 4096)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
