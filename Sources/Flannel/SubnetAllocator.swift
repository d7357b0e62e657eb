public import Net

/// A lease as the allocator sees it: its subnet, its owner's public IP, and whether it
/// is a reservation (a key without an etcd lease: never expires, never reassigned).
public struct SubnetLeaseView: Sendable, Hashable {
    public var subnet: IPv4Network
    public var publicIP: IPv4Address
    public var isReservation: Bool
    /// What tells two hosts with one public IP apart: the vxlan VTEP MAC; nil when the
    /// backend publishes nothing host-specific (host-gw, udp).
    public var hostIdentity: String?

    public init(subnet: IPv4Network, publicIP: IPv4Address, isReservation: Bool = false, hostIdentity: String? = nil) {
        self.subnet = subnet
        self.publicIP = publicIP
        self.isReservation = isReservation
        self.hostIdentity = hostIdentity
    }
}

/// flannel's choice of a subnet for a host, as a pure function (the etcd transaction
/// that claims it, and the retry when another host won the race, are the caller's).
public enum SubnetAllocator {
    public enum Decision: Sendable, Hashable {
        /// A lease with this host's public IP fits the configuration: renew it.
        case reuse(SubnetLeaseView)
        /// Create a lease for this subnet (create-if-absent); `deleteFirst` is an
        /// incompatible old lease of this host to delete before.
        case create(IPv4Network, deleteFirst: IPv4Network?)
    }

    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Candidates considered for a random pick: the first 100 free subnets, as flannel.
    public static let candidates = 100

    /// In flannel's order: this host's lease if it still fits; else the subnet of the
    /// previous `subnet.env` if free and fitting; else a random free one among the first
    /// 100 from `SubnetMin`. `random(n)` returns an index below `n`.
    ///
    /// Unlike flannel, a lease with this host's public IP is not taken on that alone when
    /// it could be another host's (two hosts behind one NAT address, or cloned VMs): it is
    /// this host's when it holds the previous `subnet.env` subnet, or when its
    /// `hostIdentity` is `identity`, or when one side has no identity to compare (then,
    /// as in flannel, the public IP decides).
    public static func decide(
        config: FlannelConfig, leases: [SubnetLeaseView], publicIP: IPv4Address, previous: IPv4Network?,
        identity: String? = nil, random: (Int) -> Int
    ) throws(Failure) -> Decision {
        var incompatible: IPv4Network?
        let samePublicIP = leases.filter { $0.publicIP == publicIP }
        let owned =
            samePublicIP.first { $0.subnet == previous }
            ?? samePublicIP.first { identity != nil && $0.hostIdentity == identity }
            ?? samePublicIP.first { identity == nil || $0.hostIdentity == nil }
        if let mine = owned {
            if fits(mine.subnet, config) { return .reuse(mine) }
            incompatible = mine.subnet
        }
        let others = leases.filter { $0.subnet != incompatible }
        if let previous, fits(previous, config), !others.contains(where: { $0.subnet == previous }) {
            return .create(previous, deleteFirst: incompatible)
        }
        guard let minimum = config.subnetMin, let maximum = config.subnetMax, config.subnetLength > 0 else {
            throw Failure(message: "out of subnets")
        }
        var free: [IPv4Network] = []
        var candidate = try? IPv4Network(address: minimum, prefixLength: config.subnetLength)
        while let subnet = candidate, subnet.address <= maximum, free.count < candidates {
            if !others.contains(where: { $0.subnet.overlaps(subnet) }) { free.append(subnet) }
            candidate = subnet.next
        }
        guard !free.isEmpty else { throw Failure(message: "out of subnets") }
        return .create(free[random(free.count)], deleteFirst: incompatible)
    }

    /// flannel's `isSubnetConfigCompat`: inside `SubnetMin…SubnetMax` with `SubnetLen`.
    public static func fits(_ subnet: IPv4Network, _ config: FlannelConfig) -> Bool {
        guard let minimum = config.subnetMin, let maximum = config.subnetMax else { return false }
        return subnet.address >= minimum && subnet.address <= maximum && subnet.prefixLength == config.subnetLength
    }
}
