#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A failed rtnetlink request: what was asked, and the kernel's errno.
public struct NetlinkError: Error, Sendable, Hashable, CustomStringConvertible {
    public var operation: String
    public var errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        "netlink: \(operation): \(String(cString: strerror(errno)))"
    }

    /// EEXIST: the object is already there (for requests made without replace).
    public var alreadyExists: Bool { errno == EEXIST }
    /// ENOENT/ESRCH/ENODEV: the object is not there.
    public var notFound: Bool { errno == ENOENT || errno == ESRCH || errno == ENODEV }
}

/// A network interface as `ip -d link` shows it.
public struct NetworkLink: Sendable, Hashable {
    public var index: Int32
    public var name: String
    public var flags: UInt32
    public var mtu: Int
    public var hardwareAddress: MACAddress?
    /// `vxlan`, `bridge`, `veth`, `tun`…; nil for physical devices and loopback.
    public var kind: String?
    /// Present when `kind` is `vxlan`.
    public var vxlan: VXLANSettings?

    public var isUp: Bool { flags & RTNL.interfaceUp != 0 }
}

/// What defines a vxlan device; flannel's `flannel.<VNI>` is `vni` on `port`, `local` the
/// host's public address on the `underlay` device, learning off.
public struct VXLANSettings: Sendable, Hashable {
    public var vni: UInt32
    public var port: UInt16
    public var local: IPv4Address?
    public var underlay: Int32?
    public var learning: Bool

    public init(vni: UInt32, port: UInt16, local: IPv4Address?, underlay: Int32?, learning: Bool = false) {
        self.vni = vni
        self.port = port
        self.local = local
        self.underlay = underlay
        self.learning = learning
    }
}

/// An IPv4 address on an interface.
public struct InterfaceAddress: Sendable, Hashable {
    public var index: Int32
    public var address: IPv4Address
    public var prefixLength: Int

    public init(index: Int32, address: IPv4Address, prefixLength: Int) {
        self.index = index
        self.address = address
        self.prefixLength = prefixLength
    }
}

/// An IPv4 route of the main table.
public struct Route: Sendable, Hashable, CustomStringConvertible {
    public var destination: IPv4Network
    public var gateway: IPv4Address?
    public var outputInterface: Int32?
    /// The gateway is reachable on the device although no address there covers it.
    public var onlink: Bool
    public var scope: UInt8

    public init(destination: IPv4Network, gateway: IPv4Address? = nil, outputInterface: Int32? = nil, onlink: Bool = false) {
        self.destination = destination
        self.gateway = gateway
        self.outputInterface = outputInterface
        self.onlink = onlink
        self.scope = gateway == nil ? RTNL.scopeLink : RTNL.scopeUniverse
    }

    public var description: String {
        var text = destination.description
        if let gateway { text += " via \(gateway)" }
        if let outputInterface { text += " dev #\(outputInterface)" }
        if onlink { text += " onlink" }
        return text
    }
}

/// An IPv4 neighbour (ARP) entry.
public struct Neighbour: Sendable, Hashable {
    public var index: Int32
    public var address: IPv4Address
    public var hardwareAddress: MACAddress?
    public var state: UInt16

    public var isPermanent: Bool { state & RTNL.statePermanent != 0 }
}

/// A forwarding-database entry of a vxlan device: frames for `hardwareAddress` go to the
/// VTEP at `destination`.
public struct ForwardingEntry: Sendable, Hashable {
    public var index: Int32
    public var hardwareAddress: MACAddress
    public var destination: IPv4Address?
    public var state: UInt16
}

