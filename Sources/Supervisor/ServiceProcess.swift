import CLinux
import Foundation
import Glibc
public import UnitFile

/// Starting one command of a unit as systemd would: the executable found in systemd's
/// fixed search path, `$VAR`/`${VAR}` expanded from the unit's environment, the user's
/// identity and the working directory applied in the child.
public enum ServiceProcess {
    /// systemd's search path for a bare executable name, and the `PATH` it gives services.
    public static let searchPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// A user's identity for `User=` (a name or a numeric UID).
    public struct Identity: Sendable, Hashable {
        public var uid: UInt32
        public var gid: UInt32
        public var name: String
        public var home: String
        public var shell: String

        public static func lookup(_ user: String) throws(Failure) -> Identity {
            var entry = passwd()
            var result: UnsafeMutablePointer<passwd>?
            var buffer = [CChar](repeating: 0, count: 16384)
            if let uid = UInt32(user) {
                getpwuid_r(uid, &entry, &buffer, buffer.count, &result)
            } else {
                getpwnam_r(user, &entry, &buffer, buffer.count, &result)
            }
            guard let found = result?.pointee else { throw Failure(message: "user \(user) does not exist") }
            return Identity(
                uid: found.pw_uid, gid: found.pw_gid, name: String(cString: found.pw_name), home: String(cString: found.pw_dir),
                shell: String(cString: found.pw_shell))
        }
    }

    /// The executable for a command: an absolute path as is, a bare name from the search path.
    public static func resolve(_ command: ExecCommand) throws(Failure) -> String {
        if command.path.hasPrefix("/") { return command.path }
        for directory in searchPath.split(separator: ":") {
            let candidate = "\(directory)/\(command.path)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw Failure(message: "executable \(command.path) not found in \(searchPath)")
    }

    /// systemd's variable expansion: `${NAME}` inside a word, and a word that is exactly
    /// `$NAME` replaced by the value split at whitespace (no word when unset or empty).
    /// `$$` is a literal `$`. Not done for commands with the `:` prefix.
    public static func expand(_ arguments: [String], environment: [String: String]) -> [String] {
        var result: [String] = []
        for (index, word) in arguments.enumerated() {
            if index > 0, word.hasPrefix("$"), !word.hasPrefix("${"), !word.hasPrefix("$$") {
                let name = String(word.dropFirst())
                if !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                    result += (environment[name] ?? "").split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
                    continue
                }
            }
            var expanded = ""
            var rest = Substring(word)
            while let dollar = rest.firstIndex(of: "$") {
                expanded += rest[..<dollar]
                let after = rest[rest.index(after: dollar)...]
                if after.hasPrefix("$") {
                    expanded += "$"
                    rest = after.dropFirst()
                } else if after.hasPrefix("{"), let close = after.firstIndex(of: "}") {
                    expanded += environment[String(after[after.index(after: after.startIndex)..<close])] ?? ""
                    rest = after[after.index(after: close)...]
                } else {
                    expanded += "$"
                    rest = after
                }
            }
            result.append(expanded + rest)
        }
        return result
    }

    /// Forks and execs; returns the PID. The child gets a session of its own (so the whole
    /// process group can be signalled), `/dev/null` as stdin and `output` as stdout and
    /// stderr.
    public static func spawn(
        executable: String, arguments: [String], environment: [String: String], directory: String?, identity: Identity?,
        output: Int32
    ) throws(Failure) -> Int32 {
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { if devNull >= 0 { close(devNull) } }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var error: Int32 = 0
        let pid = coreos_spawn_service(
            executable, argv, envp, directory, identity.map { Int32(bitPattern: $0.uid) } ?? -1,
            identity.map { Int32(bitPattern: $0.gid) } ?? -1, devNull, output, output, &error)
        guard pid > 0 else {
            let what = error == ENOENT && directory != nil && access(directory!, F_OK) != 0 ? "changing to \(directory!)" : "executing \(executable)"
            throw Failure(message: "\(what): \(String(cString: strerror(error)))")
        }
        return pid
    }
}
