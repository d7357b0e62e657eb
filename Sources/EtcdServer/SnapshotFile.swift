import Checksums
import Crypto
import Foundation
import MVCC
import RaftCoding

/// The file `etcdctl snapshot save` writes from a `coreos etcd` member: magic
/// `COREOS-ETCD-SNAPSHOT` and a u64 length, the replicated state (`StoreState`), zeros up
/// to a multiple of 512 bytes, then the SHA-256 of everything before it. The padding and
/// trailing digest are where etcd's own snapshot (a bbolt file) has its, so etcd 3.4's
/// etcdctl accepts the stream; it cannot read the inside (see Documentation/etcd.md).
public enum EtcdSnapshotFile {
    static let magic: [UInt8] = Array("COREOS-ETCD-SNAPSHOT".utf8)

    static func encode(_ state: [UInt8]) -> [UInt8] {
        var bytes = magic
        bytes.appendInteger(UInt64(state.count))
        bytes += state
        let padded = (bytes.count + 511) / 512 * 512
        bytes += [UInt8](repeating: 0, count: padded - bytes.count)
        return bytes + Array(SHA256.hash(data: bytes))
    }

    /// Whether the file starts like one of ours (else it may be an etcd bbolt snapshot).
    public static func isOurs(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: magic.count)).map(Array.init) == magic
    }

    /// What `etcdctl snapshot status` shows: a CRC-32C of the state, its revision, the
    /// number of kept revisions (etcd counts the rows of its `key` bucket) and the size.
    public struct Status: Sendable {
        public var hash: UInt32
        public var revision: Int64
        public var totalKeys: Int
        public var totalSize: Int
    }

    public static func status(path: String) throws(EtcdServerError) -> Status {
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw EtcdServerError("open \(path): \(error.localizedDescription)")
        }
        let state = try decode(bytes, path: path)
        return Status(
            hash: CRC32C.checksum(state.store.encoded()), revision: state.store.currentRevision,
            totalKeys: state.store.revisionCount, totalSize: bytes.count)
    }

    static func decode(_ bytes: [UInt8], path: String) throws(EtcdServerError) -> StoreState {
        guard bytes.count >= magic.count + 8 + 32, bytes.count % 512 == 32, Array(bytes.prefix(magic.count)) == magic else {
            throw EtcdServerError("\(path): not a coreos etcd snapshot")
        }
        let body = bytes.dropLast(32)
        guard Array(SHA256.hash(data: body)) == Array(bytes.suffix(32)) else {
            throw EtcdServerError("\(path): snapshot file integrity check failed: SHA-256 mismatch")
        }
        var reader = ByteReader(body.dropFirst(magic.count))
        guard let length = reader.u64(), length <= UInt64(body.count), let state = reader.bytes(Int(length)),
            let decoded = StoreState(decoding: state)
        else { throw EtcdServerError("\(path): snapshot state is damaged") }
        return decoded
    }
}
