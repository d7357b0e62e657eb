import Foundation
import Journal
import Testing

/// Random inputs for the parsers and encoders: they never crash, and what can round-trip
/// does.
@Suite struct JournalPropertyTests {
    @Test func absoluteTimesRoundTrip() throws {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let seconds = Int.random(in: 0...4_000_000_000, using: &random)
            var moment = time_t(seconds)
            var parts = tm()
            gmtime_r(&moment, &parts)
            let text = String(
                format: "%04d-%02d-%02d %02d:%02d:%02d", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour,
                parts.tm_min, parts.tm_sec)
            #expect(try JournalTime.parse(text, now: 0, utc: true) == UInt64(seconds) * 1_000_000, "\(text)")
        }
    }

    @Test func arbitraryTimeAndPriorityTextNeverCrashes() {
        var random = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789-+:. @abcdehimnorstuwyUTC".unicodeScalars)
        for _ in 0..<20_000 {
            let text = String(String.UnicodeScalarView((0..<Int.random(in: 0...14, using: &random)).map { _ in alphabet.randomElement(using: &random)! }))
            _ = try? JournalTime.parse(text, now: 1_795_705_258_474_028, utc: Bool.random(using: &random))
            _ = try? JournalMatches.priorities(text)
        }
    }

    @Test func printableValuesBecomeJSONStringsThatDecodeBack() throws {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let scalars = (0..<Int.random(in: 0...40, using: &random)).map { _ in
                Unicode.Scalar(UInt32.random(in: 0x09...0x2FF, using: &random)) ?? "x"
            }
            let text = String(String.UnicodeScalarView(scalars))
            var output: [UInt8] = []
            JournalFormatter.appendJSONString(ArraySlice(text.utf8), into: &output)
            let decoded = try JSONSerialization.jsonObject(with: Data(output), options: [.fragmentsAllowed]) as? String
            #expect(decoded == text)
        }
    }

    @Test func printabilityIsValidUTF8WithoutControls() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let bytes = (0..<Int.random(in: 0...8, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let expected: Bool
            if let text = String(validating: bytes, as: UTF8.self) {
                expected = text.unicodeScalars.allSatisfy { scalar in
                    !(scalar.value < 0x20 && scalar != "\t" && scalar != "\n") && !(0x7F...0x9F).contains(scalar.value)
                }
            } else {
                expected = false
            }
            #expect(JournalFormatter.isPrintable(bytes[...], newlineAllowed: true) == expected, "\(bytes)")
        }
    }
}
