import CLinux
import Glibc
import Platform

/// Writes stacked directory trees into a tar stream as overlayfs shows them (the merged
/// view a pod's app saw): the topmost tree that has a name wins; a whiteout (a 0/0
/// character device) hides the name in the trees below; an opaque directory
/// (`trusted.overlay.opaque=y`) hides everything below it in lower trees.
public struct TreeArchiver {
    /// Top first: a pod's upper directory, then the image's trees.
    public let layers: [String]

    public init(layers: [String]) { self.layers = layers }

    /// Adds the merged tree under `prefix` (`rootfs`).
    public func write(to writer: TarWriter, prefix: String) throws(RuntimeError) {
        try walk("", visible: layers, writer: writer, prefix: prefix)
    }

    /// `visible`: the trees (top first) whose content at `relative` shows through.
    private func walk(_ relative: String, visible: [String], writer: TarWriter, prefix: String) throws(RuntimeError) {
        var names = Set<String>()
        for layer in visible { names.formUnion(FileSystem.entryNames(inDirectory: layer + relative)) }
        for name in names.sorted() {
            let path = relative + "/" + name
            var info = stat()
            guard let index = visible.firstIndex(where: { lstat($0 + path, &info) == 0 }) else { continue }
            if info.st_mode & S_IFMT == S_IFCHR && info.st_rdev == 0 { continue }
            let source = visible[index] + path
            var header = TarWriter.Header(path: prefix + path, kind: .regular, mode: UInt32(info.st_mode & 0o7777))
            header.uid = info.st_uid
            header.gid = info.st_gid
            header.mtime = info.st_mtim.tv_sec
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                header.kind = .directory
                try writer.add(header)
                // Lower trees show through until an opaque directory or a non-directory.
                var below: [String] = [visible[index]]
                if !Self.isOpaque(source) {
                    for lower in visible.dropFirst(index + 1) {
                        var lowerInfo = stat()
                        guard lstat(lower + path, &lowerInfo) == 0 else { continue }
                        guard lowerInfo.st_mode & S_IFMT == S_IFDIR else { break }
                        below.append(lower)
                        if Self.isOpaque(lower + path) { break }
                    }
                }
                try walk(path, visible: below, writer: writer, prefix: prefix)
            case S_IFLNK:
                header.kind = .symlink
                var buffer = [CChar](repeating: 0, count: 4097)
                let count = readlink(source, &buffer, 4096)
                guard count >= 0 else { throw RuntimeError("readlink \(source): \(String(cString: strerror(errno)))") }
                header.linkTarget = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                try writer.add(header)
            case S_IFREG:
                header.size = Int64(info.st_size)
                try writer.add(header) { (output) throws(RuntimeError) in try Self.copy(source, size: header.size, to: output) }
            case S_IFCHR, S_IFBLK:
                header.kind = info.st_mode & S_IFMT == S_IFCHR ? .characterDevice : .blockDevice
                header.deviceMajor = UInt32((info.st_rdev >> 8) & 0xfff)
                header.deviceMinor = UInt32((info.st_rdev & 0xff) | ((info.st_rdev >> 12) & 0xfff00))
                try writer.add(header)
            case S_IFIFO:
                header.kind = .fifo
                try writer.add(header)
            default:
                continue
            }
        }
    }

    static func isOpaque(_ directory: String) -> Bool {
        var value: [UInt8] = [0, 0]
        for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
            let length = coreos_lgetxattr(directory, name, &value, 2)
            if length == 1 && value[0] == UInt8(ascii: "y") { return true }
        }
        return false
    }

    /// Exactly `size` bytes of the file (zeros if it shrank meanwhile).
    static func copy(_ path: String, size: Int64, to output: Int32) throws(RuntimeError) {
        let input = open(path, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw RuntimeError("open \(path): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        var left = size
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while left > 0 {
            let want = Int(min(Int64(buffer.count), left))
            var count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, want) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 {
                for index in 0..<want { buffer[index] = 0 }
                count = want
            }
            guard buffer.withUnsafeBytes({ ImageStore.writeAll(output, UnsafeRawBufferPointer(rebasing: $0[0..<count])) }) else {
                throw RuntimeError("write: \(String(cString: strerror(errno)))")
            }
            left -= Int64(count)
        }
    }
}
