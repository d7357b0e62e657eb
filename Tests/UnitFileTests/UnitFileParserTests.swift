import Testing
import UnitFile

@Suite("Unit-file parsing")
struct UnitFileParserTests {
    @Test func sectionsKeysCommentsAndRepeats() throws {
        let text = """
            # leading comment
            ; another comment
            [Unit]
            Description = etcd key-value store  
            After=network.target

            [Service]
            ExecStartPre=/bin/a
            ExecStartPre=/bin/b
            Environment=A=1 B=2
            [X-Fleet]
            MachineMetadata=region=us
            """
        let unit = try UnitFile(parsing: text)
        #expect(unit.sectionNames == ["Unit", "Service", "X-Fleet"])
        #expect(unit.value("Description", in: "Unit") == "etcd key-value store")
        #expect(unit.values("ExecStartPre", in: "Service") == ["/bin/a", "/bin/b"])
        #expect(unit.value("Environment", in: "Service") == "A=1 B=2")
        #expect(unit.value("MachineMetadata", in: "X-Fleet") == "region=us")
        #expect(unit.assignments("After", in: "Unit").first?.line == 5)
    }

    @Test func continuationJoinsWithASpaceAndSkipsCommentLines() throws {
        let text = "[Service]\nExecStart=/bin/etcd \\\n  --name a \\\n# a comment inside\n  --data-dir /x\nUser=core\n"
        let unit = try UnitFile(parsing: text)
        #expect(unit.value("ExecStart", in: "Service") == "/bin/etcd    --name a    --data-dir /x")
        #expect(unit.value("User", in: "Service") == "core")
        #expect(unit.assignments("User", in: "Service").first?.line == 6)
    }

    @Test func evenBackslashesDoNotContinue() throws {
        let unit = try UnitFile(parsing: "[A]\nX=a\\\\\nY=b\n")
        #expect(unit.value("X", in: "A") == "a\\\\")
        #expect(unit.value("Y", in: "A") == "b")
    }

    @Test func continuationAtEndOfFileIsKept() throws {
        let unit = try UnitFile(parsing: "[A]\nX=a \\")
        #expect(unit.value("X", in: "A") == "a")
    }

    @Test func emptyAssignmentResetsList() throws {
        let unit = try UnitFile(parsing: "[S]\nL=a\nL=b\nL=\nL=c\n")
        #expect(unit.values("L", in: "S") == ["c"])
        #expect(unit.value("L", in: "S") == "c")
    }

    @Test func repeatedSectionsAreOneSection() throws {
        let unit = try UnitFile(parsing: "[S]\nL=a\n[T]\nX=1\n[S]\nL=b\n")
        #expect(unit.values("L", in: "S") == ["a", "b"])
        #expect(unit.sectionNames == ["S", "T"])
    }

    @Test func crlfAndBOM() throws {
        let unit = try UnitFile(parsing: [0xEF, 0xBB, 0xBF] + Array("[S]\r\nK=v\r\n".utf8))
        #expect(unit.value("K", in: "S") == "v")
    }

    @Test func valueMayContainEqualsAndBrackets() throws {
        let unit = try UnitFile(parsing: "[S]\nEnvironment=\"A=b c\" D=[e]\n")
        #expect(unit.value("Environment", in: "S") == "\"A=b c\" D=[e]")
    }

    @Test(arguments: [
        ("[S]\nnoequals\n", UnitFileError.Reason.missingEquals, 2, 1),
        ("K=v\n", .assignmentOutsideSection, 1, 1),
        ("[S]\n  =v\n", .emptyKey, 2, 3),
        ("[S\n", .invalidSectionHeader, 1, 1),
        ("[]\n", .emptySectionName, 1, 1),
        ("[S]\n.include /etc/x\n", .unsupportedDirective(".include"), 2, 1),
        ("[S]\nK=a\u{0}b\n", .nulByte, 2, 4),
    ])
    func errorsCarryLineAndColumn(text: String, reason: UnitFileError.Reason, line: Int, column: Int) {
        #expect(throws: UnitFileError(reason, file: "x.service", line: line, column: column)) {
            try UnitFile(parsing: text, file: "x.service")
        }
    }

    @Test func invalidUTF8IsRejectedWithPosition() {
        let bytes = Array("[S]\nK=ab".utf8) + [0xC3, 0x28] + Array("\n".utf8)
        #expect(throws: UnitFileError(.invalidUTF8, line: 2, column: 5)) { try UnitFile(parsing: bytes) }
        // Overlong encoding of '/' and a UTF-16 surrogate are invalid too.
        #expect(throws: UnitFileError.self) { try UnitFile(parsing: Array("[S]\nK=".utf8) + [0xC0, 0xAF]) }
        #expect(throws: UnitFileError.self) { try UnitFile(parsing: Array("[S]\nK=".utf8) + [0xED, 0xA0, 0x80]) }
    }

    @Test func errorDescriptionNamesFileLineAndColumn() {
        let error = UnitFileError(.missingEquals, file: "a.service", line: 3, column: 2)
        #expect(error.description == "a.service:3:2: missing '=' in assignment")
    }

    @Test func tenMegabyteLineIsRefusedQuickly() {
        let text = Array("[S]\nK=".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 10 << 20)
        #expect(throws: UnitFileError(.lineTooLong(limit: 1 << 20), line: 2, column: (1 << 20) + 1)) {
            try UnitFile(parsing: text, limits: UnitFileLimits(maxFileBytes: 64 << 20))
        }
        // With the default limits the file size bound trips first.
        #expect(throws: UnitFileError(.fileTooLarge(limit: 16 << 20), line: 1, column: 1)) {
            try UnitFile(parsing: text + text)
        }
    }

    @Test func endlessContinuationIsBounded() {
        // 600k short continuation lines join into one logical line above the 1 MiB limit.
        var text = Array("[S]\nK=".utf8)
        for _ in 0..<600_000 { text += Array("ab\\\n".utf8) }
        #expect(throws: UnitFileError.self) { try UnitFile(parsing: text) }
    }
}
