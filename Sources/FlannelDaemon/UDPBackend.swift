import Flannel
import Net
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import Foundation  // Thread: the forwarders block in read/recv, off the concurrency pool

/// udp: a TUN device `flannel0` holding the whole network, and a userspace forwarder that
/// carries each IP packet in a UDP datagram to the host whose subnet holds its destination
/// (port 8285, the packet as it is, no header: flannel's wire format). For hosts without
/// vxlan; the kernel backends are many times faster.
final class UDPBackend: NetworkBackend {
    let settings: BackendSettings
    let external: ExternalInterface
    let netlink: RouteNetlink
    let device: TUNDevice
    let forwarder: UDPForwarder
    var ownSubnet: IPv4Network?

    init(settings: BackendSettings, external: ExternalInterface, netlink: RouteNetlink) throws(NetlinkError) {
        self.settings = settings
        self.external = external
        self.netlink = netlink
        device = try TUNDevice(named: "flannel0")
        forwarder = try UDPForwarder(tun: device.descriptor, bind: external.address.address, port: settings.port)
    }

    var backendData: [String: SubnetLeaseAttributes.BackendDatum]? { nil }
    var hostIdentity: String? { nil }
    var mtu: Int { settings.mtu ?? (external.link.mtu - settings.overhead) }

    /// `flannel0` gets the lease's address with the network's prefix, and a route for the
    /// whole network (explicit: another device may already hold a covering route).
    func configure(subnet: IPv4Network, network: IPv4Network) throws(NetlinkError) {
        ownSubnet = subnet
        guard let link = try netlink.link(named: device.name) else { throw NetlinkError("find \(device.name)", errno: ENODEV) }
        let own = InterfaceAddress(index: link.index, address: subnet.address, prefixLength: network.prefixLength)
        for address in try netlink.addresses() where address.index == link.index && address != own {
            try netlink.deleteAddress(address)
        }
        try netlink.setLink(index: link.index, mtu: mtu)
        try netlink.replaceAddress(own)
        try netlink.setLink(index: link.index, up: true)
        try netlink.replaceRoute(Route(destination: network, outputInterface: link.index))
        forwarder.start()
    }

    func reconcile(_ leases: [SubnetLeaseRecord]) throws(NetlinkError) -> ReconcileResult {
        var peers: [UDPForwarder.Peer] = []
        for lease in leases {
            guard lease.attributes.backendType == "udp" || lease.attributes.backendType.isEmpty,
                let subnet = lease.key.ipv4, subnet != ownSubnet,
                let address = try? IPv4Address(parsing: lease.attributes.publicIP)
            else { continue }
            peers.append(UDPForwarder.Peer(subnet: subnet, address: address))
        }
        return forwarder.setPeers(peers)
    }
}

/// The udp backend's data path: two threads, TUN → UDP and UDP → TUN, blocking on their
/// descriptor (no poll between packets); each forwards one packet per read, decrementing
/// its TTL as a router does. The peer table is swapped by generation, so a forwarding
/// thread takes the lock only when the table changed.
final class UDPForwarder: Sendable {
    struct Peer: Sendable, Hashable {
        var subnet: IPv4Network
        var address: IPv4Address
    }

    private let tun: Int32
    private let socketDescriptor: Int32
    private let port: UInt16
    private let peers = Mutex<[Peer]>([])
    private let generation = Atomic<Int>(0)
    private let started = Atomic<Bool>(false)

