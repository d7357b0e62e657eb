import CDynamicLibraries
import CSystemd
import Glibc
import Platform

/// Why systemd refused or could not be reached.
public struct SystemdBusError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// systemd's manager over D-Bus through libsystemd's sd-bus (opened on first use): the
/// unit commands cloud-config asks for and daemon-reload. Each call waits for systemd's
/// answer (the job is queued, as `systemctl --no-block` does).
final class SystemdBus {
    private var bus: OpaquePointer?

    /// True when systemd is PID 1 (`/run/systemd/system` exists, sd_booted's test).
    static var isSystemdRunning: Bool { FileSystem.entryType(atPath: "/run/systemd/system") == .directory }

    init() throws(SystemdBusError) {
        let status = sd_bus_open_system(&bus)
        guard status >= 0 else { throw SystemdBusError(description: "cannot connect to the system bus: \(Self.text(status))") }
    }

    deinit { sd_bus_flush_close_unref(bus) }

    static let methods = [
        "start": "StartUnit", "stop": "StopUnit", "restart": "RestartUnit", "reload": "ReloadUnit",
        "try-restart": "TryRestartUnit", "reload-or-restart": "ReloadOrRestartUnit",
        "reload-or-try-restart": "ReloadOrTryRestartUnit",
    ]

    func unitCommand(_ command: String, unit: String) throws(SystemdBusError) {
        guard let method = Self.methods[command] else { throw SystemdBusError(description: "unknown unit command \(command)") }
        try call(method, arguments: [unit, "replace"])
    }

    func reload() throws(SystemdBusError) { try call("Reload", arguments: []) }

    private func call(_ method: String, arguments: [String]) throws(SystemdBusError) {
        var message: OpaquePointer?
        var status = sd_bus_message_new_method_call(
            bus, &message, "org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", method)
        guard status >= 0 else { throw SystemdBusError(description: "\(method): \(Self.text(status))") }
        defer { sd_bus_message_unref(message) }
        for argument in arguments {
            status = argument.withCString { sd_bus_message_append_basic(message, CChar(UInt8(ascii: "s")), $0) }
            guard status >= 0 else { throw SystemdBusError(description: "\(method): \(Self.text(status))") }
        }
        var error = sd_bus_error()
        defer { sd_bus_error_free(&error) }
        var reply: OpaquePointer?
        status = sd_bus_call(bus, message, 0, &error, &reply)
        sd_bus_message_unref(reply)
        guard status >= 0 else {
            let said = error.message.map { String(cString: $0) } ?? Self.text(status)
            throw SystemdBusError(description: "\(method) \(arguments.first ?? ""): \(said)")
        }
    }

    static func text(_ status: Int32) -> String { String(cString: strerror(-status)) }
}
