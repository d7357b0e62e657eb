import RaftCoding

/// The store as bytes, for Raft snapshots and `etcdctl snapshot save`: every kept
/// revision of every key, so a restored store answers reads at old revisions and replays
/// watch history exactly as the original.
///
/// Layout (little endian): magic `MVCC` and format 1; current and compacted revision; the
/// key count; per key its bytes and its changes (main, sub, then 0 for a tombstone or 1
/// with create revision, version, lease and value).
extension MVCCStore {
    static let magic: [UInt8] = Array("MVCC".utf8)
    static let format: UInt8 = 1

    public func encoded() -> [UInt8] {
        var bytes = Self.magic + [Self.format]
        bytes.appendInteger(currentRevision)
        bytes.appendInteger(compactedRevision)
        bytes.appendInteger(UInt64(keys.count))
        for key in keys {
            bytes.appendBlob(key)
            let history = histories[key] ?? []
            bytes.appendInteger(UInt32(history.count))
            for change in history {
                bytes.appendInteger(change.main)
                bytes.appendInteger(change.sub)
                guard let stored = change.stored else {
                    bytes.append(0)
                    continue
                }
                bytes.append(1)
                bytes.appendInteger(stored.createRevision)
                bytes.appendInteger(stored.version)
                bytes.appendInteger(stored.lease)
                bytes.appendBlob(values.read(stored.value))
            }
        }
        return bytes
    }

    /// Rebuilds a store from `encoded()`, its values appended to `values`; nil when the
    /// bytes are not such a store (wrong magic or format, truncated, keys out of order).
    public init?(decoding bytes: [UInt8], values: ValueLog = ValueLog()) {
        var reader = ByteReader(bytes[...])
        guard reader.bytes(4) == Self.magic, reader.u8() == Self.format,
            let current = reader.u64(), let compacted = reader.u64(), let count = reader.u64(),
            count <= UInt64(bytes.count)
        else { return nil }
        self.init(values: values)
        currentRevision = Int64(bitPattern: current)
        compactedRevision = Int64(bitPattern: compacted)
        var previous: [UInt8]?
        for _ in 0..<count {
            guard let key = reader.blob(), let changes = reader.u32(), Int(changes) <= bytes.count else { return nil }
            if let previous, !previous.lexicographicallyPrecedes(key) { return nil }
            previous = key
            var history: [Change] = []
            history.reserveCapacity(Int(changes))
            for _ in 0..<changes {
                guard let main = reader.u64(), let sub = reader.u64(), let present = reader.u8() else { return nil }
                var change = Change(main: Int64(bitPattern: main), sub: Int64(bitPattern: sub), stored: nil)
                if present == 1 {
                    guard let create = reader.u64(), let version = reader.u64(), let lease = reader.u64(),
                        let value = reader.blob()
                    else { return nil }
                    change.stored = Stored(
                        createRevision: Int64(bitPattern: create), version: Int64(bitPattern: version),
                        lease: Int64(bitPattern: lease), value: values.append(value))
                } else if present != 0 {
                    return nil
                }
                history.append(change)
                logicalSize += Self.cost(change, key: key)
                liveValueBytes += UInt64(change.stored?.value.count ?? 0)
            }
            keys.append(key)
            histories[key] = history
        }
        guard reader.isEmpty else { return nil }
    }

    /// Revisions kept (tombstones included), as etcd counts rows of its `key` bucket.
    public var revisionCount: Int { histories.values.reduce(0) { $0 + $1.count } }

    /// The kept revisions up to `revision` as bytes, in key order: equal on members with
    /// equal history (what hash and hashkv compare).
    public func encodedHistory(through revision: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        for key in keys {
            for change in histories[key] ?? [] where change.main <= revision {
                bytes.appendBlob(key)
                bytes.appendInteger(change.main)
                bytes.appendInteger(change.sub)
                if let stored = change.stored {
                    bytes.appendInteger(stored.version)
                    bytes.appendInteger(stored.lease)
                    bytes.appendBlob(values.read(stored.value))
                }
            }
        }
        return bytes
    }
}
