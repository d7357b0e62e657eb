import CDynamicLibraries
import CLinux
import CSystemd
import Foundation
import Glibc

/// Why systemd refused or could not be reached.
public struct SystemdBusError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// An argument of a D-Bus call to systemd.
public enum SystemdBusArgument: Sendable {
    case string(String)
    case strings([String])
    case bool(Bool)
}

/// systemd's manager over D-Bus through libsystemd's sd-bus (opened on first use). An
/// sd-bus connection belongs to one thread: use it from one thread only (cloud-config's
/// applier does; fleetd's ``SystemdBusThread`` owns one).
public final class SystemdBus {
    private var bus: OpaquePointer?

    /// True when systemd is PID 1 (`/run/systemd/system` exists, sd_booted's test).
    public static var isSystemdRunning: Bool { FileSystem.entryType(atPath: "/run/systemd/system") == .directory }

    public init() throws(SystemdBusError) {
        let status = sd_bus_open_system(&bus)
        guard status >= 0 else { throw SystemdBusError(description: "cannot connect to the system bus: \(Self.text(status))") }
    }

    deinit { sd_bus_flush_close_unref(bus) }

    var handle: OpaquePointer? { bus }

    static let methods = [
        "start": "StartUnit", "stop": "StopUnit", "restart": "RestartUnit", "reload": "ReloadUnit",
        "try-restart": "TryRestartUnit", "reload-or-restart": "ReloadOrRestartUnit",
        "reload-or-try-restart": "ReloadOrTryRestartUnit",
    ]

    /// `systemctl --no-block COMMAND UNIT`, mode `replace`.
    public func unitCommand(_ command: String, unit: String) throws(SystemdBusError) {
        guard let method = Self.methods[command] else { throw SystemdBusError(description: "unknown unit command \(command)") }
        try managerCall(method, [.string(unit), .string("replace")])
    }

    public func reload() throws(SystemdBusError) { try managerCall("Reload", []) }

    /// A method of `org.freedesktop.systemd1.Manager`; the reply is dropped.
    public func managerCall(_ method: String, _ arguments: [SystemdBusArgument]) throws(SystemdBusError) {
        let reply = try call(path: "/org/freedesktop/systemd1", interface: "org.freedesktop.systemd1.Manager", method, arguments)
        sd_bus_message_unref(reply)
    }

    /// A method of `org.freedesktop.systemd1.Manager` that answers one object path or string.
    public func managerCallReturningString(_ method: String, _ arguments: [SystemdBusArgument]) throws(SystemdBusError) -> String {
        let reply = try call(path: "/org/freedesktop/systemd1", interface: "org.freedesktop.systemd1.Manager", method, arguments)
        defer { sd_bus_message_unref(reply) }
        var text: UnsafePointer<CChar>?
        var status = sd_bus_message_read_basic(reply, CChar(UInt8(ascii: "o")), &text)
        if status < 0 { status = sd_bus_message_read_basic(reply, CChar(UInt8(ascii: "s")), &text) }
        guard status > 0, let text else { throw SystemdBusError(description: "\(method): unexpected reply") }
        return String(cString: text)
    }

    /// A string property (`ActiveState` of `org.freedesktop.systemd1.Unit`…).
    public func stringProperty(path: String, interface: String, _ name: String) throws(SystemdBusError) -> String {
        try property(path: path, interface: interface, name, type: "s") { reply, code in
            var text: UnsafePointer<CChar>?
            guard sd_bus_message_read_basic(reply, code, &text) > 0, let text else { return nil }
            return String(cString: text)
        }
    }

    /// An unsigned 32-bit property (`MainPID` of `org.freedesktop.systemd1.Service`).
    public func uint32Property(path: String, interface: String, _ name: String) throws(SystemdBusError) -> UInt32 {
        try property(path: path, interface: interface, name, type: "u") { reply, code in
            var value: UInt32 = 0
            return sd_bus_message_read_basic(reply, code, &value) > 0 ? value : nil
        }
    }

    /// Reads a property of one basic D-Bus type; `read` runs while the reply is alive.
    private func property<Value>(
        path: String, interface: String, _ name: String, type: Unicode.Scalar, _ read: (OpaquePointer?, CChar) -> Value?
    ) throws(SystemdBusError) -> Value {
        let reply = try call(path: path, interface: "org.freedesktop.DBus.Properties", "Get", [.string(interface), .string(name)])
        defer { sd_bus_message_unref(reply) }
        guard sd_bus_message_enter_container(reply, CChar(UInt8(ascii: "v")), String(type)) > 0,
            let value = read(reply, CChar(UInt8(ascii: type)))
        else { throw SystemdBusError(description: "\(name): not of type \(type)") }
        return value
    }

    /// Calls `method` on systemd and returns the reply (the caller unrefs it).
    public func call(path: String, interface: String, _ method: String, _ arguments: [SystemdBusArgument]) throws(SystemdBusError)
        -> OpaquePointer?
    {
        var message: OpaquePointer?
        var status = sd_bus_message_new_method_call(bus, &message, "org.freedesktop.systemd1", path, interface, method)
        guard status >= 0 else { throw SystemdBusError(description: "\(method): \(Self.text(status))") }
        defer { sd_bus_message_unref(message) }
        for argument in arguments {
            switch argument {
            case .string(let text):
                status = text.withCString { sd_bus_message_append_basic(message, CChar(UInt8(ascii: "s")), $0) }
            case .bool(let flag):
                var value: Int32 = flag ? 1 : 0
                status = sd_bus_message_append_basic(message, CChar(UInt8(ascii: "b")), &value)
            case .strings(let list):
                var pointers = list.map { strdup($0) } + [nil]
                status = sd_bus_message_append_strv(message, &pointers)
                pointers.forEach { free($0) }
            }
            guard status >= 0 else { throw SystemdBusError(description: "\(method): \(Self.text(status))") }
        }
        var error = sd_bus_error()
        defer { sd_bus_error_free(&error) }
        var reply: OpaquePointer?
        status = sd_bus_call(bus, message, 0, &error, &reply)
        guard status >= 0 else {
            let said = error.message.map { String(cString: $0) } ?? Self.text(status)
            var subject = ""
            switch arguments.first {
            case .string(let text): subject = " " + text
            case .strings(let list): subject = " " + list.joined(separator: " ")
            default: break
            }
            throw SystemdBusError(description: "\(method)\(subject): \(said)")
        }
        return reply
    }

