import Net
import TestSupport
import Testing

@Suite("CIDR networks")
struct NetworkTests {
    @Test func parseMasksHostBitsUnlessStrict() throws {
        let network = try IPv4Network(parsing: "10.1.2.3/16")
        #expect(network.description == "10.1.0.0/16")
        #expect(network.netmask.description == "255.255.0.0")
        #expect(throws: AddressParseError.self) { try IPv4Network(parsing: "10.1.2.3/16", strict: true) }
        #expect(try IPv4Network(parsing: "10.1.0.0/16", strict: true) == network)
    }

    @Test(arguments: [
        "10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/08", "10.0.0.0/a", "/8", "10.0.0/8",
    ])
    func rejects(text: String) {
        #expect(throws: AddressParseError.self) { try IPv4Network(parsing: text) }
    }

    @Test func containsAndOverlaps() throws {
        let big = try IPv4Network(parsing: "10.0.0.0/8")
        let small = try IPv4Network(parsing: "10.5.3.0/24")
        let other = try IPv4Network(parsing: "192.168.0.0/16")
        #expect(big.contains(small) && !small.contains(big))
        #expect(big.overlaps(small) && small.overlaps(big))
        #expect(!big.overlaps(other))
        #expect(big.contains(try IPv4Address(parsing: "10.255.255.255")))
        #expect(!big.contains(try IPv4Address(parsing: "11.0.0.0")))
        let everything = try IPv4Network(parsing: "0.0.0.0/0")
        #expect(everything.contains(other) && everything.lastAddress.description == "255.255.255.255")
    }

    @Test func hostRanges() throws {
        let net24 = try IPv4Network(parsing: "10.5.3.0/24").hostRange
        #expect(net24.lowerBound.description == "10.5.3.1" && net24.upperBound.description == "10.5.3.254")
        let net31 = try IPv4Network(parsing: "10.0.0.0/31").hostRange
        #expect(net31.lowerBound.description == "10.0.0.0" && net31.upperBound.description == "10.0.0.1")
        let net32 = try IPv4Network(parsing: "10.0.0.7/32").hostRange
        #expect(net32.lowerBound == net32.upperBound)
        let v6 = try IPv6Network(parsing: "2001:db8::/64").hostRange
        #expect(
            v6.lowerBound.description == "2001:db8::1" && v6.upperBound.description == "2001:db8::ffff:ffff:ffff:ffff")
    }

    @Test func subnetIterationAndNext() throws {
        let network = try IPv4Network(parsing: "10.1.0.0/16")
        let subnets = try network.subnets(prefixLength: 24)
        #expect(subnets.count == 256)
        let all = Array(subnets)
        #expect(all.count == 256)
        #expect(all.first?.description == "10.1.0.0/24" && all.last?.description == "10.1.255.0/24")
        #expect(all[3].next == all[4])
        #expect(try IPv4Network(parsing: "255.255.255.0/24").next == nil)
        #expect(try IPv4Network(parsing: "10.1.255.0/24").next?.description == "10.2.0.0/24")
        #expect(throws: AddressParseError.self) { try network.subnets(prefixLength: 8) }
        // Lazy: splitting a /8 into /30s does not materialise four million networks.
        var iterator = try IPv4Network(parsing: "10.0.0.0/8").subnets(prefixLength: 30).makeIterator()
        _ = iterator.next()
        #expect(iterator.next()?.description == "10.0.0.4/30")
        let v6 = Array(try IPv6Network(parsing: "fd00::/62").subnets(prefixLength: 64))
        #expect(v6.map(\.description) == ["fd00::/64", "fd00:0:0:1::/64", "fd00:0:0:2::/64", "fd00:0:0:3::/64"])
    }

    /// CIDR blocks either nest or are disjoint; overlap must agree with address-level truth.
    @Test func overlapMatchesBruteForceOnSmallBlocks() throws {
        var generator = SeededGenerator(seed: SeededGenerator.seed(fallback: 0xC1D2))
        for _ in 0..<2_000 {
            let a = try IPv4Network(
                address: IPv4Address(bits: UInt32.random(in: 0...1023, using: &generator)),
                prefixLength: Int.random(in: 22...32, using: &generator))
            let b = try IPv4Network(
                address: IPv4Address(bits: UInt32.random(in: 0...1023, using: &generator)),
                prefixLength: Int.random(in: 22...32, using: &generator))
            let truth = a.address.bits <= b.lastAddress.bits && b.address.bits <= a.lastAddress.bits
            #expect(a.overlaps(b) == truth, "\(a) \(b)")
        }
    }
}
