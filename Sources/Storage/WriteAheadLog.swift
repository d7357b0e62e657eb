import Checksums
import Glibc
import Raft

/// Why storage cannot be opened or written, naming the file (and offset) concerned.
public struct StorageError: Error, Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var offset: Int?
    public var message: String

    public init(_ path: String, offset: Int? = nil, _ message: String) {
        self.path = path
        self.offset = offset
        self.message = message
    }

    public var description: String {
        offset.map { "\(path): offset \($0): \(message)" } ?? "\(path): \(message)"
    }

    static func system(_ path: String, _ operation: String) -> StorageError {
        StorageError(path, "\(operation): \(String(cString: strerror(errno)))")
    }
}

/// Small POSIX helpers that retry on EINTR and report failures as ``StorageError``.
enum FileIO {
    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], path: String) throws(StorageError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, bytes.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw .system(path, "write")
            }
            offset += written
        }
    }

    /// Writes all of `bytes` at `offset` (the file keeps its allocated size).
    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], at offset: Int, path: String) throws(StorageError) {
        var done = 0
        while done < bytes.count {
            let written = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress! + done, bytes.count - done, off_t(offset + done)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw .system(path, "write")
            }
            done += written
        }
    }

    static func readAll(_ path: String) throws(StorageError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .system(path, "open") }
        defer { close(descriptor) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .system(path, "read")
            }
            if count == 0 { break }
            result.append(contentsOf: buffer[0..<count])
        }
        return result
    }

    static func syncDirectory(_ path: String) throws(StorageError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .system(path, "open directory") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw .system(path, "fsync directory") }
    }

    static func list(_ directory: String) throws(StorageError) -> [String] {
        guard let handle = opendir(directory) else { throw .system(directory, "opendir") }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func makeDirectory(_ path: String) throws(StorageError) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw .system(path, "mkdir") }
    }

    static func hex16(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
}

/// What the log held when it was opened.
struct RecoveredLog {
    var hardState = HardState()
    var snapshotIndex: LogIndex = 0
    var snapshotTerm: Term = 0
    var entries: [Entry] = []
    var initialMembership: Membership?
    /// A torn record at the tail that was cut off: (file, offset).
    var truncatedTail: (path: String, offset: Int)?
}

/// Segment files of framed, checksummed records, appended and synced; the newest segment
/// is the only one written. Not thread-safe: ``DurableLog`` serializes access.
///
/// A new segment is allocated at its full size up front (zeros), so a sync after an
/// append writes data only, never the file's size: on ext4 that made `fdatasync` about
/// 30% faster here (Documentation/raft.md). Records end where the zeros begin.
final class WriteAheadLog {
    let directory: String
    let segmentBytes: Int
    /// `bytes`: how much of the segment holds records (the file is allocated larger).
    private var segments: [(sequence: UInt64, firstIndex: LogIndex, path: String, bytes: Int)] = []
    private var descriptor: Int32 = -1
    /// Where the next record goes: the end of the newest segment's records.
    private var size: Int { segments.last?.bytes ?? 0 }
    private var lastIndex: LogIndex = 0

    private init(directory: String, segmentBytes: Int) {
        self.directory = directory
        self.segmentBytes = segmentBytes
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    static func segmentName(sequence: UInt64, firstIndex: LogIndex) -> String {
        "\(FileIO.hex16(sequence))-\(FileIO.hex16(firstIndex)).wal"
    }

    /// Opens (or creates) the log in `directory`, replaying every record. A torn record at
    /// the very end of the newest segment is cut off; any other damage is an error.
    static func open(directory: String, segmentBytes: Int = 4 << 20) throws(StorageError) -> (WriteAheadLog, RecoveredLog) {
        let log = WriteAheadLog(directory: directory, segmentBytes: segmentBytes)
        var recovered = RecoveredLog()
        for name in try FileIO.list(directory) where name.hasSuffix(".wal") {
            let parts = name.dropLast(4).split(separator: "-")
            guard parts.count == 2, let sequence = UInt64(parts[0], radix: 16), let first = UInt64(parts[1], radix: 16) else {
                throw StorageError(directory + "/" + name, "not a segment name")
            }
            log.segments.append((sequence, first, directory + "/" + name, 0))
        }
        for (position, segment) in log.segments.enumerated() {
            let isLast = position == log.segments.count - 1
            let bytes = try FileIO.readAll(segment.path)
            var offset = 0
            defer { log.segments[position].bytes = offset }
            while offset < bytes.count {
                // The allocated, never written rest of a segment: a clean end.
                if bytes[offset] == 0, bytes[offset...].allSatisfy({ $0 == 0 }) { break }
                let remaining = bytes.count - offset
                let problem: String?
                var length = 0
                if remaining < WALRecord.headerSize {
                    problem = "record header cut short"
                } else {
                    length = Int(bytes[offset..<offset + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) })
                    if length == 0 || length > WALRecord.maxPayload {
                        problem = "record length \(length) is not possible"
                    } else if length > remaining - WALRecord.headerSize {
                        problem = "record of \(length) bytes cut short"
                    } else {
                        let stored = bytes[offset + 4..<offset + 8].reversed().reduce(0) { $0 << 8 | UInt32($1) }
                        let body = bytes[(offset + 8)..<(offset + 8 + length)]
                        problem = CRC32C.checksum(body) == stored ? nil : "checksum mismatch"
                    }
                }
                if let problem {
                    // Only the last record of the newest segment may be torn (a write the
                    // crash interrupted, never acknowledged); anything else is damage.
                    guard isLast, !validRecordFollows(bytes, after: offset) else {
                        throw StorageError(segment.path, offset: offset, problem)
                    }
                    guard Glibc.truncate(segment.path, off_t(offset)) == 0 else { throw .system(segment.path, "truncate") }
                    recovered.truncatedTail = (segment.path, offset)
                    break
                }
                let body = bytes[(offset + 8)..<(offset + 8 + length)]
                guard let record = WALRecord.decode(body: body) else {
                    throw StorageError(segment.path, offset: offset, "record does not decode")
                }
                apply(record, to: &recovered)
                offset += WALRecord.headerSize + length
            }
        }
        log.lastIndex = recovered.entries.last?.index ?? recovered.snapshotIndex
        try log.openNewestSegment()
        return (log, recovered)
    }

