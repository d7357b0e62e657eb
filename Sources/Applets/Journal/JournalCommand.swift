import CLI
import Foundation
import Journal
import Platform

#if canImport(Glibc)
    import Glibc
#endif

/// `coreos journal` / `journalctl`: journalctl 252's options over ``SystemJournal``.
enum JournalCommand {
    static let options = OptionParser([
        OptionSpec(long: "help", short: "h"),
        OptionSpec(long: "version"),
        OptionSpec(long: "no-pager"),
        OptionSpec(long: "pager-end", short: "e"),
        OptionSpec(long: "follow", short: "f"),
        OptionSpec(long: "output", short: "o", argument: .required),
        OptionSpec(long: "output-fields", argument: .required),
        OptionSpec(long: "all", short: "a"),
        OptionSpec(long: "full", short: "l"),
        OptionSpec(long: "lines", short: "n", argument: .optional),
        OptionSpec(long: "reverse", short: "r"),
        OptionSpec(long: "quiet", short: "q"),
        OptionSpec(long: "merge", short: "m"),
        OptionSpec(long: "boot", short: "b", argument: .optional),
        OptionSpec(long: "dmesg", short: "k"),
        OptionSpec(long: "unit", short: "u", argument: .required),
        OptionSpec(long: "identifier", short: "t", argument: .required),
        OptionSpec(long: "priority", short: "p", argument: .required),
        OptionSpec(long: "since", short: "S", argument: .required),
        OptionSpec(long: "until", short: "U", argument: .required),
        OptionSpec(long: "cursor", short: "c", argument: .required),
        OptionSpec(long: "after-cursor", argument: .required),
        OptionSpec(long: "show-cursor"),
        OptionSpec(long: "cursor-file", argument: .required),
        OptionSpec(long: "directory", short: "D", argument: .required),
        OptionSpec(long: "file", argument: .required),
        OptionSpec(long: "field", short: "F", argument: .required),
        OptionSpec(long: "fields", short: "N"),
        OptionSpec(long: "disk-usage"),
        OptionSpec(long: "list-boots"),
        OptionSpec(long: "header"),
        OptionSpec(long: "grep", short: "g", argument: .required),
        OptionSpec(long: "case-sensitive", argument: .optional),
        OptionSpec(long: "no-hostname"),
        OptionSpec(long: "utc"),
        OptionSpec(long: "catalog", short: "x"),
    ])

    struct Failure: Error {
        var message: String
        var status: Int32 = ExitStatus.failure
        init(_ message: String) { self.message = message }
    }

    @Sendable static func main(_ argv: [String], io: StandardStreams) async -> Int32 {
        let name = argv.first.map { String($0.split(separator: "/").last ?? "journalctl") } ?? "journalctl"
        let parsed: ParsedOptions
        do {
            parsed = try options.parse(attachingOptionalValues(Array(argv.dropFirst())))
        } catch {
            io.error.line("\(name): \(error.message)")
            return ExitStatus.failure
        }
        if parsed.has("help") {
            io.output.write(help)
            return ExitStatus.success
        }
        if parsed.has("version") {
            io.output.line("coreos journal (journalctl 252 compatible)")
            return ExitStatus.success
        }
        do {
            return try run(parsed, io: io)
        } catch let failure as Failure {
            io.error.line(failure.message)
            return failure.status
        } catch {
            io.error.line("\(error)")
            return ExitStatus.failure
        }
    }

