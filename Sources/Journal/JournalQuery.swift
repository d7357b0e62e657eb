#if canImport(Glibc)
    import Glibc
#endif

/// A bad option value, worded as journalctl words it.
public struct JournalUsageError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What to match, as groups of `FIELD=VALUE` terms: terms of one group are ANDed across
/// fields and ORed within a field (sd-journal's rule); groups are ORed (`+`). Each
/// option's groups are ANDed with the others' (`sd_journal_add_conjunction`).
public struct MatchExpression: Sendable, Hashable {
    /// Disjunctions of conjunctions of terms, one level per option.
    public var levels: [[[String]]] = []

    public init() {}
}

/// Builders of journalctl's match expressions (pure: no journal needed).
public enum JournalMatches {
    static let unitSuffixes = [
        ".service", ".socket", ".target", ".device", ".mount", ".automount", ".swap", ".timer", ".path", ".slice",
        ".scope",
    ]

    /// systemd's unit name mangling for `-u`: a name without a unit suffix gets `.service`.
    public static func mangleUnit(_ name: String) -> String {
        if unitSuffixes.contains(where: { name.hasSuffix($0) }) { return name }
        if isGlob(name) { return name }
        return name + ".service"
    }

    public static func isGlob(_ text: String) -> Bool { text.contains { "*?[".contains($0) } }

    /// journalctl's terms for a unit: its own messages, PID 1's about it, authorized
    /// daemons' about it, its core dumps; a slice also matches `_SYSTEMD_SLICE`.
    public static func unitTerms(_ unit: String) -> [[String]] {
        var groups = [
            ["_SYSTEMD_UNIT=\(unit)"],
            ["MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1", "_UID=0", "COREDUMP_UNIT=\(unit)"],
            ["_PID=1", "UNIT=\(unit)"],
            ["_UID=0", "OBJECT_SYSTEMD_UNIT=\(unit)"],
        ]
        if unit.hasSuffix(".slice") { groups.append(["_SYSTEMD_SLICE=\(unit)"]) }
        return groups
    }

    static let priorityNames = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]

    /// `-p`: `err` or `3` is 0…3; `FROM..TO` is that range (either order).
    public static func priorities(_ text: String) throws(JournalUsageError) -> ClosedRange<Int> {
        func level(_ word: Substring) throws(JournalUsageError) -> Int {
            if let number = Int(word), (0...7).contains(number) { return number }
            if let index = priorityNames.firstIndex(of: word.lowercased()) { return index }
            throw JournalUsageError("Unknown log level \(word)")
        }
        let parts = text.split(separator: "..", maxSplits: 1, omittingEmptySubsequences: false)
        if parts.count == 2 {
            let from = try level(parts[0])
            let to = try level(parts[1])
            return min(from, to)...max(from, to)
        }
        return 0...(try level(text[...]))
    }
}

