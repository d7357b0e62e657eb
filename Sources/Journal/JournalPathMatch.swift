#if canImport(Glibc)
    import Glibc
#endif

/// A path operand as journalctl reads it: an executable matches `_EXE=` (a script
/// `_COMM=` of its name and `_EXE=` of its interpreter), a device node
/// `_KERNEL_DEVICE=c|bMAJOR:MINOR`.
public enum JournalPathMatch {
    public struct PathError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public static func terms(for operand: String) throws(PathError) -> [String] {
        guard let resolved = realpath(operand, nil) else {
            throw PathError(description: "Couldn't canonicalize path: \(String(cString: strerror(errno)))")
        }
        let path = String(cString: resolved)
        free(resolved)
        var status = stat()
        guard lstat(path, &status) == 0 else {
            throw PathError(description: "Couldn't stat file: \(String(cString: strerror(errno)))")
        }
        let kind = status.st_mode & S_IFMT
        if kind == S_IFREG && status.st_mode & 0o111 != 0 {
            if let interpreter = scriptInterpreter(path) {
                let name = String(path.split(separator: "/").last ?? "").prefix(15)
                var terms = ["_COMM=\(name)"]
                var interpreterStatus = stat()
                if lstat(interpreter, &interpreterStatus) == 0 && interpreterStatus.st_mode & S_IFMT != S_IFLNK {
                    terms.append("_EXE=\(interpreter)")
                }
                return terms
            }
            return ["_EXE=\(path)"]
        }
        if kind == S_IFCHR || kind == S_IFBLK {
            let device = status.st_rdev
            let major = (device >> 8) & 0xfff | (device >> 32) & ~0xfff
            let minor = device & 0xff | (device >> 12) & ~0xff
            return ["_KERNEL_DEVICE=\(kind == S_IFCHR ? "c" : "b")\(major):\(minor)"]
        }
        throw PathError(description: "File is neither a device node, nor regular file, nor executable: \(operand)")
    }

    /// The interpreter named on a script's `#!` line, nil for anything else.
    static func scriptInterpreter(_ path: String) -> String? {
        guard let line = JournalTime.firstLine(ofFile: path), line.hasPrefix("#!") else { return nil }
        let interpreter = line.dropFirst(2).drop { $0 == " " || $0 == "\t" }.prefix { $0 != " " && $0 != "\t" }
        return interpreter.isEmpty ? nil : String(interpreter)
    }
}
