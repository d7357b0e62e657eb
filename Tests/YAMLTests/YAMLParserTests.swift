import Testing
import YAML

@Suite struct YAMLParserTests {
    static func parse(_ text: String, limits: YAMLLimits = YAMLLimits()) throws(YAMLError) -> YAMLNode? {
        try YAMLParser.parse(Array(text.utf8), limits: limits)
    }

    static func text(_ node: YAMLNode?) -> String? {
        if case .scalar(let text, _, _)? = node?.kind { return text }
        return nil
    }

    @Test func treesKeepSourceTextAndPositions() throws {
        let document = try #require(try Self.parse("#cloud-config\nhostname: node1\nwrite_files:\n  - path: /etc/x\n    permissions: 0644\n    enabled: off\n"))
        #expect(Self.text(document["hostname"]) == "node1")
        #expect(document["hostname"]?.line == 2 && document["hostname"]?.column == 11)
        guard case .sequence(let files)? = document["write_files"]?.kind else {
            Issue.record("write_files is not a sequence")
            return
        }
        #expect(Self.text(files[0]["permissions"]) == "0644", "as written, not octal 420")
        #expect(Self.text(files[0]["enabled"]) == "off")
        #expect(files[0].line == 4 && files[0]["path"]?.line == 4)
    }

    @Test func lastDuplicateKeyWinsAndMergeKeysMerge() throws {
        let document = try #require(try Self.parse("a: 1\na: 2\nbase: &base {x: 1, y: 2}\nother:\n  <<: *base\n  y: 3\n"))
        #expect(Self.text(document["a"]) == "2")
        #expect(Self.text(document["other"]?["x"]) == "1")
        #expect(Self.text(document["other"]?["y"]) == "3", "an explicit key wins over a merged one")
    }

    @Test func onlyTheFirstDocumentAndEmptyInput() throws {
        #expect(try Self.parse("") == nil)
        #expect(try Self.parse("# only a comment\n") == nil)
        let first = try Self.parse("a: 1\n---\na: 2\n---\n[unclosed\n")
        #expect(Self.text(first?["a"]) == "1")
        #expect(try Self.parse("~\n")?.isNull == true)
    }

    @Test func syntaxErrorsCarryTheirLine() {
        #expect(throws: YAMLError.self) { try Self.parse("a: 1\nb: [1, 2\nc: 3\n") }
        do {
            _ = try Self.parse("a: 1\n  b: 2\n")
            Issue.record("accepted a bad indentation")
        } catch {
            #expect(error.line == 2, "\(error)")
        }
        #expect(throws: YAMLError.self) { try Self.parse("a: *nowhere\n") }
    }

    @Test func aBillionLaughsIsRefusedQuickly() {
        var text = "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        for level in 1...9 {
            let previous = "*a\(level - 1)"
            text += "a\(level): &a\(level) [\(Array(repeating: previous, count: 10).joined(separator: ","))]\n"
        }
        let started = ContinuousClock.now
        do {
            _ = try Self.parse(text)
            Issue.record("a billion laughs was accepted")
        } catch {
            #expect(error.message.contains("aliases expand"), "\(error)")
            #expect(error.line >= 5)
        }
        #expect(ContinuousClock.now - started < .seconds(1))
    }

    @Test func deepNestingIsRefusedWhileParsing() {
        let depth = 100_000
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let started = ContinuousClock.now
        #expect(throws: YAMLError.self) { try Self.parse(text) }
        #expect(ContinuousClock.now - started < .seconds(1))
        var limits = YAMLLimits()
        limits.maxInputBytes = 10
        #expect(throws: YAMLError.self) { try Self.parse("a: 12345678901\n", limits: limits) }
    }
}
