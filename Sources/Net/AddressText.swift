/// Types whose canonical form is a short text (`10.1.0.0/16`, `aa:bb:cc:dd:ee:ff`): they
/// convert from and to `String` and encode in JSON as that string, as flannel's and
/// etcd's JSON documents write them.
public protocol AddressText: Codable, LosslessStringConvertible, Sendable {
    /// Parses the canonical text (and the accepted variants), with a precise error.
    static func parse(_ text: String) throws(AddressParseError) -> Self
}

extension AddressText {
    public init?(_ description: String) {
        guard let value = try? Self.parse(description) else { return nil }
        self = value
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try Self.parse(text) } catch {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension IPv4Address: AddressText {
    public static func parse(_ text: String) throws(AddressParseError) -> IPv4Address { try IPv4Address(parsing: text) }
}

extension IPv6Address: AddressText {
    public static func parse(_ text: String) throws(AddressParseError) -> IPv6Address { try IPv6Address(parsing: text) }
}

extension IPAddress: AddressText {
    public static func parse(_ text: String) throws(AddressParseError) -> IPAddress { try IPAddress(parsing: text) }
}

extension IPNetwork: AddressText {
    public static func parse(_ text: String) throws(AddressParseError) -> IPNetwork { try IPNetwork(parsing: text) }
}

extension MACAddress: AddressText {
    public static func parse(_ text: String) throws(AddressParseError) -> MACAddress { try MACAddress(parsing: text) }
}
