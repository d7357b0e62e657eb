import Dispatch
import Glibc
public import Raft
import Synchronization

/// A member's data directory: `VERSION`, `LOCK`, `wal/` segments and `snap/` snapshots.
/// Saves are group-committed: while one `fdatasync` runs, new saves queue up and share
/// the next one, so many concurrent proposers cost one sync per batch, not one each.
///
/// Layout and guarantees: Documentation/raft.md.
public final class DurableLog: @unchecked Sendable {
    // `wal` and `snapshots` are touched only on `queue`; `state` guards the waiters.
    public let path: String
    private let wal: WriteAheadLog
    private let snapshots: SnapshotStore
    private let lockDescriptor: Int32
    private let queue = DispatchQueue(label: "coreos.storage.wal")
    private let state = Mutex(GroupState())

    private struct GroupState {
        var pending: [(records: [WALRecord], done: CheckedContinuation<Void, any Error>)] = []
        var flushing = false
        /// After a failed sync the file contents are unknown: refuse everything.
        var failure: StorageError?
        var syncs = 0
        /// etcd's `etcd_disk_wal_fsync_duration_seconds` buckets: 1 ms to 8.192 s.
        var syncDurations = DurationHistogram(start: 0.001, factor: 2, buckets: 14)
        var bytesWritten: UInt64 = 0
    }

    public static let formatVersion = "1"

    /// What was found on open: the state to start Raft with, and a note when a torn
    /// record was cut off the end of the log.
    public struct Opened {
        public var state: RaftPersistentState
        public var truncatedTail: String?
    }

