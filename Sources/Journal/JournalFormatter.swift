#if canImport(Glibc)
    import Glibc
#endif

/// journalctl's `-o` modes.
public enum OutputMode: String, Sendable, CaseIterable {
    case short, shortFull = "short-full", shortISO = "short-iso", shortISOPrecise = "short-iso-precise"
    case shortPrecise = "short-precise", shortMonotonic = "short-monotonic", shortUnix = "short-unix"
    case shortDelta = "short-delta", withUnit = "with-unit", verbose, export, json, jsonPretty = "json-pretty"
    case jsonSSE = "json-sse", jsonSeq = "json-seq", cat

    public var isJSON: Bool { [.json, .jsonPretty, .jsonSSE, .jsonSeq].contains(self) }
    /// Whether journalctl adds `-- Boot … --` separators and `-- No entries --`: not in
    /// the machine-readable modes.
    public var printsInfoLines: Bool { !isJSON && self != .export && self != .cat }
    /// Whether `-x` adds catalog texts after entries (short modes and verbose).
    public var showsCatalog: Bool { printsInfoLines }
    /// Whether entries print their cursor.
    public var needsCursor: Bool { isJSON || self == .export || self == .verbose }
}

/// Renders entries byte for byte as journalctl 252 does (logs-show.c), into a buffer.
public struct JournalFormatter {
    public var mode: OutputMode
    /// `-a`: long, binary and unprintable values in full.
    public var showAll = false
    public var noHostname = false
    public var utc = false
    /// `--output-fields`: for verbose, export, json and cat, only these (JSON keeps its
    /// four metadata keys).
    public var outputFields: Set<[UInt8]>?
    /// Colors, as journalctl uses them on a terminal (see ``TerminalColors``).
    public var colors = false
    /// `--grep`'s match in the next entry's MESSAGE, highlighted when coloring.
    public var highlight: Range<Int>?
    /// short-delta: the previous entry's monotonic time and boot.
    private var previousMonotonic: (usec: UInt64, boot: BootID)?
    private var timeCache = TimeCache()

    /// Values at or above this length print as blobs in short modes, unless `-a`.
    static let printThreshold = 300
    /// JSON prints longer values as `null`, unless `-a`.
    static let jsonThreshold = 4096

    public init(mode: OutputMode) {
        self.mode = mode
    }

    /// Appends `entry` to `output`; false when the mode prints nothing for it (short and
    /// cat modes skip entries without MESSAGE).
    @discardableResult
    public mutating func format(_ entry: JournalEntry, into output: inout [UInt8]) -> Bool {
        switch mode {
        case .cat: return formatCat(entry, into: &output)
        case .export:
            formatExport(entry, into: &output)
            return true
        case .verbose:
            formatVerbose(entry, into: &output)
            return true
        case .json, .jsonPretty, .jsonSSE, .jsonSeq:
            formatJSON(entry, into: &output)
            return true
        default:
            return formatShort(entry, into: &output)
        }
    }

    // MARK: short family

    private static let shortFields: [[UInt8]] = [
        "MESSAGE", "_HOSTNAME", "SYSLOG_IDENTIFIER", "_COMM", "_PID", "SYSLOG_PID", "_SOURCE_REALTIME_TIMESTAMP",
        "_SOURCE_MONOTONIC_TIMESTAMP", "_SYSTEMD_UNIT", "_SYSTEMD_USER_UNIT",
    ].map { Array($0.utf8) }

