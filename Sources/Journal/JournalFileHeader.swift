#if canImport(Glibc)
    import Glibc
#endif

/// A journal file's header, read from the file itself (sd-journal has no API for it), as
/// `journalctl --header` prints it. Layout: systemd's journal file format (little endian;
/// fields after `tail_entry_monotonic` exist when `header_size` covers them).
public struct JournalFileHeader: Sendable {
    public var path: String
    var bytes: [UInt8]
    /// Blocks the file takes on disk, in bytes.
    public var diskUsage: UInt64

    public struct ReadError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The size of the header systemd 252 writes: a smaller one means an older format,
    /// which journalctl suggests rotating.
    static let currentHeaderSize: UInt64 = 264

    public init(path: String) throws(ReadError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ReadError(description: "Failed to open \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var status = stat()
        _ = fstat(descriptor, &status)
        var bytes = [UInt8](repeating: 0, count: 512)
        let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count >= 208, Array(bytes[0..<8]) == Array("LPKSHHRH".utf8) else {
            throw ReadError(description: "\(path): not a journal file")
        }
        self.path = path
        self.bytes = Array(bytes.prefix(count))
        diskUsage = UInt64(status.st_blocks) * 512
    }

    func u64(_ offset: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
    }

    func u32(_ offset: Int) -> UInt32 { UInt32(truncatingIfNeeded: u64(offset) & 0xFFFF_FFFF) }

    func id(_ offset: Int) -> String {
        bytes[offset..<offset + 16].map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    var headerSize: UInt64 { u64(88) }

    /// Whether the header has the field that ends at `end`.
    func contains(_ end: Int) -> Bool { headerSize >= UInt64(end) && bytes.count >= end }

    /// journalctl's `--header` text for this file.
    public func rendered(utc: Bool) -> String {
        let compatible = u32(8)
        let incompatible = u32(12)
        let states = ["OFFLINE", "ONLINE", "ARCHIVED"]
        let state = Int(bytes[16]) < states.count ? states[Int(bytes[16])] : "UNKNOWN"
        var incompatibleNames = ""
        for (bit, name) in [(1, " COMPRESSED-XZ"), (2, " COMPRESSED-LZ4"), (8, " COMPRESSED-ZSTD"), (4, " KEYED-HASH"), (16, " COMPACT")]
        where incompatible & UInt32(bit) != 0 {
            incompatibleNames += name
        }
        if incompatible & ~UInt32(31) != 0 { incompatibleNames += " ???" }
        let dataBuckets = u64(112) / 16
        let fieldBuckets = u64(128) / 16
        var text = """
            File path: \(path)
            File ID: \(id(24))
            Machine ID: \(id(40))
            Boot ID: \(id(56))
            Sequential number ID: \(id(72))
            State: \(state)
            Compatible flags:\(compatible & 1 != 0 ? " SEALED" : "")\(compatible & ~1 != 0 ? " ???" : "")
            Incompatible flags:\(incompatibleNames)
            Header size: \(headerSize)
            Arena size: \(u64(96))
            Data hash table size: \(dataBuckets)
            Field hash table size: \(fieldBuckets)
            Rotate suggested: \(rotateSuggested ? "yes" : "no")
            Head sequential number: \(u64(168)) (\(String(u64(168), radix: 16)))
            Tail sequential number: \(u64(160)) (\(String(u64(160), radix: 16)))
            Head realtime timestamp: \(Self.timestamp(u64(184), utc: utc)) (\(String(u64(184), radix: 16)))
            Tail realtime timestamp: \(Self.timestamp(u64(192), utc: utc)) (\(String(u64(192), radix: 16)))
            Tail monotonic timestamp: \(Self.timespan(u64(200), accuracy: 1000)) (\(String(u64(200), radix: 16)))
            Objects: \(u64(144))
            Entry objects: \(u64(152))

            """
        if contains(216) {
            text += "Data objects: \(u64(208))\nData hash table fill: \(Self.percent(u64(208), dataBuckets))%\n"
        }
        if contains(224) {
            text += "Field objects: \(u64(216))\nField hash table fill: \(Self.percent(u64(216), fieldBuckets))%\n"
        }
        if contains(232) { text += "Tag objects: \(u64(224))\n" }
        if contains(240) { text += "Entry array objects: \(u64(232))\n" }
        if contains(256) { text += "Deepest field hash chain: \(u64(248))\n" }
        if contains(248) { text += "Deepest data hash chain: \(u64(240))\n" }
        text += "Disk usage: \(JournalFormatter.formatBytes(diskUsage))\n"
        return text
    }

    /// journalctl's reasons to suggest rotating: an older header, hash tables over 75 %
    /// full, hash chains deeper than 100, data without fields.
    var rotateSuggested: Bool {
        if headerSize < Self.currentHeaderSize { return true }
        if contains(216) && u64(208) * 4 > u64(112) / 16 * 3 { return true }
        if contains(224) && u64(216) * 4 > u64(128) / 16 * 3 { return true }
        if contains(248) && u64(240) > 100 { return true }
        if contains(256) && u64(248) > 100 { return true }
        if contains(224) && u64(208) > 0 && u64(216) == 0 { return true }
        return false
    }

    /// `%.1f` of the fill, printf's rounding included.
    static func percent(_ count: UInt64, _ buckets: UInt64) -> String {
        let value = 100.0 * Double(count) / Double(buckets)
        var buffer = [CChar](repeating: 0, count: 64)
        let length = withVaList([value]) { vsnprintf(&buffer, buffer.count, "%.1f", $0) }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func timestamp(_ usec: UInt64, utc: Bool) -> String {
        usec > 0 ? JournalTime.full(usec, utc: utc) : "n/a"
    }

    /// systemd's format_timespan: `16h 1.474s`, largest units first, down to `accuracy`.
    static func timespan(_ usec: UInt64, accuracy: UInt64) -> String {
        let table: [(String, UInt64)] = [
            ("y", 31_557_600_000_000), ("month", 2_629_800_000_000), ("w", 604_800_000_000), ("d", 86_400_000_000),
            ("h", 3_600_000_000), ("min", 60_000_000), ("s", 1_000_000), ("ms", 1000), ("us", 1),
        ]
        if usec == 0 { return "0" }
        var rest = usec
        var parts: [String] = []
        for (suffix, unit) in table {
            if rest == 0 { break }
            if rest < accuracy && !parts.isEmpty { break }
            if rest < unit { continue }
            let whole = rest / unit
            // As systemd: below a minute, the rest as a fraction down to `accuracy`; when
            // that leaves no digits, the scaled rest carries on (it is then below one unit).
            var remainder = rest % unit
            if rest < 60_000_000 && remainder > 0 {
                var digits = 0
                var scale = unit
                while scale > 1 { digits += 1; scale /= 10 }
                var accuracyScale = accuracy
                while accuracyScale > 1 { remainder /= 10; digits -= 1; accuracyScale /= 10 }
                if digits > 0 {
                    let fraction = String(remainder)
                    parts.append("\(whole).\(String(repeating: "0", count: max(0, digits - fraction.count)))\(fraction)\(suffix)")
                    rest = 0
                    continue
                }
            }
            parts.append("\(whole)\(suffix)")
            rest = remainder
        }
        return parts.joined(separator: " ")
    }
}
