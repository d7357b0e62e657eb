import Foundation
import Platform
import UnitFile

/// Units run by systemd (PID 1), as fleet runs them: the file is written to
/// `/run/fleet/units/`, linked into systemd's runtime unit path (`LinkUnitFiles`, runtime),
/// enabled (runtime) only when it has an `[Install]` section, systemd reloads, and the
/// unit is started and stopped with mode `replace`. States come from systemd's
/// `PropertiesChanged` signals (after `Subscribe`), not from polling.
public actor SystemdUnitManager: UnitManager {
    private let unitDirectory: String
    private var bus: SystemdBusThread?
    private var states: [String: UnitStatus] = [:]
    private var objectPaths: [String: String] = [:]
    private var enabled: Set<String> = []
    private let onChange: @Sendable (String) -> Void

    public init(unitDirectory: String = "/run/fleet/units", onChange: @escaping @Sendable (String) -> Void) {
        self.unitDirectory = unitDirectory
        self.onChange = onChange
    }

    /// Connects to systemd (subscribing to its signals); fails when the bus is unreachable.
    public func connect() throws {
        bus = try SystemdBusThread { [weak self] path in
            guard let self else { return }
            Task { await self.changed(objectPath: path) }
        }
        try FileManager.default.createDirectory(atPath: unitDirectory, withIntermediateDirectories: true)
    }

    private func changed(objectPath: String) async {
        guard let name = objectPaths[objectPath] else { return }
        await refresh(name)
    }

    private func refresh(_ name: String) async {
        guard let bus, let path = objectPaths[name] else { return }
        let isService = name.hasSuffix(".service")
        let status = try? await bus.perform { bus throws(SystemdBusError) in
            let unit = "org.freedesktop.systemd1.Unit"
            let pid = isService ? try? bus.uint32Property(path: path, interface: "org.freedesktop.systemd1.Service", "MainPID") : nil
            return UnitStatus(
                load: try bus.stringProperty(path: path, interface: unit, "LoadState"),
                active: try bus.stringProperty(path: path, interface: unit, "ActiveState"),
                sub: try bus.stringProperty(path: path, interface: unit, "SubState"),
                mainPID: pid.flatMap { $0 == 0 ? nil : Int32(bitPattern: $0) })
        }
        guard let status, states[name] != status else { return }
        states[name] = status
        onChange(name)
    }

    public func load(_ name: String, text: String) async throws {
        guard let bus else { throw SystemdBusError(description: "not connected to systemd") }
        let file = unitDirectory + "/" + name
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let install = (try? UnitFile(parsing: text, file: name))?.sections.contains { $0.name == "Install" } ?? false
        let path = try await bus.perform { bus throws(SystemdBusError) in
            try bus.managerCall("LinkUnitFiles", [.strings([file]), .bool(true), .bool(true)])
            if install { try bus.managerCall("EnableUnitFiles", [.strings([name]), .bool(true), .bool(true)]) }
            try bus.reload()
            return try bus.managerCallReturningString("LoadUnit", [.string(name)])
        }
        if install { enabled.insert(name) }
        objectPaths[name] = path
        objectPaths[path] = name
        await refresh(name)
    }

    public func unload(_ name: String) async {
        await stop(name)
        guard let bus else { return }
        let file = unitDirectory + "/" + name
        _ = try? await bus.perform { bus throws(SystemdBusError) in
            // Removes the runtime link (and the enablement links) fleet made.
            try bus.managerCall("DisableUnitFiles", [.strings([name]), .bool(true)])
            try? FileManager.default.removeItem(atPath: file)
            try bus.reload()
        }
        enabled.remove(name)
        if let path = objectPaths.removeValue(forKey: name) { objectPaths[path] = nil }
        states[name] = nil
        onChange(name)
    }

    public func start(_ name: String) async {
        _ = try? await bus?.perform { bus throws(SystemdBusError) in try bus.unitCommand("start", unit: name) }
    }

    public func stop(_ name: String) async {
        guard states[name] != nil else { return }
        _ = try? await bus?.perform { bus throws(SystemdBusError) in try bus.unitCommand("stop", unit: name) }
        // Waits on the state the signals keep current (no D-Bus polling).
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline, let active = states[name]?.active, active != "inactive" && active != "failed" {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    public func status(_ name: String) async -> UnitStatus? { states[name] }

    public func journal(_ name: String, lines: Int) async -> [String] { UnitJournal.lines(of: name, count: lines) }

    public nonisolated func journalPath(_ name: String) -> String? { nil }

    public nonisolated func journalFollowArguments(_ name: String) -> [String]? { UnitJournal.followArguments(name) }

    public func shutdown() async {}
}

/// A unit's lines in the journal, read through our own `journal` applet (`-u`: the unit's
/// own entries, and those a root daemon tagged with `OBJECT_SYSTEMD_UNIT=`).
enum UnitJournal {
    static func lines(of unit: String, count: Int) -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = ["journal", "--no-pager", "-u", unit, "-n", String(count)]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return [] }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.hasPrefix("-- ") }
    }

    static func followArguments(_ unit: String) -> [String] { ["journal", "--no-pager", "-u", unit, "-f", "-n", "0"] }
}