    init(tun: Int32, bind address: IPv4Address, port: UInt16) throws(NetlinkError) {
        self.tun = tun
        self.port = port
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw NetlinkError("open the udp backend's socket", errno: errno) }
        // Bursts from a TCP window arrive faster than one thread writes them to the TUN
        // device: a deep receive queue turns drops into delay. As root the FORCE variants
        // pass net.core.rmem_max; otherwise the plain ones take what the limit allows.
        var size: Int32 = 4 << 20
        let length = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(descriptor, SOL_SOCKET, SO_RCVBUFFORCE, &size, length) != 0 {
            _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, length)
        }
        if setsockopt(descriptor, SOL_SOCKET, SO_SNDBUFFORCE, &size, length) != 0 {
            _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDBUF, &size, length)
        }
        let local = Self.socketAddress(address, port)
        let bound = local.withUnsafeBytes {
            Glibc.bind(descriptor, $0.baseAddress?.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
        }
        guard bound == 0 else {
            let failure = errno
            close(descriptor)
            throw NetlinkError("bind the udp backend to \(address):\(port)", errno: failure)
        }
        socketDescriptor = descriptor
    }

    func setPeers(_ list: [Peer]) -> ReconcileResult {
        let sorted = list.sorted { $0.subnet < $1.subnet }
        let previous = peers.withLock { current in
            defer { current = sorted }
            return current
        }
        guard previous != sorted else { return ReconcileResult() }
        generation.add(1, ordering: .releasing)
        let before = Set(previous)
        let after = Set(sorted)
        return ReconcileResult(added: after.subtracting(before).count, removed: before.subtracting(after).count)
    }

    func start() {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let forwarder = self
        Thread.detachNewThread { forwarder.tunToUDP() }
        Thread.detachNewThread { forwarder.udpToTUN() }
    }

    private func tunToUDP() {
        let capacity = 65536
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var table: [(network: UInt32, mask: UInt32, address: [UInt8])] = []
        var seen = -1
        while true {
            let length = read(tun, buffer, capacity)
            if length < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return
            }
            let current = generation.load(ordering: .acquiring)
            if current != seen {
                seen = current
                table = peers.withLock { list in
                    list.map { ($0.subnet.address.bits, $0.subnet.netmask.bits, Self.socketAddress($0.address, port)) }
                }
            }
            guard length >= 20, Self.decrementTTL(buffer) else { continue }
            let destination = UInt32(bigEndian: buffer.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
            guard let entry = table.first(where: { destination & $0.mask == $0.network }) else { continue }
            _ = entry.address.withUnsafeBytes {
                sendto(
                    socketDescriptor, buffer, length, 0, $0.baseAddress?.assumingMemoryBound(to: sockaddr.self),
                    socklen_t($0.count))
            }
        }
    }

    private func udpToTUN() {
        let capacity = 65536
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let length = recv(socketDescriptor, buffer, capacity, 0)
            if length < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return
            }
            guard length >= 20, buffer.load(as: UInt8.self) >> 4 == 4, Self.decrementTTL(buffer) else { continue }
            _ = write(tun, buffer, length)
        }
    }

    /// TTL − 1 with the header checksum updated incrementally (RFC 1624); false when the
    /// packet has no hop left (dropped, as flannel's proxy does).
    static func decrementTTL(_ packet: UnsafeMutableRawPointer) -> Bool {
        let ttl = packet.load(fromByteOffset: 8, as: UInt8.self)
        guard ttl > 1 else { return false }
        packet.storeBytes(of: ttl - 1, toByteOffset: 8, as: UInt8.self)
        // The TTL is the high byte of the 16-bit word at offset 8: the sum grows by 0x0100.
        let checksum = UInt16(bigEndian: packet.loadUnaligned(fromByteOffset: 10, as: UInt16.self))
        var sum = UInt32(checksum) + 0x0100
        sum = (sum & 0xFFFF) + (sum >> 16)
        packet.storeBytes(of: UInt16(truncatingIfNeeded: sum).bigEndian, toByteOffset: 10, as: UInt16.self)
        return true
    }

    /// A `struct sockaddr_in` as bytes: family (host order), port and address (network
    /// order), eight bytes of zero.
    static func socketAddress(_ address: IPv4Address, _ port: UInt16) -> [UInt8] {
        withUnsafeBytes(of: UInt16(AF_INET)) { Array($0) } + [UInt8(port >> 8), UInt8(port & 0xFF)] + address.octets
            + [UInt8](repeating: 0, count: 8)
    }
}