    private mutating func formatShort(_ entry: JournalEntry, into output: inout [UInt8]) -> Bool {
        let found = entry.firstItems(named: Self.shortFields).map { $0.map(entry.value) }
        guard let message = found[0] else { return false }
        let lineStart = output.count
        if mode == .shortMonotonic || mode == .shortDelta {
            let monotonic = found[7].flatMap(Self.decimal) ?? entry.monotonic
            appendMonotonic(monotonic, boot: entry.boot, into: &output)
        } else {
            var realtime = entry.realtime
            if let source = found[6].flatMap(Self.decimal), source != 0 { realtime = source }
            appendRealtime(realtime, into: &output)
        }
        if let host = found[1], !noHostname, shallPrint(host) {
            output.append(0x20)
            output.append(contentsOf: host)
        }
        if mode == .withUnit, (found[8].map(shallPrint) ?? false) || (found[9].map(shallPrint) ?? false) {
            if let unit = found[8] {
                output.append(0x20)
                output.append(contentsOf: unit)
            }
            if let userUnit = found[9] {
                output.append(found[8] == nil ? 0x20 : 0x2F)
                output.append(contentsOf: userUnit)
            }
        } else if let identifier = found[2], shallPrint(identifier) {
            output.append(0x20)
            output.append(contentsOf: identifier)
        } else if let command = found[3], shallPrint(command) {
            output.append(0x20)
            output.append(contentsOf: command)
        } else {
            output.append(contentsOf: " unknown".utf8)
        }
        if let pid = found[4], shallPrint(pid) {
            appendBracketed(pid, into: &output)
        } else if let pid = found[5], shallPrint(pid) {
            appendBracketed(pid, into: &output)
        }
        if !showAll && !Self.isPrintable(message, newlineAllowed: true) {
            output.append(contentsOf: ": [\(Self.formatBytes(UInt64(message.count))) blob data]\n".utf8)
        } else {
            output.append(contentsOf: ": ".utf8)
            appendMessage(message, priority: Self.priority(entry), indent: Self.columns(output[lineStart...]), into: &output)
        }
        return true
    }

    private func appendBracketed(_ value: ArraySlice<UInt8>, into output: inout [UInt8]) {
        output.append(0x5B)
        output.append(contentsOf: value)
        output.append(0x5D)
    }

    private func shallPrint(_ value: ArraySlice<UInt8>) -> Bool {
        showAll || (value.count < Self.printThreshold && Self.isPrintable(value, newlineAllowed: true))
    }

    /// Columns the line so far takes (UTF-8 characters, as the terminal shows them).
    static func columns(_ bytes: ArraySlice<UInt8>) -> Int {
        bytes.reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
    }

    static let priorityField = Array("PRIORITY".utf8)

    /// The entry's priority (info without a valid one), for colors.
    static func priority(_ entry: JournalEntry) -> Int {
        guard let value = entry.value(of: priorityField), value.count == 1, let digit = value.first, (0x30...0x37).contains(digit)
        else { return 6 }
        return Int(digit - 0x30)
    }

    /// A message as journalctl's print_multiline writes it: uncolored, or its first line
    /// `on` + before the match + `highlight` + the match + `on` + the rest + `off`, and
    /// each further line indented and wrapped in `on` … `off`. `indent` nil: lines are
    /// not split (cat).
    func appendMessage(_ message: ArraySlice<UInt8>, priority: Int, indent: Int?, into output: inout [UInt8]) {
        guard colors, let (on, highlightOn) = TerminalColors.forPriority(priority) else {
            if let indent {
                Self.appendMultiline(message, indent: indent, into: &output)
            } else {
                output.append(contentsOf: message)
                output.append(0x0A)
            }
            return
        }
        var position = message.startIndex
        var first = true
        repeat {
            let end = indent == nil ? message.endIndex : (message[position...].firstIndex(of: 0x0A) ?? message.endIndex)
            let line = message[position..<end]
            if first {
                let match = highlight.map { (message.startIndex + $0.lowerBound, message.startIndex + $0.upperBound) }
                let (from, to) = match.map { (min($0.0, end), min($0.1, end)) } ?? (line.startIndex, line.startIndex)
                output.append(contentsOf: on.utf8)
                output.append(contentsOf: message[line.startIndex..<from])
                output.append(contentsOf: highlightOn.utf8)
                output.append(contentsOf: message[from..<to])
                output.append(contentsOf: on.utf8)
                output.append(contentsOf: message[to..<end])
            } else {
                output.append(contentsOf: repeatElement(0x20, count: indent ?? 0))
                output.append(contentsOf: on.utf8)
                output.append(contentsOf: line)
            }
            output.append(contentsOf: TerminalColors.normal.utf8)
            output.append(0x0A)
            first = false
            position = end + 1
        } while position < message.endIndex
    }

    /// The message, its continuation lines indented to where it started.
    static func appendMultiline(_ message: ArraySlice<UInt8>, indent: Int, into output: inout [UInt8]) {
        if message.isEmpty {
            output.append(0x0A)
            return
        }
        var position = message.startIndex
        var first = true
        while position < message.endIndex {
            let end = message[position...].firstIndex(of: 0x0A) ?? message.endIndex
            if !first { output.append(contentsOf: repeatElement(0x20, count: indent)) }
            output.append(contentsOf: message[position..<end])
            output.append(0x0A)
            first = false
            position = end + 1
        }
    }

