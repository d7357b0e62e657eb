import Testing

@testable import FlannelDaemon

@Suite struct FlannelOptionsTests {
    @Test func defaultsAreFlannels() throws {
        let options = try FlannelOptions.parse(arguments: [], environment: [:])
        #expect(options.etcdEndpoints == ["http://127.0.0.1:4001", "http://127.0.0.1:2379"])
        #expect(options.etcdPrefix == "/coreos.com/network")
        #expect(options.subnetFile == "/run/flannel/subnet.env")
        #expect(options.renewMargin == .seconds(3600) && options.leaseTTL == .seconds(86400))
        #expect(!options.ipMasquerade && options.iptablesForwardRules && options.etcdAPI == "v3")
    }

    @Test func environmentThenFlags() throws {
        let options = try FlannelOptions.parse(
            arguments: ["--etcd-prefix=/x/network", "-iface", "eth1", "--iface", "10.0.0.2", "--ip-masq"],
            environment: [
                "FLANNELD_ETCD_PREFIX": "/env/network", "FLANNELD_IFACE": "eth0,eth9",
                "FLANNELD_SUBNET_LEASE_RENEW_MARGIN": "30", "FLANNELD_ETCD_ENDPOINTS": "http://a:2379, http://b:2379",
            ])
        #expect(options.etcdPrefix == "/x/network")
        #expect(options.interfaces == ["eth1", "10.0.0.2"])
        #expect(options.renewMargin == .seconds(1800))
        #expect(options.etcdEndpoints == ["http://a:2379", "http://b:2379"])
        #expect(options.ipMasquerade)
    }

    @Test func durationsAndErrors() throws {
        let options = try FlannelOptions.parse(
            arguments: ["--subnet-lease-ttl", "10s", "--subnet-lease-renew-margin", "5s", "--ip-masq=false"], environment: [:])
        #expect(options.leaseTTL == .seconds(10) && options.renewMargin == .seconds(5) && !options.ipMasquerade)
        #expect(throws: FlannelError.self) { try FlannelOptions.parse(arguments: ["--subnet-lease-ttl", "10s"], environment: [:]) }
        #expect(throws: FlannelError.self) { try FlannelOptions.parse(arguments: ["--no-such-flag"], environment: [:]) }
        #expect(throws: FlannelError.self) { try FlannelOptions.parse(arguments: ["--iface"], environment: [:]) }
        #expect(throws: FlannelError.self) { try FlannelOptions.parse(arguments: ["--etcd-api", "v4"], environment: [:]) }
        #expect(throws: FlannelError.self) { try FlannelOptions.parse(arguments: ["--healthz-port", "70000"], environment: [:]) }
        #expect(throws: FlannelError.self) { try FlannelOptions.parse(arguments: ["stray"], environment: [:]) }
        #expect(throws: FlannelError.self) {
            try FlannelOptions.parse(arguments: ["--subnet-lease-renew-margin", "5x"], environment: [:])
        }
    }
}

@Suite struct UDPForwardingTests {
    /// The IPv4 header checksum computed from scratch.
    func checksum(_ header: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        for index in stride(from: 0, to: header.count, by: 2) where index != 10 {
            sum += UInt32(header[index]) << 8 | UInt32(header[index + 1])
        }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }

    @Test func ttlDecrementKeepsTheChecksumValid() {
        for ttl: UInt8 in [2, 64, 255] {
            for seed: UInt8 in [0, 0x37, 0xFE] {
                var header: [UInt8] = [0x45, 0, 0, 84, seed, 1, 0x40, 0, ttl, 1, 0, 0, 10, 5, 1, 2, 10, 5, 2, seed]
                let original = checksum(header)
                header[10] = UInt8(original >> 8)
                header[11] = UInt8(original & 0xFF)
                let forwarded = header.withUnsafeMutableBytes { UDPForwarder.decrementTTL($0.baseAddress!) }
                #expect(forwarded)
                #expect(header[8] == ttl - 1)
                let expected = checksum(header)
                let actual = UInt16(header[10]) << 8 | UInt16(header[11])
                // 0x0000 and 0xFFFF are the same value in ones' complement.
                #expect(actual == expected || (actual | expected) == 0xFFFF && (actual & expected) == 0)
            }
        }
        var last: [UInt8] = [0x45, 0, 0, 20, 0, 0, 0, 0, 1, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
        #expect(!last.withUnsafeMutableBytes { UDPForwarder.decrementTTL($0.baseAddress!) })
    }
}