/// rtnetlink from Swift: links, addresses, routes, neighbours and FDB entries, the calls
/// `ip`, `ip route`, `ip neigh` and `bridge fdb` make. One request at a time, each
/// acknowledged before the next; not for concurrent use (confine it to one actor/thread).
public final class RouteNetlink {
    private let descriptor: Int32
    private var sequence: UInt32 = 0
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)

    public init() throws(NetlinkError) {
        let socketType = Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let descriptor = socket(AF_NETLINK, socketType, 0)  // NETLINK_ROUTE = 0
        guard descriptor >= 0 else { throw NetlinkError("open a route netlink socket", errno: errno) }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    // MARK: Links

    public func links() throws(NetlinkError) -> [NetworkLink] {
        let request = NetlinkRequest(type: RTNL.getLink, flags: RTNL.dump, fixedHeader: Self.linkHeader(index: 0))
        return try exchange(request, "list links").compactMap { reply in
            reply.type == RTNL.newLink ? Self.parseLink(reply) : nil
        }
    }

    public func link(named name: String) throws(NetlinkError) -> NetworkLink? {
        var request = NetlinkRequest(type: RTNL.getLink, flags: 0, fixedHeader: Self.linkHeader(index: 0))
        request.add(RTNL.linkName, string: name)
        do {
            return try exchange(request, "get link \(name)").first.flatMap(Self.parseLink)
        } catch let error where error.notFound {
            return nil
        }
    }

    public func link(index: Int32) throws(NetlinkError) -> NetworkLink? {
        let request = NetlinkRequest(type: RTNL.getLink, flags: 0, fixedHeader: Self.linkHeader(index: index))
        do {
            return try exchange(request, "get link #\(index)").first.flatMap(Self.parseLink)
        } catch let error where error.notFound {
            return nil
        }
    }

    /// `ip link add NAME type vxlan id VNI [local IP] [dev UNDERLAY] dstport PORT [no]learning`.
    public func createVXLAN(named name: String, _ settings: VXLANSettings, mtu: Int?, hardwareAddress: MACAddress?)
        throws(NetlinkError)
    {
        var request = NetlinkRequest(
            type: RTNL.newLink, flags: RTNL.create | RTNL.exclusive | RTNL.acknowledge,
            fixedHeader: Self.linkHeader(index: 0))
        request.add(RTNL.linkName, string: name)
        if let mtu { request.add(RTNL.linkMTU, uint32: UInt32(mtu)) }
        if let hardwareAddress { request.add(RTNL.linkAddress, hardwareAddress.bytes) }
        request.nest(RTNL.linkInfo) { info in
            info.add(RTNL.infoKind, string: "vxlan")
            info.nest(RTNL.infoData) { data in
                data.add(RTNL.vxlanID, uint32: settings.vni)
                if let local = settings.local { data.add(RTNL.vxlanLocal, local.octets) }
                if let underlay = settings.underlay { data.add(RTNL.vxlanLink, uint32: UInt32(bitPattern: underlay)) }
                data.add(RTNL.vxlanLearning, uint8: settings.learning ? 1 : 0)
                data.add(RTNL.vxlanPort, NetlinkRequest.encode(settings.port.bigEndian))
            }
        }
        _ = try exchange(request, "create vxlan device \(name)")
    }

    /// `ip link set dev #INDEX up|down [mtu MTU]`.
    public func setLink(index: Int32, up: Bool? = nil, mtu: Int? = nil) throws(NetlinkError) {
        let flags: UInt32 = up == true ? RTNL.interfaceUp : 0
        let change: UInt32 = up == nil ? 0 : RTNL.interfaceUp
        var request = NetlinkRequest(
            type: RTNL.newLink, flags: RTNL.acknowledge,
            fixedHeader: Self.linkHeader(index: index, flags: flags, change: change))
        if let mtu { request.add(RTNL.linkMTU, uint32: UInt32(mtu)) }
        _ = try exchange(request, "set link #\(index)")
    }

    public func deleteLink(index: Int32) throws(NetlinkError) {
        let request = NetlinkRequest(type: RTNL.deleteLink, flags: RTNL.acknowledge, fixedHeader: Self.linkHeader(index: index))
        _ = try exchange(request, "delete link #\(index)")
    }

    // MARK: Addresses

    public func addresses() throws(NetlinkError) -> [InterfaceAddress] {
        let request = NetlinkRequest(type: RTNL.getAddress, flags: RTNL.dump, fixedHeader: Self.addressHeader(index: 0, prefixLength: 0))
        return try exchange(request, "list addresses").compactMap { reply -> InterfaceAddress? in
            guard reply.type == RTNL.newAddress, reply.payload.count >= 8, reply.payload.first == RTNL.inet else { return nil }
            let attributes = reply.attributes(after: 8)
            guard let bytes = attributes[RTNL.addressLocal] ?? attributes[RTNL.addressAddress],
                let address = Self.ipv4(bytes)
            else { return nil }
            return InterfaceAddress(
                index: NetlinkReply.read(Int32.self, reply.payload, reply.payload.startIndex + 4), address: address,
                prefixLength: Int(reply.payload[reply.payload.startIndex + 1]))
        }
    }

    /// `ip addr replace ADDRESS/PREFIX dev #INDEX`.
    public func replaceAddress(_ address: InterfaceAddress) throws(NetlinkError) {
        var request = NetlinkRequest(
            type: RTNL.newAddress, flags: RTNL.create | RTNL.replace | RTNL.acknowledge,
            fixedHeader: Self.addressHeader(index: address.index, prefixLength: address.prefixLength))
        request.add(RTNL.addressLocal, address.address.octets)
        request.add(RTNL.addressAddress, address.address.octets)
        _ = try exchange(request, "add address \(address.address)/\(address.prefixLength) to link #\(address.index)")
    }

    public func deleteAddress(_ address: InterfaceAddress) throws(NetlinkError) {
        var request = NetlinkRequest(
            type: RTNL.deleteAddress, flags: RTNL.acknowledge,
            fixedHeader: Self.addressHeader(index: address.index, prefixLength: address.prefixLength))
        request.add(RTNL.addressLocal, address.address.octets)
        _ = try exchange(request, "delete address \(address.address)/\(address.prefixLength) from link #\(address.index)")
    }

    // MARK: Routes

    /// The IPv4 routes of the main table.
    public func routes() throws(NetlinkError) -> [Route] {
        let request = NetlinkRequest(type: RTNL.getRoute, flags: RTNL.dump, fixedHeader: Self.routeHeader(prefixLength: 0))
        return try exchange(request, "list routes").compactMap { reply -> Route? in
            guard reply.type == RTNL.newRoute, reply.payload.count >= 12 else { return nil }
            let start = reply.payload.startIndex
            let attributes = reply.attributes(after: 12)
            var table = UInt32(reply.payload[start + 4])
            if let explicit = attributes[RTNL.routeTable] { table = NetlinkReply.read(UInt32.self, explicit, explicit.startIndex) }
            guard reply.payload[start] == RTNL.inet, table == UInt32(RTNL.tableMain),
                reply.payload[start + 7] == RTNL.typeUnicast
            else { return nil }
            let destinationAddress = attributes[RTNL.routeDestination].flatMap(Self.ipv4) ?? IPv4Address(bits: 0)
            guard let destination = try? IPv4Network(address: destinationAddress, prefixLength: Int(reply.payload[start + 1]))
            else { return nil }
            var route = Route(
                destination: destination, gateway: attributes[RTNL.routeGateway].flatMap(Self.ipv4),
                outputInterface: attributes[RTNL.routeOutputInterface].map {
                    NetlinkReply.read(Int32.self, $0, $0.startIndex)
                },
                onlink: NetlinkReply.read(UInt32.self, reply.payload, start + 8) & RTNL.flagOnlink != 0)
            route.scope = reply.payload[start + 6]
            return route
        }
    }

    /// `ip route replace DESTINATION [via GATEWAY] [dev #INDEX] [onlink]`.
    public func replaceRoute(_ route: Route) throws(NetlinkError) {
        let request = Self.routeRequest(route, type: RTNL.newRoute, flags: RTNL.create | RTNL.replace | RTNL.acknowledge)
        _ = try exchange(request, "replace route \(route)")
    }

    public func deleteRoute(_ route: Route) throws(NetlinkError) {
        let request = Self.routeRequest(route, type: RTNL.deleteRoute, flags: RTNL.acknowledge)
        _ = try exchange(request, "delete route \(route)")
    }

    /// `ip route get DESTINATION`: the interface and source address the kernel would use.
    public func routeGet(_ destination: IPv4Address) throws(NetlinkError) -> (index: Int32, source: IPv4Address?) {
        var request = NetlinkRequest(type: RTNL.getRoute, flags: 0, fixedHeader: Self.routeHeader(prefixLength: 32))
        request.add(RTNL.routeDestination, destination.octets)
        for reply in try exchange(request, "route get \(destination)") where reply.type == RTNL.newRoute {
            let attributes = reply.attributes(after: 12)
            if let index = attributes[RTNL.routeOutputInterface] {
                return (
                    NetlinkReply.read(Int32.self, index, index.startIndex),
                    attributes[RTNL.routePreferredSource].flatMap(Self.ipv4)
                )
            }
        }
        throw NetlinkError("route get \(destination)", errno: ENETUNREACH)
    }

    // MARK: Neighbours and forwarding entries

    /// IPv4 neighbours of the interface.
    public func neighbours(index: Int32) throws(NetlinkError) -> [Neighbour] {
        let request = NetlinkRequest(
            type: RTNL.getNeighbour, flags: RTNL.dump,
            fixedHeader: Self.neighbourHeader(family: RTNL.inet, index: index, state: 0, flags: 0))
        return try exchange(request, "list neighbours").compactMap { reply -> Neighbour? in
            guard reply.type == RTNL.newNeighbour, reply.payload.count >= 12 else { return nil }
            let start = reply.payload.startIndex
            let attributes = reply.attributes(after: 12)
            guard reply.payload[start] == RTNL.inet,
                NetlinkReply.read(Int32.self, reply.payload, start + 4) == index,
                let address = attributes[RTNL.neighbourDestination].flatMap(Self.ipv4)
            else { return nil }
            return Neighbour(
                index: index, address: address,
                hardwareAddress: attributes[RTNL.neighbourHardwareAddress].flatMap { try? MACAddress(bytes: Array($0)) },
                state: NetlinkReply.read(UInt16.self, reply.payload, start + 8))
        }
    }

    /// `ip neigh replace ADDRESS lladdr MAC dev #INDEX nud permanent`.
    public func replaceNeighbour(index: Int32, address: IPv4Address, hardwareAddress: MACAddress) throws(NetlinkError) {
        var request = NetlinkRequest(
            type: RTNL.newNeighbour, flags: RTNL.create | RTNL.replace | RTNL.acknowledge,
            fixedHeader: Self.neighbourHeader(family: RTNL.inet, index: index, state: RTNL.statePermanent, flags: 0))
        request.add(RTNL.neighbourDestination, address.octets)
        request.add(RTNL.neighbourHardwareAddress, hardwareAddress.bytes)
        _ = try exchange(request, "replace neighbour \(address) on link #\(index)")
    }

    public func deleteNeighbour(index: Int32, address: IPv4Address) throws(NetlinkError) {
        var request = NetlinkRequest(
            type: RTNL.deleteNeighbour, flags: RTNL.acknowledge,
            fixedHeader: Self.neighbourHeader(family: RTNL.inet, index: index, state: 0, flags: 0))
        request.add(RTNL.neighbourDestination, address.octets)
        _ = try exchange(request, "delete neighbour \(address) on link #\(index)")
    }

    /// The device's own (`self`) forwarding entries.
    public func forwardingEntries(index: Int32) throws(NetlinkError) -> [ForwardingEntry] {
        let request = NetlinkRequest(
            type: RTNL.getNeighbour, flags: RTNL.dump,
            fixedHeader: Self.neighbourHeader(family: RTNL.bridge, index: 0, state: 0, flags: 0))
        return try exchange(request, "list forwarding entries").compactMap { reply -> ForwardingEntry? in
            guard reply.type == RTNL.newNeighbour, reply.payload.count >= 12 else { return nil }
            let start = reply.payload.startIndex
            let attributes = reply.attributes(after: 12)
            guard reply.payload[start] == RTNL.bridge,
                NetlinkReply.read(Int32.self, reply.payload, start + 4) == index,
                let mac = attributes[RTNL.neighbourHardwareAddress].flatMap({ try? MACAddress(bytes: Array($0)) })
            else { return nil }
            return ForwardingEntry(
                index: index, hardwareAddress: mac, destination: attributes[RTNL.neighbourDestination].flatMap(Self.ipv4),
                state: NetlinkReply.read(UInt16.self, reply.payload, start + 8))
        }
    }

    /// `bridge fdb replace MAC dev #INDEX dst DESTINATION self permanent`.
    public func replaceForwardingEntry(index: Int32, hardwareAddress: MACAddress, destination: IPv4Address) throws(NetlinkError) {
        var request = NetlinkRequest(
            type: RTNL.newNeighbour, flags: RTNL.create | RTNL.replace | RTNL.acknowledge,
            fixedHeader: Self.neighbourHeader(
                family: RTNL.bridge, index: index, state: RTNL.statePermanent, flags: RTNL.flagSelf))
        request.add(RTNL.neighbourHardwareAddress, hardwareAddress.bytes)
        request.add(RTNL.neighbourDestination, destination.octets)
        _ = try exchange(request, "replace forwarding entry \(hardwareAddress) on link #\(index)")
    }

    public func deleteForwardingEntry(index: Int32, hardwareAddress: MACAddress, destination: IPv4Address?) throws(NetlinkError) {
        var request = NetlinkRequest(
            type: RTNL.deleteNeighbour, flags: RTNL.acknowledge,
            fixedHeader: Self.neighbourHeader(family: RTNL.bridge, index: index, state: 0, flags: RTNL.flagSelf))
        request.add(RTNL.neighbourHardwareAddress, hardwareAddress.bytes)
        if let destination { request.add(RTNL.neighbourDestination, destination.octets) }
        _ = try exchange(request, "delete forwarding entry \(hardwareAddress) on link #\(index)")
    }

    // MARK: Exchange

    /// Sends one request and collects its replies: every message of a dump, the reply of a
    /// get, or nothing for an acknowledged change. A kernel error becomes ``NetlinkError``.
    private func exchange(_ request: NetlinkRequest, _ operation: String) throws(NetlinkError) -> [NetlinkReply] {
        sequence &+= 1
        let message = request.message(sequence: sequence)
        let sent = message.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        guard sent == message.count else { throw NetlinkError(operation, errno: sent < 0 ? errno : EMSGSIZE) }
        var replies: [NetlinkReply] = []
        while true {
            let received = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if received < 0 {
                if errno == EINTR { continue }
                throw NetlinkError(operation, errno: errno)
            }
            guard let messages = NetlinkReply.split(Array(buffer[0..<received])[...]) else {
                throw NetlinkError(operation + " (malformed reply)", errno: EPROTO)
            }
            for reply in messages where reply.sequence == sequence {
                switch reply.type {
                case RTNL.error:
                    let code = NetlinkReply.read(Int32.self, reply.payload, reply.payload.startIndex)
                    if code != 0 { throw NetlinkError(operation, errno: -code) }
                    return replies
                case RTNL.done:
                    return replies
                default:
                    replies.append(reply)
                    if reply.flags & RTNL.multi == 0 { return replies }
                }
            }
        }
    }

    // MARK: Fixed headers and parsing

    static func linkHeader(index: Int32, flags: UInt32 = 0, change: UInt32 = 0) -> [UInt8] {
        [RTNL.unspecified, 0, 0, 0] + NetlinkRequest.encode(index) + NetlinkRequest.encode(flags)
            + NetlinkRequest.encode(change)
    }

    static func addressHeader(index: Int32, prefixLength: Int) -> [UInt8] {
        [RTNL.inet, UInt8(prefixLength), 0, 0] + NetlinkRequest.encode(UInt32(bitPattern: index))
    }

    static func routeHeader(prefixLength: Int, scope: UInt8 = RTNL.scopeUniverse, flags: UInt32 = 0) -> [UInt8] {
        [RTNL.inet, UInt8(prefixLength), 0, 0, RTNL.tableMain, RTNL.protocolBoot, scope, RTNL.typeUnicast]
            + NetlinkRequest.encode(flags)
    }

    static func neighbourHeader(family: UInt8, index: Int32, state: UInt16, flags: UInt8) -> [UInt8] {
        [family, 0, 0, 0] + NetlinkRequest.encode(index) + NetlinkRequest.encode(state) + [flags, 0]
    }

    static func routeRequest(_ route: Route, type: UInt16, flags: UInt16) -> NetlinkRequest {
        var request = NetlinkRequest(
            type: type, flags: flags,
            fixedHeader: routeHeader(
                prefixLength: route.destination.prefixLength, scope: route.scope,
                flags: route.onlink ? RTNL.flagOnlink : 0))
        request.add(RTNL.routeDestination, route.destination.address.octets)
        if let gateway = route.gateway { request.add(RTNL.routeGateway, gateway.octets) }
        if let index = route.outputInterface { request.add(RTNL.routeOutputInterface, uint32: UInt32(bitPattern: index)) }
        return request
    }

    static func parseLink(_ reply: NetlinkReply) -> NetworkLink? {
        guard reply.payload.count >= 16 else { return nil }
        let start = reply.payload.startIndex
        let attributes = reply.attributes(after: 16)
        guard let nameBytes = attributes[RTNL.linkName] else { return nil }
        var link = NetworkLink(
            index: NetlinkReply.read(Int32.self, reply.payload, start + 4),
            name: String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self),
            flags: NetlinkReply.read(UInt32.self, reply.payload, start + 8),
            mtu: Int(attributes[RTNL.linkMTU].map { NetlinkReply.read(UInt32.self, $0, $0.startIndex) } ?? 0),
            hardwareAddress: attributes[RTNL.linkAddress].flatMap { try? MACAddress(bytes: Array($0)) })
        if let info = attributes[RTNL.linkInfo] {
            let infoAttributes = NetlinkReply.attributes(info)
            link.kind = infoAttributes[RTNL.infoKind].map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if link.kind == "vxlan", let data = infoAttributes[RTNL.infoData] {
                let vxlan = NetlinkReply.attributes(data)
                let port = vxlan[RTNL.vxlanPort].map { UInt16(bigEndian: NetlinkReply.read(UInt16.self, $0, $0.startIndex)) }
                link.vxlan = VXLANSettings(
                    vni: vxlan[RTNL.vxlanID].map { NetlinkReply.read(UInt32.self, $0, $0.startIndex) } ?? 0,
                    port: port ?? 0, local: vxlan[RTNL.vxlanLocal].flatMap(ipv4),
                    underlay: vxlan[RTNL.vxlanLink].map { NetlinkReply.read(Int32.self, $0, $0.startIndex) },
                    learning: vxlan[RTNL.vxlanLearning].map { $0.first != 0 } ?? true)
            }
        }
        return link
    }

    static func ipv4(_ bytes: ArraySlice<UInt8>) -> IPv4Address? {
        guard bytes.count == 4 else { return nil }
        let octets = Array(bytes)
        return IPv4Address(octets[0], octets[1], octets[2], octets[3])
    }
}
