/// The `Backend` object of the network configuration, read and checked for one of the
/// backends `coreos flannel` runs.
public struct BackendSettings: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case vxlan
        case hostGateway = "host-gw"
        case udp
    }

    public var kind: Kind
    /// vxlan: the VXLAN network identifier (`VNI`, default 1); the device is `flannel.<VNI>`.
    public var vni: UInt32 = 1
    /// vxlan: the UDP port (`Port`, 0 = the kernel's 8472); udp: the port (default 8285).
    public var port: UInt16
    /// vxlan: route directly to peers on the same subnet as the external interface.
    public var directRouting = false
    /// `MTU`: overrides the one derived from the external interface.
    public var mtu: Int?

    /// Reads `config.backend`; unknown keys are ignored, as flannel does.
    public init(_ config: FlannelConfig) throws(FlannelConfig.Failure) {
        guard let kind = Kind(rawValue: config.backendType) else {
            let known = Kind.allCases.map(\.rawValue).joined(separator: ", ")
            throw FlannelConfig.Failure("unknown backend type: \(config.backendType) (this flanneld runs \(known))")
        }
        self.kind = kind
        func number(_ name: String, _ field: String, in range: ClosedRange<Int>) throws(FlannelConfig.Failure) -> Int? {
            switch config.backend[name] {
            case nil: return nil
            case .number(let value)? where value == value.rounded() && range.contains(Int(exactly: value) ?? -1):
                return Int(value)
            case let other?:
                throw FlannelConfig.Failure("Backend.\(field) must be a whole number in \(range.lowerBound)…\(range.upperBound), not \(other)")
            }
        }
        port = kind == .udp ? 8285 : 8472
        if let value = try number("port", "Port", in: 0...65535), value != 0 { port = UInt16(value) }
        if let value = try number("vni", "VNI", in: 0...16_777_215) { vni = UInt32(value) }
        if let value = try number("mtu", "MTU", in: 68...65535) { mtu = value }
        switch config.backend["directrouting"] {
        case nil: break
        case .bool(let value)?: directRouting = value
        case let other?: throw FlannelConfig.Failure("Backend.DirectRouting must be true or false, not \(other)")
        }
    }

    /// Bytes the encapsulation adds to each packet: the external MTU minus this is the
    /// overlay's (`FLANNEL_MTU`).
    public var overhead: Int {
        switch kind {
        case .vxlan: 50  // outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
        case .hostGateway: 0
        case .udp: 28  // outer IPv4 20 + UDP 8
        }
    }
}
