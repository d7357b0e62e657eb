/// Writes ustar archives byte by byte, so tests can make any entry a hostile archive
/// might hold (names with `..`, links out of the tree, headers that lie about sizes).
struct TarBuilder {
    enum Kind: UInt8 {
        case regular = 0x30, hardlink = 0x31, symlink = 0x32, characterDevice = 0x33, blockDevice = 0x34, directory = 0x35, fifo = 0x36
    }

    private(set) var bytes: [UInt8] = []

    mutating func add(
        _ name: String, _ kind: Kind = .regular, content: [UInt8] = [], mode: UInt32 = 0o644, link: String = "",
        uid: Int = 0, gid: Int = 0, mtime: Int = 1_600_000_000, declaredSize: Int? = nil, major: Int = 0, minor: Int = 0
    ) {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (index, byte) in text.utf8.prefix(width).enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int, at offset: Int, width: Int) {
            let text = String(value, radix: 8)
            put(String(repeating: "0", count: max(0, width - 1 - text.count)) + text, at: offset, width: width - 1)
        }
        var name = name
        if name.utf8.count > 100, let slash = name.utf8.prefix(155).lastIndex(of: UInt8(ascii: "/")) {
            let cut = name.utf8.distance(from: name.utf8.startIndex, to: slash)
            put(String(name.prefix(cut)), at: 345, width: 155)
            name = String(name.dropFirst(cut + 1))
        }
        put(name, at: 0, width: 100)
        octal(Int(mode), at: 100, width: 8)
        octal(uid, at: 108, width: 8)
        octal(gid, at: 116, width: 8)
        octal(declaredSize ?? (kind == .regular ? content.count : 0), at: 124, width: 12)
        octal(mtime, at: 136, width: 12)
        header[156] = kind.rawValue
        put(link, at: 157, width: 100)
        put("ustar", at: 257, width: 6)
        put("00", at: 263, width: 2)
        octal(major, at: 329, width: 8)
        octal(minor, at: 337, width: 8)
        for index in 148..<156 { header[index] = 0x20 }
        let sum = header.reduce(0) { $0 + Int($1) }
        octal(sum, at: 148, width: 7)
        header[155] = 0x20
        bytes += header
        if kind == .regular {
            bytes += content
            bytes += [UInt8](repeating: 0, count: (512 - content.count % 512) % 512)
        }
    }

    /// The archive with its two zero blocks.
    var archive: [UInt8] { bytes + [UInt8](repeating: 0, count: 1024) }
}
