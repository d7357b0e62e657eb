import Foundation
import TestSupport
import Testing

/// The real `coreos` binary, started as a process.
@Suite("Multi-call binary")
struct MultiCallTests {
    let coreos = ProcessRunner.coreosBinary

    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "coreos-links-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func versionReportsTheThreeLibraries() throws {
        let run = try ProcessRunner.run(coreos, ["--version"])
        #expect(run.status == 0)
        let lines = run.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("coreos ") == true)
        #expect(lines.contains { $0.hasPrefix("libsystemd 2") })
        #expect(lines.contains { $0.hasPrefix("libyaml 0.") })
        #expect(lines.contains { $0.hasPrefix("libarchive 3.") })
    }

    /// libsystemd, libyaml and libarchive are loaded on first use: a store member, which
    /// uses none of them, maps none of them (nor what they pull in).
    @Test func aStoreMemberLoadsNoOptionalLibrary() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = Int.random(in: 30000..<40000)
        let member = Process()
        member.executableURL = URL(fileURLWithPath: coreos)
        member.arguments = [
            "etcd", "--data-dir", directory + "/m.etcd", "--listen-client-urls", "http://127.0.0.1:\(port)",
            "--advertise-client-urls", "http://127.0.0.1:\(port)", "--listen-peer-urls", "http://127.0.0.1:\(port + 1)",
            "--initial-advertise-peer-urls", "http://127.0.0.1:\(port + 1)",
            "--initial-cluster", "default=http://127.0.0.1:\(port + 1)",
        ]
        member.standardOutput = ProcessRunner.nullDevice()
        member.standardError = ProcessRunner.nullDevice()
        try member.run()
        defer {
            member.terminate()
            member.waitUntilExit()
        }
        Thread.sleep(forTimeInterval: 1)
        #expect(member.isRunning)
        let maps = try String(contentsOfFile: "/proc/\(member.processIdentifier)/maps", encoding: .utf8)
        for library in ["libsystemd", "libyaml", "libarchive", "libxml2"] {
            #expect(!maps.contains(library), "\(library) is mapped by a store member")
        }
    }

    @Test func bareAndHelpListApplets() throws {
        for arguments in [[], ["--help"]] {
            let run = try ProcessRunner.run(coreos, arguments)
            #expect(run.status == 0)
            #expect(run.standardOutput.contains("Applets:"))
            #expect(run.standardOutput.contains("systemd-escape"))
        }
        let list = try ProcessRunner.run(coreos, ["--list"])
        #expect(list.standardOutput.split(separator: "\n").contains("systemd-escape"))
    }

    /// `etcd --help` and `--version` as etcd 3.4 has them, and every etcd 3.4 server flag
    /// listed (an experimental or tuning flag of a part we lack is accepted, not refused).
    @Test func etcdHelpVersionAndFlags() throws {
        for arguments in [["etcd", "--help"], ["etcd", "-h"]] {
            let help = try ProcessRunner.run(coreos, arguments)
            #expect(help.status == 0)
            for flag in ["--config-file", "--wal-dir", "--listen-metrics-urls", "--max-concurrent-streams", "--client-crl-file", "--log-outputs", "--max-wals"] {
                #expect(help.standardOutput.contains(flag), "\(flag) is not in etcd --help")
            }
        }
        let version = try ProcessRunner.run(coreos, ["etcd", "--version"])
        #expect(version.status == 0 && version.standardOutput.hasPrefix("etcd Version: 3.4.23\n"))
        let unknown = try ProcessRunner.run(coreos, ["etcd", "--no-such-flag"])
        #expect(unknown.status == 2 && unknown.standardError.contains("flag provided but not defined: -no-such-flag"))
    }

    @Test func unknownAppletIsAUsageError() throws {
        let run = try ProcessRunner.run(coreos, ["no-such-applet"])
        #expect(run.status == 2)
        #expect(run.standardOutput.isEmpty)
        #expect(run.standardError.contains("unknown applet 'no-such-applet'"))
        #expect(run.standardError.contains("Applets:"))
    }

    @Test func installLinksCreatesExactlyTheTableAndIsIdempotent() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let applets = try ProcessRunner.run(coreos, ["--list"]).standardOutput.split(separator: "\n").map(String.init)
        let first = try ProcessRunner.run(coreos, ["install-links", "--dir", directory])
        #expect(first.status == 0, "\(first.standardError)")
        let created = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(Set(applets).isSubset(of: Set(created)))
        for name in created {
            let target = try FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + name)
            #expect(
                target == (try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") as NSString)
                    .deletingLastPathComponent + "/coreos" || target.hasSuffix("/coreos"))
        }
        let second = try ProcessRunner.run(coreos, ["install-links", "--dir", directory])
        #expect(second.status == 0 && second.standardOutput.isEmpty)

        // Each link reaches its applet.
        let escape = try ProcessRunner.run(directory + "/systemd-escape", ["--path", "/var/lib/etcd"])
        #expect(escape.status == 0 && escape.standardOutput == "var-lib-etcd\n")
    }

    @Test func installLinksKeepsRegularFilesWithoutForce() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let victim = directory + "/systemd-escape"
        try "keep me".write(toFile: victim, atomically: true, encoding: .utf8)
        let refused = try ProcessRunner.run(coreos, ["install-links", "--dir", directory, "systemd-escape"])
        #expect(refused.status == 1)
        #expect(refused.standardError.contains("regular file"))
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep me")
        let forced = try ProcessRunner.run(coreos, ["install-links", "--dir", directory, "--force", "systemd-escape"])
        #expect(forced.status == 0)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: victim)) != nil)
        let unknown = try ProcessRunner.run(coreos, ["install-links", "--dir", directory, "not-an-applet"])
        #expect(unknown.status == 2)
    }
}

