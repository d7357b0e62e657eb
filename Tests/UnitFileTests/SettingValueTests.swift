import Testing
import UnitFile

@Suite("Setting values")
struct SettingValueTests {
    @Test(arguments: [
        ("5min 20s", UInt64(320_000_000)), ("5min20s", 320_000_000), ("1h", 3_600_000_000), ("90", 90_000_000),
        ("1.5h", 5_400_000_000), ("100ms", 100_000), ("2 weeks", 1_209_600_000_000), ("1y", 31_557_600_000_000),
        ("1M", 2_629_800_000_000), ("3us", 3), ("0", 0), (" 1d 2h ", 93_600_000_000), ("0.5s", 500_000),
    ])
    func timeSpans(text: String, microseconds: UInt64) throws {
        let span = try TimeSpan(parsing: text)
        #expect(span.microseconds == microseconds)
        #expect(try TimeSpan(parsing: span.description) == span)
    }

    @Test(arguments: ["", "abc", "5mins", "-1s", "1.2.3s", "99999999999999999999s", "5 parsecs", "s"])
    func invalidTimeSpans(text: String) {
        #expect(throws: SettingValueError.self) { try TimeSpan(parsing: text) }
    }

    @Test func infinityAndFormatting() throws {
        #expect(try TimeSpan(parsing: "infinity").isInfinite)
        #expect(TimeSpan(microseconds: 5_400_000_000).description == "1h 30min")
        #expect(TimeSpan(microseconds: 320_500_000).description == "5min 20s 500ms")
    }

    @Test func booleans() throws {
        for text in ["1", "yes", "Y", "true", "t", "ON"] { #expect(try UnitBoolean.parse(text)) }
        for text in ["0", "no", "N", "false", "f", "Off"] { #expect(try !UnitBoolean.parse(text)) }
        #expect(throws: SettingValueError.self) { try UnitBoolean.parse("maybe") }
    }

    @Test func commandLineQuotingAndEscapes() throws {
        let commands = try ExecCommand.parse(#"/bin/sh -c "echo \"hi there\"" 'single \x41' mid"dle word"s \s \u00e9"#)
        #expect(commands.count == 1)
        #expect(commands[0].path == "/bin/sh")
        #expect(commands[0].arguments == ["/bin/sh", "-c", "echo \"hi there\"", "single A", "middle words", " ", "é"])
    }

    @Test func commandLinePrefixesAndSeparators() throws {
        let commands = try ExecCommand.parse("-@/bin/true fake-name a ; +/usr/bin/env \\; x ; !!ls")
        #expect(commands.count == 3)
        #expect(commands[0].prefixes == [.ignoreFailure, .customArgv0])
        #expect(commands[0].arguments == ["fake-name", "a"])
        #expect(commands[1].prefixes == [.fullPrivileges])
        #expect(commands[1].arguments == ["/usr/bin/env", ";", "x"])
        #expect(commands[2].prefixes == [.ambientFallback])
        #expect(commands[2].path == "ls")
    }

    @Test(arguments: [
        "\"unterminated", "/bin/x \\q", "/bin/x \\", "+!/bin/x", "./rel", "@/bin/x", "/a/../b", "/bin/x \\x",
        "/bin/x \\xff",
    ])
    func badCommandLines(text: String) {
        #expect(throws: SettingValueError.self) { try ExecCommand.parse(text) }
    }

    @Test func splitWordsKeepsSemicolons() throws {
        #expect(try ExecCommand.splitWords("a ; 'b c'") == ["a", ";", "b c"])
    }
}