    /// Whether an intact record starts anywhere after `offset`: then the damage at
    /// `offset` is not a torn tail but lost data in the middle.
    static func validRecordFollows(_ bytes: [UInt8], after offset: Int) -> Bool {
        var start = offset + 1
        while start + WALRecord.headerSize < bytes.count {
            let length = Int(bytes[start..<start + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) })
            if length > 0, length <= bytes.count - start - WALRecord.headerSize {
                let stored = bytes[start + 4..<start + 8].reversed().reduce(0) { $0 << 8 | UInt32($1) }
                let body = bytes[(start + 8)..<(start + 8 + length)]
                if CRC32C.checksum(body) == stored, WALRecord.decode(body: body) != nil { return true }
            }
            start += 1
        }
        return false
    }

    private static func apply(_ record: WALRecord, to recovered: inout RecoveredLog) {
        switch record {
        case .entry(let entry):
            // A rewritten index replaces everything from it on (a follower's log was cut).
            if let last = recovered.entries.last, entry.index <= last.index {
                recovered.entries.removeAll { $0.index >= entry.index }
            }
            if entry.index > recovered.snapshotIndex { recovered.entries.append(entry) }
        case .hardState(let state):
            recovered.hardState = state
        case .snapshotMarker(let index, let term):
            if index > recovered.snapshotIndex {
                recovered.snapshotIndex = index
                recovered.snapshotTerm = term
                recovered.entries.removeAll { $0.index <= index }
            }
        case .initialMembership(let membership):
            recovered.initialMembership = membership
        }
    }

    private func openNewestSegment() throws(StorageError) {
        if segments.isEmpty {
            try createSegment(sequence: 1, firstIndex: lastIndex + 1)
            return
        }
        // `size` is where the replayed records ended.
        let path = segments[segments.count - 1].path
        descriptor = Glibc.open(path, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .system(path, "open") }
    }

    private func createSegment(sequence: UInt64, firstIndex: LogIndex) throws(StorageError) {
        let path = directory + "/" + Self.segmentName(sequence: sequence, firstIndex: firstIndex)
        let created = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard created >= 0 else { throw .system(path, "create segment") }
        // Where the file system cannot allocate ahead, appends grow the file instead.
        _ = posix_fallocate(created, 0, off_t(segmentBytes))
        guard fdatasync(created) == 0 else { throw .system(path, "fdatasync") }
        if descriptor >= 0 {
            guard fdatasync(descriptor) == 0 else { throw .system(segments.last?.path ?? path, "fdatasync") }
            close(descriptor)
        }
        descriptor = created
        segments.append((sequence, firstIndex, path, 0))
        try FileIO.syncDirectory(directory)
    }

    /// Writes records (not yet durable: call ``sync()``). Starts a new segment when the
    /// current one is full, at an entry boundary.
    /// Appends the records; returns the bytes written.
    @discardableResult
    func append(_ records: [WALRecord]) throws(StorageError) -> Int {
        var buffer: [UInt8] = []
        var written = 0
        for record in records {
            if case .entry(let entry) = record {
                if size + buffer.count >= segmentBytes {
                    try flush(&buffer)
                    try createSegment(sequence: (segments.last?.sequence ?? 0) + 1, firstIndex: entry.index)
                }
                lastIndex = entry.index
            }
            let encoded = record.encoded()
            written += encoded.count
            buffer.append(contentsOf: encoded)
        }
        try flush(&buffer)
        return written
    }

    private func flush(_ buffer: inout [UInt8]) throws(StorageError) {
        guard !buffer.isEmpty else { return }
        try FileIO.writeAll(descriptor, buffer, at: size, path: segments.last?.path ?? directory)
        segments[segments.count - 1].bytes += buffer.count
        buffer = []
    }

    func sync() throws(StorageError) {
        guard fdatasync(descriptor) == 0 else { throw .system(segments.last?.path ?? directory, "fdatasync") }
    }

    /// Deletes segments whose entries all lie at or below `index` (covered by a snapshot
    /// already on disk), keeping the newest segment.
    /// Starts a new segment at the next entry index, so the ones before can be removed
    /// once a snapshot covers them (the current one is synced and closed).
    func startSegment() throws(StorageError) {
        guard size > 0 else { return }
        try createSegment(sequence: (segments.last?.sequence ?? 0) + 1, firstIndex: lastIndex + 1)
    }

    func removeSegments(coveredBy index: LogIndex) throws(StorageError) {
        var removed = false
        while segments.count > 1 && segments[1].firstIndex <= index + 1 {
            let path = segments.removeFirst().path
            guard unlink(path) == 0 else { throw .system(path, "unlink") }
            removed = true
        }
        if removed { try FileIO.syncDirectory(directory) }
    }

    var segmentCount: Int { segments.count }

    /// Bytes of records in all segments (not the space allocated ahead).
    var recordBytes: Int { segments.reduce(0) { $0 + $1.bytes } }
}
