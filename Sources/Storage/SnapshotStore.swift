import Checksums
import Glibc
import Raft
import RaftCoding

/// Snapshot files `<term>-<index>.snap` (hex): magic, CRC-32C of the rest, metadata and
/// data. Written to a temporary name, synced, renamed, and the directory synced, so a
/// crash leaves either the old or the new snapshot, never half of one.
struct SnapshotStore {
    let directory: String
    static let magic: [UInt8] = Array("CSNP0001".utf8)

    func save(_ snapshot: Snapshot) throws(StorageError) {
        var body: [UInt8] = []
        body.appendInteger(snapshot.metadata.index)
        body.appendInteger(snapshot.metadata.term)
        body.append(contentsOf: MembershipCoding.encode(snapshot.metadata.membership))
        body.appendInteger(UInt64(snapshot.data.count))
        body.append(contentsOf: snapshot.data)
        var file = Self.magic
        file.appendInteger(CRC32C.checksum(body))
        file.append(contentsOf: body)
        let name = "\(FileIO.hex16(snapshot.metadata.term))-\(FileIO.hex16(snapshot.metadata.index)).snap"
        let path = directory + "/" + name
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .system(temporary, "create") }
        do throws(StorageError) {
            try FileIO.writeAll(descriptor, file, path: temporary)
            guard fsync(descriptor) == 0 else { throw StorageError.system(temporary, "fsync") }
        } catch {
            close(descriptor)
            unlink(temporary)
            throw error
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else { throw .system(path, "rename") }
        try FileIO.syncDirectory(directory)
    }

    /// The newest snapshot, or nil. Leftover temporary files are removed; a damaged
    /// snapshot file is an error (it was renamed into place only once complete).
    func loadNewest() throws(StorageError) -> Snapshot? {
        var newest: (index: LogIndex, name: String)?
        for name in try FileIO.list(directory) {
            if name.hasSuffix(".tmp") {
                unlink(directory + "/" + name)
                continue
            }
            guard name.hasSuffix(".snap") else { continue }
            let parts = name.dropLast(5).split(separator: "-")
            guard parts.count == 2, let index = UInt64(parts[1], radix: 16) else { continue }
            if newest == nil || index > newest!.index { newest = (index, name) }
        }
        guard let newest else { return nil }
        return try load(directory + "/" + newest.name)
    }

    func load(_ path: String) throws(StorageError) -> Snapshot {
        let bytes = try FileIO.readAll(path)
        guard bytes.count >= 12, Array(bytes.prefix(8)) == Self.magic else {
            throw StorageError(path, offset: 0, "not a snapshot file")
        }
        let stored = bytes[8..<12].reversed().reduce(0) { $0 << 8 | UInt32($1) }
        let body = bytes[12...]
        guard CRC32C.checksum(body) == stored else { throw StorageError(path, offset: 12, "snapshot checksum mismatch") }
        var reader = ByteReader(body)
        guard let index = reader.u64(), let term = reader.u64(), let membership = MembershipCoding.decode(&reader),
            let count = reader.u64(), count <= UInt64(body.count), let data = reader.bytes(Int(count))
        else { throw StorageError(path, offset: 12, "snapshot metadata does not decode") }
        return Snapshot(metadata: SnapshotMetadata(index: index, term: term, membership: membership), data: data)
    }

    /// Removes snapshots older than the newest `keep`.
    func prune(keep: Int) throws(StorageError) {
        let snapshots = try FileIO.list(directory).filter { $0.hasSuffix(".snap") }.sorted {
            ($0.split(separator: "-").last ?? "") < ($1.split(separator: "-").last ?? "")
        }
        for name in snapshots.dropLast(keep) { unlink(directory + "/" + name) }
    }
}
