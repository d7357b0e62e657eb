import CDynamicLibraries
import CSystemd

#if canImport(Glibc)
    import Glibc
#endif

/// A failed sd-journal call: what was attempted, on what, and the errno it returned.
public struct JournalError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var errno: Int32

    init(_ message: String, _ result: Int32) {
        self.message = message
        self.errno = -result
    }

    /// journalctl's wording: `Failed to open /x: No such file or directory`.
    public var description: String { "\(message): \(String(cString: strerror(errno)))" }
}

/// One open view of journal files through libsystemd's sd-journal: matches, a read
/// position, and the current entry's fields. Not thread-safe (sd-journal is not).
public final class SystemJournal {
    /// Which files to read.
    public enum Source: Sendable, Hashable {
        /// The system journal (`/var/log/journal`, `/run/log/journal`); `merge` adds
        /// other machines' journals found there (`-m`).
        case system(merge: Bool)
        case directory(String)
        case files([String])
    }

    private let journal: OpaquePointer

    public init(_ source: Source) throws(JournalError) {
        var opened: OpaquePointer?
        let result: Int32
        switch source {
        case .system(let merge):
            result = sd_journal_open(&opened, merge ? 0 : Int32(SD_JOURNAL_LOCAL_ONLY))
            if result < 0 { throw JournalError("Failed to open journal", result) }
        case .directory(let path):
            result = sd_journal_open_directory(&opened, path, 0)
            if result < 0 { throw JournalError("Failed to open \(path)", result) }
        case .files(let paths):
            var pointers = paths.map { strdup($0) }
            defer { pointers.forEach { free($0) } }
            pointers.append(nil)
            result = pointers.withUnsafeMutableBufferPointer { buffer in
                buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { sd_journal_open_files(&opened, $0.baseAddress, 0) }
            }
            if result < 0 { throw JournalError("Failed to open journal files", result) }
        }
        guard let opened else { throw JournalError("Failed to open journal", -EINVAL) }
        journal = opened
        // Whole field values: the formatters decide what to shorten.
        _ = sd_journal_set_data_threshold(opened, 0)
    }

    deinit { sd_journal_close(journal) }

    // MARK: Matches

    /// `FIELD=VALUE` (bytes, as given).
    public func addMatch(_ match: [UInt8]) throws(JournalError) {
        let result = match.withUnsafeBytes { sd_journal_add_match(journal, $0.baseAddress, $0.count) }
        if result < 0 { throw JournalError("Failed to add match '\(String(decoding: match, as: UTF8.self))'", result) }
    }

    public func addDisjunction() throws(JournalError) {
        let result = sd_journal_add_disjunction(journal)
        if result < 0 { throw JournalError("Failed to add disjunction", result) }
    }

    public func addConjunction() throws(JournalError) {
        let result = sd_journal_add_conjunction(journal)
        if result < 0 { throw JournalError("Failed to add conjunction", result) }
    }

    public func flushMatches() { sd_journal_flush_matches(journal) }

    // MARK: Position

    public func seekHead() throws(JournalError) { try check(sd_journal_seek_head(journal), "Failed to seek to head") }
    public func seekTail() throws(JournalError) { try check(sd_journal_seek_tail(journal), "Failed to seek to tail") }
    public func seek(realtime: UInt64) throws(JournalError) {
        try check(sd_journal_seek_realtime_usec(journal, realtime), "Failed to seek to date")
    }
    public func seek(cursor: String) throws(JournalError) {
        try check(sd_journal_seek_cursor(journal, cursor), "Failed to seek to cursor")
    }
    /// Whether the current entry is the one `cursor` names.
    public func isAt(cursor: String) -> Bool { sd_journal_test_cursor(journal, cursor) > 0 }

    /// Moves to the next entry; false at the end.
    public func next() throws(JournalError) -> Bool { try step(sd_journal_next(journal)) }
    public func previous() throws(JournalError) -> Bool { try step(sd_journal_previous(journal)) }
    /// Moves `count` entries forward or back; returns how many it moved.
    public func skip(forward: Bool, _ count: UInt64) throws(JournalError) -> Int {
        let result = forward ? sd_journal_next_skip(journal, count) : sd_journal_previous_skip(journal, count)
        if result < 0 { throw JournalError("Failed to iterate through journal", result) }
        return Int(result)
    }

    private func step(_ result: Int32) throws(JournalError) -> Bool {
        if result < 0 { throw JournalError("Failed to iterate through journal", result) }
        return result > 0
    }

