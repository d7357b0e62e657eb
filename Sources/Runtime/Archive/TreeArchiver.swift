import CLinux
import Glibc
import Platform

/// Writes a directory tree into a tar stream, optionally as an overlayfs upper directory
/// over a lower one (the merged view a pod's app saw): whiteouts (0/0 character devices)
/// hide lower entries, opaque directories (`trusted.overlay.opaque=y`) hide everything
/// below them from the lower layer.
public struct TreeArchiver {
    public let lower: String
    public let upper: String?

    public init(lower: String, upper: String?) {
        self.lower = lower
        self.upper = upper
    }

    /// Adds the merged tree under `prefix` (`rootfs`).
    public func write(to writer: TarWriter, prefix: String) throws(RuntimeError) {
        try walk("", writer: writer, prefix: prefix, lowerVisible: true)
    }

    private func walk(_ relative: String, writer: TarWriter, prefix: String, lowerVisible: Bool) throws(RuntimeError) {
        let upperDirectory = upper.map { $0 + relative }
        let lowerDirectory = lower + relative
        var names = Set<String>()
        if let upperDirectory { names.formUnion(FileSystem.entryNames(inDirectory: upperDirectory)) }
        if lowerVisible { names.formUnion(FileSystem.entryNames(inDirectory: lowerDirectory)) }
        for name in names.sorted() {
            let path = relative + "/" + name
            var info = stat()
            var source: String
            var fromUpper = false
            if let upper, lstat(upper + path, &info) == 0 {
                if info.st_mode & S_IFMT == S_IFCHR && info.st_rdev == 0 { continue }
                source = upper + path
                fromUpper = true
            } else if lowerVisible, lstat(lower + path, &info) == 0 {
                source = lower + path
            } else {
                continue
            }
            var header = TarWriter.Header(path: prefix + path, kind: .regular, mode: UInt32(info.st_mode & 0o7777))
            header.uid = info.st_uid
            header.gid = info.st_gid
            header.mtime = info.st_mtim.tv_sec
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                header.kind = .directory
                try writer.add(header)
                // Below an upper directory, lower entries stay visible unless it is opaque
                // or replaced a lower non-directory.
                var lowerInfo = stat()
                let lowerIsDirectory = lstat(lower + path, &lowerInfo) == 0 && lowerInfo.st_mode & S_IFMT == S_IFDIR
                let visible = lowerVisible && lowerIsDirectory && !(fromUpper && Self.isOpaque(source))
                try walk(path, writer: writer, prefix: prefix, lowerVisible: visible)
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
