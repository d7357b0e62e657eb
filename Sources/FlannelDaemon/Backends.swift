import Flannel
public import Net

/// The interface flannel sends encapsulated traffic from, and the address it publishes.
public struct ExternalInterface: Sendable, Hashable {
    public var link: NetworkLink
    /// The interface's own address and prefix (for DirectRouting's same-subnet test).
    public var address: InterfaceAddress
    /// `PublicIP` in leases: the interface's address, or `--public-ip`.
    public var publicIP: IPv4Address

    public init(link: NetworkLink, address: InterfaceAddress, publicIP: IPv4Address) {
        self.link = link
        self.address = address
        self.publicIP = publicIP
    }

    /// Whether `peer` is on the interface's own subnet (reachable without a router).
    func sharesSubnet(with peer: IPv4Address) -> Bool {
        guard let subnet = try? IPv4Network(address: IPv4Address(bits: address.address.bits), prefixLength: address.prefixLength)
        else { return false }
        let mask = subnet.netmask.bits
        return peer.bits & mask == address.address.bits & mask
    }
}

/// What a backend changed in the kernel in one reconciliation.
public struct ReconcileResult: Sendable, Hashable {
    public var added = 0
    public var removed = 0
    /// Entries the kernel refused or that cannot be made (one peer's bad lease must not
    /// cut the others off): logged, tried again at the next reconciliation.
    public var failures: [String] = []

    mutating func attempt(_ body: () throws(NetlinkError) -> Void) -> Bool {
        do {
            try body()
            return true
        } catch {
            failures.append(error.description)
            return false
        }
    }
}

/// A flannel backend: prepares its device before the lease is taken (the lease carries
/// its data), configures it for the host's subnet, then keeps the kernel's entries equal
/// to what the other hosts' leases ask for.
protocol NetworkBackend: AnyObject {
    var settings: BackendSettings { get }
    /// `BackendData` of this host's lease; nil for none.
    var backendData: [String: SubnetLeaseAttributes.BackendDatum]? { get }
    /// What tells this host apart from another with the same public IP (vxlan: its VTEP MAC).
    var hostIdentity: String? { get }
    /// The overlay MTU (`FLANNEL_MTU`).
    var mtu: Int { get }
    func configure(subnet: IPv4Network, network: IPv4Network) throws(NetlinkError)
    /// Makes the kernel match `leases` (every lease, this host's included).
    func reconcile(_ leases: [SubnetLeaseRecord]) throws(NetlinkError) -> ReconcileResult
}

/// Diffing helpers shared by the backends: routes inside the flannel network that this
/// backend owns, compared with the ones it wants.
enum RouteReconciler {
    /// Replaces the wanted routes that differ and deletes owned routes not wanted.
    static func apply(
        _ netlink: RouteNetlink, wanted: [Route], owned: (Route) -> Bool
    ) throws(NetlinkError) -> ReconcileResult {
        var result = ReconcileResult()
        let present = try netlink.routes()
        let presentSet = Set(present.map(key))
        let wantedKeys = Set(wanted.map(key))
        for route in wanted where !presentSet.contains(key(route)) {
            if result.attempt({ () throws(NetlinkError) in try netlink.replaceRoute(route) }) { result.added += 1 }
        }
        for route in present where owned(route) && !wantedKeys.contains(key(route)) {
            do {
                try netlink.deleteRoute(route)
                result.removed += 1
            } catch let error where error.notFound {
            } catch {
                result.failures.append(error.description)
            }
        }
        return result
    }

    private static func key(_ route: Route) -> String {
        "\(route.destination) \(route.gateway.map(\.description) ?? "-") \(route.outputInterface ?? 0) \(route.onlink)"
    }
}

/// host-gw: a route to each peer's subnet via the peer's public IP; needs layer-2
/// adjacency, costs nothing per packet.
final class HostGatewayBackend: NetworkBackend {
    let settings: BackendSettings
    let external: ExternalInterface
    let netlink: RouteNetlink
    var network: IPv4Network?
    var ownSubnet: IPv4Network?

    init(settings: BackendSettings, external: ExternalInterface, netlink: RouteNetlink) {
        self.settings = settings
        self.external = external
        self.netlink = netlink
    }

    var backendData: [String: SubnetLeaseAttributes.BackendDatum]? { nil }
    var hostIdentity: String? { nil }
    var mtu: Int { settings.mtu ?? external.link.mtu }

    func configure(subnet: IPv4Network, network: IPv4Network) throws(NetlinkError) {
        self.network = network
        ownSubnet = subnet
    }

    func reconcile(_ leases: [SubnetLeaseRecord]) throws(NetlinkError) -> ReconcileResult {
        guard let network, let ownSubnet else { return ReconcileResult() }
        var unreachable: [String] = []
        let wanted = leases.compactMap { lease -> Route? in
            guard lease.attributes.backendType == "host-gw", let subnet = lease.key.ipv4, subnet != ownSubnet,
                let gateway = try? IPv4Address(parsing: lease.attributes.publicIP), gateway != external.publicIP
            else { return nil }
            guard external.sharesSubnet(with: gateway) else {
                unreachable.append(
                    "host-gw: \(lease.key) via \(gateway) skipped: not on \(external.link.name)'s subnet (host-gw needs the hosts on one layer-2 segment)")
                return nil
            }
            return Route(destination: subnet, gateway: gateway, outputInterface: external.link.index)
        }
        let index = external.link.index
        var result = try RouteReconciler.apply(netlink, wanted: wanted) { route in
            route.outputInterface == index && route.gateway != nil && network.contains(route.destination)
                && route.destination != ownSubnet
        }
        result.failures += unreachable
        return result
    }
}