/// systemd.time(7) timestamps as `--since`/`--until` take them, in microseconds since the
/// epoch. `now` and the time zone are parameters, so tests do not depend on the clock.
public enum JournalTime {
    /// systemd's full timestamp: `Thu 2026-11-26 15:00:58 UTC`.
    public static func full(_ usec: UInt64, utc: Bool) -> String {
        var moment = time_t(usec / 1_000_000)
        var parts = tm()
        if utc { gmtime_r(&moment, &parts) } else { localtime_r(&moment, &parts) }
        var buffer = [CChar](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, utc ? "%a %Y-%m-%d %H:%M:%S UTC" : "%a %Y-%m-%d %H:%M:%S %Z", &parts)
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The first line of a small text file (a cursor file, a script's `#!` line), nil
    /// when it cannot be read or is empty.
    public static func firstLine(ofFile path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        let line = String(decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return line.isEmpty ? nil : line
    }

    public static func parse(_ text: String, now: UInt64, utc: Bool) throws(JournalUsageError) -> UInt64 {
        let trimmed = text.trimming { $0 == " " }
        let failure = JournalUsageError("Failed to parse timestamp: \(text)")
        switch trimmed {
        case "now": return now
        case "today": return midnight(now, days: 0, utc: utc)
        case "yesterday": return midnight(now, days: -1, utc: utc)
        case "tomorrow": return midnight(now, days: 1, utc: utc)
        default: break
        }
        if trimmed.hasPrefix("@") {
            // Seconds since the epoch; beyond what a timestamp holds is not a timestamp.
            guard let seconds = Double(trimmed.dropFirst()), seconds >= 0, seconds < 1e13 else { throw failure }
            return UInt64(seconds * 1_000_000)
        }
        if let sign = trimmed.first, sign == "-" || sign == "+" {
            guard let span = timespan(trimmed.dropFirst()) else { throw failure }
            if sign == "-" { return now > span ? now - span : 0 }
            let (later, overflow) = now.addingReportingOverflow(span)
            guard !overflow else { throw failure }
            return later
        }
        if trimmed.hasSuffix(" ago"), let span = timespan(trimmed.dropLast(4)) { return now > span ? now - span : 0 }
        if let absolute = absolute(trimmed, now: now, utc: utc) { return absolute }
        throw failure
    }

    private static func midnight(_ now: UInt64, days: Int, utc: Bool) -> UInt64 {
        var moment = time_t(now / 1_000_000)
        var parts = tm()
        if utc { gmtime_r(&moment, &parts) } else { localtime_r(&moment, &parts) }
        parts.tm_hour = 0
        parts.tm_min = 0
        parts.tm_sec = 0
        parts.tm_mday += Int32(days)
        parts.tm_isdst = -1
        let seconds = utc ? timegm(&parts) : mktime(&parts)
        return UInt64(max(seconds, 0)) * 1_000_000
    }

    /// `1h 30min`, `5m`, `2days`, `100ms`: the sum, in microseconds.
    static func timespan<S: StringProtocol>(_ text: S) -> UInt64? {
        let units: [(String, UInt64)] = [
            ("usec", 1), ("us", 1), ("µs", 1), ("msec", 1000), ("ms", 1000), ("seconds", 1_000_000), ("second", 1_000_000),
            ("sec", 1_000_000), ("s", 1_000_000), ("minutes", 60_000_000), ("minute", 60_000_000), ("min", 60_000_000),
            ("months", 2_629_800_000_000), ("month", 2_629_800_000_000), ("M", 2_629_800_000_000), ("m", 60_000_000),
            ("hours", 3_600_000_000), ("hour", 3_600_000_000), ("hr", 3_600_000_000), ("h", 3_600_000_000),
            ("days", 86_400_000_000), ("day", 86_400_000_000), ("d", 86_400_000_000), ("weeks", 604_800_000_000),
            ("week", 604_800_000_000), ("w", 604_800_000_000), ("years", 31_557_600_000_000), ("year", 31_557_600_000_000),
            ("y", 31_557_600_000_000),
        ]
        var rest = Substring(text).drop { $0 == " " }
        guard !rest.isEmpty else { return nil }
        var total: UInt64 = 0
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isNumber || $0 == "." }
            guard !digits.isEmpty, let number = Double(digits) else { return nil }
            rest = rest.dropFirst(digits.count).drop { $0 == " " }
            let word = rest.prefix { $0.isLetter || $0 == "µ" }
            let factor: UInt64
            if word.isEmpty {
                factor = 1_000_000
            } else if let unit = units.first(where: { $0.0 == word }) {
                factor = unit.1
            } else {
                return nil
            }
            let microseconds = number * Double(factor)
            guard microseconds.isFinite, microseconds < 1e18 else { return nil }
            let (sum, overflow) = total.addingReportingOverflow(UInt64(microseconds))
            guard !overflow else { return nil }
            total = sum
            rest = rest.dropFirst(word.count).drop { $0 == " " }
        }
        return total
    }

    /// `YYYY-MM-DD [HH:MM[:SS]]` or `HH:MM[:SS]` (today), local time unless `utc` or a
    /// trailing ` UTC`.
    private static func absolute(_ text: String, now: UInt64, utc: Bool) -> UInt64? {
        var words = text.split(separator: " ").map(String.init)
        var utc = utc
        if words.last == "UTC" {
            utc = true
            words.removeLast()
        }
        var moment = time_t(now / 1_000_000)
        var parts = tm()
        if utc { gmtime_r(&moment, &parts) } else { localtime_r(&moment, &parts) }
        var fraction: UInt64 = 0
        var clock: String?
        switch words.count {
        case 1 where words[0].contains("-"):
            guard setDate(words[0], &parts) else { return nil }
            clock = "00:00:00"
        case 1:
            clock = words[0]
        case 2:
            guard setDate(words[0], &parts) else { return nil }
            clock = words[1]
        default:
            return nil
        }
        if let clock {
            var fields = clock.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 2 || fields.count == 3 else { return nil }
            if fields.count == 3, let dot = fields[2].firstIndex(of: ".") {
                let digits = String(fields[2][fields[2].index(after: dot)...].prefix(6))
                guard let value = UInt64(digits) else { return nil }
                fraction = value * UInt64(pow(10, Double(6 - digits.count)))
                fields[2] = String(fields[2][..<dot])
            }
            guard let hour = Int32(fields[0]), let minute = Int32(fields[1]), (0...23).contains(hour), (0...59).contains(minute)
            else { return nil }
            let second = fields.count == 3 ? Int32(fields[2]) : 0
            guard let second, (0...60).contains(second) else { return nil }
            parts.tm_hour = hour
            parts.tm_min = minute
            parts.tm_sec = second
        }
        parts.tm_isdst = -1
        let seconds = utc ? timegm(&parts) : mktime(&parts)
        guard seconds >= 0 else { return nil }
        return UInt64(seconds) * 1_000_000 + fraction
    }

    private static func setDate(_ text: String, _ parts: inout tm) -> Bool {
        let fields = text.split(separator: "-", omittingEmptySubsequences: false)
        guard fields.count == 3, fields[0].count == 4, let year = Int32(fields[0]), let month = Int32(fields[1]),
            let day = Int32(fields[2]), (1...12).contains(month), (1...31).contains(day)
        else { return false }
        parts.tm_year = year - 1900
        parts.tm_mon = month - 1
        parts.tm_mday = day
        return true
    }
}

extension String {
    /// The text without leading and trailing characters that `excess` picks.
    func trimming(_ excess: (Character) -> Bool) -> String {
        String(self.drop(while: excess).reversed().drop(while: excess).reversed())
    }
}
