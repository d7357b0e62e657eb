import Testing
import UnitFile

@Suite("Unit names and escaping")
struct UnitNameTests {
    @Test func shapes() throws {
        let plain = try UnitName("etcd-member.service")
        #expect(plain.instance == nil && plain.prefix == "etcd-member" && plain.type == .service)
        let template = try UnitName("foo@.service")
        #expect(template.isTemplate && !template.isInstance)
        let instance = try UnitName("foo@bar@baz.timer")
        #expect(instance.isInstance && instance.prefix == "foo" && instance.instance == "bar@baz")
        #expect(instance.template?.name == "foo@.timer")
        #expect(try template.instantiated(with: "x").name == "foo@x.service")
        #expect(instance.nameWithoutSuffix == "foo@bar@baz")
    }

    @Test(arguments: [
        "", "foo", "foo.bogus", "@x.service", "a b.service", "é.service", ".service", "foo@.", "x/y.mount",
    ])
    func invalidNames(name: String) {
        #expect(!UnitName.isValid(name))
    }

    @Test func lengthLimit() {
        #expect(UnitName.isValid(String(repeating: "a", count: 247) + ".service"))
        #expect(!UnitName.isValid(String(repeating: "a", count: 248) + ".service"))
    }

    @Test func escapeExamplesFromSystemdEscape() throws {
        #expect(UnitNameEscaping.escape("/a//b/") == "-a--b-")
        #expect(UnitNameEscaping.escape(".dot") == "\\x2edot")
        #expect(UnitNameEscaping.escape("a-b") == "a\\x2db")
        #expect(UnitNameEscaping.escape("héllo wörld") == "h\\xc3\\xa9llo\\x20w\\xc3\\xb6rld")
        #expect(try UnitNameEscaping.escapePath("/a//b/") == "a-b")
        #expect(try UnitNameEscaping.escapePath("/") == "-")
        #expect(try UnitNameEscaping.escapePath("./a") == "a")
        #expect(try UnitNameEscaping.escapePath("/.dot") == "\\x2edot")
        #expect(throws: UnitNameError.self) { try UnitNameEscaping.escapePath("/a/../b") }
        #expect(try UnitNameEscaping.unescape("a\\x2db-c") == "a-b/c")
        #expect(try UnitNameEscaping.unescapePath("a-b") == "/a/b")
        #expect(try UnitNameEscaping.unescapePath("-") == "/")
        #expect(throws: UnitNameError.self) { try UnitNameEscaping.unescape("a\\X2d") }
        #expect(throws: UnitNameError.self) { try UnitNameEscaping.unescape("a\\x0") }
        #expect(throws: UnitNameError.self) { try UnitNameEscaping.unescape("a\\x00b") }
        #expect(try UnitNameEscaping.mangle("/dev/sda") == "dev-sda.device")
        #expect(try UnitNameEscaping.mangle("foo.bar") == "foo.bar.service")
        #expect(try UnitNameEscaping.mangle("a@b") == "a@b.service")
    }

    @Test func escapeUnescapeRoundTrip() throws {
        for text in ["", "plain", "/var/lib/etcd", "with space", "ünïcode/日本", "a-b-c", "\\back", ".hidden"] {
            #expect(try UnitNameEscaping.unescape(UnitNameEscaping.escape(text)) == text)
        }
    }
}

@Suite("Specifiers")
struct SpecifierTests {
    let context: SpecifierContext

    init() throws {
        context = SpecifierContext(
            unit: try UnitName("etcd-member@node\\x2d1.service"), hostname: "core-01.example.com",
            machineID: "0123456789abcdef0123456789abcdef", bootID: "fedcba9876543210fedcba9876543210")
    }

    @Test func allSpecifiers() throws {
        let text = "%n|%N|%p|%P|%i|%I|%j|%J|%f|%H|%l|%m|%b|%%"
        let expanded = try Specifiers.resolve(text, in: context)
        #expect(
            expanded
                == "etcd-member@node\\x2d1.service|etcd-member@node\\x2d1|etcd-member|etcd/member|node\\x2d1|node-1|member|member|/node-1|core-01.example.com|core-01|0123456789abcdef0123456789abcdef|fedcba9876543210fedcba9876543210|%"
        )
    }

    @Test func unknownSpecifierAndMissingValues() throws {
        #expect(throws: SpecifierError.self) { try Specifiers.resolve("%Z", in: context) }
        let bare = try SpecifierContext(unit: UnitName("a.service"))
        #expect(throws: SpecifierError.self) { try Specifiers.resolve("%H", in: bare) }
        #expect(try Specifiers.resolve("50%", in: bare) == "50%")
        #expect(try Specifiers.resolve("%i|%f", in: bare) == "|/a")
    }
}
