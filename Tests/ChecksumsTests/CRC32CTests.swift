import Checksums
import Testing

@Suite struct CRC32CTests {
    /// Bit-at-a-time reference, independent of the table code.
    static func reference(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0x82F6_3B78 : 0) }
        }
        return ~crc
    }

    @Test func knownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
    }

    @Test func slicingMatchesTheBitwiseReferenceAndChainsIncrementally() {
        var generator = SystemRandomNumberGenerator()
        for length in [1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4099] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(CRC32C.checksum(bytes) == Self.reference(bytes), "length \(length)")
            let split = length / 3
            var crc = CRC32C()
            crc.update(bytes[..<split])
            crc.update(bytes[split...])
            #expect(crc.value == Self.reference(bytes))
            // Continuing from a value is the same as one pass.
            var chained = CRC32C(continuing: CRC32C.checksum(bytes[..<split]))
            chained.update(bytes[split...])
            #expect(chained.value == Self.reference(bytes))
        }
    }
}
