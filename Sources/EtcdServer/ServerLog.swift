import Glibc
import GoFormat
import Net

/// The member's log as etcd 3.4 writes it: capnslog's text lines (3.4's default logger) or
/// zap's JSON lines (`--logger=zap`), to the outputs `--log-outputs` names. Tools wait for
/// some of these lines (etcd's own e2e harness waits for `published` and `enabled
/// capabilities for version`), so the events that mark the member's progress keep etcd's
/// wording in both forms.
public final class ServerLog: Sendable {
    public enum Format: String, Sendable { case capnslog, zap }

    /// capnslog's levels and letters; zap names them as `level`.
    public enum Level: Int, Sendable, Comparable {
        case debug, info, notice, warning, error, fatal

        var letter: String { ["D", "I", "N", "W", "E", "C"][rawValue] }
        var zapName: String { ["debug", "info", "info", "warn", "error", "fatal"][rawValue] }
        /// syslog priority, for the journal.
        var priority: Int { [7, 6, 5, 4, 3, 2][rawValue] }

        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }

        /// `--log-level` (etcd 3.4: debug, info, warn, error, panic, fatal).
        public init?(flag: String) {
            switch flag {
            case "debug": self = .debug
            case "info": self = .info
            case "warn": self = .warning
            case "error": self = .error
            case "panic", "fatal": self = .fatal
            default: return nil
            }
        }
    }

    /// Where lines go (`--log-outputs`: `default`, `stderr`, `stdout`, a file path, `journal`).
    public enum Output: Sendable, Equatable {
        case standardError, standardOutput, journal
        case file(String)

        public init(flag: String) {
            switch flag {
            case "default", "stderr": self = .standardError
            case "stdout": self = .standardOutput
            case "journal": self = .journal
            default: self = .file(flag)
            }
        }
    }

    /// A zap field's value.
    public enum Value: Sendable, ExpressibleByStringLiteral {
        case string(String)
        case strings([String])
        case int(Int64)
        case bool(Bool)

        public init(stringLiteral value: String) { self = .string(value) }

        var json: String {
            switch self {
            case .string(let text): return GoJSONString.quote(text)
            case .strings(let list): return "[" + list.map(GoJSONString.quote).joined(separator: ",") + "]"
            case .int(let number): return String(number)
            case .bool(let flag): return flag ? "true" : "false"
            }
        }
    }

    public struct LogError: Error, CustomStringConvertible {
        public var description: String
    }

    public let format: Format
    public let level: Level
    private let descriptors: [Int32]
    private let journal: Bool

    /// A log to standard error (`--log-outputs=default`).
    public convenience init(format: Format = .capnslog, level: Level = .info) {
        self.init(format: format, level: level, descriptors: [STDERR_FILENO], journal: false)
    }

    private init(format: Format, level: Level, descriptors: [Int32], journal: Bool) {
        self.format = format
        self.level = level
        self.descriptors = descriptors
        self.journal = journal
    }

    /// Opens the outputs (files are appended to, created 0600 as etcd's zap does).
    public static func open(format: Format, level: Level, outputs: [Output]) throws(LogError) -> ServerLog {
        var descriptors: [Int32] = []
        var journal = false
        for output in outputs.isEmpty ? [.standardError] : outputs {
            switch output {
            case .standardError: descriptors.append(STDERR_FILENO)
            case .standardOutput: descriptors.append(STDOUT_FILENO)
            case .journal:
                guard access(Self.journalSocket, F_OK) == 0 else {
                    throw LogError(description: "cannot use journal output: \(Self.journalSocket) does not exist (is systemd-journald running?)")
                }
                journal = true
            case .file(let path):
                let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
                guard descriptor >= 0 else {
                    throw LogError(description: "cannot open log output \(path): \(String(cString: strerror(errno)))")
                }
                descriptors.append(descriptor)
            }
        }
        return ServerLog(format: format, level: level, descriptors: descriptors, journal: journal)
    }

    /// Logs one event. `package` and `text` are its capnslog form (`etcdserver: text`);
    /// `caller`, `message` and `fields` its zap form, as etcd 3.4 words them.
    public func log(
        _ level: Level, _ package: String, _ text: @autoclosure () -> String,
        caller: String, message: @autoclosure () -> String? = nil, _ fields: KeyValuePairs<String, Value> = [:]
    ) {
        guard level >= self.level else { return }
        let line: String
        switch format {
        case .capnslog:
            line = "\(GoLogTime.capnslog()) \(level.letter) | \(package): \(text())\n"
        case .zap:
            var json = "{\"level\":\"\(level.zapName)\",\"ts\":\"\(GoLogTime.zap())\",\"caller\":\(GoJSONString.quote(caller)),"
            json += "\"msg\":" + GoJSONString.quote(message() ?? text())
            for (key, value) in fields { json += "," + GoJSONString.quote(key) + ":" + value.json }
            line = json + "}\n"
        }
        let bytes = Array(line.utf8)
        for descriptor in descriptors { Self.writeAll(descriptor, bytes) }
        if journal { Self.sendToJournal(message: String(line.dropLast()), priority: level.priority) }
    }

    public func info(_ package: String, _ text: @autoclosure () -> String, caller: String, message: @autoclosure () -> String? = nil, _ fields: KeyValuePairs<String, Value> = [:]) {
        log(.info, package, text(), caller: caller, message: message(), fields)
    }

    public func warning(_ package: String, _ text: @autoclosure () -> String, caller: String, message: @autoclosure () -> String? = nil, _ fields: KeyValuePairs<String, Value> = [:]) {
        log(.warning, package, text(), caller: caller, message: message(), fields)
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }

    static let journalSocket = "/run/systemd/journal/socket"

    /// journald's native protocol: one datagram of `FIELD=value` lines.
    private static func sendToJournal(message: String, priority: Int) {
        let single = !message.contains("\n")
        var payload = Array("PRIORITY=\(priority)\nSYSLOG_IDENTIFIER=etcd\n".utf8)
        if single {
            payload += Array("MESSAGE=\(message)\n".utf8)
        } else {
            // A value with newlines goes as NAME, newline, 64-bit little-endian length, bytes.
            payload += Array("MESSAGE\n".utf8)
            withUnsafeBytes(of: UInt64(message.utf8.count).littleEndian) { payload += $0 }
            payload += Array(message.utf8) + [0x0A]
        }
        UnixDatagram.send(payload, to: journalSocket)
    }
}
