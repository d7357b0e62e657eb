import Checksums

/// What `etcdctl snapshot status` reports about an etcd backend file: a CRC-32C over
/// every bucket name, key and value in order, the newest revision in the `key` bucket,
/// the number of keys in all buckets and the database size.
public struct EtcdBackendStatus: Sendable, Hashable {
    public var hash: UInt32
    public var revision: Int64
    public var totalKeys: Int
    public var totalSize: Int

    public init(hash: UInt32, revision: Int64, totalKeys: Int, totalSize: Int) {
        self.hash = hash
        self.revision = revision
        self.totalKeys = totalKeys
        self.totalSize = totalSize
    }

    /// Reads the file at `path`, first checking its page structure as etcdctl does.
    public init(path: String) throws(BoltError) {
        let file = try BoltFile(path: path)
        let problems = file.check()
        guard problems.isEmpty else {
            throw BoltError(
                path,
                "snapshot file integrity check failed. \(problems.count) errors found.\n" + problems.joined(separator: "\n"))
        }
        var crc = CRC32C()
        var revision: Int64 = 0
        var keys = 0
        for bucket in try file.buckets() {
            crc.update(bucket.name)
            let isKeyBucket = bucket.name == Array("key".utf8)
            try file.forEach(in: bucket) { (key, value) throws(BoltError) in
                crc.update(key)
                crc.update(value)
                // Keys of the `key` bucket start with the big-endian main revision.
                if isKeyBucket, key.count >= 8 {
                    revision = Int64(bitPattern: key.prefix(8).reduce(0) { $0 << 8 | UInt64($1) })
                }
                keys += 1
            }
        }
        hash = crc.value
        self.revision = revision
        totalKeys = keys
        totalSize = file.size
    }
}
