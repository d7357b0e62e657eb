public import UnitFile

/// What the embedded supervisor needs of a `.service` unit's `[Service]` section (the
/// supervisor runs units itself where systemd is not PID 1), parsed and checked once.
/// Unknown directives are left alone, as systemd leaves directives it does not use.
public struct ServiceSpec: Sendable, Hashable {
    public enum ServiceType: String, Sendable, Hashable {
        case simple, exec, oneshot, forking, notify
    }

    /// systemd's `Restart=` values.
    public enum RestartPolicy: String, Sendable, Hashable {
        case no
        case always
        case onSuccess = "on-success"
        case onFailure = "on-failure"
        case onAbnormal = "on-abnormal"
        case onAbort = "on-abort"
        case onWatchdog = "on-watchdog"
    }

    public enum KillMode: String, Sendable, Hashable {
        case controlGroup = "control-group"
        case mixed, process, none
    }

    public var type = ServiceType.simple
    public var execStartPre: [ExecCommand] = []
    public var execStart: [ExecCommand] = []
    public var execStartPost: [ExecCommand] = []
    public var execStop: [ExecCommand] = []
    public var execStopPost: [ExecCommand] = []
    public var restart = RestartPolicy.no
    public var restartDelay = TimeSpan(microseconds: 100_000)
    public var timeoutStop = TimeSpan(seconds: 90)
    public var timeoutStart = TimeSpan(seconds: 90)
    public var killMode = KillMode.controlGroup
    public var remainAfterExit = false
    /// `Environment=` assignments in order (a later one wins).
    public var environment: [(String, String)] = []
    /// `EnvironmentFile=` paths; a leading `-` (kept in `optional`) tolerates a missing file.
    public var environmentFiles: [(path: String, optional: Bool)] = []
    public var workingDirectory: String?
    public var user: String?
    public var pidFile: String?

    public static func == (a: ServiceSpec, b: ServiceSpec) -> Bool {
        a.type == b.type && a.execStartPre == b.execStartPre && a.execStart == b.execStart && a.execStartPost == b.execStartPost
            && a.execStop == b.execStop && a.execStopPost == b.execStopPost && a.restart == b.restart
            && a.restartDelay == b.restartDelay && a.timeoutStop == b.timeoutStop && a.timeoutStart == b.timeoutStart
            && a.killMode == b.killMode && a.remainAfterExit == b.remainAfterExit
            && a.environment.map { $0.0 + "=" + $0.1 } == b.environment.map { $0.0 + "=" + $0.1 }
            && a.environmentFiles.map { "\($0.optional)\($0.path)" } == b.environmentFiles.map { "\($0.optional)\($0.path)" }
            && a.workingDirectory == b.workingDirectory && a.user == b.user && a.pidFile == b.pidFile
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(type)
        hasher.combine(execStart)
    }

    public init() {}

    /// Reads `[Service]`; errors name the line. systemd's rules: an empty assignment
    /// resets a list; `Type=` defaults to `simple`, or `oneshot` without `ExecStart=`;
    /// only `oneshot` may have several `ExecStart=` commands.
    public init(_ file: UnitFile, unit: String) throws(ServiceSpecError) {
        for entry in file.sections.filter({ $0.name == "Service" }).flatMap(\.entries) {
            func fail(_ message: String) -> ServiceSpecError { ServiceSpecError(unit: unit, line: entry.line, message: message) }
            func commands() throws(ServiceSpecError) -> [ExecCommand] {
                do {
                    return try ExecCommand.parse(entry.value)
                } catch {
                    throw fail(error.description)
                }
            }
            func span() throws(ServiceSpecError) -> TimeSpan {
                do {
                    return try TimeSpan(parsing: entry.value)
                } catch {
                    throw fail(error.description)
                }
            }
            let value = entry.value
            switch entry.key {
            case "Type":
                guard let type = ServiceType(rawValue: value) else { throw fail("unknown Type=\(value)") }
                self.type = type
            case "ExecStartPre": execStartPre = value.isEmpty ? [] : execStartPre + (try commands())
            case "ExecStart": execStart = value.isEmpty ? [] : execStart + (try commands())
            case "ExecStartPost": execStartPost = value.isEmpty ? [] : execStartPost + (try commands())
            case "ExecStop": execStop = value.isEmpty ? [] : execStop + (try commands())
            case "ExecStopPost": execStopPost = value.isEmpty ? [] : execStopPost + (try commands())
            case "Restart":
                guard let policy = RestartPolicy(rawValue: value) else { throw fail("unknown Restart=\(value)") }
                restart = policy
            case "RestartSec": restartDelay = try span()
            case "TimeoutStopSec": timeoutStop = try span()
            case "TimeoutStartSec": timeoutStart = try span()
            case "TimeoutSec":
                timeoutStop = try span()
                timeoutStart = timeoutStop
            case "KillMode":
                guard let mode = KillMode(rawValue: value) else { throw fail("unknown KillMode=\(value)") }
                killMode = mode
            case "RemainAfterExit":
                do {
                    remainAfterExit = try UnitBoolean.parse(value)
                } catch {
                    throw fail(error.description)
                }
            case "Environment":
                if value.isEmpty {
                    environment = []
                } else {
                    for assignment in QuotedWords.split(value).words {
                        guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
                            throw fail("Environment= wants NAME=VALUE, got \"\(assignment)\"")
                        }
                        environment.append((String(assignment[..<equals]), String(assignment[assignment.index(after: equals)...])))
                    }
                }
            case "EnvironmentFile":
                if value.isEmpty {
                    environmentFiles = []
                } else {
                    let optional = value.hasPrefix("-")
                    environmentFiles.append((String(optional ? value.dropFirst() : Substring(value)), optional))
                }
            case "WorkingDirectory": workingDirectory = value.isEmpty ? nil : value
            case "User": user = value.isEmpty ? nil : value
            case "PIDFile": pidFile = value.isEmpty ? nil : value
            default: break
            }
        }
        let explicitType = file.value("Type", in: "Service") != nil
        if execStart.isEmpty {
            guard !explicitType || type == .oneshot else {
                throw ServiceSpecError(unit: unit, line: nil, message: "Service has no ExecStart= setting, which is only allowed for Type=oneshot services")
            }
            type = .oneshot
        }
        if execStart.count > 1 && type != .oneshot {
            throw ServiceSpecError(unit: unit, line: nil, message: "Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services")
        }
    }
}

