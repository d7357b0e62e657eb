/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of etcd's WAL
/// records, snapshot status hashes and our own WAL. Incremental: feed bytes with
/// ``update(_:)`` and read ``value`` at any point.
public struct CRC32C: Sendable, Hashable {
    /// Eight tables for slicing-by-8: one byte per step is too slow for WAL replay.
    private static let tables: [[UInt32]] = {
        var tables = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for index in 0..<256 {
            var crc = UInt32(index)
            for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0x82F6_3B78 : 0) }
            tables[0][index] = crc
        }
        for index in 0..<256 {
            var crc = tables[0][index]
            for slice in 1..<8 {
                crc = tables[0][Int(crc & 0xFF)] ^ (crc >> 8)
                tables[slice][index] = crc
            }
        }
        return tables
    }()

    private var state: UInt32

    /// Starts a checksum, optionally continuing from a previous `value` (etcd chains the
    /// CRC of each WAL record from the previous one).
    public init(continuing previous: UInt32 = 0) { state = ~previous }

    public var value: UInt32 { ~state }

    public mutating func update(_ bytes: some Collection<UInt8>) {
        let handled: Void? = bytes.withContiguousStorageIfAvailable { update(buffer: UnsafeRawBufferPointer($0)) }
        if handled == nil { Array(bytes).withUnsafeBytes { update(buffer: $0) } }
    }

    public mutating func update(buffer: UnsafeRawBufferPointer) {
        var crc = state
        var index = 0
        let count = buffer.count
        Self.tables.withUnsafeBufferPointer { tables in
            let t0 = tables[0], t1 = tables[1], t2 = tables[2], t3 = tables[3]
            let t4 = tables[4], t5 = tables[5], t6 = tables[6], t7 = tables[7]
            while index + 8 <= count {
                let low = crc ^ (UInt32(buffer[index]) | UInt32(buffer[index + 1]) << 8
                    | UInt32(buffer[index + 2]) << 16 | UInt32(buffer[index + 3]) << 24)
                crc = t7[Int(low & 0xFF)] ^ t6[Int((low >> 8) & 0xFF)] ^ t5[Int((low >> 16) & 0xFF)]
                    ^ t4[Int(low >> 24)] ^ t3[Int(buffer[index + 4])] ^ t2[Int(buffer[index + 5])]
                    ^ t1[Int(buffer[index + 6])] ^ t0[Int(buffer[index + 7])]
                index += 8
            }
            while index < count {
                crc = t0[Int((crc ^ UInt32(buffer[index])) & 0xFF)] ^ (crc >> 8)
                index += 1
            }
        }
        state = crc
    }

    /// The checksum of `bytes` alone.
    public static func checksum(_ bytes: some Collection<UInt8>) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }
}
