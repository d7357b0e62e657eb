import CloudInit
import Testing

@Suite struct SubstitutionTests {
    static let addresses = MetadataAddresses(publicIPv4: "203.0.113.29", privateIPv4: "10.0.0.5", publicIPv6: nil, privateIPv6: "fd00::5")

    static func apply(_ text: String, _ addresses: MetadataAddresses = addresses) -> String {
        String(decoding: VariableSubstitution.apply(Array(text.utf8), addresses: addresses), as: UTF8.self)
    }

    @Test func upstreamRules() {
        #expect(Self.apply("$public_ipv4") == "203.0.113.29")
        #expect(Self.apply("url: http://$private_ipv4:2379") == "url: http://10.0.0.5:2379")
        #expect(Self.apply("a \\$public_ipv4 b") == "a $public_ipv4 b", "an escaped variable loses its backslash")
        #expect(Self.apply("$public_ipv6|") == "|", "unknown addresses become empty")
        #expect(Self.apply("${public_ipv4} $PUBLIC_IPV4") == "${public_ipv4} $PUBLIC_IPV4")
        #expect(Self.apply("$public_ipv4_suffix") == "203.0.113.29_suffix")
        #expect(Self.apply("$private_ipv4$private_ipv4") == "10.0.0.5$private_ipv4", "a match consumes the character before the next")
        #expect(Self.apply("$private_ipv4$private_ipv4$private_ipv4") == "10.0.0.5$private_ipv410.0.0.5")
        #expect(Self.apply("$public_ipv4$private_ipv4") == "203.0.113.2910.0.0.5", "different variables each match")
        #expect(Self.apply("$private_ipv6") == "fd00::5")
        #expect(Self.apply("cost: $5 and $") == "cost: $5 and $")
    }

    @Test func environmentFillsGaps() {
        let filled = MetadataAddresses(publicIPv4: "1.2.3.4").fillingGaps(from: ["COREOS_PUBLIC_IPV4": "9.9.9.9", "COREOS_PRIVATE_IPV4": "10.1.1.1"])
        #expect(filled.publicIPv4 == "1.2.3.4")
        #expect(filled.privateIPv4 == "10.1.1.1")
        #expect(filled.environment.map(\.name) == ["COREOS_PUBLIC_IPV4", "COREOS_PRIVATE_IPV4"])
    }
}

@Suite struct ContentEncodingTests {
    @Test func everyEncoding() throws {
        let hello = Array("hello\n".utf8)
        let packed = gzip(hello)
        let packed64 = base64(packed)
        #expect(try ContentEncoding.decode("hello\n", encoding: "") == hello)
        for name in ["b64", "base64"] { #expect(try ContentEncoding.decode("aGVsbG8K", encoding: name) == hello) }
        #expect(try ContentEncoding.decode("aGVs\r\nbG8K\n", encoding: "b64") == hello, "line breaks are skipped")
        for name in ["gz+b64", "gz+base64", "gzip+b64", "gzip+base64"] {
            #expect(try ContentEncoding.decode(packed64, encoding: name) == hello, "\(name)")
        }
        #expect(try ContentEncoding.gunzip(packed + packed) == hello + hello, "concatenated members")
        #expect(throws: DecodingError.self) { try ContentEncoding.decode("aGVsbG8", encoding: "b64") }
        #expect(throws: DecodingError.self) { try ContentEncoding.decode("aGVs bG8K", encoding: "b64") }
        #expect(throws: DecodingError.self) { try ContentEncoding.decode("aG=sbG8K", encoding: "b64") }
        #expect(throws: DecodingError.self) { try ContentEncoding.decode("aGVsbG8K", encoding: "gz") }
        #expect(throws: DecodingError.self) { try ContentEncoding.decode("x", encoding: "rot13") }
        #expect(throws: DecodingError.self) { try ContentEncoding.gunzip(Array(packed.dropLast(4))) }
        #expect(try ContentEncoding.base64("YQ==") == [0x61])
        #expect(try ContentEncoding.base64("YWI=") == [0x61, 0x62])
    }

    @Test func aGzipBombStopsAtTheLimit() {
        let bomb = gzip([UInt8](repeating: 0, count: 24 << 20))
        #expect(bomb.count < 200_000)
        #expect(throws: DecodingError.self) { try ContentEncoding.gunzip(bomb) }
    }
}

func base64(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    var index = 0
    while index < bytes.count {
        let chunk = Array(bytes[index..<min(index + 3, bytes.count)]) + [0, 0]
        let value = UInt32(chunk[0]) << 16 | UInt32(chunk[1]) << 8 | UInt32(chunk[2])
        let count = min(3, bytes.count - index)
        for position in 0..<4 {
            out.append(position <= count ? alphabet[Int(value >> (18 - 6 * UInt32(position)) & 63)] : UInt8(ascii: "="))
        }
        index += 3
    }
    return String(decoding: out, as: UTF8.self)
}
