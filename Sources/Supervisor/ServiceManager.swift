import Foundation
import Glibc
import Synchronization
import UnitFile

/// A unit's state in systemd's words: `ActiveState` and `SubState`.
public struct ServiceState: Sendable, Hashable, CustomStringConvertible {
    public var active: String
    public var sub: String

    public init(_ active: String, _ sub: String) {
        self.active = active
        self.sub = sub
    }

    public static let dead = ServiceState("inactive", "dead")
    public static let failed = ServiceState("failed", "failed")
    public var description: String { "\(active)/\(sub)" }
}

/// The embedded supervisor: runs `.service` units itself where systemd is not PID 1
/// (containers, build machines), with systemd's start and stop sequences, `Type=`,
/// `Restart=`, timeouts, `KillMode=` (over the unit's process group: each unit's
/// processes run in a session of their own) and per-unit output capture.
public actor ServiceManager {
    public struct Options: Sendable {
        /// Where `<unit>.log` files go.
        public var logDirectory: String
        /// Where notify sockets go.
        public var runtimeDirectory: String
        /// systemd's start rate limit: more than `startLimitBurst` starts within
        /// `startLimitInterval` fail the unit (`start-limit-hit`).
        public var startLimitBurst = 5
        public var startLimitInterval = Duration.seconds(10)
        /// Output to journald rather than to log files (`ServiceOutput.journaldRuns`).
        public var journal = false

        public init(logDirectory: String, runtimeDirectory: String) {
            self.logDirectory = logDirectory
            self.runtimeDirectory = runtimeDirectory
        }
    }

    private struct Unit {
        var spec: ServiceSpec
        var state: ServiceState = .dead
        var run: Task<Void, Never>?
        var events: AsyncStream<UnitEvent>.Continuation?
        var mainPID: Int32?
        var starts: [ContinuousClock.Instant] = []
        var result = "success"
    }

    private let options: Options
    private var units: [String: Unit] = [:]
    private let onChange: @Sendable (String, ServiceState) -> Void

    /// `onChange` is called for every state change (on the manager's executor).
    public init(options: Options, onChange: @escaping @Sendable (String, ServiceState) -> Void = { _, _ in }) {
        self.options = options
        self.onChange = onChange
        try? FileManager.default.createDirectory(atPath: options.runtimeDirectory, withIntermediateDirectories: true)
    }

    /// Loads (or reloads) a unit's definition; a running unit keeps running the old one
    /// until restarted, as after `systemctl daemon-reload`.
    public func load(_ name: String, spec: ServiceSpec) {
        if units[name] == nil {
            units[name] = Unit(spec: spec)
        } else {
            units[name]!.spec = spec
        }
    }

    /// Loads a unit from its file's text.
    public func load(_ name: String, text: String) throws {
        let file = try UnitFile(parsing: text, file: name)
        load(name, spec: try ServiceSpec(file, unit: name))
    }

    public func isLoaded(_ name: String) -> Bool { units[name] != nil }

    public func state(_ name: String) -> ServiceState? { units[name]?.state }

    public func mainPID(_ name: String) -> Int32? { units[name]?.mainPID }

    /// systemd's `Result=` of the last run: `success`, `exit-code`, `signal`, `timeout`,
    /// `start-limit-hit`, `resources`.
    public func result(_ name: String) -> String? { units[name]?.result }

    /// Starts a loaded unit (nothing when it is already starting or running).
    /// The state changes at once (to `activating`), as a queued systemd start job shows.
    public func start(_ name: String) {
        guard var unit = units[name], unit.run == nil else { return }
        let (stream, continuation) = AsyncStream<UnitEvent>.makeStream()
        unit.events = continuation
        unit.result = "success"
        let runner = UnitRunner(name: name, spec: unit.spec, options: options, manager: self, events: continuation)
        unit.run = Task { await runner.run(stream) }
        units[name] = unit
        set(name, ServiceState("activating", "start-pre"), mainPID: nil)
    }

    /// systemd's start rate limit, counted at every start, automatic restarts included.
    func admitStart(_ name: String) -> Bool {
        guard units[name] != nil else { return false }
        let now = ContinuousClock.now
        units[name]!.starts = units[name]!.starts.filter { now - $0 < options.startLimitInterval } + [now]
        return units[name]!.starts.count <= options.startLimitBurst
    }

    /// Stops a unit and waits until it is inactive or failed.
    public func stop(_ name: String) async {
        guard let unit = units[name], let run = unit.run else { return }
        unit.events?.yield(.stop)
        await run.value
    }

    /// Stops (if needed) and forgets a unit.
    public func unload(_ name: String) async {
        await stop(name)
        units[name] = nil
    }

    /// Stops every unit (the daemon is shutting down).
    public func stopAll() async {
        for name in units.keys.sorted() { await stop(name) }
    }

    /// Waits until `name`'s state satisfies `condition` (tests, blocking starts).
    public func wait(for name: String, timeout: Duration, until condition: @escaping @Sendable (ServiceState) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let state = units[name]?.state, condition(state) { return true }
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    // MARK: Called by the runner

    func set(_ name: String, _ state: ServiceState, mainPID: Int32?) {
        guard units[name] != nil else { return }
        units[name]!.mainPID = mainPID
        if units[name]!.state != state {
            units[name]!.state = state
            onChange(name, state)
        }
    }

    func finish(_ name: String, result: String, failed: Bool) {
        guard units[name] != nil else { return }
        units[name]!.result = result
        units[name]!.run = nil
        units[name]!.events?.finish()
        units[name]!.events = nil
        set(name, failed ? .failed : .dead, mainPID: nil)
    }
}

enum UnitEvent: Sendable {
    case exited(pid: Int32, ServiceExit)
    case stop
    case notify([String: String])
    case timer(Int)
}

/// What one run of a unit needs that does not change while it runs.
private final class UnitRunner: Sendable {
    let name: String
    let spec: ServiceSpec
    let options: ServiceManager.Options
    let manager: ServiceManager
    let events: AsyncStream<UnitEvent>.Continuation

    init(name: String, spec: ServiceSpec, options: ServiceManager.Options, manager: ServiceManager, events: AsyncStream<UnitEvent>.Continuation) {
        self.name = name
        self.spec = spec
        self.options = options
        self.manager = manager
        self.events = events
    }

    func run(_ stream: AsyncStream<UnitEvent>) async {
        var loop = RunLoop(runner: self, events: stream.makeAsyncIterator())
        await loop.run()
    }
}

/// One start of a unit through to its end, restarts included: a sequential program over
/// the unit's events (process exits, notify messages, timers, the stop request), so
/// systemd's sequences read top to bottom. Owned by its task.
private struct RunLoop {
    let runner: UnitRunner
    var events: AsyncStream<UnitEvent>.Iterator
    var stopRequested = false
    var mainPID: Int32?
    var mainExit: ServiceExit?
    var timerToken = 0
    var ready = false
    var output: ServiceOutput?
    var notify: NotifySocket?
    var environment: [String: String] = [:]
    var identity: ServiceProcess.Identity?

    init(runner: UnitRunner, events: AsyncStream<UnitEvent>.Iterator) {
        self.runner = runner
        self.events = events
    }

    var spec: ServiceSpec { runner.spec }
    var name: String { runner.name }

    mutating func run() async {
        output = ServiceOutput(directory: runner.options.logDirectory, unit: name, journal: runner.options.journal)
        while true {
            guard await runner.manager.admitStart(name) else {
                output?.note("\(name): Start request repeated too quickly.")
                notify?.close()
                await runner.manager.finish(name, result: "start-limit-hit", failed: true)
                return
            }
            let (exit, result) = await startAndRun()
            let failed = result != "success"
            if !stopRequested, spec.restart.restarts(after: exit) {
                output?.note("\(name): Scheduled restart job (\(result)).")
                await publish("activating", "auto-restart")
                if await sleep(spec.restartDelay.duration) { break }
                continue
            }
            if failed { output?.note("\(name): Failed with result '\(result)'.") }
            notify?.close()
            await runner.manager.finish(name, result: result, failed: failed)
            return
        }
        notify?.close()
        await runner.manager.finish(name, result: "success", failed: false)
    }

    /// One pass of systemd's sequence. Returns how the service ended and systemd's result word.
    mutating func startAndRun() async -> (ServiceExit, String) {
        mainPID = nil
        mainExit = nil
        ready = false
        do {
            try prepareEnvironment()
        } catch {
            output?.note("\(name): \(error)")
            return (.exited(code: 1), "resources")
        }
        await publish("activating", "start-pre")
        for command in spec.execStartPre {
            let exit = await runHelper(command, timeout: spec.timeoutStart.duration)
            if stopRequested { return await stopSequence(ranMain: false, result: "success", exit: .exited(code: 0)) }
            if !exit.isClean && !command.prefixes.contains(.ignoreFailure) {
                return await stopSequence(ranMain: false, result: Self.result(exit), exit: exit)
            }
        }
        await publish("activating", "start")
        switch spec.type {
        case .oneshot:
            for command in spec.execStart {
                let exit = await runHelper(command, timeout: spec.timeoutStart.duration)
                if stopRequested { return await stopSequence(ranMain: false, result: "success", exit: .exited(code: 0)) }
                if !exit.isClean && !command.prefixes.contains(.ignoreFailure) {
                    return await stopSequence(ranMain: false, result: Self.result(exit), exit: exit)
                }
            }
        case .simple, .exec, .notify:
            guard let command = spec.execStart.first else { return (.exited(code: 1), "resources") }
            guard let pid = spawn(command) else {
                return await stopSequence(ranMain: false, result: "resources", exit: .exited(code: 203))
            }
            mainPID = pid
            if spec.type == .notify {
                let deadline = arm(spec.timeoutStart.duration)
                while !ready && mainExit == nil && !stopRequested {
                    if case .timer(let token) = await next(), token == deadline {
                        output?.note("\(name): start operation timed out. Terminating.")
                        return await stopSequence(ranMain: true, result: "timeout", exit: .timedOut)
                    }
                }
            }
        case .forking:
            guard let command = spec.execStart.first else { return (.exited(code: 1), "resources") }
            let exit = await runHelper(command, timeout: spec.timeoutStart.duration)
            if stopRequested { return await stopSequence(ranMain: false, result: "success", exit: .exited(code: 0)) }
            guard exit.isClean else { return await stopSequence(ranMain: false, result: Self.result(exit), exit: exit) }
            if let pidFile = spec.pidFile, let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
            {
                mainPID = pid
                let events = runner.events
                ProcessWatcher.shared.watchExit(of: pid) { events.yield(.exited(pid: pid, $0)) }
            }
        }
        if let exit = mainExit, spec.type != .oneshot {
            output?.note("\(name): Main process exited while starting, \(Self.describe(exit)).")
            return await stopSequence(ranMain: false, result: exit.isClean ? "protocol" : Self.result(exit), exit: exit)
        }
        await publish("activating", "start-post")
        for command in spec.execStartPost {
            let exit = await runHelper(command, timeout: spec.timeoutStart.duration)
            if !exit.isClean && !command.prefixes.contains(.ignoreFailure) {
                return await stopSequence(ranMain: true, result: Self.result(exit), exit: exit)
            }
        }
        if stopRequested { return await stopSequence(ranMain: true, result: "success", exit: .exited(code: 0)) }
        if spec.type == .oneshot || mainPID == nil {
            // A oneshot (or a forking service without a PID file) has nothing left running.
            guard spec.remainAfterExit else { return await stopSequence(ranMain: false, result: "success", exit: .exited(code: 0)) }
            await publish("active", "exited")
            while !stopRequested { _ = await next() }
            return await stopSequence(ranMain: true, result: "success", exit: .exited(code: 0))
        }
        await publish("active", "running")
        while mainExit == nil && !stopRequested { _ = await next() }
        if let exit = mainExit {
            output?.note("\(name): Main process exited, \(Self.describe(exit)).")
            if spec.remainAfterExit && exit.isClean {
                await publish("active", "exited")
                while !stopRequested { _ = await next() }
            }
            return await stopSequence(ranMain: true, result: exit.isClean ? "success" : Self.result(exit), exit: exit)
        }
        return await stopSequence(ranMain: true, result: "success", exit: .exited(code: 0))
    }

    /// ExecStop, then signals by KillMode with TimeoutStopSec before SIGKILL, then ExecStopPost.
    mutating func stopSequence(ranMain: Bool, result: String, exit: ServiceExit) async -> (ServiceExit, String) {
        var result = result
        var exit = exit
        if ranMain, !spec.execStop.isEmpty {
            await publish("deactivating", "stop")
            for command in spec.execStop { _ = await runHelper(command, timeout: spec.timeoutStop.duration) }
        }
        if let pid = mainPID, mainExit == nil, spec.killMode != .none {
            await publish("deactivating", "stop-sigterm")
            signal(pid, SIGTERM, group: spec.killMode == .controlGroup)
            let deadline = arm(spec.timeoutStop.duration)
            while mainExit == nil {
                guard case .timer(let token) = await next(), token == deadline else { continue }
                output?.note("\(name): State 'stop-sigterm' timed out. Killing.")
                await publish("deactivating", "stop-sigkill")
                signal(pid, SIGKILL, group: spec.killMode != .process)
                result = "timeout"
                exit = .timedOut
                while mainExit == nil { _ = await next() }
            }
        }
        // Whatever else is left in the unit's process group goes with it.
        if let pid = mainPID, spec.killMode == .controlGroup || spec.killMode == .mixed { kill(-pid, SIGKILL) }
        if !spec.execStopPost.isEmpty {
            await publish("deactivating", "stop-post")
            for command in spec.execStopPost { _ = await runHelper(command, timeout: spec.timeoutStop.duration) }
        }
        mainPID = nil
        return (exit, result)
    }

    // MARK: Pieces

    mutating func prepareEnvironment() throws {
        var environment = ["PATH": ServiceProcess.searchPath, "LANG": ProcessInfo.processInfo.environment["LANG"] ?? "C.UTF-8"]
        identity = nil
        if let user = spec.user {
            let found = try ServiceProcess.Identity.lookup(user)
            identity = found
            environment["USER"] = found.name
            environment["LOGNAME"] = found.name
            environment["HOME"] = found.home
            environment["SHELL"] = found.shell
        }
        for (key, value) in spec.environment { environment[key] = value }
        // EnvironmentFile= overrides Environment=, as in systemd; read at each start.
        for file in spec.environmentFiles {
            guard let text = try? String(contentsOfFile: file.path, encoding: .utf8) else {
                if file.optional { continue }
                throw ServiceProcess.Failure(message: "Failed to load environment files: \(file.path): No such file or directory")
            }
            for (key, value) in EnvironmentFile.parse(text) { environment[key] = value }
        }
        if spec.type == .notify {
            if notify == nil {
                let events = runner.events
                notify = try NotifySocket(path: runner.options.runtimeDirectory + "/" + name + ".notify") { events.yield(.notify($0)) }
            }
            environment["NOTIFY_SOCKET"] = notify!.path
        }
        self.environment = environment
    }

    /// Starts a command, its output into the unit's log; its exit arrives as an event.
    mutating func spawn(_ command: ExecCommand) -> Int32? {
        var environment = self.environment
        if let pid = mainPID { environment["MAINPID"] = String(pid) }
        let arguments =
            command.prefixes.contains(.noEnvironmentExpansion)
            ? command.arguments : ServiceProcess.expand(command.arguments, environment: environment)
        do {
            let executable = try ServiceProcess.resolve(command)
            let identifier = (arguments.first.map { ($0 as NSString).lastPathComponent }) ?? name
            let box = PIDBox()
            let writer = try output!.pipe {
                // The first line can be read before fork's caller stored the PID; it will
                // in a moment.
                for _ in 0..<1000 where box.pid == 0 { usleep(10) }
                return (identifier, box.pid)
            }
            defer { close(writer) }
            let identity = command.prefixes.contains(.fullPrivileges) ? nil : self.identity
            let pid = try ServiceProcess.spawn(
                executable: executable, arguments: arguments, environment: environment, directory: spec.workingDirectory,
                identity: identity, output: writer)
            box.pid = pid
            let events = runner.events
            ProcessWatcher.shared.watchExit(of: pid) { events.yield(.exited(pid: pid, $0)) }
            return pid
        } catch {
            output?.note("\(name): Failed to execute \(command.path): \(error)")
            return nil
        }
    }

    /// Runs a helper command (ExecStartPre, ExecStop …) to its end, killing it on timeout.
    mutating func runHelper(_ command: ExecCommand, timeout: Duration) async -> ServiceExit {
        guard let pid = spawn(command) else { return .exited(code: 203) }
        let deadline = arm(timeout)
        while true {
            switch await next() {
            case .exited(let exited, let exit) where exited == pid: return exit
            case .timer(let token) where token == deadline:
                output?.note("\(name): \(command.path) timed out. Killing.")
                kill(-pid, SIGKILL)
                while true {
                    if case .exited(let exited, _) = await next(), exited == pid { return .timedOut }
                }
            default: continue
            }
        }
    }

    /// The next event, with the bookkeeping every wait shares.
    mutating func next() async -> UnitEvent {
        guard let event = await events.next() else {
            stopRequested = true
            return .stop
        }
        switch event {
        case .exited(let pid, let exit) where pid == mainPID: mainExit = exit
        case .stop: stopRequested = true
        case .notify(let fields):
            if fields["READY"] == "1" { ready = true }
            if let text = fields["MAINPID"], let pid = Int32(text), pid > 0, pid != mainPID {
                mainPID = pid
                let events = runner.events
                ProcessWatcher.shared.watchExit(of: pid) { events.yield(.exited(pid: pid, $0)) }
            }
        default: break
        }
        return event
    }

    /// A timer event `duration` from now; returns its token.
    mutating func arm(_ duration: Duration) -> Int {
        timerToken += 1
        let token = timerToken
        let events = runner.events
        Task {
            try? await Task.sleep(for: duration)
            events.yield(.timer(token))
        }
        return token
    }

    /// Sleeps `duration`; true when a stop arrived meanwhile.
    mutating func sleep(_ duration: Duration) async -> Bool {
        let token = arm(duration)
        while !stopRequested {
            if case .timer(let fired) = await next(), fired == token { return false }
        }
        return true
    }

    mutating func publish(_ active: String, _ sub: String) async {
        await runner.manager.set(name, ServiceState(active, sub), mainPID: mainPID)
    }

    func signal(_ pid: Int32, _ signal: Int32, group: Bool) {
        if group { kill(-pid, signal) } else { kill(pid, signal) }
        // A stopped process must wake up to die of SIGTERM.
        if signal == SIGTERM { _ = group ? kill(-pid, SIGCONT) : kill(pid, SIGCONT) }
    }

    static func result(_ exit: ServiceExit) -> String {
        switch exit {
        case .exited: "exit-code"
        case .killed: "signal"
        case .timedOut: "timeout"
        case .watchdog: "watchdog"
        }
    }

    static func describe(_ exit: ServiceExit) -> String {
        switch exit {
        case .exited(let code): "code=exited, status=\(code)/\(code == 0 ? "SUCCESS" : "FAILURE")"
        case .killed(let signal): "code=killed, status=\(signal)/\(String(cString: strsignal(signal)))"
        case .timedOut: "code=killed, status=timeout"
        case .watchdog: "code=killed, status=watchdog"
        }
    }
}

/// The PID of a process whose output pipe exists before the fork returns (its first line
/// may be read before `spawn` returns the PID).
private final class PIDBox: Sendable {
    private let value = Atomic<Int32>(0)
    var pid: Int32 {
        get { value.load(ordering: .acquiring) }
        set { value.store(newValue, ordering: .releasing) }
    }
}

extension TimeSpan {
    /// As a Swift duration; `infinity` becomes a century.
    var duration: Duration { isInfinite ? .seconds(3_153_600_000) : .microseconds(Int64(microseconds)) }
}
