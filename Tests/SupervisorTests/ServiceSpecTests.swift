import Testing
import UnitFile

@testable import Supervisor

@Suite struct ServiceSpecTests {
    private func spec(_ service: String) throws(ServiceSpecError) -> ServiceSpec {
        // The unit text is a literal here: a parse failure is a broken test, not input.
        let file = (try? UnitFile(parsing: "[Service]\n" + service, file: "t.service")) ?? UnitFile()
        return try ServiceSpec(file, unit: "t.service")
    }

    @Test func readsTheDirectivesTheSupervisorUses() throws {
        let parsed = try spec(
            """
            Type=notify
            ExecStartPre=-/bin/mkdir -p /run/app
            ExecStart=/usr/bin/app --port 8080
            ExecStop=/bin/kill -TERM $MAINPID
            Restart=on-failure
            RestartSec=2s
            TimeoutStopSec=5
            KillMode=mixed
            Environment="GREETING=hello world" MODE=fast
            EnvironmentFile=-/etc/app.env
            WorkingDirectory=/srv
            User=nobody

            """)
        #expect(parsed.type == .notify)
        #expect(parsed.execStartPre.first?.prefixes.contains(.ignoreFailure) == true)
        #expect(parsed.execStart.first?.arguments == ["/usr/bin/app", "--port", "8080"])
        #expect(parsed.restart == .onFailure && parsed.restartDelay == TimeSpan(seconds: 2))
        #expect(parsed.timeoutStop == TimeSpan(seconds: 5) && parsed.killMode == .mixed)
        #expect(parsed.environment.map { "\($0.0)=\($0.1)" } == ["GREETING=hello world", "MODE=fast"])
        #expect(parsed.environmentFiles.map(\.path) == ["/etc/app.env"] && parsed.environmentFiles[0].optional)
        #expect(parsed.workingDirectory == "/srv" && parsed.user == "nobody")
    }

    @Test func followsSystemdsRulesForTypeAndExecStart() throws {
        #expect(try spec("ExecStart=/bin/true\n").type == .simple)
        #expect(try spec("ExecStartPre=/bin/true\n").type == .oneshot, "no ExecStart: oneshot")
        #expect(try spec("Type=oneshot\nExecStart=/bin/a\nExecStart=/bin/b\n").execStart.count == 2)
        #expect(try spec("ExecStart=/bin/a\nExecStart=\nExecStart=/bin/b\n").execStart.map(\.path) == ["/bin/b"])
        #expect(throws: ServiceSpecError.self) { try spec("ExecStart=/bin/a\nExecStart=/bin/b\n") }
        #expect(throws: ServiceSpecError.self) { try spec("Type=simple\n") }
        #expect(throws: ServiceSpecError.self) { try spec("Type=idle-ish\nExecStart=/bin/a\n") }
        #expect(throws: ServiceSpecError.self) { try spec("ExecStart=/bin/a\nRestart=sometimes\n") }
        #expect(throws: ServiceSpecError.self) { try spec("ExecStart=/bin/a\nRestartSec=soon\n") }
        #expect(throws: ServiceSpecError.self) { try spec("ExecStart=/bin/a\nEnvironment=NOEQUALS\n") }
    }

    /// systemd.service(5)'s table of which exits restart under which policy.
    @Test func restartPoliciesFollowSystemdsTable() {
        let exits: [ServiceExit] = [.exited(code: 0), .exited(code: 1), .killed(signal: 15), .killed(signal: 9), .timedOut, .watchdog]
        let table: [ServiceSpec.RestartPolicy: [Bool]] = [
            .no: [false, false, false, false, false, false],
            .always: [true, true, true, true, true, true],
            .onSuccess: [true, false, true, false, false, false],
            .onFailure: [false, true, false, true, true, true],
            .onAbnormal: [false, false, false, true, true, true],
            .onAbort: [false, false, false, true, false, false],
            .onWatchdog: [false, false, false, false, false, true],
        ]
        for (policy, expected) in table {
            #expect(exits.map(policy.restarts) == expected, "\(policy)")
        }
    }

    @Test func environmentFilesReadAsSystemdReadsThem() {
        let parsed = EnvironmentFile.parse(
            """
            # a comment
            ; another
            A=1
              B = spaced
            C="quoted value"
            D='single'
            E=con\\
            tinued
            =nameless
            not an assignment
            """)
        #expect(parsed.map { "\($0.0)=\($0.1)" } == ["A=1", "B=spaced", "C=quoted value", "D=single", "E=continued"])
    }
}