    private mutating func appendRealtime(_ usec: UInt64, into output: inout [UInt8]) {
        let seconds = time_t(usec / 1_000_000)
        let micro = usec % 1_000_000
        switch mode {
        case .shortUnix:
            output.append(contentsOf: "\(usec / 1_000_000).\(Self.sixDigits(micro))".utf8)
        case .shortISO:
            output.append(contentsOf: timeCache.format(seconds, "%Y-%m-%dT%H:%M:%S%z", utc: utc))
        case .shortISOPrecise:
            output.append(contentsOf: timeCache.format(seconds, "%Y-%m-%dT%H:%M:%S", utc: utc))
            output.append(contentsOf: ".\(Self.sixDigits(micro))".utf8)
            output.append(contentsOf: timeCache.format(seconds, "%z", utc: utc))
        case .shortFull, .withUnit:
            output.append(contentsOf: timeCache.format(seconds, "%a %Y-%m-%d %H:%M:%S %Z", utc: utc))
        case .shortPrecise:
            output.append(contentsOf: timeCache.format(seconds, "%b %d %H:%M:%S", utc: utc))
            output.append(contentsOf: ".\(Self.sixDigits(micro))".utf8)
        default:
            output.append(contentsOf: timeCache.format(seconds, "%b %d %H:%M:%S", utc: utc))
        }
    }

    private mutating func appendMonotonic(_ usec: UInt64, boot: BootID, into output: inout [UInt8]) {
        output.append(contentsOf: "[\(Self.padded(usec / 1_000_000, 5)).\(Self.sixDigits(usec % 1_000_000))".utf8)
        if mode == .shortDelta {
            // The first entry (and the first of a boot) has no delta: blanks as wide.
            if let previous = previousMonotonic, previous.boot == boot, usec >= previous.usec {
                let delta = usec - previous.usec
                output.append(contentsOf: " <\(Self.padded(delta / 1_000_000, 5)).\(Self.sixDigits(delta % 1_000_000)) >".utf8)
            } else {
                output.append(contentsOf: repeatElement(0x20, count: 16))
            }
            previousMonotonic = (usec, boot)
        }
        output.append(0x5D)
    }

