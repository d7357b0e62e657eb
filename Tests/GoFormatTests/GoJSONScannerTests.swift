import Testing

@testable import GoFormat

@Suite struct GoJSONScannerTests {
    private func error(_ text: String) -> String? {
        do {
            _ = try GoJSONScanner.values(in: Array(text.utf8))
            return nil
        } catch {
            return error.message
        }
    }

    /// Texts as Go 1.x's encoding/json words them for the same input.
    @Test func syntaxErrorsReadAsGoWritesThem() {
        #expect(error("{not json") == "invalid character 'n' looking for beginning of object key string")
        #expect(error("{\"a\" 1}") == "invalid character '1' after object key")
        #expect(error("{\"a\":1 \"b\"}") == "invalid character '\"' after object key:value pair")
        #expect(error("[1 2]") == "invalid character '2' after array element")
        #expect(error("{\"a\":tru}") == "invalid character '}' in literal true (expecting 'e')")
        #expect(error("{\"a\":-x}") == "invalid character 'x' in numeric literal")
        #expect(error("{\"a\":1.}") == "invalid character '}' after decimal point in numeric literal")
        #expect(error("{\"a\":\"\\q\"}") == "invalid character 'q' in string escape code")
        #expect(error("{\"a\":\"\n\"}") == "invalid character '\\n' in string literal")
        #expect(error("{\"a\":") == "unexpected EOF")
        #expect(error("'x'") == "invalid character '\\'' looking for beginning of value")
        #expect(error("") == nil)
    }

    @Test func splitsAStreamOfValuesAndNotesStrings() throws {
        let text = #" {"key":"YQ==","n":[1,{"key":"Yg=="}]} {"x":"}"} 12 "#
        let scanned = try GoJSONScanner.values(in: Array(text.utf8), noting: ["key"])
        #expect(scanned.values.count == 3)
        #expect(scanned.noted.map(\.text) == ["YQ==", "Yg=="])
    }

    @Test func base64ErrorsNameTheByteAsGoDoes() {
        #expect(GoJSONScanner.base64Error("YWJj") == nil)
        #expect(GoJSONScanner.base64Error("YQ==") == nil)
        #expect(GoJSONScanner.base64Error("***") == "illegal base64 data at input byte 0")
        #expect(GoJSONScanner.base64Error("YW*j") == "illegal base64 data at input byte 2")
    }
}