    /// journalctl takes the word after `-n` as its count when it is a number, and the word
    /// after `-b` when it is a boot ID, an offset or `all`, although both values are
    /// optional (getopt alone would take only `-n5` and `--lines=5`).
    static func attachingOptionalValues(_ arguments: [String]) -> [String] {
        var result: [String] = []
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            index += 1
            if word == "--" {
                result += arguments[(index - 1)...]
                break
            }
            guard index < arguments.count else {
                result.append(word)
                break
            }
            let next = arguments[index]
            if (word == "-n" || word == "--lines"), let count = Int(next), count >= 0 {
                result.append("--lines=\(next)")
                index += 1
            } else if word == "-b" || word == "--boot", isBootDescriptor(next) {
                result.append("--boot=\(next)")
                index += 1
            } else {
                result.append(word)
            }
        }
        return result
    }

    static func isBootDescriptor(_ word: String) -> Bool {
        if word == "all" || Int(word) != nil { return true }
        let id = word.prefix(32)
        guard id.count == 32, id.allSatisfy(\.isHexDigit) else { return false }
        let rest = word.dropFirst(32)
        return rest.isEmpty || Int(rest) != nil
    }

    static let help = """
        journalctl [OPTIONS...] [MATCHES...]

        Query the journal (coreos journal: journalctl 252's options and output).

          -D --directory=PATH        Show journal files from directory
             --file=PATH             Show journal file
          -m --merge                 Show entries from all available journals
          -b --boot[=ID]             Show current boot or the specified boot
          -S --since=DATE            Show entries not older than the specified date
          -U --until=DATE            Show entries not newer than the specified date
          -c --cursor=CURSOR         Show entries starting at the specified cursor
             --after-cursor=CURSOR   Show entries after the specified cursor
             --show-cursor           Print the cursor after all the entries
          -u --unit=UNIT             Show logs from the specified unit
          -t --identifier=STRING     Show entries with the specified syslog identifier
          -p --priority=RANGE        Show entries with the specified priority
          -k --dmesg                 Show kernel message log from the current boot
          -g --grep=PATTERN          Show entries with MESSAGE matching PATTERN
             --case-sensitive[=BOOL] Force case sensitive or insensitive matching
          -e --pager-end             Immediately jump to the end in the pager
          -f --follow                Follow the journal
          -n --lines[=INTEGER]       Number of journal entries to show
          -r --reverse               Show the newest entries first
          -o --output=STRING         Change journal output mode (short, short-precise,
                                       short-iso, short-iso-precise, short-full,
                                       short-monotonic, short-unix, short-delta,
                                       verbose, export, json, json-pretty, json-sse,
                                       json-seq, cat, with-unit)
             --output-fields=LIST    Select fields to print in verbose/export/json modes
             --utc                   Express time in Coordinated Universal Time (UTC)
             --no-hostname           Suppress output of hostname field
          -a --all                   Show all fields, including long and unprintable
          -q --quiet                 Do not show info messages and privilege warning
             --no-pager              Do not pipe output into a pager
          -F --field=FIELD           List all values that a specified field takes
          -N --fields                List all field names currently used
             --disk-usage            Show total disk usage of all journal files
          -h --help                  Show this help text
             --version               Show package version

        """

    static func run(_ parsed: ParsedOptions, io: StandardStreams) throws -> Int32 {
        let journal = try open(parsed)
        if let field = parsed.last("field") {
            var output: [UInt8] = []
            for value in try journal.uniqueValues(of: field) {
                output.append(contentsOf: value.prefix { $0 != 0 })
                output.append(0x0A)
            }
            io.output.write(bytes: output)
            return ExitStatus.success
        }
        if parsed.has("fields") {
            io.output.write(journal.fieldNames().map { $0 + "\n" }.joined())
            return ExitStatus.success
        }
        if parsed.has("header") {
            var texts: [String] = []
            for path in try journalFiles(parsed) {
                do { texts.append(try JournalFileHeader(path: path).rendered(utc: parsed.has("utc"))) } catch {
                    throw Failure(error.description)
                }
            }
            io.output.write(texts.joined(separator: "\n"))
            return ExitStatus.success
        }
        if parsed.has("list-boots") {
            let boots = try listBoots(journal)
            var text = "IDX BOOT ID                          FIRST ENTRY                 LAST ENTRY\n"
            for (index, boot) in boots.enumerated() {
                let offset = String(index - boots.count + 1)
                text += String(repeating: " ", count: max(0, 3 - offset.count)) + offset + " \(boot.id) "
                text += JournalTime.full(boot.first, utc: parsed.has("utc")) + " " + JournalTime.full(boot.last, utc: parsed.has("utc")) + "\n"
            }
            io.output.write(text)
            return ExitStatus.success
        }
        if parsed.has("disk-usage") {
            let bytes = try journal.diskUsage()
            io.output.line("Archived and active journals take up \(JournalFormatter.formatBytes(bytes)) in the file system.")
            return ExitStatus.success
        }

        var formatter = JournalFormatter(mode: try outputMode(parsed))
        formatter.showAll = parsed.has("all")
        formatter.noHostname = parsed.has("no-hostname")
        let utc = parsed.has("utc")
        formatter.utc = utc
        if let fields = parsed.last("output-fields") {
            formatter.outputFields = Set(fields.split(separator: ",").map { Array($0.utf8) })
        }
        let quiet = parsed.has("quiet") || !formatter.mode.printsInfoLines
        let merge = parsed.has("merge")
        var pattern: MessagePattern?
        if let text = parsed.last("grep") {
            var caseSensitive: Bool?
            if parsed.has("case-sensitive") {
                switch parsed.last("case-sensitive") ?? "yes" {
                case "1", "yes", "y", "true", "t", "on": caseSensitive = true
                case "0", "no", "n", "false", "f", "off": caseSensitive = false
                case let other: throw Failure("Bad --case-sensitive= argument \"\(other)\": Invalid argument")
                }
            }
            do { pattern = try MessagePattern(text, caseSensitive: caseSensitive) } catch { throw Failure(error.description) }
        }
        // With --grep, -n counts matches from the newest back.
        let reverse = parsed.has("reverse") || (pattern != nil && parsed.has("lines"))
        let follow = parsed.has("follow")
        var lines: Int? = nil
        if parsed.has("lines") {
            let value = parsed.last("lines")
            if value == nil {
                lines = 10
            } else if value == "all" {
                lines = nil
            } else if let number = Int(value!), number >= 0 {
                lines = number
            } else {
                throw Failure("Failed to parse lines '\(value!)'")
            }
        } else if follow {
            lines = 10
        } else if parsed.has("pager-end") {
            lines = 1000
        }

        try addMatches(parsed, to: journal)

        let now = realtimeMicroseconds()
        func timestamp(_ option: String) throws(Failure) -> UInt64? {
            guard let text = parsed.last(option) else { return nil }
            do { return try JournalTime.parse(text, now: now, utc: utc) } catch { throw Failure(error.description) }
        }
        let since = try timestamp("since")
        let until = try timestamp("until")
        if let since, let until, since > until {
            throw Failure("--since= must be before --until=.")
        }

        // Where to start, as journalctl decides it; `atEntry`: the first entry to show is
        // already the current one.
        var atEntry = false
        /// One entry on, in the direction of output.
        func step() throws -> Bool { reverse ? try journal.previous() : try journal.next() }
        // --cursor-file: start after the cursor it holds (if any), save the last one shown.
        let cursorFile = parsed.last("cursor-file")
        let savedCursor = cursorFile.flatMap(readCursor)
        if let cursor = parsed.last("cursor") ?? parsed.last("after-cursor") ?? savedCursor {
            try journal.seek(cursor: cursor)
            atEntry = try step()
            if atEntry && (parsed.has("after-cursor") || savedCursor != nil) && journal.isAt(cursor: cursor) {
                atEntry = try step()
            }
            if !atEntry { lines = 0 }
        } else if let since, !reverse {
            try journal.seek(realtime: since)
        } else if let until, reverse {
            try journal.seek(realtime: until)
        } else if reverse {
            try journal.seekTail()
        } else if let count = lines {
            try journal.seekTail()
            atEntry = try journal.skip(forward: false, UInt64(count)) > 0
            if !atEntry { lines = 0 }
        } else {
            try journal.seekHead()
        }

        let withCursor = formatter.mode.needsCursor || parsed.has("show-cursor") || cursorFile != nil
        // Colors are decided before the pager takes standard output over, as systemd does.
        formatter.colors = TerminalColors.enabled(isTerminal: isatty(1) == 1, environment: environment)
        let pager = Pager()
        if !parsed.has("no-pager") && !follow { pager.start(jumpToEnd: parsed.has("pager-end")) }
        defer { pager.finish() }
        var output: [UInt8] = []
        output.reserveCapacity(1 << 17)
        var entry = JournalEntry()
        var shown = 0
        var previousBoot: BootID?
        var lastCursor: String?
        let catalog = parsed.has("catalog")
        let utf8 = JournalFormatter.localeIsUTF8(environment)
        /// Prints the boot separator when the boot changed (for every entry the matches
        /// let through, as journalctl), then the entry if `--grep` lets it through.
        func show(_ entry: JournalEntry) -> Bool {
            if !merge && !quiet {
                if let previousBoot, previousBoot != entry.boot {
                    let (on, off) = formatter.colors ? (TerminalColors.highlight, TerminalColors.normal) : ("", "")
                    output.append(contentsOf: "\(on)-- Boot \(entry.boot) --\(off)\n".utf8)
                }
                previousBoot = entry.boot
            }
            if let pattern {
                guard let message = entry.value(of: messageField), let match = pattern.match(message) else { return false }
                formatter.highlight = match
            }
            guard formatter.format(entry, into: &output) else { return true }
            if catalog, formatter.mode.showsCatalog, let text = journal.catalog() {
                JournalFormatter.appendCatalog(text, utf8: utf8, colors: formatter.colors, into: &output)
            }
            return true
        }
        while lines == nil || shown < lines! {
            if !atEntry {
                guard try step() else { break }
            }
            atEntry = false
            try journal.load(into: &entry, withCursor: withCursor)
            if let until, !reverse, entry.realtime > until { break }
            if let since, reverse, entry.realtime < since { break }
            guard show(entry) else { continue }
            shown += 1
            lastCursor = entry.cursor
            if output.count >= 1 << 16 {
                io.output.write(bytes: output)
                output.removeAll(keepingCapacity: true)
            }
        }
        if shown == 0 && !quiet && !follow {
            output.append(contentsOf: "-- No entries --\n".utf8)
        }
        if follow {
            // New entries as they are written: wait for the files to change, print what
            // came, until killed (or until stdout is gone).
            while true {
                io.output.write(bytes: output)
                output.removeAll(keepingCapacity: true)
                guard Pager.standardOutputHasReader() else { return ExitStatus.success }
                try journal.wait(timeout: 1_000_000)
                while try journal.next() {
                    try journal.load(into: &entry, withCursor: withCursor)
                    _ = show(entry)
                }
            }
        }
        if parsed.has("show-cursor"), let lastCursor {
            output.append(contentsOf: "-- cursor: \(lastCursor)\n".utf8)
        }
        if let cursorFile, let lastCursor { try writeCursor(lastCursor, to: cursorFile) }
        io.output.write(bytes: output)
        // journalctl: a pattern that matched nothing is a failure.
        return pattern != nil && shown == 0 ? ExitStatus.failure : ExitStatus.success
    }

    static let messageField = Array("MESSAGE".utf8)

    /// A variable of the process environment.
    static func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

    static func readCursor(_ path: String) -> String? { JournalTime.firstLine(ofFile: path) }

    /// Written to a temporary file renamed over the old one, so a crash never leaves half a
    /// cursor. The temporary file gets a fresh name (`mkstemp`, `O_EXCL`): a fixed one beside
    /// a cursor file in a shared directory could be a planted symlink.
    static func writeCursor(_ cursor: String, to path: String) throws(Failure) {
        var template = Array((path + ".XXXXXX").utf8CString)
        let descriptor = mkstemp(&template)
        guard descriptor >= 0 else { throw Failure("Failed to write new cursor to \(path): \(String(cString: strerror(errno)))") }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let bytes = Array((cursor + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) } == bytes.count
        fchmod(descriptor, 0o644)
        guard close(descriptor) == 0, written, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw Failure("Failed to write new cursor to \(path): \(reason)")
        }
    }


    static func open(_ parsed: ParsedOptions) throws -> SystemJournal {
        if let directory = parsed.last("directory") { return try SystemJournal(.directory(directory)) }
        if !parsed.all("file").isEmpty { return try SystemJournal(.files(try globbedFiles(parsed))) }
        return try SystemJournal(.system(merge: parsed.has("merge")))
    }

    static func globbedFiles(_ parsed: ParsedOptions) throws(Failure) -> [String] {
        var paths: [String] = []
        for pattern in parsed.all("file") {
            var matches = glob_t()
            defer { globfree(&matches) }
            if glob(pattern, 0, nil, &matches) == 0 {
                for index in 0..<Int(matches.gl_pathc) {
                    if let path = matches.gl_pathv[index] { paths.append(String(cString: path)) }
                }
            }
        }
        if paths.isEmpty { throw Failure("No journal files were found.") }
        return paths
    }

    /// The files `--header` describes, in the order sd-journal opens them (directory order).
    static func journalFiles(_ parsed: ParsedOptions) throws -> [String] {
        if !parsed.all("file").isEmpty { return try globbedFiles(parsed) }
        let directories: [String]
        if let directory = parsed.last("directory") {
            directories = [directory]
        } else {
            directories = ["/run/log/journal", "/var/log/journal"].flatMap { root in FileSystem.entryNames(inDirectory: root).map { "\(root)/\($0)" } }
        }
        return directories.flatMap { directory in
            FileSystem.entryNames(inDirectory: directory).filter { $0.hasSuffix(".journal") || $0.hasSuffix(".journal~") }.map { "\(directory)/\($0)" }
        }
    }

    static func outputMode(_ parsed: ParsedOptions) throws(Failure) -> OutputMode {
        guard let text = parsed.last("output") else { return .short }
        guard let mode = OutputMode(rawValue: text) else { throw Failure("Unknown output format '\(text)'.") }
        return mode
    }

    /// The option groups, each ANDed with the others, as journalctl adds them.
    static func addMatches(_ parsed: ParsedOptions, to journal: SystemJournal) throws {
        func group(_ terms: [[String]]) throws {
            guard !terms.isEmpty else { return }
            for (index, conjunction) in terms.enumerated() {
                if index > 0 { try journal.addDisjunction() }
                for term in conjunction { try journal.addMatch(Array(term.utf8)) }
            }
            try journal.addConjunction()
        }
        // The boot first: finding it uses (and then drops) matches of its own.
        if parsed.has("boot") || parsed.has("dmesg") {
            let descriptor = parsed.last("boot") ?? ""
            if descriptor != "all" { try group([["_BOOT_ID=\(try bootID(descriptor, in: journal))"]]) }
        }
        if parsed.has("dmesg") { try group([["_TRANSPORT=kernel"]]) }
        var unitTerms: [[String]] = []
        for unit in parsed.all("unit") {
            let mangled = JournalMatches.mangleUnit(unit)
            let units = JournalMatches.isGlob(mangled) ? try expand(glob: mangled, in: journal) : [mangled]
            for name in units { unitTerms += JournalMatches.unitTerms(name) }
        }
        try group(unitTerms)
        try group(parsed.all("identifier").map { ["SYSLOG_IDENTIFIER=\($0)"] })
        if let priority = parsed.last("priority") {
            let range: ClosedRange<Int>
            do { range = try JournalMatches.priorities(priority) } catch { throw Failure(error.description) }
            try group([range.map { "PRIORITY=\($0)" }])
        }
        // FIELD=VALUE operands; `+` starts another alternative.
        var alternatives: [[String]] = [[]]
        for operand in parsed.operands {
            if operand == "+" {
                alternatives.append([])
            } else if operand.contains("=") {
                alternatives[alternatives.count - 1].append(operand)
            } else if operand.hasPrefix("/") {
                do { alternatives[alternatives.count - 1] += try JournalPathMatch.terms(for: operand) } catch {
                    throw Failure(error.description)
                }
            } else {
                throw Failure("Invalid match: \(operand)")
            }
        }
        try group(alternatives.filter { !$0.isEmpty })
    }

    /// The boots in the files, oldest first, with their first and last entry's time.
    static func listBoots(_ journal: SystemJournal) throws -> [(id: String, first: UInt64, last: UInt64)] {
        var boots: [(id: String, first: UInt64, last: UInt64)] = []
        for value in try journal.uniqueValues(of: "_BOOT_ID") {
            let id = String(decoding: value, as: UTF8.self)
            journal.flushMatches()
            try journal.addMatch(Array("_BOOT_ID=\(id)".utf8))
            try journal.seekHead()
            guard try journal.next() else { continue }
            let first = try journal.realtime()
            try journal.seekTail()
            guard try journal.previous() else { continue }
            boots.append((id, first, try journal.realtime()))
        }
        journal.flushMatches()
        return boots.sorted { $0.first < $1.first }
    }

    /// `-b` as journalctl reads it: empty or `0` the newest boot in the files, `-N` the
    /// N-th before it, `N` the N-th from the oldest, `ID` or `ID±N`.
    static func bootID(_ descriptor: String, in journal: SystemJournal) throws -> String {
        let boots = try listBoots(journal)
        var anchor: Int? = nil
        var offsetText = descriptor
        if descriptor.count >= 32, descriptor.prefix(32).allSatisfy(\.isHexDigit) {
            let id = descriptor.prefix(32).lowercased()
            anchor = boots.firstIndex { $0.id == id }
            offsetText = String(descriptor.dropFirst(32))
            guard anchor != nil else {
                throw Failure("Data from the specified boot (\(id)) is not available: No such boot ID in journal")
            }
        }
        guard let offset = offsetText.isEmpty ? 0 : Int(offsetText) else {
            throw Failure("Failed to parse boot descriptor '\(descriptor)'")
        }
        // Offsets far outside the list (even Int.min) are just "not available".
        let base = anchor ?? (offset > 0 ? -1 : boots.count - 1)
        let (index, overflow) = base.addingReportingOverflow(offset)
        guard !overflow, boots.indices.contains(index) else {
            let shown = anchor == nil ? (offset > 0 ? "+\(offset)" : String(offset)) : descriptor
            throw Failure("Data from the specified boot (\(shown)) is not available: No such boot ID in journal")
        }
        return boots[index].id
    }

    /// A unit glob against the units the journal knows.
    static func expand(glob pattern: String, in journal: SystemJournal) throws -> [String] {
        try journal.uniqueValues(of: "_SYSTEMD_UNIT").map { String(decoding: $0, as: UTF8.self) }
            .filter { fnmatch(pattern, $0, 0) == 0 }.sorted()
    }

    static func realtimeMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec / 1000)
    }
}