    /// `-x`: the catalog text, stripped, each line behind the light-shade prefix (`░░`, or
    /// `--` in a locale that is not UTF-8), as journalctl prints it after an entry.
    public static func appendCatalog(_ text: String, utf8: Bool, colors: Bool, into output: inout [UInt8]) {
        let shade = utf8 ? "\u{2591}\u{2591}" : "--"
        for (number, line) in text.trimming(\.isWhitespace).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard colors else {
                output.append(contentsOf: (shade + " " + line + "\n").utf8)
                continue
            }
            // journalctl's first line closes the grey after the space, the others before it.
            let prefix = number == 0
                ? TerminalColors.grey + shade + " " + TerminalColors.normal
                : TerminalColors.grey + shade + TerminalColors.normal + " "
            output.append(contentsOf: (prefix + TerminalColors.green + line + TerminalColors.normal + "\n").utf8)
        }
    }

    /// systemd's test for a UTF-8 locale, from the environment: `$SYSTEMD_UTF8`, then the
    /// first of `LC_ALL`, `LC_CTYPE`, `LANG` that is set (unset or `C` counts as UTF-8).
    public static func localeIsUTF8(_ environment: (String) -> String?) -> Bool {
        if let forced = environment("SYSTEMD_UTF8") { return !["0", "no", "false", "off"].contains(forced) }
        for name in ["LC_ALL", "LC_CTYPE", "LANG"] {
            guard let value = environment(name), !value.isEmpty else { continue }
            if value == "C" { return true }
            let lowered = value.lowercased()
            return lowered.contains("utf-8") || lowered.contains("utf8")
        }
        return true
    }

    static func sixDigits(_ value: UInt64) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, 6 - text.count)) + text
    }

    static func padded(_ value: UInt64, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: " ", count: max(0, width - text.count)) + text
    }

    static func decimal(_ bytes: ArraySlice<UInt8>) -> UInt64? {
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        var value: UInt64 = 0
        for byte in bytes {
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            let (times, overflow) = value.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            value = times + UInt64(byte - 0x30)
        }
        return value
    }

    /// systemd's format_bytes: `11B`, `1.0K`, `2.5M`.
    public static func formatBytes(_ count: UInt64) -> String {
        let units: [(String, UInt64)] = [("E", 60), ("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)]
        for (suffix, shift) in units where count >= 1 << shift {
            let tenths = (count * 10) >> shift
            return "\(tenths / 10).\(tenths % 10)\(suffix)"
        }
        return "\(count)B"
    }

    // MARK: Printability

    /// Valid UTF-8 without control characters (tab allowed; newline when asked), as
    /// systemd's `utf8_is_printable_newline`.
    public static func isPrintable(_ bytes: ArraySlice<UInt8>, newlineAllowed: Bool) -> Bool {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte < 0x80 {
                if byte < 0x20 && byte != 0x09 && !(newlineAllowed && byte == 0x0A) { return false }
                if byte == 0x7F { return false }
                index += 1
                continue
            }
            let length: Int
            var scalar: UInt32
            switch byte {
            case 0xC2...0xDF: length = 2; scalar = UInt32(byte & 0x1F)
            case 0xE0...0xEF: length = 3; scalar = UInt32(byte & 0x0F)
            case 0xF0...0xF4: length = 4; scalar = UInt32(byte & 0x07)
            default: return false
            }
            guard bytes.endIndex - index >= length else { return false }
            for offset in 1..<length {
                let continuation = bytes[index + offset]
                guard continuation & 0xC0 == 0x80 else { return false }
                scalar = scalar << 6 | UInt32(continuation & 0x3F)
            }
            let minimum: UInt32 = length == 2 ? 0x80 : (length == 3 ? 0x800 : 0x10000)
            if scalar < minimum || scalar > 0x10FFFF || (0xD800...0xDFFF).contains(scalar) { return false }
            // C1 controls are not printable either.
            if (0x80...0x9F).contains(scalar) { return false }
            index += length
        }
        return true
    }

    // MARK: cat

    private static let message = Array("MESSAGE".utf8)

    private func formatCat(_ entry: JournalEntry, into output: inout [UInt8]) -> Bool {
        guard let fields = outputFields else {
            guard let message = entry.value(of: Self.message) else { return false }
            appendMessage(message, priority: Self.priority(entry), indent: nil, into: &output)
            return true
        }
        var printed = false
        for index in 0..<entry.count where fields.contains(Array(entry.name(index))) {
            output.append(contentsOf: entry.value(index))
            output.append(0x0A)
            printed = true
        }
        return printed
    }

    // MARK: export

    private static let bootIDField = Array("_BOOT_ID".utf8)

    private func formatExport(_ entry: JournalEntry, into output: inout [UInt8]) {
        output.append(contentsOf: "__CURSOR=\(entry.cursor)\n__REALTIME_TIMESTAMP=\(entry.realtime)\n".utf8)
        output.append(contentsOf: "__MONOTONIC_TIMESTAMP=\(entry.monotonic)\n_BOOT_ID=\(entry.boot)\n".utf8)
        for index in 0..<entry.count {
            let name = entry.name(index)
            if name.elementsEqual(Self.bootIDField) { continue }
            if let fields = outputFields, !fields.contains(Array(name)) { continue }
            let value = entry.value(index)
            if Self.isPrintable(value, newlineAllowed: false) {
                output.append(contentsOf: entry.storage[entry.items[index].start..<entry.items[index].end])
                output.append(0x0A)
            } else {
                output.append(contentsOf: name)
                output.append(0x0A)
                var length = UInt64(value.count).littleEndian
                withUnsafeBytes(of: &length) { output.append(contentsOf: $0) }
                output.append(contentsOf: value)
                output.append(0x0A)
            }
        }
        output.append(0x0A)
    }

    // MARK: verbose

    private mutating func formatVerbose(_ entry: JournalEntry, into output: inout [UInt8]) {
        var realtime = entry.realtime
        if let source = entry.value(of: Array("_SOURCE_REALTIME_TIMESTAMP".utf8)).flatMap(Self.decimal), source != 0 {
            realtime = source
        }
        let seconds = time_t(realtime / 1_000_000)
        output.append(contentsOf: timeCache.format(seconds, "%a %Y-%m-%d %H:%M:%S", utc: utc))
        output.append(contentsOf: ".\(Self.sixDigits(realtime % 1_000_000))".utf8)
        output.append(contentsOf: timeCache.format(seconds, " %Z", utc: utc))
        output.append(contentsOf: " [\(entry.cursor)]\n".utf8)
        for index in 0..<entry.count {
            let name = entry.name(index)
            if let fields = outputFields, !fields.contains(Array(name)) { continue }
            let value = entry.value(index)
            output.append(contentsOf: "    ".utf8)
            // On a terminal MESSAGE stands out; journalctl ends the highlight only after
            // the value's newline.
            let highlighted = colors && name.elementsEqual(Self.message)
            if highlighted { output.append(contentsOf: TerminalColors.highlight.utf8) }
            output.append(contentsOf: name)
            if !showAll && !Self.isPrintable(value, newlineAllowed: true) {
                // A blob's line ends its highlight itself.
                let off = highlighted ? TerminalColors.normal : ""
                output.append(contentsOf: "=[\(Self.formatBytes(UInt64(value.count))) blob data]\(off)\n".utf8)
            } else {
                output.append(0x3D)
                Self.appendMultiline(value, indent: 4 + name.count + 1, into: &output)
                if highlighted { output.append(contentsOf: TerminalColors.normal.utf8) }
            }
        }
    }

    // MARK: JSON

    private func formatJSON(_ entry: JournalEntry, into output: inout [UInt8]) {
        let pretty = mode == .jsonPretty
        switch mode {
        case .jsonSSE: output.append(contentsOf: "data: ".utf8)
        case .jsonSeq: output.append(0x1E)
        default: break
        }
        output.append(0x7B)
        let metadata: [(String, String)] = [
            ("__CURSOR", entry.cursor), ("__REALTIME_TIMESTAMP", String(entry.realtime)),
            ("__MONOTONIC_TIMESTAMP", String(entry.monotonic)), ("_BOOT_ID", entry.boot.description),
        ]
        for (position, (name, value)) in metadata.enumerated() {
            if position > 0 { output.append(0x2C) }
            if pretty { output.append(contentsOf: "\n\t".utf8) }
            Self.appendJSONString(ArraySlice(name.utf8), into: &output)
            output.append(contentsOf: pretty ? " : ".utf8 : ":".utf8)
            Self.appendJSONString(ArraySlice(value.utf8), into: &output)
        }
        // Repeated fields become one array, at the place of their first occurrence:
        // an item whose name came before is skipped, the first gathers the later ones.
        for index in 0..<entry.count {
            let name = entry.name(index)
            if entry.isNamed(index, Self.bootIDField) { continue }
            if let fields = outputFields, !fields.contains(Array(name)) { continue }
            if (0..<index).contains(where: { entry.items[$0].equals - entry.items[$0].start == name.count && entry.name($0) == name }) {
                continue
            }
            let repeats = (index + 1..<entry.count).filter {
                entry.items[$0].equals - entry.items[$0].start == name.count && entry.name($0) == name
            }
            output.append(0x2C)
            if pretty { output.append(contentsOf: "\n\t".utf8) }
            Self.appendJSONString(name, into: &output)
            output.append(contentsOf: pretty ? " : ".utf8 : ":".utf8)
            if repeats.isEmpty {
                appendJSONValue(entry.value(index), pretty: pretty, depth: 1, into: &output)
            } else {
                output.append(0x5B)
                for (offset, item) in ([index] + repeats).enumerated() {
                    if offset > 0 { output.append(0x2C) }
                    if pretty { output.append(contentsOf: "\n\t\t".utf8) }
                    appendJSONValue(entry.value(item), pretty: pretty, depth: 2, into: &output)
                }
                if pretty { output.append(contentsOf: "\n\t".utf8) }
                output.append(0x5D)
            }
        }
        if pretty { output.append(0x0A) }
        output.append(0x7D)
        output.append(0x0A)
        if mode == .jsonSSE { output.append(0x0A) }
    }

    private func appendJSONValue(_ value: ArraySlice<UInt8>, pretty: Bool, depth: Int, into output: inout [UInt8]) {
        if !showAll && value.count >= Self.jsonThreshold {
            output.append(contentsOf: "null".utf8)
        } else if Self.isPrintable(value, newlineAllowed: true) {
            Self.appendJSONString(value, into: &output)
        } else {
            output.append(0x5B)
            for (offset, byte) in value.enumerated() {
                if offset > 0 { output.append(0x2C) }
                if pretty { output.append(0x0A); output.append(contentsOf: repeatElement(0x09, count: depth + 1)) }
                output.append(contentsOf: String(byte).utf8)
            }
            if pretty { output.append(0x0A); output.append(contentsOf: repeatElement(0x09, count: depth)) }
            output.append(0x5D)
        }
    }

    public static func appendJSONString(_ value: ArraySlice<UInt8>, into output: inout [UInt8]) {
        let hex: StaticString = "0123456789abcdef"
        output.append(0x22)
        var runStart = value.startIndex
        for index in value.indices {
            let byte = value[index]
            guard byte < 0x20 || byte == 0x22 || byte == 0x5C else { continue }
            // Bytes that need no escape go out as one run.
            output.append(contentsOf: value[runStart..<index])
            runStart = index + 1
            switch byte {
            case 0x22: output.append(contentsOf: [0x5C, 0x22])
            case 0x5C: output.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: output.append(contentsOf: [0x5C, 0x6E])
            case 0x09: output.append(contentsOf: [0x5C, 0x74])
            case 0x0D: output.append(contentsOf: [0x5C, 0x72])
            case 0x08: output.append(contentsOf: [0x5C, 0x62])
            case 0x0C: output.append(contentsOf: [0x5C, 0x66])
            default:
                let digits = hex.utf8Start
                output.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, digits[Int(byte >> 4)], digits[Int(byte & 15)]])
            }
        }
        output.append(contentsOf: value[runStart...])
        output.append(0x22)
    }
}

