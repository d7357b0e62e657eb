import TestSupport
import Testing
import UnitFile

/// Generated-corpus properties: serialization round-trips, and any input either parses
/// into a model that round-trips or fails with a positioned error (never a crash or hang).
@Suite("Unit-file properties")
struct UnitFilePropertyTests {
    static let keyAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.@%")
    static let valueAlphabet = Array(
        "abcXYZ019 \t=[]#;\\\"'%$/-.:@é日本🚀\u{0B}\r"
    )

    static func randomText(_ alphabet: [Character], length: Int, using generator: inout SeededGenerator) -> String {
        String((0..<length).map { _ in generator.pick(alphabet) })
    }

    /// A random model of the shape the parser produces (trimmed keys/values, no newlines,
    /// no trailing lone backslash), which the serializer must accept.
    static func randomModel(using generator: inout SeededGenerator) -> UnitFile {
        var unit = UnitFile()
        for _ in 0..<Int.random(in: 0...4, using: &generator) {
            var section = UnitFile.Section(
                name: randomText(
                    keyAlphabet + [" "], length: Int.random(in: 1...12, using: &generator), using: &generator))
            for _ in 0..<Int.random(in: 0...6, using: &generator) {
                var key = randomText(keyAlphabet, length: Int.random(in: 1...10, using: &generator), using: &generator)
                while let first = key.first, "#;[.".contains(first) { key.removeFirst() }
                if key.isEmpty { key = "K" }
                var value = randomText(
                    valueAlphabet, length: Int.random(in: 0...30, using: &generator), using: &generator)
                value = trimmedLikeParser(value)
                if value.utf8.reversed().prefix(while: { $0 == UInt8(ascii: "\\") }).count % 2 == 1 { value += "x" }
                section.entries.append(.init(key: key, value: value))
            }
            unit.sections.append(section)
        }
        return unit
    }

    static func trimmedLikeParser(_ text: String) -> String {
        let bytes = Array(text.utf8)
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }

    @Test func serializeThenParseIsIdentity() throws {
        let seed = SeededGenerator.seed(fallback: 0xC0DE_0001)
        var generator = SeededGenerator(seed: seed)
        for iteration in 0..<2_000 {
            let model = Self.randomModel(using: &generator)
            let text = try model.serialized()
            let reparsed = try UnitFile(parsing: text)
            #expect(reparsed.withoutPositions == model, "seed \(seed) iteration \(iteration):\n\(text)")
        }
    }

    /// Random texts built from unit-file fragments, including comments, continuations,
    /// blank lines and odd whitespace: parse → serialize → parse is the identity.
    @Test func parseSerializeParseIsIdentity() throws {
        let seed = SeededGenerator.seed(fallback: 0xC0DE_0002)
        var generator = SeededGenerator(seed: seed)
        let fragments = [
            "[Unit]\n", "[Service]\n", "[X-Fleet]\n", "  [Odd Name]  \n", "# comment\n", "; comment\n", "\n", "   \n",
            "Description=hello world\n", "ExecStart=/bin/sh -c 'echo hi' \\\n", "  --more args\n",
            "Key = spaced value \n", "Empty=\n", "Back=slash\\\\\n", "Uni=é日本\n", "Tab=\ta\tb\t\n",
            "Continued=a\\\n", "# inside\n", "b\n", "CRLF=yes\r\n", "Eq=a=b=c\n",
        ]
        var parsedCount = 0
        for iteration in 0..<3_000 {
            let text =
                "[Start]\n"
                + (0..<Int.random(in: 0...12, using: &generator)).map { _ in generator.pick(fragments) }.joined()
            guard let first = try? UnitFile(parsing: text) else { continue }
            parsedCount += 1
            let serialized = try first.serialized()
            let second = try UnitFile(parsing: serialized)
            #expect(second.withoutPositions == first.withoutPositions, "seed \(seed) iteration \(iteration):\n\(text)")
        }
        #expect(parsedCount > 1_000)
    }

    /// Random bytes: the parser returns or throws a positioned error; whatever parses round-trips.
    @Test func hostileBytesNeverCrash() throws {
        let seed = SeededGenerator.seed(fallback: 0xC0DE_0003)
        var generator = SeededGenerator(seed: seed)
        let interesting: [UInt8] =
            Array("[]=#;\\\n\r \t.aZ".utf8) + [0x00, 0xC3, 0xA9, 0xFF, 0xE2, 0x82, 0xAC, 0xED, 0xA0, 0x80]
        for _ in 0..<5_000 {
            let length = Int.random(in: 0...200, using: &generator)
            let bytes = (0..<length).map { _ in
                Bool.random(using: &generator)
                    ? generator.pick(interesting) : UInt8.random(in: 0...255, using: &generator)
            }
            do {
                let unit = try UnitFile(parsing: bytes)
                let again = try UnitFile(parsing: try unit.serialized())
                #expect(again.withoutPositions == unit.withoutPositions, "seed \(seed): \(bytes)")
            } catch {
                #expect(error.line >= 1)
            }
        }
    }

    @Test func serializerRefusesWhatCannotRoundTrip() {
        let bad: [UnitFile] = [
            UnitFile(sections: [.init(name: "S", entries: [.init(key: "K", value: "a\nb")])]),
            UnitFile(sections: [.init(name: "S", entries: [.init(key: "K", value: "ends\\")])]),
            UnitFile(sections: [.init(name: "S", entries: [.init(key: "K=", value: "v")])]),
            UnitFile(sections: [.init(name: "S", entries: [.init(key: "#K", value: "v")])]),
            UnitFile(sections: [.init(name: "S", entries: [.init(key: "K", value: " padded")])]),
            UnitFile(sections: [.init(name: "S]", entries: [])]),
        ]
        for unit in bad {
            #expect(throws: UnitFileError.self) { try unit.serialized() }
        }
    }
}
