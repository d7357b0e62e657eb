/// A 48-bit Ethernet MAC address. Parses `aa:bb:cc:dd:ee:ff` and `aa-bb-cc-dd-ee-ff`
/// (either case); formats lowercase with colons, as `ip link` and flannel's VtepMAC do.
public struct MACAddress: Sendable, Hashable, Comparable {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(AddressParseError) {
        guard bytes.count == 6 else {
            throw AddressParseError(kind: "MAC address", text: "\(bytes)", detail: "needs six bytes")
        }
        self.bytes = bytes
    }

    public init(parsing text: some StringProtocol) throws(AddressParseError) {
        let string = String(text)
        func fail(_ detail: String) -> AddressParseError {
            AddressParseError(kind: "MAC address", text: string, detail: detail)
        }
        let separator: Character = string.contains("-") ? "-" : ":"
        let fields = string.split(separator: separator, omittingEmptySubsequences: false)
        guard fields.count == 6 else { throw fail("expected six two-digit fields") }
        var parsed: [UInt8] = []
        for field in fields {
            guard field.utf8.count == 2, field.utf8.allSatisfy({ Self.isHexDigit($0) }),
                let value = UInt8(field, radix: 16)
            else { throw fail("bad field \(String(field).debugDescription)") }
            parsed.append(value)
        }
        self.bytes = parsed
    }

    /// A random unicast, locally administered address (for vxlan and veth devices).
    public static func randomLocallyAdministered(using generator: inout some RandomNumberGenerator) -> MACAddress {
        var bytes = (0..<6).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[0] = (bytes[0] & 0xFE) | 0x02
        return MACAddress(validated: bytes)
    }

    private init(validated bytes: [UInt8]) { self.bytes = bytes }

    public var isMulticast: Bool { bytes[0] & 0x01 != 0 }
    public var isLocallyAdministered: Bool { bytes[0] & 0x02 != 0 }
    public var isBroadcast: Bool { bytes.allSatisfy { $0 == 0xFF } }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }

    public static func < (lhs: MACAddress, rhs: MACAddress) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
    }

}
