import Foundation
import GoFormat
public import Net

/// flannel's network configuration, the JSON at `<prefix>/config` (flannel ≥ 0.18):
/// parsed as Go's `encoding/json` reads it (field names matched without regard to case)
/// and checked as flannel checks it, defaults filled in (`SubnetLen`, `SubnetMin`,
/// `SubnetMax`, the backend type `udp` when no `Backend` is given).
public struct FlannelConfig: Sendable, Hashable {
    public var enableIPv4 = true
    public var enableIPv6 = false
    public var network: IPv4Network?
    public var subnetLength = 0
    public var subnetMin: IPv4Address?
    public var subnetMax: IPv4Address?
    public var ipv6Network: IPv6Network?
    public var ipv6SubnetLength = 0
    public var ipv6SubnetMin: IPv6Address?
    public var ipv6SubnetMax: IPv6Address?
    /// `Backend.Type`: `vxlan`, `host-gw`, `udp`.
    public var backendType = "udp"
    /// The `Backend` object as given (`VNI`, `Port`, `DirectRouting`, `MTU`…), by
    /// lower-cased name, for the backend to read.
    public var backend: [String: BackendValue] = [:]

    public enum BackendValue: Sendable, Hashable {
        case number(Double)
        case string(String)
        case bool(Bool)
    }

    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
        public init(_ message: String) { self.message = message }
    }

    public init() {}

    /// Parses and checks a configuration; the error texts are flannel's.
    public init(json text: String) throws(Failure) {
        let bytes = Array(text.utf8)
        do {
            _ = try GoJSONScanner.values(in: bytes)
        } catch {
            // json.Unmarshal words a truncated document differently from a stream decoder.
            throw Failure(error.message == "unexpected EOF" ? "unexpected end of JSON input" : error.message)
        }
        let document = (try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))) ?? .null
        guard case .object(let object) = document else {
            throw Failure("json: cannot unmarshal \(document.goType) into Go value of type subnet.Config")
        }
        // Go matches a JSON key to a field ignoring case.
        var fields: [String: JSONValue] = [:]
        for (key, value) in object { fields[key.lowercased()] = value }
        func string(_ name: String, _ field: String) throws(Failure) -> String? {
            switch fields[name] {
            case nil, .null: return nil
            case .string(let text): return text
            case let other?: throw Failure("json: cannot unmarshal \(other.goType) into Go struct field Config.\(field) of type string")
            }
        }
        func unsigned(_ name: String, _ field: String) throws(Failure) -> Int {
            switch fields[name] {
            case nil, .null: return 0
            case .number(let number) where number >= 0 && number == number.rounded() && number < 4_294_967_296: return Int(number)
            case let other?: throw Failure("json: cannot unmarshal \(other.goType) into Go struct field Config.\(field) of type uint")
            }
        }
        func flag(_ name: String, _ field: String, default fallback: Bool) throws(Failure) -> Bool {
            switch fields[name] {
            case nil, .null: return fallback
            case .bool(let value): return value
            case let other?: throw Failure("json: cannot unmarshal \(other.goType) into Go struct field Config.\(field) of type bool")
            }
        }
        enableIPv4 = try flag("enableipv4", "EnableIPv4", default: true)
        enableIPv6 = try flag("enableipv6", "EnableIPv6", default: false)
        do {
            if let text = try string("network", "Network") { network = try IPv4Network(parsing: text) }
            if let text = try string("subnetmin", "SubnetMin") { subnetMin = try IPv4Address(parsing: text) }
            if let text = try string("subnetmax", "SubnetMax") { subnetMax = try IPv4Address(parsing: text) }
            if let text = try string("ipv6network", "IPv6Network") { ipv6Network = try IPv6Network(parsing: text) }
            if let text = try string("ipv6subnetmin", "IPv6SubnetMin") { ipv6SubnetMin = try IPv6Address(parsing: text) }
            if let text = try string("ipv6subnetmax", "IPv6SubnetMax") { ipv6SubnetMax = try IPv6Address(parsing: text) }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure("\(error)")
        }
        subnetLength = try unsigned("subnetlen", "SubnetLen")
        ipv6SubnetLength = try unsigned("ipv6subnetlen", "IPv6SubnetLen")
        switch fields["backend"] {
        case nil, .null: break
        case .object(let object):
            for (key, raw) in object {
                switch raw {
                case .bool(let value): backend[key.lowercased()] = .bool(value)
                case .number(let value): backend[key.lowercased()] = .number(value)
                case .string(let value): backend[key.lowercased()] = .string(value)
                default: break
                }
            }
            if case .string(let type) = backend["type"] { backendType = type } else { backendType = "" }
        case let other?:
            throw Failure("error decoding Backend property of config: json: cannot unmarshal \(other.goType) into Go value of type struct { Type string }")
        }
        try check()
    }

    /// flannel's `CheckNetworkConfig`: defaults and coherence.
    public mutating func check() throws(Failure) {
        if enableIPv4 {
            guard let network else { throw Failure("please define a correct Network parameter in the flannel config") }
            if subnetLength > 0 {
                // Room for a tunnel and a bridge device on each host.
                if subnetLength > 30 { throw Failure("SubnetLen must be less than /31") }
                // The first subnet is skipped, so two would leave one usable host.
                if subnetLength < network.prefixLength + 2 { throw Failure("network must be able to accommodate at least four subnets") }
            } else if network.prefixLength > 28 {
                throw Failure("network is too small. Minimum useful network prefix is /28")
            } else {
                subnetLength = network.prefixLength <= 22 ? 24 : network.prefixLength + 2
            }
            let size = UInt32(1) << UInt32(32 - subnetLength)
            if let minimum = subnetMin {
                guard network.contains(minimum) else { throw Failure("SubnetMin is not in the range of the Network") }
            } else {
                // The first subnet would hold the network's own address.
                subnetMin = IPv4Address(bits: network.address.bits &+ size)
            }
            if let maximum = subnetMax {
                guard network.contains(maximum) else { throw Failure("SubnetMax is not in the range of the Network") }
            } else {
                subnetMax = IPv4Address(bits: network.lastAddress.bits &+ 1 &- size)
            }
            let mask = UInt32.max << UInt32(32 - subnetLength)
            if subnetMin!.bits & mask != subnetMin!.bits { throw Failure("SubnetMin is not on a SubnetLen boundary: \(subnetMin!)") }
            if subnetMax!.bits & mask != subnetMax!.bits { throw Failure("SubnetMax is not on a SubnetLen boundary: \(subnetMax!)") }
            if subnetMin! > subnetMax! { throw Failure("SubnetMin (\(subnetMin!)) is above SubnetMax (\(subnetMax!)): no subnet to lease") }
        }
        if enableIPv6 {
            guard let network = ipv6Network else { throw Failure("please define a correct IPv6Network parameter in the flannel config") }
            if ipv6SubnetLength > 0 {
                if ipv6SubnetLength > 126 { throw Failure("SubnetLen must be less than /127") }
                if ipv6SubnetLength < network.prefixLength + 2 { throw Failure("network must be able to accommodate at least four subnets") }
            } else if network.prefixLength > 124 {
                throw Failure("IPv6Network is too small. Minimum useful network prefix is /124")
            } else {
                ipv6SubnetLength = network.prefixLength <= 62 ? 64 : network.prefixLength + 2
            }
            let size = UInt128(1) << UInt128(128 - ipv6SubnetLength)
            if let minimum = ipv6SubnetMin {
                guard network.contains(minimum) else { throw Failure("IPv6SubnetMin is not in the range of the IPv6Network") }
            } else {
                ipv6SubnetMin = IPv6Address(bits: network.address.bits &+ size)
            }
            if let maximum = ipv6SubnetMax {
                guard network.contains(maximum) else { throw Failure("IPv6SubnetMax is not in the range of the IPv6Network") }
            } else {
                ipv6SubnetMax = IPv6Address(bits: network.lastAddress.bits &+ 1 &- size)
            }
            let mask = UInt128.max << UInt128(128 - ipv6SubnetLength)
            if ipv6SubnetMin!.bits & mask != ipv6SubnetMin!.bits {
                throw Failure("IPv6SubnetMin is not on a SubnetLen boundary: \(ipv6SubnetMin!)")
            }
            if ipv6SubnetMax!.bits & mask != ipv6SubnetMax!.bits {
                throw Failure("IPv6SubnetMax is not on a SubnetLen boundary: \(ipv6SubnetMax!)")
            }
        }
    }
}

/// A JSON document as Foundation's decoder reads it, booleans kept apart from numbers.
enum JSONValue: Decodable, Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// Go's name for the value's kind in unmarshal errors.
    var goType: String {
        switch self {
        case .null: "null"
        case .bool: "bool"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}
