import CLinux
import Foundation
import Glibc
public import Net
import Platform

/// A network pods can join: a bridge on the host holding the gateway address, a subnet
/// for host-local addresses, masquerading for traffic that leaves it. `default` is built
/// in; others come from rkt's CNI-style files `<local-config>/net.d/*.conf` (type
/// `bridge` or `ptp`, `bridge`, `ipMasq`, `isGateway`, `mtu`, `ipam.subnet`,
/// `ipam.gateway`).
public struct NetworkDefinition: Codable, Sendable, Hashable {
    public var name: String
    public var bridge: String
    public var subnet: String
    public var gateway: String
    public var mtu: Int
    public var masquerade: Bool
    /// The pod's default route goes through this network's gateway.
    public var isGateway: Bool

    /// rkt's default network, or flannel's lease for this host when flanneld runs here.
    public static func builtIn(flannelEnvironment: String = "/run/flannel/subnet.env") throws(RuntimeError) -> NetworkDefinition {
        let (network, gateway, mtu) = try PodNetworking.subnet(environmentFile: flannelEnvironment)
        return NetworkDefinition(
            name: "default", bridge: "coreos0", subnet: network.description, gateway: gateway.description, mtu: mtu,
            masquerade: true, isGateway: true)
    }

    /// The networks defined under `<localConfig>/net.d`, by name.
    public static func configured(localConfig: String) throws(RuntimeError) -> [String: NetworkDefinition] {
        var result: [String: NetworkDefinition] = [:]
        let directory = localConfig + "/net.d"
        for file in FileSystem.entryNames(inDirectory: directory).sorted() where file.hasSuffix(".conf") {
            guard let data = FileManager.default.contents(atPath: directory + "/" + file),
                let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            else { throw RuntimeError("\(directory)/\(file) is not a JSON object") }
            guard let name = object["name"] as? String, !name.isEmpty, name != "default", name != "host", name != "none" else {
                throw RuntimeError("\(directory)/\(file): a network needs a name other than default, host or none")
            }
            let type = object["type"] as? String ?? "bridge"
            guard type == "bridge" || type == "ptp" else { throw RuntimeError("\(directory)/\(file): type \(type) is not supported (bridge, ptp)") }
            let ipam = object["ipam"] as? [String: Any] ?? [:]
            guard let subnetText = ipam["subnet"] as? String else { throw RuntimeError("\(directory)/\(file): ipam.subnet is required") }
            do {
                let subnet = try IPv4Network(parsing: subnetText)
                let gateway = try (ipam["gateway"] as? String).map { try IPv4Address(parsing: $0) } ?? IPv4Address(bits: subnet.address.bits + 1)
                let bridge = (object["bridge"] as? String) ?? String(("cr-" + name).prefix(15))
                result[name] = NetworkDefinition(
                    name: name, bridge: bridge, subnet: subnet.description, gateway: gateway.description,
                    mtu: object["mtu"] as? Int ?? 1500, masquerade: object["ipMasq"] as? Bool ?? false,
                    isGateway: object["isGateway"] as? Bool ?? false)
            } catch {
                throw RuntimeError("\(directory)/\(file): \(error)")
            }
        }
        return result
    }
}

/// A pod's place on one network: a veth pair, one end in the pod (`eth0`, `eth1`, … in
/// the order the networks were named), the other on the network's bridge.
public struct PodNetwork: Codable, Sendable, Hashable {
    public var name: String
    public var bridge: String
    public var subnet: String
    public var address: String
    public var gateway: String
    public var prefixLength: Int
    public var mtu: Int
    public var masquerade: Bool
    public var defaultRoute: Bool
    public var hostInterface: String
    public var podInterface: String

    /// rkt's default network.
    public static let defaultSubnet = "172.16.28.0/24"

    /// `default:ip4=172.16.28.2`, as rkt's `list` and `status` show networks.
    public var summary: String { "\(name):ip4=\(address)" }
}

