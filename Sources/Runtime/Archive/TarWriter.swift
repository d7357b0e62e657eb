import Glibc

/// Writes a POSIX tar stream (ustar headers, a pax extended header for names or link
/// targets that do not fit) to a file descriptor: what `export` turns a pod's tree into.
public final class TarWriter {
    public enum Kind: UInt8 {
        case regular = 0x30, hardlink = 0x31, symlink = 0x32, characterDevice = 0x33, blockDevice = 0x34, directory = 0x35, fifo = 0x36
    }

    public struct Header {
        public var path: String
        public var kind: Kind
        public var mode: UInt32
        public var uid: UInt32 = 0
        public var gid: UInt32 = 0
        public var size: Int64 = 0
        public var mtime: Int = 0
        public var linkTarget = ""
        public var deviceMajor: UInt32 = 0
        public var deviceMinor: UInt32 = 0

        public init(path: String, kind: Kind, mode: UInt32) {
            self.path = path
            self.kind = kind
            self.mode = mode
        }
    }

    private let descriptor: Int32

    public init(descriptor: Int32) { self.descriptor = descriptor }

    func emit(_ bytes: [UInt8]) throws(RuntimeError) {
        guard bytes.withUnsafeBytes({ ImageStore.writeAll(descriptor, $0) }) else {
            throw RuntimeError("write: \(String(cString: strerror(errno)))")
        }
    }

    static func block(for header: Header, name: String, linkTarget: String, type: UInt8, size: Int64) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (index, byte) in text.utf8.prefix(width).enumerated() { block[offset + index] = byte }
        }
        func octal(_ value: Int64, at offset: Int, width: Int) {
            let text = String(value, radix: 8)
            put(String(repeating: "0", count: max(0, width - 1 - text.count)) + text, at: offset, width: width - 1)
        }
        put(name, at: 0, width: 100)
        octal(Int64(header.mode & 0o7777), at: 100, width: 8)
        octal(Int64(header.uid), at: 108, width: 8)
        octal(Int64(header.gid), at: 116, width: 8)
        octal(size, at: 124, width: 12)
        octal(Int64(header.mtime), at: 136, width: 12)
        block[156] = type
        put(linkTarget, at: 157, width: 100)
        put("ustar", at: 257, width: 6)
        put("00", at: 263, width: 2)
        octal(Int64(header.deviceMajor), at: 329, width: 8)
        octal(Int64(header.deviceMinor), at: 337, width: 8)
        for index in 148..<156 { block[index] = 0x20 }
        octal(Int64(block.reduce(0) { $0 + Int($1) }), at: 148, width: 7)
        return block
    }

    static func padding(_ size: Int64) -> [UInt8] { [UInt8](repeating: 0, count: Int((512 - size % 512) % 512)) }

    /// One entry; a regular file's bytes come from `contents` (called with the descriptor to write to).
    public func add(_ header: Header, contents: ((Int32) throws(RuntimeError) -> Void)? = nil) throws(RuntimeError) {
        var name = header.path
        if header.kind == .directory && !name.hasSuffix("/") { name += "/" }
        if name.utf8.count > 100 || header.linkTarget.utf8.count > 100 {
            var records = ""
            for (key, value) in [("path", name), ("linkpath", header.linkTarget)] where !value.isEmpty {
                // A pax record is "LENGTH KEY=VALUE\n", LENGTH counting itself.
                let body = " \(key)=\(value)\n"
                var length = body.utf8.count + 1
                while String(length).count + body.utf8.count != length { length = String(length).count + body.utf8.count }
                records += "\(length)\(body)"
            }
            let bytes = Array(records.utf8)
            var pax = Header(path: "PaxHeaders/" + String(name.suffix(80)), kind: .regular, mode: 0o644)
            pax.mtime = header.mtime
            try emit(Self.block(for: pax, name: pax.path, linkTarget: "", type: UInt8(ascii: "x"), size: Int64(bytes.count)))
            try emit(bytes + Self.padding(Int64(bytes.count)))
        }
        let size = header.kind == .regular ? header.size : 0
        try emit(Self.block(for: header, name: String(name.utf8.prefix(100)) ?? name, linkTarget: String(header.linkTarget.utf8.prefix(100)) ?? "", type: header.kind.rawValue, size: size))
        if header.kind == .regular, size > 0 {
            try contents?(descriptor)
            try emit(Self.padding(size))
        }
    }

    /// The two zero blocks that end an archive.
    public func finish() throws(RuntimeError) { try emit([UInt8](repeating: 0, count: 1024)) }
}
