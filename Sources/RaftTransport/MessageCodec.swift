public import Raft
import RaftCoding

/// Raft messages as bytes for the wire: a fixed header, then context, entries and an
/// optional snapshot chunk, all little endian with explicit lengths. Decoding checks every
/// length against what is left, so a hostile frame gives nil, never a trap.
public enum MessageCodec {
    /// Frames larger than this are refused (a snapshot chunk plus entries stays far below).
    public static let maxFrame = 64 << 20

    public static func encode(_ message: Message) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(80 + message.entries.reduce(0) { $0 + $1.data.count + 21 })
        bytes.append(message.kind.rawValue)
        for value in [message.from, message.to, message.term, message.logTerm, message.index, message.commit, message.rejectHint] {
            bytes.appendInteger(value)
        }
        bytes.append(message.reject ? 1 : 0)
        bytes.appendBlob(message.context)
        bytes.appendInteger(UInt32(message.entries.count))
        for entry in message.entries {
            bytes.appendInteger(entry.term)
            bytes.appendInteger(entry.index)
            bytes.append(entry.kind.rawValue)
            bytes.appendBlob(entry.data)
        }
        if let chunk = message.snapshotChunk {
            bytes.append(1)
            bytes.appendInteger(chunk.metadata.index)
            bytes.appendInteger(chunk.metadata.term)
            bytes.append(contentsOf: MembershipCoding.encode(chunk.metadata.membership))
            bytes.appendInteger(UInt64(chunk.offset))
            bytes.appendInteger(UInt64(chunk.totalSize))
            bytes.appendBlob(chunk.data)
        } else {
            bytes.append(0)
        }
        return bytes
    }

    public static func decode(_ bytes: ArraySlice<UInt8>) -> Message? {
        var reader = ByteReader(bytes)
        guard let rawKind = reader.u8(), let kind = Message.Kind(rawValue: rawKind),
            let from = reader.u64(), let to = reader.u64(), let term = reader.u64(), let logTerm = reader.u64(),
            let index = reader.u64(), let commit = reader.u64(), let rejectHint = reader.u64(), let reject = reader.u8(),
            let context = reader.blob(), let entryCount = reader.u32()
        else { return nil }
        var message = Message(kind, from: from, to: to, term: term)
        message.logTerm = logTerm
        message.index = index
        message.commit = commit
        message.rejectHint = rejectHint
        message.reject = reject != 0
        message.context = context
        guard Int(entryCount) <= bytes.count else { return nil }
        for _ in 0..<entryCount {
            guard let entryTerm = reader.u64(), let entryIndex = reader.u64(), let rawEntryKind = reader.u8(),
                let entryKind = Entry.Kind(rawValue: rawEntryKind), let data = reader.blob()
            else { return nil }
            message.entries.append(Entry(term: entryTerm, index: entryIndex, kind: entryKind, data: data))
        }
        guard let hasChunk = reader.u8() else { return nil }
        if hasChunk == 1 {
            guard let snapshotIndex = reader.u64(), let snapshotTerm = reader.u64(),
                let membership = MembershipCoding.decode(&reader)
            else { return nil }
            guard let offset = reader.u64(), let total = reader.u64(), offset <= UInt64(maxFrame) * 1024,
                total <= UInt64(Int.max), let data = reader.blob()
            else { return nil }
            message.snapshotChunk = SnapshotChunk(
                metadata: SnapshotMetadata(index: snapshotIndex, term: snapshotTerm, membership: membership),
                offset: Int(offset), totalSize: Int(total), data: data)
        }
        guard reader.isEmpty else { return nil }
        return message
    }
}