/// strftime results for the last second formatted, per format: consecutive entries
/// mostly share a second, and localtime_r is the costly part.
struct TimeCache {
    private var second: time_t = -1
    private var utc = false
    private var formatted: [String: [UInt8]] = [:]

    mutating func format(_ seconds: time_t, _ format: String, utc: Bool) -> [UInt8] {
        if seconds != second || utc != self.utc {
            second = seconds
            self.utc = utc
            formatted.removeAll(keepingCapacity: true)
        }
        if let cached = formatted[format] { return cached }
        let bytes = render(seconds, format, utc: utc)
        formatted[format] = bytes
        return bytes
    }

    private func render(_ seconds: time_t, _ format: String, utc: Bool) -> [UInt8] {
        var moment = seconds
        var parts = tm()
        // gmtime_r names its zone GMT; journalctl --utc prints UTC.
        let format = utc ? format.replacing("%Z", with: "UTC").replacing("%z", with: "+0000") : format
        if utc { gmtime_r(&moment, &parts) } else { localtime_r(&moment, &parts) }
        var buffer = [CChar](repeating: 0, count: 128)
        let length = strftime(&buffer, buffer.count, format, &parts)
        let bytes = buffer.prefix(length).map { UInt8(bitPattern: $0) }
        return bytes
    }
}

