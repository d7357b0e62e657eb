import Flannel
import Net

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// flannel's choice of the external interface and public IP: `--iface` (names or
/// addresses, first match wins), else `--iface-regex`, else `--iface-can-reach`, else the
/// interface holding `--public-ip`, else the default route's interface.
enum ExternalInterfaceSelection {
    static func select(_ options: FlannelOptions, netlink: RouteNetlink) throws -> ExternalInterface {
        let links = try netlink.links()
        let addresses = try netlink.addresses()
        func firstAddress(_ link: NetworkLink) -> InterfaceAddress? {
            addresses.first { $0.index == link.index && !$0.address.isLinkLocal }
                ?? addresses.first { $0.index == link.index }
        }
        func choose(_ link: NetworkLink, _ address: InterfaceAddress?) throws -> ExternalInterface {
            guard let address = address ?? firstAddress(link) else {
                throw FlannelError("interface \(link.name) has no IPv4 address")
            }
            var publicIP = address.address
            if let text = options.publicIP {
                do { publicIP = try IPv4Address(parsing: text) } catch { throw FlannelError("--public-ip: \(error)") }
            }
            return ExternalInterface(link: link, address: address, publicIP: publicIP)
        }

        if !options.interfaces.isEmpty {
            for spec in options.interfaces {
                if let ip = try? IPv4Address(parsing: spec) {
                    if let address = addresses.first(where: { $0.address == ip }),
                        let link = links.first(where: { $0.index == address.index })
                    {
                        return try choose(link, address)
                    }
                } else if let link = links.first(where: { $0.name == spec }) {
                    return try choose(link, nil)
                }
            }
            throw FlannelError("failed to find any interface given by --iface: \(options.interfaces.joined(separator: ", "))")
        }
        if !options.interfacePatterns.isEmpty {
            for pattern in options.interfacePatterns {
                let regex: Regex<AnyRegexOutput>
                do { regex = try Regex(pattern) } catch { throw FlannelError("--iface-regex \(pattern.debugDescription): \(error)") }
                for address in addresses where address.address.description.contains(regex) {
                    if let link = links.first(where: { $0.index == address.index }) { return try choose(link, address) }
                }
                for link in links where link.name.contains(regex) && firstAddress(link) != nil {
                    return try choose(link, nil)
                }
            }
            throw FlannelError("failed to find any interface matching --iface-regex \(options.interfacePatterns.joined(separator: ", "))")
        }
        if let text = options.interfaceCanReach {
            let target: IPv4Address
            do { target = try IPv4Address(parsing: text) } catch { throw FlannelError("--iface-can-reach: \(error)") }
            let route = try netlink.routeGet(target)
            guard let link = links.first(where: { $0.index == route.index }) else {
                throw FlannelError("--iface-can-reach \(text): no interface reaches it")
            }
            return try choose(link, route.source.flatMap { source in addresses.first { $0.address == source } })
        }
        if let text = options.publicIP, let ip = try? IPv4Address(parsing: text),
            let address = addresses.first(where: { $0.address == ip }), let link = links.first(where: { $0.index == address.index })
        {
            return try choose(link, address)
        }
        guard let route = try netlink.routes().first(where: { $0.destination.prefixLength == 0 && $0.outputInterface != nil }),
            let link = links.first(where: { $0.index == route.outputInterface })
        else {
            throw FlannelError("failed to get default interface: no default route (give --iface, --iface-regex or --iface-can-reach)")
        }
        return try choose(link, nil)
    }

    /// A VTEP MAC that stays the same across reboots and daemon restarts: hashed from
    /// /etc/machine-id, the network namespace and the VNI (the initial namespace's inode
    /// number is fixed, so on a host only machine-id and VNI vary).
    static func stableHardwareAddress(vni: UInt32) -> MACAddress {
        var text = ""
        if let file = fopen("/etc/machine-id", "r") {
            var buffer = [CChar](repeating: 0, count: 64)
            if fgets(&buffer, 64, file) != nil {
                text = String(decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            fclose(file)
        }
        var status = stat()
        if stat("/proc/self/ns/net", &status) == 0 { text += "/\(status.st_ino)" }
        text += "/\(vni)"
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        var bytes = (0..<6).map { UInt8(truncatingIfNeeded: hash >> (8 * UInt64($0))) }
        bytes[0] = (bytes[0] & 0xFE) | 0x02
        var generator = SystemRandomNumberGenerator()
        return (try? MACAddress(bytes: bytes)) ?? MACAddress.randomLocallyAdministered(using: &generator)
    }
}