/// vxlan: kernel encapsulation through `flannel.<VNI>`, with one route, one permanent
/// neighbour and one permanent FDB entry per peer; no learning, no miss handling, so the
/// data path never waits for flanneld and survives its restarts.
final class VXLANBackend: NetworkBackend {
    let settings: BackendSettings
    let external: ExternalInterface
    let netlink: RouteNetlink
    let device: NetworkLink
    var network: IPv4Network?
    var ownSubnet: IPv4Network?

    var deviceName: String { "flannel.\(settings.vni)" }

    /// Finds or creates the device. An existing device with the same settings is kept (with
    /// its MAC, so peers' entries stay valid); one that differs is replaced.
    init(settings: BackendSettings, external: ExternalInterface, netlink: RouteNetlink, hardwareAddress: MACAddress)
        throws(NetlinkError)
    {
        self.settings = settings
        self.external = external
        self.netlink = netlink
        let name = "flannel.\(settings.vni)"
        let wanted = VXLANSettings(
            vni: settings.vni, port: settings.port, local: external.address.address,
            underlay: external.link.index, learning: false)
        let mtu = settings.mtu ?? (external.link.mtu - settings.overhead)
        if let existing = try netlink.link(named: name) {
            if existing.kind == "vxlan", existing.vxlan == wanted {
                device = existing
                if existing.mtu != mtu { try netlink.setLink(index: existing.index, mtu: mtu) }
                return
            }
            try netlink.deleteLink(index: existing.index)
        }
        try netlink.createVXLAN(named: name, wanted, mtu: mtu, hardwareAddress: hardwareAddress)
        guard let created = try netlink.link(named: name) else { throw NetlinkError("find \(name) after creating it", errno: 19) }
        device = created
    }

    var hardwareAddress: String { device.hardwareAddress?.description ?? "" }
    var backendData: [String: SubnetLeaseAttributes.BackendDatum]? {
        ["VNI": .number(Int(settings.vni)), "VtepMAC": .string(hardwareAddress)]
    }
    var hostIdentity: String? { hardwareAddress }
    var mtu: Int { settings.mtu ?? (external.link.mtu - settings.overhead) }

    /// Gives the device `<subnet>/32` (and nothing else) and brings it up.
    func configure(subnet: IPv4Network, network: IPv4Network) throws(NetlinkError) {
        self.network = network
        ownSubnet = subnet
        let own = InterfaceAddress(index: device.index, address: subnet.address, prefixLength: 32)
        for address in try netlink.addresses() where address.index == device.index && address != own {
            try netlink.deleteAddress(address)
        }
        try netlink.replaceAddress(own)
        try netlink.setLink(index: device.index, up: true)
    }

    func reconcile(_ leases: [SubnetLeaseRecord]) throws(NetlinkError) -> ReconcileResult {
        guard let network, let ownSubnet else { return ReconcileResult() }
        var routes: [Route] = []
        var neighbours: [IPv4Address: MACAddress] = [:]
        var forwarding: [MACAddress: IPv4Address] = [:]
        for lease in leases {
            guard lease.attributes.backendType == "vxlan", let subnet = lease.key.ipv4, subnet != ownSubnet,
                let peer = try? IPv4Address(parsing: lease.attributes.publicIP),
                let mac = lease.attributes.vtepMAC.flatMap({ try? MACAddress(parsing: $0) })
            else { continue }
            if settings.directRouting && external.sharesSubnet(with: peer) {
                routes.append(Route(destination: subnet, gateway: peer, outputInterface: external.link.index))
            } else {
                routes.append(Route(destination: subnet, gateway: subnet.address, outputInterface: device.index, onlink: true))
                neighbours[subnet.address] = mac
                forwarding[mac] = peer
            }
        }
        var result = ReconcileResult()
        // Neighbour and FDB entries before the routes that use them.
        let presentNeighbours = try netlink.neighbours(index: device.index)
        for (address, mac) in neighbours
        where !presentNeighbours.contains(where: { $0.address == address && $0.hardwareAddress == mac && $0.isPermanent }) {
            if result.attempt({ () throws(NetlinkError) in
                try netlink.replaceNeighbour(index: device.index, address: address, hardwareAddress: mac)
            }) { result.added += 1 }
        }
        let presentForwarding = try netlink.forwardingEntries(index: device.index)
        for (mac, peer) in forwarding
        where !presentForwarding.contains(where: { $0.hardwareAddress == mac && $0.destination == peer }) {
            if result.attempt({ () throws(NetlinkError) in
                try netlink.replaceForwardingEntry(index: device.index, hardwareAddress: mac, destination: peer)
            }) { result.added += 1 }
        }
        let index = device.index
        let externalIndex = external.link.index
        let routed = try RouteReconciler.apply(netlink, wanted: routes) { route in
            guard network.contains(route.destination), route.destination != ownSubnet else { return false }
            return route.outputInterface == index || (route.outputInterface == externalIndex && route.gateway != nil)
        }
        result.added += routed.added
        result.removed += routed.removed
        result.failures += routed.failures
        // Entries of vanished peers go after their routes.
        for neighbour in presentNeighbours where neighbour.isPermanent && neighbours[neighbour.address] != neighbour.hardwareAddress {
            do {
                try netlink.deleteNeighbour(index: device.index, address: neighbour.address)
                result.removed += 1
            } catch let error where error.notFound {}
        }
        for entry in presentForwarding where entry.destination != nil && forwarding[entry.hardwareAddress] != entry.destination {
            do {
                try netlink.deleteForwardingEntry(index: device.index, hardwareAddress: entry.hardwareAddress, destination: entry.destination)
                result.removed += 1
            } catch let error where error.notFound {}
        }
        return result
    }
}