    /// Opens (creating if needed) the data directory at `path`. A new directory needs
    /// `initialMembership`; an existing one remembers its own.
    /// - Parameter walDirectory: where the log's segments are (etcd's `--wal-dir`, a
    ///   dedicated device); `path/wal` when nil.
    public static func open(path: String, walDirectory: String? = nil, initialMembership: Membership? = nil, segmentBytes: Int = 4 << 20)
        throws(StorageError) -> (DurableLog, Opened)
    {
        try FileIO.makeDirectory(path)
        let lockPath = path + "/LOCK"
        let lock = Glibc.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw .system(lockPath, "open") }
        // A lock can be held for a moment after its owner let go: a child being spawned
        // holds copies of our descriptors until it execs, and a closing log's last
        // reference may still be on its writer thread. Only a lock that stays is refused.
        var attempts = 0
        while flock(lock, LOCK_EX | LOCK_NB) != 0 {
            attempts += 1
            guard errno == EWOULDBLOCK || errno == EINTR, attempts < 100 else {
                close(lock)
                throw StorageError(path, "data directory is in use by another process (lock held on \(lockPath))")
            }
            usleep(10_000)
        }
        do throws(StorageError) {
            try checkVersion(path)
            let walPath = walDirectory ?? path + "/wal"
            try FileIO.makeDirectory(walPath)
            try FileIO.makeDirectory(path + "/snap")
            let snapshots = SnapshotStore(directory: path + "/snap")
            let snapshot = try snapshots.loadNewest()
            let (wal, recovered) = try WriteAheadLog.open(directory: walPath, segmentBytes: segmentBytes)
            let log = DurableLog(path: path, wal: wal, snapshots: snapshots, lock: lock)
            var membership = recovered.initialMembership
            if membership == nil && snapshot == nil {
                guard let initialMembership else {
                    throw StorageError(path, "a new data directory needs the initial membership")
                }
                try wal.append([.initialMembership(initialMembership)])
                try wal.sync()
                membership = initialMembership
            }
            var entries = recovered.entries
            if let snapshot { entries.removeAll { $0.index <= snapshot.metadata.index } }
            if let snapshot, recovered.snapshotIndex > snapshot.metadata.index {
                throw StorageError(
                    path, "the log says a snapshot at index \(recovered.snapshotIndex) exists, the newest found is at \(snapshot.metadata.index)")
            }
            let state = RaftPersistentState(
                hardState: recovered.hardState, snapshot: snapshot, entries: entries,
                initialMembership: membership ?? snapshot?.metadata.membership ?? Membership())
            let note = recovered.truncatedTail.map { "cut a torn record off \($0.path) at offset \($0.offset)" }
            return (log, Opened(state: state, truncatedTail: note))
        } catch {
            close(lock)
            throw error
        }
    }

    private static func checkVersion(_ path: String) throws(StorageError) {
        let versionPath = path + "/VERSION"
        if access(versionPath, F_OK) == 0 {
            let text = String(decoding: try FileIO.readAll(versionPath), as: UTF8.self)
            let version = text.split(separator: "\n").first.map(String.init) ?? ""
            guard version == formatVersion else {
                throw StorageError(versionPath, "format version \(version) is not supported (this build reads \(formatVersion))")
            }
            return
        }
        let temporary = versionPath + ".tmp"
        let descriptor = Glibc.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .system(temporary, "create") }
        defer { close(descriptor) }
        try FileIO.writeAll(descriptor, Array("\(formatVersion)\n".utf8), path: temporary)
        guard fsync(descriptor) == 0 else { throw .system(temporary, "fsync") }
        guard rename(temporary, versionPath) == 0 else { throw .system(versionPath, "rename") }
        try FileIO.syncDirectory(path)
    }

    private init(path: String, wal: WriteAheadLog, snapshots: SnapshotStore, lock: Int32) {
        self.path = path
        self.wal = wal
        self.snapshots = snapshots
        lockDescriptor = lock
    }

    deinit { close(lockDescriptor) }

    /// Waits until no write is in flight on the storage queue. A flush that already resumed
    /// its callers may still hold the log for a moment; after this the last reference a
    /// caller drops really closes it (and releases the directory lock).
    public func drain() {
        queue.sync {}
    }

    /// Persists what a Ready asks to persist (a received snapshot first), returning once
    /// it is synced. Concurrent calls share syncs.
    public func save(_ ready: Ready) async throws(StorageError) {
        if let snapshot = ready.snapshot {
            try onQueue { () throws(StorageError) in try snapshots.save(snapshot) }
        }
        let records = Self.records(of: ready)
        guard !records.isEmpty else { return }
        try await save(records)
    }

    /// The log records of a Ready: a received snapshot's marker, the entries, the hard state.
    private static func records(of ready: Ready) -> [WALRecord] {
        var records: [WALRecord] = []
        if let snapshot = ready.snapshot {
            records.append(.snapshotMarker(index: snapshot.metadata.index, term: snapshot.metadata.term))
        }
        records.append(contentsOf: ready.entries.map { .entry($0) })
        if let hard = ready.hardState { records.append(.hardState(hard)) }
        return records
    }

    /// Persists a Ready on the calling thread, for a host that keeps a thread of its own
    /// for storage: written, and synced when the Ready says so (`mustSync`). Returns how
    /// long the sync took, nil when nothing was synced (the host watches its disk by it).
    @discardableResult
    public func persist(_ ready: Ready) throws(StorageError) -> Duration? {
        try onQueue { () throws(StorageError) -> Duration? in
            if let failure = state.withLock({ $0.failure }) { throw failure }
            if let snapshot = ready.snapshot { try snapshots.save(snapshot) }
            let records = Self.records(of: ready)
            guard !records.isEmpty else { return nil }
            return try writeAndSync(records, sync: ready.mustSync)
        }
    }

    /// Stores the host's snapshot, records it in the log and deletes the segments it
    /// covers, on the calling thread. Entries after it stay.
    /// With `hardState` the marker opens a new segment that repeats the hard state, so
    /// every older segment is covered and removed when no entry follows the snapshot.
    public func persistSnapshot(_ snapshot: Snapshot, hardState: HardState? = nil) throws(StorageError) {
        try onQueue { () throws(StorageError) in
            if let failure = state.withLock({ $0.failure }) { throw failure }
            try snapshots.save(snapshot)
            var records: [WALRecord] = [.snapshotMarker(index: snapshot.metadata.index, term: snapshot.metadata.term)]
            if let hardState {
                try wal.startSegment()
                records.append(.hardState(hardState))
            }
            try writeAndSync(records, sync: true)
            try wal.removeSegments(coveredBy: snapshot.metadata.index)
            try snapshots.prune(keep: 2)
        }
    }

    /// On `queue`: appends, syncs when asked, counts; a failed write or sync poisons the log.
    @discardableResult
    private func writeAndSync(_ records: [WALRecord], sync: Bool) throws(StorageError) -> Duration? {
        do throws(StorageError) {
            let bytes = UInt64(try wal.append(records))
            guard sync else {
                state.withLock { $0.bytesWritten += bytes }
                return nil
            }
            let started = ContinuousClock.now
            try wal.sync()
            let took = ContinuousClock.now - started
            let (seconds, attoseconds) = took.components
            state.withLock { group in
                group.syncs += 1
                group.syncDurations.observe(Double(seconds) + Double(attoseconds) / 1e18)
                group.bytesWritten += bytes
            }
            return took
        } catch {
            state.withLock { $0.failure = error }
            throw error
        }
    }

    /// Appends entries (and a hard state) durably.
    public func save(entries: [Entry], hardState: HardState? = nil) async throws(StorageError) {
        var records = entries.map { WALRecord.entry($0) }
        if let hardState { records.append(.hardState(hardState)) }
        try await save(records)
    }

    private func save(_ records: [WALRecord]) async throws(StorageError) {
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let start: Bool = state.withLock { group in
                    if let failure = group.failure {
                        continuation.resume(throwing: failure)
                        return false
                    }
                    group.pending.append((records, continuation))
                    if group.flushing { return false }
                    group.flushing = true
                    return true
                }
                if start { queue.async { self.flushLoop() } }
            }
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(path, "\(error)")
        }
    }

    /// Writes every waiting batch, syncs once, wakes them all; repeats while more came.
    private func flushLoop() {
        while true {
            let batch: [(records: [WALRecord], done: CheckedContinuation<Void, any Error>)] = state.withLock { group in
                let taken = group.pending
                group.pending = []
                if taken.isEmpty { group.flushing = false }
                return taken
            }
            guard !batch.isEmpty else { return }
            do throws(StorageError) {
                try writeAndSync(batch.flatMap(\.records), sync: true)
                for waiter in batch { waiter.done.resume() }
            } catch {
                for waiter in batch { waiter.done.resume(throwing: error) }
            }
        }
    }

    /// `persistSnapshot` for a host that saves with `save`.
    public func saveSnapshot(_ snapshot: Snapshot, hardState: HardState? = nil) async throws(StorageError) {
        try persistSnapshot(snapshot, hardState: hardState)
    }

    /// Runs `body` on the storage queue, keeping its typed error.
    private func onQueue<Value>(_ body: () throws(StorageError) -> Value) throws(StorageError) -> Value {
        let result: Result<Value, StorageError> = queue.sync {
            do throws(StorageError) {
                return .success(try body())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// The newest snapshot on disk, data included (for a host that released it from memory).
    public func loadNewestSnapshot() throws(StorageError) -> Snapshot? {
        var loaded: Snapshot?
        try onQueue { () throws(StorageError) in loaded = try snapshots.loadNewest() }
        return loaded
    }

    /// Bytes of the WAL's records and of the snapshot files.
    public var sizeOnDisk: Int {
        var total = queue.sync { wal.recordBytes }
        let directory = path + "/snap"
        for name in (try? FileIO.list(directory)) ?? [] {
            var info = stat()
            if lstat(directory + "/" + name, &info) == 0 { total += Int(info.st_size) }
        }
        return total
    }

    /// Syncs performed so far (one per group), for benchmarks and tests.
    public var syncCount: Int { state.withLock { $0.syncs } }

    /// How long each WAL sync took.
    public var syncDurations: DurationHistogram { state.withLock { $0.syncDurations } }

    /// Bytes appended to the WAL since open.
    public var bytesWritten: UInt64 { state.withLock { $0.bytesWritten } }

    public var segmentCount: Int { queue.sync { wal.segmentCount } }
}
