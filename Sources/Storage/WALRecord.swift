import Checksums
import Raft
import RaftCoding

/// One record of the write-ahead log. On disk: `length` (u32, little endian, of what
/// follows the checksum), `crc` (CRC-32C of type and payload), a type byte, the payload.
enum WALRecord: Sendable, Hashable {
    case entry(Entry)
    case hardState(HardState)
    /// Entries up to `index` are covered by the snapshot at (`index`, `term`).
    case snapshotMarker(index: LogIndex, term: Term)
    /// The membership a new member starts with (before any snapshot exists).
    case initialMembership(Membership)

    static let headerSize = 8
    /// A record longer than this is corruption, not data (entries are bounded far below).
    static let maxPayload = 64 << 20

    enum Kind: UInt8 {
        case entry = 1
        case hardState = 2
        case snapshotMarker = 3
        case initialMembership = 4
    }

    func encoded() -> [UInt8] {
        var body: [UInt8] = []
        switch self {
        case .entry(let entry):
            body.append(Kind.entry.rawValue)
            body.appendInteger(entry.term)
            body.appendInteger(entry.index)
            body.append(entry.kind.rawValue)
            body.append(contentsOf: entry.data)
        case .hardState(let state):
            body.append(Kind.hardState.rawValue)
            body.appendInteger(state.term)
            body.appendInteger(state.vote)
            body.appendInteger(state.commit)
        case .snapshotMarker(let index, let term):
            body.append(Kind.snapshotMarker.rawValue)
            body.appendInteger(index)
            body.appendInteger(term)
        case .initialMembership(let membership):
            body.append(Kind.initialMembership.rawValue)
            body.append(contentsOf: MembershipCoding.encode(membership))
        }
        var record: [UInt8] = []
        record.reserveCapacity(body.count + Self.headerSize)
        record.appendInteger(UInt32(body.count))
        record.appendInteger(CRC32C.checksum(body))
        record.append(contentsOf: body)
        return record
    }

    /// Decodes a record body (type byte and payload) whose checksum was verified.
    static func decode(body: ArraySlice<UInt8>) -> WALRecord? {
        guard let first = body.first, let kind = Kind(rawValue: first) else { return nil }
        var reader = ByteReader(body.dropFirst())
        switch kind {
        case .entry:
            guard let term = reader.u64(), let index = reader.u64(), let rawKind = reader.u8(),
                let entryKind = Entry.Kind(rawValue: rawKind)
            else { return nil }
            return .entry(Entry(term: term, index: index, kind: entryKind, data: reader.rest()))
        case .hardState:
            guard let term = reader.u64(), let vote = reader.u64(), let commit = reader.u64() else { return nil }
            return .hardState(HardState(term: term, vote: vote, commit: commit))
        case .snapshotMarker:
            guard let index = reader.u64(), let term = reader.u64() else { return nil }
            return .snapshotMarker(index: index, term: term)
        case .initialMembership:
            guard let membership = MembershipCoding.decode(&reader) else { return nil }
            return .initialMembership(membership)
        }
    }
}
