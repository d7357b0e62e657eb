import Testing

@testable import GoFormat

@Suite struct GoTabWriterTests {
    @Test func columnsAreTheWidestCellPlusOneRoundedToTabStops() {
        // fleet's own sample: `MACHINE\t\tIP\t\tMETADATA` over `148a18ff...\t10.10.1.1\t-`.
        let text = GoTabWriter.format([
            ["MACHINE", "IP", "METADATA"],
            ["148a18ff...", "10.10.1.1", "-"],
            ["491586a6...", "10.10.1.2", "region=us-west"],
        ])
        #expect(text == "MACHINE\t\tIP\t\tMETADATA\n148a18ff...\t10.10.1.1\t-\n491586a6...\t10.10.1.2\tregion=us-west\n")
    }

    @Test func aCellOfExactlyTabWidthGetsAWholeTabOfPadding() {
        // 8 characters plus the padding of 1 need two tab stops.
        #expect(GoTabWriter.format([["12345678", "x"], ["1", "y"]]) == "12345678\tx\n1\t\ty\n")
    }

    @Test func theLastCellIsNotPaddedAndShortLinesEndTheirBlock() {
        let text = GoTabWriter.format([["a", "b", "c"], ["only"], ["long-cell-here", "d"]])
        #expect(text == "a\tb\tc\nonly\nlong-cell-here\td\n")
    }

    @Test func widthsCountCharactersNotBytes() {
        #expect(GoTabWriter.format([["désolé", "x"], ["abcdef", "y"]]) == "désolé\tx\nabcdef\ty\n")
    }

    @Test func noLinesIsNoText() {
        #expect(GoTabWriter.format([]) == "")
    }
}