/// `systemd-escape` through a link to `coreos`, against Debian's systemd-escape: same
/// stdout, stderr and exit status for each argument vector.
@Suite("systemd-escape applet differential")
struct SystemdEscapeAppletTests {
    static let cases: [[String]] = [
        ["a", "b", "c"], ["--", "-a"], ["/a/b", "x y"], ["--path", "/a/b", "/", ""], ["-p", "a/b"],
        ["--path", "/a/../b"],
        ["--path", "."], ["--suffix=mount", "/a/b"], ["--suffix", "service", "-p", "/x"], ["--suffix=bogus", "x"],
        ["--template=foo@.service", "a/b", "c d"], ["--template=foo.service", "x"],
        ["--template=a@.service", "--suffix=mount", "x"],
        ["-u", "a\\x2db-c"], ["-u", "--path", "a-b"], ["-u", "-p", "-"], ["-u", "--instance", "foo@a\\x2db.service"],
        ["-u", "--instance", "foo@.service"], ["-u", "--instance", "foo.service"],
        ["-u", "--template=a@.service", "a@x.service"],
        ["-u", "--template=a@.service", "b@x.service"], ["-u", "--template=a@.service", "x"], ["-u", "a\\x2"],
        ["--unescape", "ok", "bad\\q"], ["-m", "foo bar"], ["-m", "/dev/sda"], ["-m", "/a/b c"], ["-m", "x.mount"],
        ["-m", "--path", "x"], ["-m", "--suffix=mount", "x"], ["-m", "-u", "x"], ["--instance", "x"],
        ["-u", "--suffix=mount", "x"],
        ["-m"], [], ["--bogus"], ["-z"], ["--suffix"], ["--help"], ["--suf=mount", "a"], ["--un", "a-b"],
    ]

    @Test func matchesSystemdEscape() throws {
        let reference = try #require(
            ProcessRunner.which("systemd-escape"), "systemd-escape (package systemd) is required")
        let directory = NSTemporaryDirectory() + "coreos-escape-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let link = directory + "/systemd-escape"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: ProcessRunner.coreosBinary)
        for arguments in Self.cases {
            let want = try ProcessRunner.run(reference, arguments)
            let got = try ProcessRunner.run(link, arguments)
            #expect(got.status == want.status, "\(arguments): status")
            #expect(got.standardOutput == want.standardOutput, "\(arguments): stdout")
            if arguments != ["--help"] {
                // getopt prefixes messages with argv[0]: the two programs differ only there.
                let expected = want.standardError.replacingOccurrences(of: reference + ":", with: link + ":")
                #expect(got.standardError == expected, "\(arguments): stderr")
            }
        }
    }
}
