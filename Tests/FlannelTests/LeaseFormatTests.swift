import Net
import Testing

@testable import Flannel

@Suite struct LeaseFormatTests {
    @Test func vxlanLeaseValueIsFlannelsBytes() throws {
        let attributes = SubnetLeaseAttributes(
            publicIP: "192.168.64.3", backendType: "vxlan",
            backendData: ["VtepMAC": .string("c6:d2:32:6f:8f:44"), "VNI": .number(1)])
        #expect(
            attributes.jsonText
                == #"{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"},"BackendV6Data":null}"#
        )
        #expect(try SubnetLeaseAttributes(json: attributes.jsonText) == attributes)
        #expect(attributes.vtepMAC == "c6:d2:32:6f:8f:44")
    }

    @Test func oldUDPLeasesWithOnlyAPublicIPAreRead() throws {
        let attributes = try SubnetLeaseAttributes(json: #"{"PublicIP":"10.0.0.4"}"#)
        #expect(attributes.publicIP == "10.0.0.4")
        #expect(attributes.backendType == "")
        #expect(attributes.backendData == nil)
    }

    @Test func malformedLeaseValuesAreErrors() {
        #expect(throws: (any Error).self) { try SubnetLeaseAttributes(json: #"{"BackendType":"vxlan"}"#) }
        #expect(throws: (any Error).self) { try SubnetLeaseAttributes(json: "{") }
    }

    @Test func backendSettingsDefaultsAndChecks() throws {
        let vxlan = try BackendSettings(try FlannelConfig(json: #"{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}"#))
        #expect(vxlan.kind == .vxlan && vxlan.vni == 1 && vxlan.port == 8472 && vxlan.overhead == 50)
        let udp = try BackendSettings(try FlannelConfig(json: #"{"Network":"10.5.0.0/16","Backend":{"Type":"udp","Port":9000}}"#))
        #expect(udp.port == 9000 && udp.overhead == 28)
        let direct = try BackendSettings(
            try FlannelConfig(json: #"{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":42,"DirectRouting":true,"MTU":1400}}"#))
        #expect(direct.vni == 42 && direct.directRouting && direct.mtu == 1400)
        #expect(throws: FlannelConfig.Failure.self) {
            try BackendSettings(try FlannelConfig(json: #"{"Network":"10.5.0.0/16","Backend":{"Type":"ipsec"}}"#))
        }
        #expect(throws: FlannelConfig.Failure.self) {
            try BackendSettings(try FlannelConfig(json: #"{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":-1}}"#))
        }
        #expect(throws: FlannelConfig.Failure.self) {
            try BackendSettings(try FlannelConfig(json: #"{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","DirectRouting":"yes"}}"#))
        }
    }

    @Test func subnetMinAboveSubnetMaxIsRefused() throws {
        #expect(throws: FlannelConfig.Failure.self) {
            var config = try FlannelConfig(json: #"{"Network":"10.5.0.0/16","SubnetMin":"10.5.9.0","SubnetMax":"10.5.3.0"}"#)
            try config.check()
        }
    }

    @Test func masqueradeRulesInFlannelsOrder() throws {
        let rules = MasqueradeRules.iptables(
            network: try IPv4Network(parsing: "10.5.0.0/16"), subnet: try IPv4Network(parsing: "10.5.7.0/24"), forwardRules: true)
        #expect(rules.count == 8)
        #expect(rules[0].chain == "POSTROUTING" && rules[0].arguments.last == MasqueradeRules.natChain)
        #expect(rules[1].arguments.prefix(4) == ["-s", "10.5.0.0/16", "-d", "10.5.0.0/16"] && rules[1].arguments.last == "RETURN")
        #expect(rules[2].arguments.contains("224.0.0.0/4") && rules[2].arguments.last == "MASQUERADE")
        #expect(rules[3].arguments.prefix(5) == ["!", "-s", "10.5.0.0/16", "-d", "10.5.7.0/24"])
        #expect(rules[4].arguments.last == "MASQUERADE")
        #expect(rules[5].table == "filter" && rules[5].chain == "FORWARD")
        let nft = MasqueradeRules.nftables(
            network: try IPv4Network(parsing: "10.5.0.0/16"), subnet: try IPv4Network(parsing: "10.5.7.0/24"), forwardRules: false)
        #expect(nft.contains("ip saddr != 10.5.0.0/16 ip daddr 10.5.7.0/24 return") && !nft.contains("chain FLANNEL_FWD"))
    }
}
