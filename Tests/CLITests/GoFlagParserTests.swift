import CLI
import Testing

@Suite struct GoFlagParserTests {
    let flags = [
        GoFlag(["ttl"], .int, default: "0", "key time-to-live in seconds"),
        GoFlag(["recursive", "r"], .bool, "recurse"),
        GoFlag(["with-value"], .string, "previous value"),
        GoFlag(["timeout"], .duration, default: "2s", "per request"),
    ]

    @Test func parsesGoFlagSyntaxAndStopsAtTheFirstOperand() throws {
        let parser = GoFlagParser(flags)
        let result = try parser.parse(["-ttl", "5", "--r", "-with-value=a=b", "--timeout=1.5s", "/key", "-ttl", "9"])
        #expect(result.int("ttl") == 5)
        #expect(result.bool("recursive"))
        #expect(result.string("with-value") == "a=b")
        #expect(result.string("timeout") == "1.5s")
        #expect(result.arguments == ["/key", "-ttl", "9"])
        #expect(try parser.parse(["--", "-x"]).arguments == ["-x"])
        #expect(try parser.parse(["-", "x"]).arguments == ["-", "x"])
        #expect(try parser.parse(["-r=false"]).bool("recursive") == false)
    }

    @Test func errorsUseGoWording() {
        let parser = GoFlagParser(flags)
        #expect(throws: UsageError("flag provided but not defined: -bogus")) { try parser.parse(["--bogus"]) }
        #expect(throws: UsageError("flag needs an argument: -ttl")) { try parser.parse(["--ttl"]) }
        #expect(throws: UsageError("invalid value \"abc\" for flag -ttl: parse error")) { try parser.parse(["-ttl", "abc"]) }
        #expect(throws: UsageError("invalid boolean value \"x\" for -r: parse error")) { try parser.parse(["-r=x"]) }
        #expect(throws: UsageError("bad flag syntax: ---ttl")) { try parser.parse(["---ttl"]) }
    }

    @Test func reorderMovesCommandFlagsAheadLikeURFaveCLI() {
        let parser = GoFlagParser(flags)
        #expect(parser.reorder(["/k", "v", "--ttl", "5"]) == ["--ttl", "5", "/k", "v"])
        #expect(parser.reorder(["-r", "/dir"]) == ["-r", "/dir"])
        // A `--` goes to the front of the operands; words after it never move.
        #expect(parser.reorder(["/k", "--", "--ttl", "5"]) == ["--", "/k", "--ttl", "5"])
        #expect(parser.reorder(["-r", "/k", "--", "cmd"]) == ["-r", "/k", "--", "cmd"])
        #expect(parser.reorder(["/k", "-x"]) == ["/k", "-x"])
    }

    @Test func helpRowsAlignLikeTabwriter() {
        let rows = GoFlagParser.helpRows([
            GoFlag(["sort"], .bool, "sorted"), GoFlag(["recursive", "r"], .bool, "all"), GoFlag(["p"], .bool, "slash"),
            GoFlag(["ttl"], .int, default: "0", "seconds"),
        ])
        #expect(rows == [
            "   --sort           sorted", "   --recursive, -r  all", "   -p               slash",
            "   --ttl value      seconds (default: 0)",
        ])
    }
}
