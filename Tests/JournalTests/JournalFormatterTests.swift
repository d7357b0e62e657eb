import Journal
import Testing

@Suite struct JournalFormatterTests {
    static let boot = BootID(hex: "0123456789abcdef0123456789abcdef")!

    static func entry(_ fields: [(String, String)]) -> JournalEntry {
        JournalEntry(
            fields: fields.map { ($0.0, Array($0.1.utf8)) }, realtime: 1_795_705_258_474_028, monotonic: 57_600_474_028,
            boot: boot, cursor: "s=1;i=2")
    }

    static func render(_ entry: JournalEntry, _ mode: OutputMode, configure: (inout JournalFormatter) -> Void = { _ in }) -> String {
        var formatter = JournalFormatter(mode: mode)
        formatter.utc = true
        configure(&formatter)
        var output: [UInt8] = []
        formatter.format(entry, into: &output)
        return String(decoding: output, as: UTF8.self)
    }

    @Test func shortLinesAsJournalctl() {
        let entry = Self.entry([("_HOSTNAME", "node1"), ("SYSLOG_IDENTIFIER", "etcd"), ("_PID", "42"), ("MESSAGE", "one\ntwo")])
        #expect(Self.render(entry, .short) == "Nov 26 15:00:58 node1 etcd[42]: one\n                                two\n")
        let prefix = "2026-11-26T15:00:58.474028+0000 node1 etcd[42]: "
        #expect(Self.render(entry, .shortISOPrecise) == prefix + "one\n" + String(repeating: " ", count: prefix.count) + "two\n")
        #expect(Self.render(entry, .shortUnix).hasPrefix("1795705258.474028 node1 etcd[42]: one\n"))
        #expect(Self.render(entry, .shortMonotonic).hasPrefix("[57600.474028] node1 etcd[42]: one\n"))
        #expect(Self.render(entry, .shortFull).hasPrefix("Thu 2026-11-26 15:00:58 UTC node1 etcd[42]: one\n"))
        #expect(Self.render(entry, .short) { $0.noHostname = true }.hasPrefix("Nov 26 15:00:58 etcd[42]: one\n"))
        let noIdentity = Self.entry([("MESSAGE", "bare")])
        #expect(Self.render(noIdentity, .short) == "Nov 26 15:00:58 unknown: bare\n")
        #expect(Self.render(Self.entry([("SYSLOG_IDENTIFIER", "x")]), .short).isEmpty, "no MESSAGE: skipped")
    }

    @Test func unprintableMessagesAreBlobsUnlessAll() {
        let entry = Self.entry([("SYSLOG_IDENTIFIER", "k"), ("MESSAGE", "a\u{1}b")])
        #expect(Self.render(entry, .short) == "Nov 26 15:00:58 k: [3B blob data]\n")
        #expect(Self.render(entry, .short) { $0.showAll = true } == "Nov 26 15:00:58 k: a\u{1}b\n")
    }

    @Test func jsonGroupsRepeatedFieldsAndRendersBinaryAsNumbers() {
        let entry = JournalEntry(
            fields: [("MESSAGE", Array("hi \"x\"\n".utf8)), ("TAG", Array("a".utf8)), ("TAG", Array("b".utf8)), ("BLOB", [255, 0, 65])],
            realtime: 5, monotonic: 6, boot: Self.boot, cursor: "c")
        #expect(
            Self.render(entry, .json)
                == #"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"5","__MONOTONIC_TIMESTAMP":"6","_BOOT_ID":"0123456789abcdef0123456789abcdef","MESSAGE":"hi \"x\"\n","TAG":["a","b"],"BLOB":[255,0,65]}"#
                + "\n")
    }

    @Test func exportWritesBinaryValuesWithTheirLength() {
        let entry = JournalEntry(fields: [("MESSAGE", Array("a\nb".utf8)), ("X", Array("y".utf8))], realtime: 5, monotonic: 6, boot: Self.boot, cursor: "c")
        var formatter = JournalFormatter(mode: .export)
        var output: [UInt8] = []
        formatter.format(entry, into: &output)
        let header = "__CURSOR=c\n__REALTIME_TIMESTAMP=5\n__MONOTONIC_TIMESTAMP=6\n_BOOT_ID=0123456789abcdef0123456789abcdef\n"
        #expect(output == Array(header.utf8) + Array("MESSAGE\n".utf8) + [3, 0, 0, 0, 0, 0, 0, 0] + Array("a\nb\nX=y\n\n".utf8))
    }

    @Test func prioritiesUnitsAndTimes() throws {
        #expect(try JournalMatches.priorities("err") == 0...3)
        #expect(try JournalMatches.priorities("warning..err") == 3...4)
        #expect(throws: JournalUsageError.self) { try JournalMatches.priorities("loud") }
        #expect(JournalMatches.mangleUnit("etcd") == "etcd.service" && JournalMatches.mangleUnit("a.socket") == "a.socket")
        let now: UInt64 = 1_795_705_258_474_028  // 2026-11-26 15:00:58 UTC
        #expect(try JournalTime.parse("2026-11-26 15:00:00", now: now, utc: true) == 1_795_705_200_000_000)
        #expect(try JournalTime.parse("today", now: now, utc: true) == 1_795_651_200_000_000)
        #expect(try JournalTime.parse("-1h", now: now, utc: true) == now - 3_600_000_000)
        #expect(try JournalTime.parse("15:00", now: now, utc: true) == 1_795_705_200_000_000)
        #expect(throws: JournalUsageError.self) { try JournalTime.parse("soon", now: now, utc: true) }
    }
}