public struct ServiceSpecError: Error, Hashable, Sendable, CustomStringConvertible {
    public var unit: String
    public var line: Int?
    public var message: String
    public var description: String { "\(unit)\(line.map { ":\($0)" } ?? ""): \(message)" }
}

/// How a service's main process ended, as systemd tells its results apart.
public enum ServiceExit: Sendable, Hashable {
    case exited(code: Int32)
    case killed(signal: Int32)
    /// It did not start or stop in time.
    case timedOut
    case watchdog

    /// Exit 0, or SIGHUP, SIGINT, SIGTERM or SIGPIPE (systemd's clean signals).
    public var isClean: Bool {
        switch self {
        case .exited(let code): code == 0
        case .killed(let signal): [1, 2, 13, 15].contains(signal)
        case .timedOut, .watchdog: false
        }
    }
}

extension ServiceSpec.RestartPolicy {
    /// systemd.service(5)'s table: whether `Restart=` restarts after this exit. A stop
    /// asked for by the user never restarts; the caller does not ask then.
    public func restarts(after exit: ServiceExit) -> Bool {
        switch self {
        case .no: false
        case .always: true
        case .onSuccess: exit.isClean
        case .onFailure: !exit.isClean
        case .onAbnormal:
            switch exit {
            case .exited: false
            case .killed: !exit.isClean
            case .timedOut, .watchdog: true
            }
        case .onAbort:
            if case .killed = exit { !exit.isClean } else { false }
        case .onWatchdog: exit == .watchdog
        }
    }
}

/// `EnvironmentFile=` contents: `NAME=VALUE` lines; `#` and `;` start comments; values may
/// be quoted (single or double) and a line ending in `\` continues on the next.
public enum EnvironmentFile {
    public static func parse(_ text: String) -> [(String, String)] {
        var result: [(String, String)] = []
        var pending = ""
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = String(rawLine)
            if line.hasSuffix("\\") {
                line.removeLast()
                pending += line
                continue
            }
            line = pending + line
            pending = ""
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            guard !trimmed.isEmpty, trimmed.first != "#", trimmed.first != ";",
                let equals = trimmed.firstIndex(of: "=")
            else { continue }
            let name = trimmed[..<equals].trimmingSuffix { $0 == " " || $0 == "\t" }
            var value = String(trimmed[trimmed.index(after: equals)...]).trimmingPrefix { $0 == " " || $0 == "\t" }
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            guard !name.isEmpty else { continue }
            result.append((String(name), String(value)))
        }
        return result
    }
}

extension Substring {
    fileprivate func trimmingSuffix(while predicate: (Character) -> Bool) -> Substring {
        var end = endIndex
        while end > startIndex, predicate(self[index(before: end)]) { end = index(before: end) }
        return self[startIndex..<end]
    }
}

extension String {
    fileprivate func trimmingPrefix(while predicate: (Character) -> Bool) -> String { String(drop(while: predicate)) }
}
