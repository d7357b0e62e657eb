import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Where the store's values live: appended once, never changed in place, addressed by a
/// ``Reference``. The index (keys, revisions, metadata) stays in memory; values, which are
/// most of the bytes, go to a scratch file, so a member's memory grows by about a hundred
/// bytes per revision whatever the value size.
///
/// The file is not part of the durable state: the WAL and snapshots are. It is created
/// unlinked (`O_TMPFILE`) in the data directory, filled again from the snapshot and the WAL
/// on every start, and vanishes with its last reader, so a crash leaves nothing to clean up
/// and nothing in it needs a sync. Without a directory the log keeps everything in memory
/// (tests of the pure store, tools that decode a snapshot once).
///
/// Thread-safe: the store appends on its thread while read views on other threads read.
/// Appends go to a buffer written out in large pieces; a value is either wholly in the
/// buffer or wholly in the file.
public final class ValueLog: Sendable {
    /// A value's place in the log: 12 bytes per revision in the index.
    public struct Reference: Sendable, Hashable {
        var offset: UInt64
        var length: UInt32

        public static let empty = Reference(offset: 0, length: 0)
        public var count: Int { Int(length) }
    }

    /// Why a log could not be created.
    public struct CreationError: Error, Sendable, CustomStringConvertible {
        public var directory: String
        public var errno: Int32
        public var description: String { "cannot create the value log in \(directory): \(String(cString: strerror(errno)))" }
    }

    private struct State {
        /// Bytes appended and not yet written to the file; they start at `bufferStart`.
        var buffer: [UInt8] = []
        var bufferStart: UInt64 = 0
        /// A write failed (a full disk): keep buffering until this many bytes, then retry.
        var flushAt: Int
    }

    /// Bytes buffered before one `pwrite`.
    let flushSize: Int
    /// Dead bytes (compacted revisions' values) that, once more than the live ones, make
    /// compaction copy the live values to a fresh log.
    public let repackThreshold: UInt64
    private let state: Mutex<State>
    /// -1: everything stays in the buffer.
    private let descriptor: Int32
    /// Where a repacked successor is created.
    public let directory: String?

    /// A log kept in memory.
    public init() {
        descriptor = -1
        directory = nil
        flushSize = .max
        repackThreshold = 32 << 20
        state = Mutex(State(flushAt: .max))
    }

    /// A log in an unlinked file of `directory`. The sizes are for tests that want the
    /// file and the repack used after a few values.
    public init(directory: String, flushSize: Int = 256 * 1024, repackThreshold: UInt64 = 32 << 20) throws(CreationError) {
        // O_TMPFILE is __O_TMPFILE | O_DIRECTORY; Glibc's macro does not import.
        let temporaryFile: Int32 = 0o20_000_000 | O_DIRECTORY
        var descriptor = open(directory, temporaryFile | O_RDWR | O_CLOEXEC, 0o600)
        if descriptor < 0 {
            // File systems without O_TMPFILE: a named file, unlinked at once.
            var template = Array("\(directory)/.values.XXXXXX".utf8CString)
            descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            if descriptor >= 0 {
                _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
                template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
            }
        }
        guard descriptor >= 0 else { throw CreationError(directory: directory, errno: errno) }
        self.descriptor = descriptor
        self.directory = directory
        self.flushSize = flushSize
        self.repackThreshold = repackThreshold
        state = Mutex(State(flushAt: flushSize))
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// An empty log of the same kind (memory or a new file beside this one), for repacking.
    public func successor() -> ValueLog {
        guard let directory, let log = try? ValueLog(directory: directory, flushSize: flushSize, repackThreshold: repackThreshold)
        else { return ValueLog() }
        return log
    }

    /// Bytes appended over the log's life (live and dead values).
    public var size: UInt64 {
        state.withLock { $0.bufferStart + UInt64($0.buffer.count) }
    }

    public func append(_ value: [UInt8]) -> Reference {
        if value.isEmpty { return .empty }
        return state.withLock { state in
            if state.buffer.count + value.count > state.flushAt && !state.buffer.isEmpty { flush(&state) }
            let reference = Reference(offset: state.bufferStart + UInt64(state.buffer.count), length: UInt32(value.count))
            state.buffer.append(contentsOf: value)
            return reference
        }
    }

    private func flush(_ state: inout State) {
        guard descriptor >= 0 else { return }
        var written = 0
        let total = state.buffer.count
        while written < total {
            let result = state.buffer.withUnsafeBytes { bytes in
                pwrite(descriptor, bytes.baseAddress! + written, total - written, off_t(state.bufferStart) + off_t(written))
            }
            if result < 0 && errno == EINTR { continue }
            if result <= 0 {
                // Nothing lost: the bytes stay buffered (in memory) and the next flush retries.
                state.flushAt = max(state.flushAt, total) * 2
                return
            }
            written += result
        }
        state.bufferStart += UInt64(total)
        state.buffer.removeAll(keepingCapacity: true)
        state.flushAt = flushSize
    }

    /// The value's bytes. The file is this process's own, written by `append`: a failing
    /// read means a failing disk, and serving a wrong value would be worse than stopping,
    /// so the member stops with the reason (a restart rebuilds the file from the WAL).
    public func read(_ reference: Reference) -> [UInt8] {
        if reference.length == 0 { return [] }
        let buffered: [UInt8]? = state.withLock { state in
            guard reference.offset >= state.bufferStart else { return nil }
            let start = Int(reference.offset - state.bufferStart)
            return Array(state.buffer[start..<start + Int(reference.length)])
        }
        if let buffered { return buffered }
        let count = Int(reference.length)
        return [UInt8](unsafeUninitializedCapacity: count) { bytes, initialized in
            var done = 0
            while done < count {
                let result = pread(descriptor, bytes.baseAddress! + done, count - done, off_t(reference.offset) + off_t(done))
                if result < 0 && errno == EINTR { continue }
                guard result > 0 else {
                    let reason = result < 0 ? String(cString: strerror(errno)) : "end of file"
                    let message = Array("etcd: value log: cannot read \(count) bytes at \(reference.offset): \(reason)\n".utf8)
                    _ = message.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
                    exit(1)
                }
                done += result
            }
            initialized = count
        }
    }
}
