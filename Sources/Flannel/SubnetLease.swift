import Foundation
import GoFormat
public import Net

/// The name of a lease under `<prefix>/subnets/`: `10.5.72.0-24`, or for a dual-stack
/// lease `10.5.72.0-24&fc00:0:0:48::-64` (flannel's `MakeSubnetKey`).
public struct SubnetKey: Sendable, Hashable, CustomStringConvertible {
    public var ipv4: IPv4Network?
    public var ipv6: IPv6Network?

    public init(ipv4: IPv4Network?, ipv6: IPv6Network? = nil) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }

    /// Reads a key's last path element; nil for anything else (flannel skips such keys).
    public init?(parsing name: String) {
        let parts = name.split(separator: "&", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return nil }
        func network(_ text: Substring) -> String? {
            guard let dash = text.lastIndex(of: "-") else { return nil }
            return text[..<dash] + "/" + text[text.index(after: dash)...]
        }
        if let text = network(parts[0]), let parsed = try? IPv4Network(parsing: text, strict: true) {
            ipv4 = parsed
            if parts.count == 2 {
                guard let text6 = network(parts[1]), let parsed6 = try? IPv6Network(parsing: text6, strict: true) else { return nil }
                ipv6 = parsed6
            }
        } else if parts.count == 1, let text = network(parts[0]), let parsed6 = try? IPv6Network(parsing: text, strict: true) {
            ipv6 = parsed6
        } else {
            return nil
        }
    }

    public var description: String {
        let v4 = ipv4.map { "\($0.address)-\($0.prefixLength)" }
        let v6 = ipv6.map { "\($0.address)-\($0.prefixLength)" }
        return [v4, v6].compactMap { $0 }.joined(separator: "&")
    }
}

/// A lease's value: `{"PublicIP":"…","PublicIPv6":…,"BackendType":"vxlan","BackendData":{…}}`
/// in flannel's field order.
public struct SubnetLeaseAttributes: Codable, Sendable, Hashable {
    public var publicIP: String
    public var publicIPv6: String?
    public var backendType: String
    public var backendData: [String: BackendDatum]?
    public var backendV6Data: [String: BackendDatum]?

    public enum BackendDatum: Codable, Sendable, Hashable {
        case number(Int)
        case string(String)

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int.self) { self = .number(number) } else { self = .string(try container.decode(String.self)) }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .number(let number): try container.encode(number)
            case .string(let text): try container.encode(text)
            }
        }
    }

    enum CodingKeys: String, CodingKey {
        case publicIP = "PublicIP"
        case publicIPv6 = "PublicIPv6"
        case backendType = "BackendType"
        case backendData = "BackendData"
        case backendV6Data = "BackendV6Data"
    }

    public init(publicIP: String, backendType: String, backendData: [String: BackendDatum]? = nil) {
        self.publicIP = publicIP
        self.backendType = backendType
        self.backendData = backendData
    }

    /// Reads a stored lease value; flannel's lenient decoding (unknown fields ignored).
    public init(json text: String) throws {
        self = try JSONDecoder().decode(SubnetLeaseAttributes.self, from: Data(text.utf8))
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        publicIP = try container.decode(String.self, forKey: .publicIP)
        publicIPv6 = try container.decodeIfPresent(String.self, forKey: .publicIPv6)
        backendType = try container.decodeIfPresent(String.self, forKey: .backendType) ?? ""
        backendData = try? container.decodeIfPresent([String: BackendDatum].self, forKey: .backendData)
        backendV6Data = try? container.decodeIfPresent([String: BackendDatum].self, forKey: .backendV6Data)
    }

    /// The value as flannel writes it: Go's `json.Marshal` of its `LeaseAttrs`, fields in
    /// declaration order, `BackendData` as the backend wrote it (`VNI` before `VtepMAC`).
    public var jsonText: String {
        var text = "{\"PublicIP\":\(GoJSONString.quote(publicIP)),\"PublicIPv6\":\(publicIPv6.map(GoJSONString.quote) ?? "null")"
        if !backendType.isEmpty { text += ",\"BackendType\":\(GoJSONString.quote(backendType))" }
        if let backendData { text += ",\"BackendData\":\(Self.object(backendData))" }
        text += ",\"BackendV6Data\":\(backendV6Data.map(Self.object) ?? "null")}"
        return text
    }

    /// The vxlan backend's VTEP MAC (`BackendData.VtepMAC`).
    public var vtepMAC: String? {
        if case .string(let mac)? = backendData?["VtepMAC"] { return mac }
        return nil
    }

    private static func object(_ fields: [String: BackendDatum]) -> String {
        let order = ["VNI": 0, "VtepMAC": 1]
        let keys = fields.keys.sorted { (order[$0] ?? 2, $0) < (order[$1] ?? 2, $1) }
        let members = keys.map { key -> String in
            switch fields[key] {
            case .number(let number)?: return "\(GoJSONString.quote(key)):\(number)"
            case .string(let text)?: return "\(GoJSONString.quote(key)):\(GoJSONString.quote(text))"
            case nil: return "\(GoJSONString.quote(key)):null"
            }
        }
        return "{" + members.joined(separator: ",") + "}"
    }
}

/// `subnet.env`, the file container runtimes source: `FLANNEL_NETWORK`, `FLANNEL_SUBNET`
/// (the lease's first address with its prefix), the IPv6 pair in dual stack,
/// `FLANNEL_MTU`, `FLANNEL_IPMASQ`, in flannel's order.
public enum SubnetEnvironment {
    public static func text(config: FlannelConfig, lease: SubnetKey, mtu: Int, ipMasquerade: Bool) -> String {
        var text = ""
        if config.enableIPv4, let network = config.network, let subnet = lease.ipv4 {
            text += "FLANNEL_NETWORK=\(network)\n"
            text += "FLANNEL_SUBNET=\(IPv4Address(bits: subnet.address.bits &+ 1))/\(subnet.prefixLength)\n"
        }
        if config.enableIPv6, let network = config.ipv6Network, let subnet = lease.ipv6 {
            text += "FLANNEL_IPV6_NETWORK=\(network)\n"
            text += "FLANNEL_IPV6_SUBNET=\(IPv6Address(bits: subnet.address.bits &+ 1))/\(subnet.prefixLength)\n"
        }
        text += "FLANNEL_MTU=\(mtu)\n"
        text += "FLANNEL_IPMASQ=\(ipMasquerade)\n"
        return text
    }

    /// Writes the file atomically (a temporary file renamed over it), creating its directory.
    public static func write(_ text: String, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
