import CLinux

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A layer-3 TUN device (`IFF_TUN | IFF_NO_PI`): each read returns one IP packet the kernel
/// routed to the device, each write injects one. The device lives while the descriptor is
/// open (it is not persistent), so a crashed daemon leaves no device behind.
public final class TUNDevice {
    public let descriptor: Int32
    public let name: String

    /// Opens `/dev/net/tun` and creates (or attaches to) the device `name`.
    public init(named name: String) throws(NetlinkError) {
        guard name.utf8.count < 16 else { throw NetlinkError("create TUN device \(name) (name too long)", errno: EINVAL) }
        let descriptor = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { throw NetlinkError("open /dev/net/tun", errno: errno) }
        // struct ifreq: 16 bytes of name, then ifr_flags (short); 40 bytes in all.
        var request = [UInt8](repeating: 0, count: 40)
        for (offset, byte) in name.utf8.enumerated() { request[offset] = byte }
        let flags: UInt16 = 0x0001 | 0x1000  // IFF_TUN | IFF_NO_PI
        request[16] = UInt8(flags & 0xFF)
        request[17] = UInt8(flags >> 8)
        let tunSetInterface: UInt = 0x4004_54CA  // TUNSETIFF = _IOW('T', 202, int)
        let status = request.withUnsafeMutableBytes { coreos_ioctl_pointer(descriptor, tunSetInterface, $0.baseAddress) }
        guard status == 0 else {
            let failure = errno
            close(descriptor)
            throw NetlinkError("create TUN device \(name)", errno: failure)
        }
        self.descriptor = descriptor
        self.name = String(decoding: request[0..<16].prefix { $0 != 0 }, as: UTF8.self)
    }

    deinit { close(descriptor) }
}
