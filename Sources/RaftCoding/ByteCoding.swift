public import Raft

/// Little-endian reads from a byte slice that never trap: every read checks what is left.
/// Shared by the WAL records (Storage) and the wire frames (RaftTransport).
public struct ByteReader {
    private var bytes: ArraySlice<UInt8>

    public init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

    public var isEmpty: Bool { bytes.isEmpty }

    public mutating func u8() -> UInt8? { bytes.popFirst() }
    public mutating func u32() -> UInt32? { integer(UInt32.self) }
    public mutating func u64() -> UInt64? { integer(UInt64.self) }

    private mutating func integer<Value: FixedWidthInteger>(_: Value.Type) -> Value? {
        let size = MemoryLayout<Value>.size
        guard bytes.count >= size else { return nil }
        var value: Value = 0
        for (shift, byte) in bytes.prefix(size).enumerated() { value |= Value(byte) << (8 * shift) }
        bytes = bytes.dropFirst(size)
        return value
    }

    public mutating func bytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, bytes.count >= count else { return nil }
        defer { bytes = bytes.dropFirst(count) }
        return Array(bytes.prefix(count))
    }

    /// A `u32` length and that many bytes.
    public mutating func blob() -> [UInt8]? {
        guard let length = u32() else { return nil }
        return bytes(Int(length))
    }

    public mutating func rest() -> [UInt8] {
        defer { bytes = [] }
        return Array(bytes)
    }
}

extension Array where Element == UInt8 {
    public mutating func appendInteger<Value: FixedWidthInteger>(_ value: Value) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// A `u32` length and the bytes.
    public mutating func appendBlob(_ blob: [UInt8]) {
        appendInteger(UInt32(blob.count))
        append(contentsOf: blob)
    }
}

/// Membership as bytes: voter count, voters, learner count, learners (u64 each, sorted).
public enum MembershipCoding {
    public static func encode(_ membership: Membership) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendInteger(UInt32(membership.voters.count))
        for id in membership.voters.sorted() { bytes.appendInteger(id) }
        bytes.appendInteger(UInt32(membership.learners.count))
        for id in membership.learners.sorted() { bytes.appendInteger(id) }
        return bytes
    }

    public static func decode(_ reader: inout ByteReader) -> Membership? {
        guard let voters = ids(&reader), let learners = ids(&reader) else { return nil }
        return Membership(voters: voters, learners: learners)
    }

    private static func ids(_ reader: inout ByteReader) -> Set<NodeID>? {
        guard let count = reader.u32(), count < 1 << 16 else { return nil }
        var result: Set<NodeID> = []
        for _ in 0..<count {
            guard let id = reader.u64() else { return nil }
            result.insert(id)
        }
        return result
    }
}
