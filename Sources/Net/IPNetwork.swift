/// A CIDR block: an address with its host bits cleared and a prefix length.
///
/// Used for flannel's network and subnet leases, pod networks and route tables.
public struct IPNetwork<Address: IPAddressProtocol>: Sendable, Hashable, Comparable {
    /// The first address of the block (host bits zero).
    public let address: Address
    public let prefixLength: Int

    /// A network from an address and prefix; host bits of `address` are cleared.
    public init(address: Address, prefixLength: Int) throws(AddressParseError) {
        guard (0...Address.bitWidth).contains(prefixLength) else {
            throw AddressParseError(
                kind: "network", text: "\(address)/\(prefixLength)",
                detail: "prefix length must be 0…\(Address.bitWidth)")
        }
        self.address = Address(bits: address.bits & Self.mask(prefixLength))
        self.prefixLength = prefixLength
    }

    /// Parses `a.b.c.d/len` (or an IPv6 equivalent).
    /// - Parameter strict: refuse text whose address has host bits set (`10.1.2.3/16`),
    ///   instead of clearing them.
    public init(parsing text: some StringProtocol, strict: Bool = false) throws(AddressParseError) {
        let string = String(text)
        func fail(_ detail: String) -> AddressParseError {
            AddressParseError(kind: "network", text: string, detail: detail)
        }
        guard let slash = string.firstIndex(of: "/") else { throw fail("missing '/prefix'") }
        let lengthText = string[string.index(after: slash)...]
        guard !lengthText.isEmpty, lengthText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), lengthText.utf8.count <= 3,
            let length = Int(lengthText)
        else { throw fail("bad prefix length") }
        if lengthText.count > 1 && lengthText.hasPrefix("0") { throw fail("prefix length with a leading zero") }
        let parsed: Address
        do { parsed = try Address(parsing: string[..<slash]) } catch { throw fail(error.detail) }
        try self.init(address: parsed, prefixLength: length)
        if strict && self.address != parsed { throw fail("host bits set") }
    }

    static func mask(_ prefixLength: Int) -> Address.Bits {
        prefixLength == 0 ? 0 : ~Address.Bits(0) << (Address.bitWidth - prefixLength)
    }

    /// The netmask as an address (`255.255.0.0` for /16).
    public var netmask: Address { Address(bits: Self.mask(prefixLength)) }

    /// The number of host bits (`32 - prefixLength` for IPv4).
    public var hostBits: Int { Address.bitWidth - prefixLength }

    /// The last address of the block (the IPv4 broadcast address).
    public var lastAddress: Address { Address(bits: address.bits | ~Self.mask(prefixLength)) }

    public func contains(_ candidate: Address) -> Bool {
        candidate.bits & Self.mask(prefixLength) == address.bits
    }

    /// Whether `other` lies entirely inside this network.
    public func contains(_ other: IPNetwork) -> Bool {
        other.prefixLength >= prefixLength && contains(other.address)
    }

    /// Whether the two blocks share any address (CIDR blocks either nest or are disjoint).
    public func overlaps(_ other: IPNetwork) -> Bool {
        contains(other.address) || other.contains(address)
    }

    /// The usable host addresses: for IPv4 the network and broadcast addresses are
    /// excluded except in /31 (RFC 3021, both usable) and /32 (the single address);
    /// for IPv6 only the subnet-router anycast (first) address is excluded, except in /127 and /128.
    public var hostRange: ClosedRange<Address> {
        let last = lastAddress
        if hostBits <= 1 { return address...last }
        let first = Address(bits: address.bits + 1)
        if Address.bitWidth == 32 { return first...Address(bits: last.bits - 1) }
        return first...last
    }

    /// The block of the same size right after this one, or nil at the end of the address space.
    public var next: IPNetwork? {
        guard prefixLength > 0 else { return nil }
        let step = Address.Bits(1) << hostBits
        let (start, overflow) = address.bits.addingReportingOverflow(step)
        if overflow { return nil }
        return try? IPNetwork(address: Address(bits: start), prefixLength: prefixLength)
    }

    /// The blocks of length `length` that make up this network, in address order.
    /// Lazy: a /8 split into /24s is not materialised.
    public func subnets(prefixLength length: Int) throws(AddressParseError) -> SubnetSequence<Address> {
        guard length >= prefixLength, length <= Address.bitWidth else {
            throw AddressParseError(
                kind: "subnet length", text: "\(length)",
                detail: "must be between \(prefixLength) and \(Address.bitWidth)")
        }
        return SubnetSequence(parent: self, length: length)
    }

    public var description: String { "\(address)/\(prefixLength)" }

    public static func < (lhs: IPNetwork, rhs: IPNetwork) -> Bool {
        (lhs.address, lhs.prefixLength) < (rhs.address, rhs.prefixLength)
    }

}

/// The subnets of a network, lazily, in address order.
public struct SubnetSequence<Address: IPAddressProtocol>: Sequence, Sendable {
    let parent: IPNetwork<Address>
    let length: Int

    public struct Iterator: IteratorProtocol {
        var current: IPNetwork<Address>?
        let parent: IPNetwork<Address>

        public mutating func next() -> IPNetwork<Address>? {
            guard let value = current else { return nil }
            let following = value.next
            current = following.flatMap { parent.contains($0) ? $0 : nil }
            return value
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(current: try? IPNetwork(address: parent.address, prefixLength: length), parent: parent)
    }

    /// How many subnets there are, when it fits in an `Int`.
    public var count: Int? {
        let bits = length - parent.prefixLength
        return bits < Int.bitWidth - 1 ? 1 << bits : nil
    }
}

public typealias IPv4Network = IPNetwork<IPv4Address>
public typealias IPv6Network = IPNetwork<IPv6Address>
