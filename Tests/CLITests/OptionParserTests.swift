import CLI
import Testing

@Suite("GNU-style option parsing")
struct OptionParserTests {
    let parser = OptionParser([
        OptionSpec(long: "unescape", short: "u"),
        OptionSpec(long: "path", short: "p"),
        OptionSpec(long: "suffix", argument: .required),
        OptionSpec(long: "lines", short: "n", argument: .required),
        OptionSpec(long: "color", argument: .optional),
        OptionSpec(long: "colour"),
    ])

    @Test func permutedOperandsBundlesAndValues() throws {
        let parsed = try parser.parse(["a", "-up", "--suffix=mount", "b", "-n10", "--lines", "20", "--", "-x"])
        #expect(parsed.operands == ["a", "b", "-x"])
        #expect(parsed.has("unescape") && parsed.has("path"))
        #expect(parsed.last("suffix") == "mount")
        #expect(parsed.all("lines") == ["10", "20"])
        #expect(parsed.last("lines") == "20")
    }

    @Test func abbreviationsAndAmbiguity() throws {
        #expect(try parser.parse(["--suf", "x"]).last("suffix") == "x")
        #expect(throws: UsageError("option '--col' is ambiguous; possibilities: '--color' '--colour'")) {
            try parser.parse(["--col"])
        }
        // An exact match wins over a longer name sharing its prefix.
        #expect(try parser.parse(["--color"]).has("color"))
    }

    @Test func optionalArgumentsOnlyAttached() throws {
        let parsed = try parser.parse(["--color", "always"])
        #expect(parsed.last("color") == nil && parsed.operands == ["always"])
        #expect(try parser.parse(["--color=never"]).last("color") == "never")
    }

    @Test func errorsWordedLikeGetopt() {
        #expect(throws: UsageError("unrecognized option '--bogus'")) { try parser.parse(["--bogus"]) }
        #expect(throws: UsageError("invalid option -- 'z'")) { try parser.parse(["-z"]) }
        #expect(throws: UsageError("option requires an argument -- 'n'")) { try parser.parse(["-n"]) }
        #expect(throws: UsageError("option '--suffix' requires an argument")) { try parser.parse(["--suffix"]) }
        #expect(throws: UsageError("option '--path' doesn't allow an argument")) { try parser.parse(["--path=1"]) }
    }

    @Test func nonPermutingStopsAtFirstOperand() throws {
        let strict = OptionParser(parser.specs, permute: false)
        let parsed = try strict.parse(["-u", "cmd", "-p"])
        #expect(parsed.has("unescape") && !parsed.has("path") && parsed.operands == ["cmd", "-p"])
    }

    @Test func singleDashIsAnOperand() throws {
        #expect(try parser.parse(["-"]).operands == ["-"])
    }
}
