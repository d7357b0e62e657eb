import Foundation
import Net
import TestSupport
import Testing

@Suite("IP addresses")
struct AddressTests {
    @Test func ipv4ParseAndFormat() throws {
        let address = try IPv4Address(parsing: "10.1.255.0")
        #expect(address.description == "10.1.255.0")
        #expect(address.octets == [10, 1, 255, 0])
        #expect(IPv4Address(10, 1, 255, 0) == address)
        #expect(address.isPrivate && !address.isLoopback)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "1.2.3.4 ", "a.b.c.d", "1.2.3.-4", "1.2.3.4/8",
    ])
    func ipv4Rejects(text: String) {
        #expect(throws: AddressParseError.self) { try IPv4Address(parsing: text) }
    }

    @Test(arguments: [
        ("::", "::"), ("::1", "::1"), ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("fe80::1:2", "fe80::1:2"), ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("::ffff:1.2.3.4", "::ffff:102:304"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"), ("0:0:0:0:0:0:0:0", "::"), ("1::", "1::"),
    ])
    func ipv6CanonicalForm(text: String, canonical: String) throws {
        #expect(try IPv6Address(parsing: text).description == canonical)
    }

    @Test(arguments: [
        "", ":", ":::", "1::2::3", "12345::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "g::", "::1.2.3",
        "1:2:3:4:5:6:7::8", "+1::",
    ])
    func ipv6Rejects(text: String) {
        #expect(throws: AddressParseError.self) { try IPv6Address(parsing: text) }
    }

    @Test func ipv6RoundTripsOnRandomAddresses() throws {
        var generator = SeededGenerator(seed: SeededGenerator.seed(fallback: 0xADD6))
        for _ in 0..<5_000 {
            // Bias towards zero groups so compression paths are exercised.
            let groups = (0..<8).map { _ in
                Bool.random(using: &generator) ? 0 : UInt16.random(in: 0...0xFFFF, using: &generator)
            }
            let address = IPv6Address(groups: groups)
            let reparsed = try IPv6Address(parsing: address.description)
            #expect(reparsed == address)
            #expect(!address.description.contains(":::"))
        }
    }

    @Test func macAddresses() throws {
        let mac = try MACAddress(parsing: "0A-1b-2C-3d-4E-5f")
        #expect(mac.description == "0a:1b:2c:3d:4e:5f")
        #expect(throws: AddressParseError.self) { try MACAddress(parsing: "0a:1b:2c:3d:4e") }
        #expect(throws: AddressParseError.self) { try MACAddress(parsing: "0a:1b:2c:3d:4e:5") }
        #expect(throws: AddressParseError.self) { try MACAddress(parsing: "0a:1b:2c:3d:4e:+f") }
        var generator = SeededGenerator(seed: 7)
        let random = MACAddress.randomLocallyAdministered(using: &generator)
        #expect(random.isLocallyAdministered && !random.isMulticast)
        #expect(try MACAddress(parsing: random.description) == random)
    }

    @Test func jsonUsesTextForms() throws {
        struct Lease: Codable, Equatable {
            var PublicIP: IPv4Address
            var Subnet: IPv4Network
            var VtepMAC: MACAddress
            var Other: IPAddress
        }
        let json =
            #"{"PublicIP":"203.0.113.7","Subnet":"10.5.3.0/24","VtepMAC":"aa:bb:cc:dd:ee:ff","Other":"2001:db8::1"}"#
        let lease = try JSONDecoder().decode(Lease.self, from: Data(json.utf8))
        #expect(lease.Subnet.prefixLength == 24)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        #expect(
            String(decoding: try encoder.encode(lease), as: UTF8.self)
                == #"{"Other":"2001:db8::1","PublicIP":"203.0.113.7","Subnet":"10.5.3.0/24","VtepMAC":"aa:bb:cc:dd:ee:ff"}"#
        )
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(
                Lease.self, from: Data(json.replacingOccurrences(of: "10.5.3.0/24", with: "10.5.3.0/33").utf8))
        }
    }
}
