import Foundation
import Glibc
import Synchronization
import Testing

@testable import Supervisor

/// The embedded supervisor against real processes: each test gets directories of its own
/// and stops what it started, even when an expectation fails.
@Suite(.serialized) struct ServiceManagerTests {
    final class Recorder: Sendable {
        let states = Mutex<[String]>([])
        func record(_ state: ServiceState) { states.withLock { $0.append(state.description) } }
        var all: [String] { states.withLock { $0 } }
    }

    let directory: String
    let recorder = Recorder()
    let manager: ServiceManager

    init() {
        directory = NSTemporaryDirectory() + "supervisor-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var options = ServiceManager.Options(logDirectory: directory + "/logs", runtimeDirectory: directory + "/run")
        options.startLimitBurst = 50
        let recorder = self.recorder
        manager = ServiceManager(options: options) { _, state in recorder.record(state) }
    }

    private func with(_ name: String, _ service: String, body: () async throws -> Void) async throws {
        try await manager.load(name, text: "[Service]\n" + service)
        await manager.start(name)
        do {
            try await body()
        } catch {
            await manager.unload(name)
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        await manager.unload(name)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Alive and not a zombie waiting for a parent that never reaps it.
    private func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(close, offsetBy: 2)] != "Z"
    }

    private func log(_ name: String) -> String {
        (try? String(contentsOfFile: directory + "/logs/" + name + ".log", encoding: .utf8)) ?? ""
    }

    private func waitFor(_ name: String, _ active: String, _ sub: String? = nil, seconds: Int = 10) async -> Bool {
        await manager.wait(for: name, timeout: .seconds(seconds)) { $0.active == active && (sub == nil || $0.sub == sub) }
    }

    @Test func simpleServiceRunsAndStopsWithTerm() async throws {
        try await with("simple.service", "ExecStart=/bin/sleep 1000\n") {
            #expect(await waitFor("simple.service", "active", "running"))
            let pid = try #require(await manager.mainPID("simple.service"))
            #expect(kill(pid, 0) == 0)
            await manager.stop("simple.service")
            #expect(await manager.state("simple.service") == .dead)
            #expect(!isRunning(pid))
            #expect(await manager.result("simple.service") == "success")
        }
        #expect(recorder.all.starts(with: ["activating/start-pre", "activating/start", "activating/start-post", "active/running"]))
    }

    @Test func oneshotRunsEveryCommandAndRemainsWithRemainAfterExit() async throws {
        let marker = directory + "/marker"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try await with(
            "once.service",
            """
            Type=oneshot
            RemainAfterExit=yes
            ExecStartPre=/bin/sh -c 'echo pre >> \(marker)'
            ExecStart=/bin/sh -c 'echo one >> \(marker)'
            ExecStart=/bin/sh -c 'echo two >> \(marker)'
            ExecStartPost=/bin/sh -c 'echo post >> \(marker)'
            ExecStop=/bin/sh -c 'echo stop >> \(marker)'
            ExecStopPost=/bin/sh -c 'echo stoppost >> \(marker)'

            """
        ) {
            #expect(await waitFor("once.service", "active", "exited"))
            #expect((try? String(contentsOfFile: marker, encoding: .utf8)) == "pre\none\ntwo\npost\n")
            await manager.stop("once.service")
            #expect((try? String(contentsOfFile: marker, encoding: .utf8)) == "pre\none\ntwo\npost\nstop\nstoppost\n")
        }
    }

    @Test func oneshotWithoutRemainAfterExitEndsInactiveAndAFailureFails() async throws {
        try await with("quick.service", "Type=oneshot\nExecStart=/bin/true\n") {
            #expect(await waitFor("quick.service", "inactive", "dead"))
            #expect(recorder.all.contains("activating/start"))
        }
        try await with("bad.service", "Type=oneshot\nExecStart=/bin/sh -c 'exit 3'\nExecStart=/bin/echo never\n") {
            #expect(await waitFor("bad.service", "failed"))
            #expect(await manager.result("bad.service") == "exit-code")
            #expect(!log("bad.service").contains("never"))
        }
        try await with("ignored.service", "Type=oneshot\nExecStart=-/bin/sh -c 'exit 3'\nExecStart=/bin/echo reached\n") {
            #expect(await waitFor("ignored.service", "inactive", "dead"))
            #expect(log("ignored.service").contains("echo["))
            #expect(log("ignored.service").contains(": reached"))
        }
    }

    @Test func restartOnFailureRestartsAfterRestartSecButNotAfterSuccess() async throws {
        let counter = directory + "/count"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Fails twice, then exits cleanly: on-failure restarts twice and then stops.
        try await with(
            "flaky.service",
            """
            ExecStart=/bin/sh -c 'echo x >> \(counter); test $(wc -l < \(counter)) -ge 3'
            Restart=on-failure
            RestartSec=200ms

            """
        ) {
            #expect(await waitFor("flaky.service", "inactive", "dead", seconds: 15))
            let runs = try String(contentsOfFile: counter, encoding: .utf8).split(separator: "\n").count
            #expect(runs == 3)
            #expect(recorder.all.filter { $0 == "activating/auto-restart" }.count == 2)
        }
    }

