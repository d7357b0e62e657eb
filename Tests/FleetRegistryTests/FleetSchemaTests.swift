import Testing
import UnitFile

@testable import FleetRegistry

@Suite struct FleetSchemaTests {
    @Test func pageTokensAreFleetsLittleEndianPairInURLBase64() throws {
        #expect(FleetSchema.PageToken(page: 2).encoded == "ZAACAA==")
        #expect(try FleetSchema.PageToken(decoding: "ZAACAA==").page == 2)
        #expect(throws: FleetSchema.TokenError(message: "token limit must be 100")) { try FleetSchema.PageToken(decoding: "AQABAA==") }
        #expect(throws: FleetSchema.TokenError(message: "token page must be greater than zero")) { try FleetSchema.PageToken(decoding: "ZAAAAA==") }
        #expect(throws: FleetSchema.TokenError.self) { try FleetSchema.PageToken(decoding: "!!") }
    }

    @Test func pagesSliceAsFleetDoes() {
        let items = Array(0..<250)
        let (first, next) = FleetSchema.PageToken(page: 1).slice(items)
        #expect(first == Array(0..<100) && next == FleetSchema.PageToken(page: 2).encoded)
        let (last, end) = FleetSchema.PageToken(page: 3).slice(items)
        #expect(last == Array(200..<250) && end == nil)
        // An exactly full last page still points at an (empty) next page, as fleet's does.
        let (full, after) = FleetSchema.PageToken(page: 1).slice(Array(0..<100))
        #expect(full.count == 100 && after != nil)
        #expect(FleetSchema.PageToken(page: 2).slice(Array(0..<100)) == ([], nil))
    }

    @Test func optionsRoundTripThroughUnitText() throws {
        let options = [
            FleetSchema.UnitOption(section: "Unit", name: "Description", value: "Hello"),
            FleetSchema.UnitOption(section: "Service", name: "ExecStart", value: "/bin/echo a"),
            FleetSchema.UnitOption(section: "Service", name: "Restart", value: "always"),
            FleetSchema.UnitOption(section: "X-Fleet", name: "Global", value: "true"),
        ]
        let text = try FleetSchema.text(of: options)
        #expect(text == "[Unit]\nDescription=Hello\n\n[Service]\nExecStart=/bin/echo a\nRestart=always\n\n[X-Fleet]\nGlobal=true\n")
        #expect(FleetSchema.options(of: try .init(parsing: text, file: "x.service")) == options)
    }
}
