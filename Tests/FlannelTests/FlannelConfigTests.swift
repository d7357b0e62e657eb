import Net
import Testing

@testable import Flannel

@Suite struct FlannelConfigTests {
    private func failure(_ json: String) -> String? {
        do {
            _ = try FlannelConfig(json: json)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func defaultsAreFlannels() throws {
        let config = try FlannelConfig(json: #"{"Network": "10.5.0.0/16"}"#)
        #expect(config.subnetLength == 24)
        #expect(config.subnetMin == IPv4Address(10, 5, 1, 0))
        #expect(config.subnetMax == IPv4Address(10, 5, 255, 0))
        #expect(config.backendType == "udp")
        // A network smaller than /22 is split into subnets two bits longer.
        let small = try FlannelConfig(json: #"{"Network": "10.5.0.0/24"}"#)
        #expect(small.subnetLength == 26)
        #expect(small.subnetMin == IPv4Address(10, 5, 0, 64) && small.subnetMax == IPv4Address(10, 5, 0, 192))
    }

    @Test func keysMatchWithoutRegardToCaseAsGoDoes() throws {
        let config = try FlannelConfig(json: #"{"network": "10.0.0.0/8", "SUBNETLEN": 20, "backend": {"type": "vxlan", "VNI": 4, "DirectRouting": true}}"#)
        #expect(config.subnetLength == 20)
        #expect(config.backendType == "vxlan")
        #expect(config.backend["vni"] == .number(4))
        #expect(config.backend["directrouting"] == .bool(true))
    }

    @Test func flannelsErrors() {
        #expect(failure(#"{}"#) == "please define a correct Network parameter in the flannel config")
        #expect(failure(#"{"Network": "10.0.0.0/8", "SubnetLen": 31}"#) == "SubnetLen must be less than /31")
        #expect(failure(#"{"Network": "10.0.0.0/24", "SubnetLen": 25}"#) == "network must be able to accommodate at least four subnets")
        #expect(failure(#"{"Network": "10.0.0.0/29"}"#) == "network is too small. Minimum useful network prefix is /28")
        #expect(failure(#"{"Network": "10.0.0.0/16", "SubnetMin": "10.1.0.0"}"#) == "SubnetMin is not in the range of the Network")
        #expect(failure(#"{"Network": "10.0.0.0/16", "SubnetMax": "10.0.3.5"}"#) == "SubnetMax is not on a SubnetLen boundary: 10.0.3.5")
        #expect(failure(#"{"Network": 10}"#) == "json: cannot unmarshal number into Go struct field Config.Network of type string")
        #expect(failure(#"{"Network": "10.0.0.0/16", "SubnetLen": "24"}"#) == "json: cannot unmarshal string into Go struct field Config.SubnetLen of type uint")
        #expect(failure(#"{"Network": "10.0.0.0/16""#) == "unexpected end of JSON input")
        #expect(failure(#"[1]"#) == "json: cannot unmarshal array into Go value of type subnet.Config")
        #expect(failure(#"{"EnableIPv6": true, "Network": "10.0.0.0/16"}"#) == "please define a correct IPv6Network parameter in the flannel config")
    }

    @Test func ipv6Defaults() throws {
        let config = try FlannelConfig(json: #"{"EnableIPv4": false, "EnableIPv6": true, "IPv6Network": "fc00::/48"}"#)
        #expect(config.ipv6SubnetLength == 64)
        #expect(config.ipv6SubnetMin?.description == "fc00:0:0:1::")
        #expect(config.ipv6SubnetMax?.description == "fc00:0:0:ffff::")
    }

    @Test func leaseKeysRoundTrip() throws {
        let key = try #require(SubnetKey(parsing: "10.5.72.0-24"))
        #expect(key.ipv4?.description == "10.5.72.0/24" && key.description == "10.5.72.0-24")
        let dual = try #require(SubnetKey(parsing: "10.5.72.0-24&fc00:0:0:48::-64"))
        #expect(dual.ipv6?.prefixLength == 64 && dual.description == "10.5.72.0-24&fc00:0:0:48::-64")
        #expect(SubnetKey(parsing: "10.5.72.1-24") == nil)  // host bits set
        #expect(SubnetKey(parsing: "garbage") == nil)
    }

    @Test func subnetEnvironmentIsFlannels() throws {
        let config = try FlannelConfig(json: #"{"Network": "10.5.0.0/16", "Backend": {"Type": "vxlan"}}"#)
        let lease = try #require(SubnetKey(parsing: "10.5.72.0-24"))
        #expect(
            SubnetEnvironment.text(config: config, lease: lease, mtu: 1450, ipMasquerade: true)
                == "FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
    }
}