/// journalctl's terminal colors (systemd's ANSI sequences) and when it uses them.
public enum TerminalColors {
    public static let normal = "\u{1B}[0m"
    public static let highlight = "\u{1B}[0;1;39m"
    static let highlightRed = "\u{1B}[0;1;31m"
    static let highlightYellow = "\u{1B}[0;1;38;5;185m"
    static let grey = "\u{1B}[0;38;5;245m"
    static let green = "\u{1B}[0;32m"

    /// A message's color and its match's highlight, by priority; nil for info (plain).
    static func forPriority(_ priority: Int) -> (on: String, highlight: String)? {
        switch priority {
        case ...3: return (highlightRed, highlight)
        case 4: return (highlightYellow, highlight)
        case 5: return (highlight, highlightRed)
        case 7...: return (grey, highlightRed)
        default: return nil
        }
    }

    /// systemd's rule: on a terminal (checked before a pager takes over), unless
    /// `$SYSTEMD_COLORS` says no, `$NO_COLOR` is set or `$TERM` is `dumb`.
    public static func enabled(isTerminal: Bool, environment: (String) -> String?) -> Bool {
        if let forced = environment("SYSTEMD_COLORS") {
            return !["0", "no", "false", "off"].contains(forced)
        }
        if environment("NO_COLOR") != nil { return false }
        if environment("TERM") == "dumb" { return false }
        return isTerminal
    }
}
