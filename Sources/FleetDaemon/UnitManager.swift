import Foundation
import Supervisor
import UnitFile

/// A unit's state as systemd reports it (`LoadState`, `ActiveState`, `SubState`).
public struct UnitStatus: Sendable, Hashable {
    public var load: String
    public var active: String
    public var sub: String
    public var mainPID: Int32?

    public init(load: String, active: String, sub: String, mainPID: Int32? = nil) {
        self.load = load
        self.active = active
        self.sub = sub
        self.mainPID = mainPID
    }
}

/// What the agent needs of whatever runs units on its machine: systemd over D-Bus, or
/// the embedded supervisor. Changes are reported through the `onChange` given at creation.
public protocol UnitManager: Sendable {
    /// Writes and loads a unit (replacing an older definition of the same name).
    func load(_ name: String, text: String) async throws
    /// Stops (if running) and removes a unit.
    func unload(_ name: String) async
    func start(_ name: String) async
    /// Stops and waits until the unit is inactive or failed.
    func stop(_ name: String) async
    func status(_ name: String) async -> UnitStatus?
    /// The unit's recent output, newest last (`fleetctl journal`).
    func journal(_ name: String, lines: Int) async -> [String]
    /// Where the unit's output is appended, for following it.
    func journalPath(_ name: String) -> String?
    /// Or: the arguments of our own binary that follow it (`journal -u NAME -f`).
    func journalFollowArguments(_ name: String) -> [String]?
    /// Stops everything on shutdown.
    func shutdown() async
}

/// Units run by the embedded supervisor (where systemd is not PID 1). `.service` units
/// run as systemd would run them; `.target` units only group (active while started); other
/// unit types need systemd and report `LoadState=error`. Their output goes to journald when
/// it runs (found by `journalctl -u`), else to per-unit log files.
public actor EmbeddedUnitManager: UnitManager {
    private let services: ServiceManager
    private let logDirectory: String
    private let toJournal: Bool
    private var targets: [String: Bool] = [:]
    private var unsupported: Set<String> = []
    private let onChange: @Sendable (String) -> Void

    public init(logDirectory: String, runtimeDirectory: String, onChange: @escaping @Sendable (String) -> Void) {
        self.logDirectory = logDirectory
        self.onChange = onChange
        toJournal = ServiceOutput.journaldRuns
        var options = ServiceManager.Options(logDirectory: logDirectory, runtimeDirectory: runtimeDirectory + "/notify")
        options.journal = toJournal
        services = ServiceManager(options: options, onChange: { name, _ in onChange(name) })
    }

    public func load(_ name: String, text: String) async throws {
        if name.hasSuffix(".service") {
            try await services.load(name, text: text)
        } else if name.hasSuffix(".target") {
            if targets[name] == nil { targets[name] = false }
        } else {
            unsupported.insert(name)
        }
        onChange(name)
    }

    public func unload(_ name: String) async {
        await services.unload(name)
        targets[name] = nil
        unsupported.remove(name)
        onChange(name)
    }

    public func start(_ name: String) async {
        if targets[name] != nil {
            targets[name] = true
            onChange(name)
        } else {
            await services.start(name)
        }
    }

    public func stop(_ name: String) async {
        if targets[name] != nil {
            targets[name] = false
            onChange(name)
        } else {
            await services.stop(name)
        }
    }

    public func status(_ name: String) async -> UnitStatus? {
        if let active = targets[name] { return UnitStatus(load: "loaded", active: active ? "active" : "inactive", sub: active ? "active" : "dead") }
        if unsupported.contains(name) { return UnitStatus(load: "error", active: "inactive", sub: "dead") }
        guard let state = await services.state(name) else { return nil }
        return UnitStatus(load: "loaded", active: state.active, sub: state.sub, mainPID: await services.mainPID(name))
    }

    public func journal(_ name: String, lines: Int) async -> [String] {
        if toJournal { return UnitJournal.lines(of: name, count: lines) }
        guard let path = journalPath(name), let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return Array(text.split(separator: "\n").suffix(lines).map(String.init))
    }

    public nonisolated func journalPath(_ name: String) -> String? { toJournal ? nil : logDirectory + "/" + name + ".log" }

    public nonisolated func journalFollowArguments(_ name: String) -> [String]? { toJournal ? UnitJournal.followArguments(name) : nil }

    public func shutdown() async { await services.stopAll() }
}