    private func check(_ result: Int32, _ message: String) throws(JournalError) {
        if result < 0 { throw JournalError(message, result) }
    }

    // MARK: The current entry

    public func realtime() throws(JournalError) -> UInt64 {
        var value: UInt64 = 0
        try check(sd_journal_get_realtime_usec(journal, &value), "Failed to get realtime timestamp")
        return value
    }

    /// The monotonic timestamp and the boot it counts from.
    public func monotonic() throws(JournalError) -> (usec: UInt64, boot: BootID) {
        var value: UInt64 = 0
        var boot = sd_id128_t()
        try check(sd_journal_get_monotonic_usec(journal, &value, &boot), "Failed to get monotonic timestamp")
        return (value, BootID(boot))
    }

    public func cursor() throws(JournalError) -> String {
        var text: UnsafeMutablePointer<CChar>?
        try check(sd_journal_get_cursor(journal, &text), "Failed to get cursor")
        defer { free(text) }
        return text.map { String(cString: $0) } ?? ""
    }

    /// Calls `body` with each `FIELD=VALUE` item of the current entry, in the entry's
    /// order; the bytes are valid only during the call.
    public func forEachField(_ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        sd_journal_restart_data(journal)
        var data: UnsafeRawPointer?
        var length = 0
        while sd_journal_enumerate_data(journal, &data, &length) > 0 {
            guard let data else { continue }
            try body(UnsafeRawBufferPointer(start: data, count: length))
        }
    }

    /// The value of `field` in the current entry (its first occurrence), nil when absent.
    public func value(of field: String) -> [UInt8]? {
        var data: UnsafeRawPointer?
        var length = 0
        guard sd_journal_get_data(journal, field, &data, &length) >= 0, let data else { return nil }
        let item = UnsafeRawBufferPointer(start: data, count: length)
        let prefix = field.utf8.count + 1
        return item.count >= prefix ? Array(item[prefix...]) : nil
    }

    /// The catalog text for the current entry's MESSAGE_ID, its fields substituted; nil
    /// when the catalog has none.
    public func catalog() -> String? {
        var text: UnsafeMutablePointer<CChar>?
        guard sd_journal_get_catalog(journal, &text) >= 0, let text else { return nil }
        defer { free(text) }
        return String(cString: text)
    }

    // MARK: Whole journal

    /// Every value `field` takes in the files (unordered, as sd-journal returns them).
    public func uniqueValues(of field: String) throws(JournalError) -> [[UInt8]] {
        try check(sd_journal_query_unique(journal, field), "Failed to query unique data objects")
        var values: [[UInt8]] = []
        var data: UnsafeRawPointer?
        var length = 0
        let prefix = field.utf8.count + 1
        while sd_journal_enumerate_unique(journal, &data, &length) > 0 {
            guard let data, length >= prefix else { continue }
            values.append(Array(UnsafeRawBufferPointer(start: data, count: length)[prefix...]))
        }
        return values
    }

    /// Every field name used in the files.
    public func fieldNames() -> [String] {
        sd_journal_restart_fields(journal)
        var names: [String] = []
        var field: UnsafePointer<CChar>?
        while sd_journal_enumerate_fields(journal, &field) > 0 {
            if let field { names.append(String(cString: field)) }
        }
        return names
    }

    /// Bytes the files take on disk.
    public func diskUsage() throws(JournalError) -> UInt64 {
        var bytes: UInt64 = 0
        try check(sd_journal_get_usage(journal, &bytes), "Failed to get disk usage")
        return bytes
    }

    /// Waits until the files change or `timeout` microseconds pass (`UInt64.max`: no limit).
    public func wait(timeout: UInt64) throws(JournalError) {
        try check(sd_journal_wait(journal, timeout), "Couldn't wait for journal event")
    }
}

/// A 128-bit boot ID, printed as 32 lowercase hex digits.
public struct BootID: Sendable, Hashable, CustomStringConvertible {
    public var bytes: [UInt8]

    init(_ id: sd_id128_t) {
        bytes = withUnsafeBytes(of: id.bytes) { Array($0) }
    }

    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count == 32 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: 32, by: 2) {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        self.bytes = bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case 0x30...0x39: return digit - 0x30
        case 0x61...0x66: return digit - 0x61 + 10
        case 0x41...0x46: return digit - 0x41 + 10
        default: return nil
        }
    }

    public var description: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 15)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
