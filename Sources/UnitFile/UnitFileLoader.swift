import Glibc

/// Finds a unit's file and its drop-ins on disk and merges them, as systemd does.
///
/// For `a-b@x.service` the drop-in directories, least specific first, are
/// `service.d`, `a-.service.d`, `a-b@.service.d`, `a-b@x.service.d`, each looked for in
/// every search path. Files are applied in lexical order of their names; when two
/// directories hold a file of the same name, the more specific directory's file (and,
/// for equal specificity, the earlier search path's) replaces the other.
public struct UnitFileLoader: Sendable {
    /// Directories searched, highest priority first (like /etc before /lib).
    public var searchPaths: [String]
    public var limits: UnitFileLimits

    public init(searchPaths: [String], limits: UnitFileLimits = .default) {
        self.searchPaths = searchPaths
        self.limits = limits
    }

    /// The unit with its drop-ins merged. An instance without its own file falls back to
    /// its template's file.
    public func load(_ unit: UnitName) throws(UnitFileError) -> UnitFile {
        var candidates = [unit.name]
        if let template = unit.template { candidates.append(template.name) }
        var base: UnitFile? = nil
        search: for name in candidates {
            for directory in searchPaths {
                let path = directory + "/" + name
                if FileReading.isRegularFile(path) {
                    base = try UnitFile(
                        parsing: FileReading.read(path, limit: limits.maxFileBytes), file: path, limits: limits)
                    break search
                }
            }
        }
        guard let base else { throw UnitFileError(.io(path: unit.name, errno: ENOENT), line: 0, column: 0) }
        var dropIns: [UnitFile] = []
        for path in dropInPaths(for: unit) {
            dropIns.append(
                try UnitFile(parsing: FileReading.read(path, limit: limits.maxFileBytes), file: path, limits: limits))
        }
        return base.merging(dropIns)
    }

    /// Drop-in directory names for `unit`, least specific first.
    public static func dropInDirectoryNames(for unit: UnitName) -> [String] {
        let suffix = "." + unit.type.rawValue
        var names = [unit.type.rawValue + ".d"]
        let parts = unit.prefix.split(separator: "-", omittingEmptySubsequences: false)
        if parts.count > 1 {
            for count in 1..<parts.count {
                let stem = parts[0..<count].joined(separator: "-")
                if !stem.isEmpty { names.append(stem + "-" + suffix + ".d") }
            }
        }
        if let template = unit.template { names.append(template.name + ".d") }
        names.append(unit.name + ".d")
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }

    /// The drop-in files that apply to `unit`, in the order they are merged.
    public func dropInPaths(for unit: UnitName) -> [String] {
        var chosen: [String: (rank: Int, path: String)] = [:]
        for (specificity, directoryName) in Self.dropInDirectoryNames(for: unit).enumerated() {
            for (priority, searchPath) in searchPaths.enumerated() {
                let directory = searchPath + "/" + directoryName
                // Rank: more specific beats less specific; within one, earlier search path wins.
                let rank = specificity * 10_000 + (searchPaths.count - priority)
                for file in FileReading.listDirectory(directory) where file.hasSuffix(".conf") {
                    let path = directory + "/" + file
                    guard FileReading.isRegularFile(path) else { continue }
                    if let existing = chosen[file], existing.rank >= rank { continue }
                    chosen[file] = (rank, path)
                }
            }
        }
        return chosen.keys.sorted().compactMap { chosen[$0]?.path }
    }
}

/// Bounded file reading with POSIX calls.
enum FileReading {
    static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    static func listDirectory(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Reads at most `limit` bytes; a larger file is an error, not a truncation.
    static func read(_ path: String, limit: Int) throws(UnitFileError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 { throw UnitFileError(.io(path: path, errno: errno), file: path, line: 0, column: 0) }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw UnitFileError(.io(path: path, errno: errno), file: path, line: 0, column: 0)
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            if bytes.count > limit { throw UnitFileError(.fileTooLarge(limit: limit), file: path, line: 1, column: 1) }
        }
        return bytes
    }
}
