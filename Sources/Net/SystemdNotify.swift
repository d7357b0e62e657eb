import Glibc

/// One datagram to a Unix socket named by a path (`@name`: the abstract namespace), the
/// transport of systemd's notification protocol and of journald's native protocol.
public enum UnixDatagram {
    /// Sends `payload`; false when the socket cannot be reached or sending failed.
    @discardableResult
    public static func send(_ payload: [UInt8], to path: String) -> Bool {
        guard !path.isEmpty, path.utf8.count < 108 else { return false }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let sent = payload.withUnsafeBytes { raw in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(descriptor, raw.baseAddress, raw.count, 0, $0, length)
                }
            }
        }
        return sent == payload.count
    }
}

/// The client side of systemd's notification protocol (`sd_notify`): one datagram such as
/// `READY=1` to the socket named by `NOTIFY_SOCKET`. Without the variable (not started by
/// systemd) it does nothing.
public enum SystemdNotify {
    /// Sends `state`; returns false when there is no socket or sending failed.
    @discardableResult
    public static func send(_ state: String, socketPath: String? = nil) -> Bool {
        guard let path = socketPath ?? getenv("NOTIFY_SOCKET").map({ String(cString: $0) }) else { return false }
        return UnixDatagram.send(Array(state.utf8), to: path)
    }
}
