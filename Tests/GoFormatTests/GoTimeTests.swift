import Foundation
import Testing

@testable import GoFormat

@Suite struct GoTimeTests {
    /// As Go's `time.Duration.String()` prints them.
    @Test func durationsReadAsGoPrintsThem() {
        #expect(GoTime.duration(nanoseconds: 0) == "0s")
        #expect(GoTime.duration(nanoseconds: 999) == "999ns")
        #expect(GoTime.duration(nanoseconds: 1_500) == "1.5µs")
        #expect(GoTime.duration(nanoseconds: 350_000_000) == "350ms")
        #expect(GoTime.duration(nanoseconds: 1_803_475_458) == "1.803475458s")
        #expect(GoTime.duration(nanoseconds: 120_000_000_000) == "2m0s")
        #expect(GoTime.duration(nanoseconds: 3_723_500_000_000) == "1h2m3.5s")
        #expect(GoTime.duration(nanoseconds: -2_000_000_000) == "-2s")
    }

    @Test func timesReadAsGoJSONWritesThem() {
        #expect(GoTime.rfc3339Nano(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
        #expect(GoTime.rfc3339Nano(Date(timeIntervalSince1970: 1_700_000_000.25)) == "2023-11-14T22:13:20.25Z")
    }
}