    @Test func restartAlwaysRestartsACleanExitAndTheStartLimitEndsIt() async throws {
        var options = ServiceManager.Options(logDirectory: directory + "/logs", runtimeDirectory: directory + "/run")
        options.startLimitBurst = 3
        let limited = ServiceManager(options: options)
        try await limited.load("loop.service", text: "[Service]\nExecStart=/bin/true\nRestart=always\nRestartSec=50ms\n")
        await limited.start("loop.service")
        let ended = await limited.wait(for: "loop.service", timeout: .seconds(10)) { $0 == .failed }
        await limited.unload("loop.service")
        try? FileManager.default.removeItem(atPath: directory)
        #expect(ended)
    }

    @Test func stopTimeoutEscalatesToKill() async throws {
        try await with(
            "stubborn.service",
            """
            ExecStart=/bin/sh -c 'trap "" TERM; while :; do sleep 0.1; done'
            TimeoutStopSec=1

            """
        ) {
            #expect(await waitFor("stubborn.service", "active", "running"))
            try await Task.sleep(for: .milliseconds(200))
            let started = ContinuousClock.now
            await manager.stop("stubborn.service")
            let took = ContinuousClock.now - started
            #expect(took >= .milliseconds(900) && took < .seconds(5))
            #expect(recorder.all.contains("deactivating/stop-sigkill"))
            #expect(await manager.state("stubborn.service") == .failed)
            #expect(await manager.result("stubborn.service") == "timeout")
        }
    }

    @Test func killModeProcessLeavesTheRestAndControlGroupTakesAll() async throws {
        let pidFile = directory + "/child.pid"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let service = "ExecStart=/bin/sh -c 'sleep 1000 & echo $! > \(pidFile); wait'\n"
        try await with("group.service", service) {
            #expect(await waitFor("group.service", "active", "running"))
            try await Task.sleep(for: .milliseconds(300))
            let child = try #require(Int32(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
            await manager.stop("group.service")
            try await Task.sleep(for: .milliseconds(100))
            #expect(!isRunning(child))
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try await with("process.service", "KillMode=process\n" + service) {
            #expect(await waitFor("process.service", "active", "running"))
            try await Task.sleep(for: .milliseconds(300))
            let child = try #require(Int32(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
            await manager.stop("process.service")
            #expect(isRunning(child))
            kill(child, SIGKILL)
        }
    }

    @Test func notifyServiceIsActiveOnlyAfterReady() async throws {
        try await with(
            "notify.service",
            """
            Type=notify
            ExecStart=/bin/sh -c 'sleep 0.5; systemd-notify --ready; exec sleep 1000'

            """
        ) {
            try await Task.sleep(for: .milliseconds(200))
            #expect(await manager.state("notify.service") == ServiceState("activating", "start"))
            #expect(await waitFor("notify.service", "active", "running"))
        }
        try await with("silent.service", "Type=notify\nExecStart=/bin/sleep 1000\nTimeoutStartSec=500ms\n") {
            #expect(await waitFor("silent.service", "failed"))
            #expect(await manager.result("silent.service") == "timeout")
        }
    }

    @Test func environmentFilesOverrideEnvironmentAndExpandInArguments() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "# comment\nGREETING=\"hello from file\"\nEXTRA=a b\n".write(toFile: directory + "/env", atomically: true, encoding: .utf8)
        try await with(
            "env.service",
            """
            Type=oneshot
            Environment=GREETING=plain NAME=world
            EnvironmentFile=\(directory)/env
            EnvironmentFile=-\(directory)/missing
            ExecStart=/bin/echo ${GREETING} to ${NAME} $EXTRA
            ExecStart=/bin/sh -c 'echo "user=$USER cwd=$(pwd)"'
            WorkingDirectory=/tmp
            User=nobody

            """
        ) {
            #expect(await waitFor("env.service", "inactive", "dead"))
            let output = log("env.service")
            #expect(output.contains(": hello from file to world a b\n"))
            #expect(output.contains(": user=nobody cwd=/tmp\n"))
        }
        try await with("noenv.service", "Type=oneshot\nEnvironmentFile=\(directory)/missing\nExecStart=/bin/true\n") {
            #expect(await waitFor("noenv.service", "failed"))
            #expect(log("noenv.service").contains("Failed to load environment files"))
        }
    }

    @Test func aQuietUnitCreatesNoLogFile() async throws {
        try await with("quiet.service", "Type=oneshot\nExecStart=/bin/true\n") {
            #expect(await waitFor("quiet.service", "inactive", "dead"))
            #expect(!FileManager.default.fileExists(atPath: directory + "/logs/quiet.service.log"))
        }
    }

    @Test func outputIsCapturedLineByLineWithTheProcessName() async throws {
        try await with("talk.service", "ExecStart=/bin/sh -c 'echo out; echo err >&2; printf partial'\n") {
            #expect(await waitFor("talk.service", "inactive", "dead"))
            try await Task.sleep(for: .milliseconds(100))
            let lines = log("talk.service").split(separator: "\n")
            #expect(lines.contains { $0.hasSuffix(": out") && $0.contains(" sh[") })
            #expect(lines.contains { $0.hasSuffix(": err") })
            #expect(lines.contains { $0.hasSuffix(": partial") })
        }
    }

    @Test func aMissingExecutableFailsWithAClearLine() async throws {
        try await with("missing.service", "ExecStart=/nonexistent/binary\n") {
            #expect(await waitFor("missing.service", "failed"))
            #expect(log("missing.service").contains("/nonexistent/binary"))
        }
    }
}