/// Host-local address management and the host side of the default network.
public enum PodNetworking {
    /// flannel's lease for this host when flanneld runs here (`FLANNEL_SUBNET=10.5.72.1/24`
    /// names the bridge address and the subnet; `FLANNEL_MTU`), so pods on different hosts
    /// reach each other over the overlay; otherwise rkt's private default.
    public static func subnet(environmentFile: String = "/run/flannel/subnet.env") throws(RuntimeError) -> (IPv4Network, IPv4Address, Int) {
        if let text = try? String(contentsOfFile: environmentFile, encoding: .utf8) {
            var values: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
                if parts.count == 2 { values[parts[0]] = parts[1] }
            }
            if let lease = values["FLANNEL_SUBNET"] {
                do {
                    let network = try IPv4Network(parsing: lease)
                    let gateway = try IPv4Address(parsing: lease.split(separator: "/")[0])
                    return (network, gateway, values["FLANNEL_MTU"].flatMap { Int($0) } ?? 1500)
                } catch {
                    throw RuntimeError("\(environmentFile): FLANNEL_SUBNET \(lease) is not an IPv4 network: \(error)")
                }
            }
        }
        do {
            let network = try IPv4Network(parsing: PodNetwork.defaultSubnet)
            return (network, IPv4Address(bits: network.address.bits + 1), 1500)
        } catch {
            throw RuntimeError("\(error)")
        }
    }

    /// Takes the lowest free address of the network's subnet for pod `uuid`: a file per
    /// address in `<store>/net/<network>/` made with O_EXCL, so concurrent starts cannot collide.
    public static func allocate(
        store: String, uuid: String, on definition: NetworkDefinition, index: Int, defaultRoute: Bool
    ) throws(RuntimeError) -> PodNetwork {
        let network: IPv4Network
        let gateway: IPv4Address
        do {
            network = try IPv4Network(parsing: definition.subnet)
            gateway = try IPv4Address(parsing: definition.gateway)
        } catch {
            throw RuntimeError("network \(definition.name): \(error)")
        }
        let mtu = definition.mtu
        let directory = store + "/net/" + definition.name
        try ImageStore.makeDirectories(directory)
        let first = network.address.bits + 1
        let last = network.lastAddress.bits - 1
        guard first <= last else { throw RuntimeError("subnet \(network) has no room for pods") }
        for bits in first...last where bits != gateway.bits {
            let address = IPv4Address(bits: bits)
            let path = directory + "/" + address.description
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                if errno == EEXIST { continue }
                throw RuntimeError("allocate \(address): \(String(cString: strerror(errno)))")
            }
            _ = uuid.utf8CString.withUnsafeBufferPointer { write(descriptor, $0.baseAddress, $0.count - 1) }
            close(descriptor)
            let short = String(uuid.filter(\.isHexDigit).prefix(8))
            return PodNetwork(
                name: definition.name, bridge: definition.bridge, subnet: network.description, address: address.description,
                gateway: gateway.description, prefixLength: network.prefixLength, mtu: mtu, masquerade: definition.masquerade,
                defaultRoute: defaultRoute, hostInterface: "veth\(short)\(index)", podInterface: "vpod\(short)\(index)")
        }
        throw RuntimeError("no free address left in \(network)")
    }

    /// Removes the host end of the pod's veth pair. The kernel would remove it with the
    /// pod's namespace, but later, from a work queue: a pod that has ended leaves nothing.
    public static func detach(_ network: PodNetwork) {
        _ = coreos_netlink_delete_link(network.hostInterface)
    }

    /// Gives back every address pod `uuid` holds, on every network.
    public static func release(store: String, uuid: String) {
        for network in FileSystem.entryNames(inDirectory: store + "/net") {
            let directory = store + "/net/" + network
            for name in FileSystem.entryNames(inDirectory: directory) {
                if (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) == uuid { unlink(directory + "/" + name) }
            }
        }
    }

    /// The bridge with the gateway address, forwarding on, and masquerading of traffic that
    /// leaves the subnet (through iptables, idempotently).
    public static func prepareHost(_ network: PodNetwork) throws(RuntimeError) {
        var status = coreos_netlink_create_bridge(network.bridge, UInt32(network.mtu))
        guard status == 0 else { throw RuntimeError("create bridge \(network.bridge): \(String(cString: strerror(-status)))") }
        let gateway: IPv4Address
        do {
            gateway = try IPv4Address(parsing: network.gateway)
        } catch {
            throw RuntimeError("\(error)")
        }
        status = gateway.octets.withUnsafeBufferPointer { coreos_netlink_add_address(network.bridge, $0.baseAddress, 4, Int32(network.prefixLength)) }
        guard status == 0 else { throw RuntimeError("address \(network.gateway) on \(network.bridge): \(String(cString: strerror(-status)))") }
        status = coreos_netlink_set_link(network.bridge, nil, nil, 1, 0)
        guard status == 0 else { throw RuntimeError("bring \(network.bridge) up: \(String(cString: strerror(-status)))") }
        if let handle = FileHandle(forWritingAtPath: "/proc/sys/net/ipv4/ip_forward") {
            try? handle.write(contentsOf: Data("1".utf8))
            try? handle.close()
        }
        guard network.masquerade else { return }
        let rule = ["-t", "nat", "POSTROUTING", "-s", network.subnet, "!", "-d", network.subnet, "-j", "MASQUERADE", "-m", "comment", "--comment", "coreos run \(network.name) network"]
        if ChildProcess.run(["iptables", "-w"] + rule.prefix(2) + ["-C"] + rule.dropFirst(2))?.status != 0 {
            guard let added = ChildProcess.run(["iptables", "-w"] + rule.prefix(2) + ["-A"] + rule.dropFirst(2)), added.status == 0 else {
                throw RuntimeError("iptables: cannot add the masquerade rule for \(network.subnet) (is the iptables package installed?)")
            }
        }
    }

    /// DNAT rules for `--port`: connections to the host port (from outside, and from the
    /// host itself) go to the pod's address; `add: false` removes them again.
    public static func forward(_ forwards: [PodManifest.PortForward], to network: PodNetwork, uuid: String, add: Bool) throws(RuntimeError) {
        for forward in forwards {
            var match = ["-p", forward.protocol, "--dport", String(forward.hostPort), "-m", "addrtype", "--dst-type", "LOCAL"]
            if let address = forward.hostIP { match = ["-p", forward.protocol, "--dport", String(forward.hostPort), "-d", address] }
            let target = ["-m", "comment", "--comment", "coreos run pod \(uuid)", "-j", "DNAT", "--to-destination", "\(network.address):\(forward.podPort)"]
            for chain in ["PREROUTING", "OUTPUT"] {
                let rule = ["iptables", "-w", "-t", "nat", add ? "-A" : "-D", chain] + match + target
                guard let outcome = ChildProcess.run(rule), outcome.status == 0 || !add else {
                    throw RuntimeError("--port \(forward.name): iptables could not add the forwarding rule")
                }
            }
        }
    }

    /// Makes the veth pair with one end in the namespace of `pid` and the other on the
    /// bridge; an errno on failure (called between clone and the child's start).
    public static func attach(_ network: PodNetwork, pid: Int32) -> Int32 {
        var status = coreos_netlink_create_veth(network.hostInterface, network.podInterface, pid, UInt32(network.mtu))
        guard status == 0 else { return -status }
        status = coreos_netlink_set_link(network.hostInterface, nil, network.bridge, 1, 0)
        guard status == 0 else {
            _ = coreos_netlink_delete_link(network.hostInterface)
            return -status
        }
        return 0
    }
}
