import TestSupport
import Testing
import UnitFile

/// Our escaping against Debian's `systemd-escape` (systemd 252) on a generated corpus.
@Suite("systemd-escape differential")
struct EscapeDifferentialTests {
    static let pieces: [String] = [
        "a", "Z", "0", "9", ":", "_", ".", "-", "\\", "/", " ", "\t", "\n", "@", "%", "$", "'", "\"", "~", "+", "=",
        "é", "ß", "日本", "🚀", "\u{7F}", "..", "//", "x.service",
    ]
    static let pathComponents = ["a", "b.c", ".hidden", "..", ".", "", "x y", "é", "-", "\\", "etcd", "日本", "a-b"]

    static func corpus(seed: UInt64, count: Int) -> [String] {
        var generator = SeededGenerator(seed: seed)
        var result = ["", ".", "..", "/", ".dot", "/.dot", "-", "a-b", "héllo wörld", "...", "a.", "//x//"]
        while result.count < count {
            let length = Int.random(in: 1...12, using: &generator)
            result.append((0..<length).map { _ in generator.pick(pieces) }.joined())
        }
        return result
    }

    static func paths(seed: UInt64, count: Int) -> [String] {
        var generator = SeededGenerator(seed: seed)
        var result = ["/", "", "//", "/a//b/", "./a", "/a/.", "/a/./b", "a/b", "/.dot", "/a/../b"]
        while result.count < count {
            let components = (0..<Int.random(in: 1...5, using: &generator)).map { _ in generator.pick(pathComponents) }
            let leading = Int.random(in: 0..<4, using: &generator) == 0 ? "" : "/"
            let trailing = Int.random(in: 0..<4, using: &generator) == 0 ? "/" : ""
            result.append(leading + components.joined(separator: "/") + trailing)
        }
        return result
    }

    static func systemdEscape() throws -> String {
        try #require(ProcessRunner.which("systemd-escape"), "systemd-escape (Debian package systemd) is required")
    }

    /// Runs `systemd-escape OPTIONS -- inputs…` in batches and returns one result per input:
    /// the output, or nil where systemd-escape failed. Outputs of these modes contain no
    /// spaces (spaces are escaped), so a batch's line splits back into items.
    static func reference(_ options: [String], _ inputs: [String]) throws -> [String?] {
        let tool = try systemdEscape()
        var results: [String?] = []
        for start in stride(from: 0, to: inputs.count, by: 200) {
            let batch = Array(inputs[start..<min(start + 200, inputs.count)])
            let run = try ProcessRunner.run(tool, options + ["--"] + batch)
            if run.status == 0 {
                var line = run.standardOutput
                if line.hasSuffix("\n") { line.removeLast() }
                let items = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                try #require(items.count == batch.count, "unexpected output for batch: \(line)")
                results += items
            } else {
                for input in batch {
                    let single = try ProcessRunner.run(tool, options + ["--", input])
                    results.append(single.status == 0 ? String(single.standardOutput.dropLast()) : nil)
                }
            }
        }
        return results
    }

    @Test func plainEscape() throws {
        let seed = SeededGenerator.seed(fallback: 0xE5C_0001)
        let inputs = Self.corpus(seed: seed, count: 3_000)
        let expected = try Self.reference([], inputs)
        for (input, want) in zip(inputs, expected) {
            #expect(UnitNameEscaping.escape(input) == want, "seed \(seed) input \(input.debugDescription)")
        }
    }

    @Test func pathEscape() throws {
        let seed = SeededGenerator.seed(fallback: 0xE5C_0002)
        let inputs = Self.paths(seed: seed, count: 2_000)
        let expected = try Self.reference(["--path"], inputs)
        #expect(expected.contains(nil), "the corpus must exercise refused paths too")
        for (input, want) in zip(inputs, expected) {
            #expect((try? UnitNameEscaping.escapePath(input)) == want, "seed \(seed) input \(input.debugDescription)")
        }
    }

    @Test func templateAndMangle() throws {
        let seed = SeededGenerator.seed(fallback: 0xE5C_0003)
        let inputs = Self.corpus(seed: seed, count: 1_000)
        let template = try UnitName("foo@.service")
        let expected = try Self.reference(["--template=foo@.service"], inputs)
        for (input, want) in zip(inputs, expected) {
            #expect(
                (try? UnitNameEscaping.instance(of: template, escaping: input).name) == want,
                "input \(input.debugDescription)")
        }
        let mangleInputs =
            inputs.filter { !$0.isEmpty && !$0.hasPrefix("/") } + ["/dev/sda", "/sys/x", "/a b", "x.mount", "a@b"]
        let mangled = try Self.reference(["--mangle"], mangleInputs)
        for (input, want) in zip(mangleInputs, mangled) {
            #expect((try? UnitNameEscaping.mangle(input)) == want, "seed \(seed) input \(input.debugDescription)")
        }
    }

    /// Unescaping: the escaped forms of the corpus, plus malformed escapes; one process per
    /// input because unescaped text may contain spaces.
    @Test func unescape() throws {
        let tool = try Self.systemdEscape()
        let seed = SeededGenerator.seed(fallback: 0xE5C_0004)
        let escaped = Self.corpus(seed: seed, count: 150).map(UnitNameEscaping.escape)
        let malformed = ["a\\x2", "\\xzz", "a\\X2d", "\\", "a\\n", "--", "a-b-", "-a", "x\\x2fy", "\\x2e\\x2e"]
        for input in escaped + malformed {
            for path in [false, true] {
                let run = try ProcessRunner.run(
                    tool, (path ? ["--unescape", "--path", "--"] : ["--unescape", "--"]) + [input])
                let want: String? = run.status == 0 ? String(run.standardOutput.dropLast()) : nil
                let got = try? (path ? UnitNameEscaping.unescapePath(input) : UnitNameEscaping.unescape(input))
                #expect(got == want, "input \(input.debugDescription) path \(path)")
            }
        }
    }
}