    public static func text(_ status: Int32) -> String { String(cString: strerror(-status)) }
}

/// A connection to systemd owned by a thread of its own: work is handed to it as closures
/// (sd-bus is not thread-safe), and the `PropertiesChanged` signals of units are passed to
/// `onChange` with the unit's object path, so callers learn of state changes without
/// polling.
public final class SystemdBusThread: @unchecked Sendable {
    // Unchecked: `bus` is touched only on the owning thread; the job queue and the wake-up
    // descriptor are guarded by `lock`.
    private var bus: SystemdBus?
    private let lock = NSLock()
    private var jobs: [() -> Void] = []
    /// A pipe that wakes the bus thread when work is queued.
    private let wake: (read: Int32, write: Int32)
    private let onChange: @Sendable (String) -> Void
    private var slot: OpaquePointer?

    public init(onChange: @escaping @Sendable (String) -> Void) throws(SystemdBusError) {
        self.onChange = onChange
        var ends: [Int32] = [0, 0]
        guard coreos_pipe_cloexec(&ends) == 0 else { throw SystemdBusError(description: "pipe: \(String(cString: strerror(errno)))") }
        _ = fcntl(ends[0], F_SETFL, O_NONBLOCK)
        _ = fcntl(ends[1], F_SETFL, O_NONBLOCK)
        wake = (ends[0], ends[1])
        let readiness = Readiness()
        let thread = Thread { [self] in run(readiness) }
        thread.name = "systemd-bus"
        thread.start()
        if let failure = readiness.wait() { throw failure }
    }

    /// The bus thread's first answer: connected and subscribed, or why not.
    private final class Readiness: @unchecked Sendable {
        // Unchecked: `outcome` is guarded by `condition`.
        private let condition = NSCondition()
        private var outcome: SystemdBusError??

        func wait() -> SystemdBusError? {
            condition.lock()
            defer { condition.unlock() }
            while outcome == nil { condition.wait() }
            return outcome!
        }

        func report(_ result: SystemdBusError?) {
            condition.lock()
            outcome = .some(result)
            condition.signal()
            condition.unlock()
        }
    }

    /// Runs `body` on the bus thread and returns its result.
    public func perform<Result: Sendable>(_ body: @escaping @Sendable (SystemdBus) throws(SystemdBusError) -> Result) async throws(SystemdBusError)
        -> Result
    {
        let outcome: Swift.Result<Result, SystemdBusError> = await withCheckedContinuation { continuation in
            lock.lock()
            jobs.append { [self] in
                guard let bus else { return continuation.resume(returning: .failure(SystemdBusError(description: "no bus"))) }
                do {
                    continuation.resume(returning: .success(try body(bus)))
                } catch let failure as SystemdBusError {
                    continuation.resume(returning: .failure(failure))
                } catch {
                    continuation.resume(returning: .failure(SystemdBusError(description: "\(error)")))
                }
            }
            lock.unlock()
            var one: UInt8 = 1
            _ = write(wake.write, &one, 1)
        }
        return try outcome.get()
    }

    private func run(_ readiness: Readiness) {
        do {
            let connection = try SystemdBus()
            bus = connection
            // Subscribe: systemd then sends PropertiesChanged for every unit it has loaded.
            try connection.managerCall("Subscribe", [])
            let match =
                "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'"
            let context = Unmanaged.passUnretained(self).toOpaque()
            let status = sd_bus_add_match(connection.handle, &slot, match, { message, userdata, _ in
                guard let userdata, let path = sd_bus_message_get_path(message) else { return 0 }
                Unmanaged<SystemdBusThread>.fromOpaque(userdata).takeUnretainedValue().onChange(String(cString: path))
                return 0
            }, context)
            guard status >= 0 else { throw SystemdBusError(description: "cannot watch systemd's signals: \(SystemdBus.text(status))") }
            readiness.report(nil)
        } catch let failure as SystemdBusError {
            readiness.report(failure)
            return
        } catch {
            readiness.report(SystemdBusError(description: "\(error)"))
            return
        }
        while true {
            // Everything sd-bus has read or can read now, then the queued work.
            while sd_bus_process(bus!.handle, nil) > 0 {}
            lock.lock()
            let pending = jobs
            jobs = []
            lock.unlock()
            for job in pending { job() }
            if !pending.isEmpty { continue }
            var descriptors = [
                pollfd(fd: sd_bus_get_fd(bus!.handle), events: Int16(sd_bus_get_events(bus!.handle)), revents: 0),
                pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0),
            ]
            var timeout: UInt64 = 0
            var milliseconds: Int32 = -1
            if sd_bus_get_timeout(bus!.handle, &timeout) > 0, timeout != UInt64.max {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let nowMicroseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
                milliseconds = timeout > nowMicroseconds ? Int32(min((timeout - nowMicroseconds) / 1000 + 1, 60_000)) : 0
            }
            _ = poll(&descriptors, 2, milliseconds)
            var drained = [UInt8](repeating: 0, count: 64)
            _ = read(wake.read, &drained, drained.count)
        }
    }
}
