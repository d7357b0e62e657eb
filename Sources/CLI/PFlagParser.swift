/// A flag in the style of Go's pflag/cobra (etcdctl, fleetctl, flanneld).
public struct PFlag: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case bool
        case string
        case int
        case uint
        case duration
        /// Comma-separated list; repeated flags append (pflag's StringSlice).
        case stringSlice
    }

    public var name: String
    public var shorthand: Character?
    public var kind: Kind
    /// The default as pflag prints it in usage (`"simple"`, `0`, `2s`, `[127.0.0.1:2379]`).
    public var defaultValue: String
    public var usage: String

    public init(_ name: String, shorthand: Character? = nil, _ kind: Kind, default defaultValue: String, _ usage: String) {
        self.name = name
        self.shorthand = shorthand
        self.kind = kind
        self.defaultValue = defaultValue
        self.usage = usage
    }
}

/// Flags and operands after pflag-style parsing. Values are validated for their kind.
public struct PFlagResult: Sendable {
    /// Last value per flag name (for slices: all values joined with commas).
    public var values: [String: String] = [:]
    public var operands: [String] = []
    /// Operands after a `--` (cobra passes them on; `etcdctl watch -- cmd` needs them apart).
    public var afterDashDash: [String]? = nil

    public func isSet(_ name: String) -> Bool { values[name] != nil }
    public func string(_ name: String) -> String? { values[name] }
    public func bool(_ name: String) -> Bool { values[name].flatMap(GoValues.parseBool) ?? false }
}

/// Parses arguments with Go pflag semantics: `--name=value`, `--name value` (not for
/// booleans), `-n value`, `-nvalue`, bundled boolean shorthands, operands interspersed,
/// `--` ends flags. No abbreviations. Error texts are pflag's.
public struct PFlagParser: Sendable {
    public var flags: [PFlag]

    public init(_ flags: [PFlag]) { self.flags = flags }

    public func parse(_ arguments: [String]) throws(UsageError) -> PFlagResult {
        var result = PFlagResult()
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            index += 1
            if word == "--" {
                result.afterDashDash = Array(arguments[index...])
                break
            }
            if word.hasPrefix("--") {
                let body = word.dropFirst(2)
                let name: String
                var value: String?
                if let equals = body.firstIndex(of: "=") {
                    name = String(body[..<equals])
                    value = String(body[body.index(after: equals)...])
                } else {
                    name = String(body)
                }
                guard let flag = flags.first(where: { $0.name == name }) else {
                    throw UsageError("unknown flag: --\(name)")
                }
                if value == nil {
                    if flag.kind == .bool {
                        value = "true"
                    } else if index < arguments.count {
                        value = arguments[index]
                        index += 1
                    } else {
                        throw UsageError("flag needs an argument: --\(name)")
                    }
                }
                try store(flag, value ?? "", spelled: "--\(name)", into: &result)
            } else if word.hasPrefix("-") && word.count > 1 {
                var rest = Substring(word.dropFirst())
                while let letter = rest.first {
                    rest = rest.dropFirst()
                    guard let flag = flags.first(where: { $0.shorthand == letter }) else {
                        throw UsageError("unknown shorthand flag: '\(letter)' in \(word)")
                    }
                    if rest.hasPrefix("=") {
                        try store(flag, String(rest.dropFirst()), spelled: "-\(letter)", into: &result)
                        break
                    }
                    if flag.kind == .bool {
                        try store(flag, "true", spelled: "-\(letter)", into: &result)
                        continue
                    }
                    if !rest.isEmpty {
                        try store(flag, String(rest), spelled: "-\(letter)", into: &result)
                    } else if index < arguments.count {
                        try store(flag, arguments[index], spelled: "-\(letter)", into: &result)
                        index += 1
                    } else {
                        throw UsageError("flag needs an argument: '\(letter)' in \(word)")
                    }
                    break
                }
            } else {
                result.operands.append(word)
            }
        }
        return result
    }

    private func store(_ flag: PFlag, _ value: String, spelled: String, into result: inout PFlagResult)
        throws(UsageError)
    {
        func invalid(_ detail: String) -> UsageError {
            UsageError("invalid argument \"\(value)\" for \"\(flagName(flag))\" flag: \(detail)")
        }
        switch flag.kind {
        case .bool:
            guard GoValues.parseBool(value) != nil else {
                throw invalid("strconv.ParseBool: parsing \"\(value)\": invalid syntax")
            }
        case .int:
            guard Int64(value) != nil else {
                throw invalid("strconv.ParseInt: parsing \"\(value)\": \(GoValues.numberError(value))")
            }
        case .uint:
            guard UInt64(value) != nil else {
                throw invalid("strconv.ParseUint: parsing \"\(value)\": \(GoValues.numberError(value))")
            }
        case .duration:
            guard GoValues.parseDuration(value) != nil else { throw invalid("time: invalid duration \"\(value)\"") }
        case .string, .stringSlice:
            break
        }
        if flag.kind == .stringSlice, let existing = result.values[flag.name] {
            result.values[flag.name] = existing + "," + value
        } else {
            result.values[flag.name] = value
        }
    }

    private func flagName(_ flag: PFlag) -> String {
        if let shorthand = flag.shorthand { return "-\(shorthand), --\(flag.name)" }
        return "--\(flag.name)"
    }
}

/// Go's value syntaxes, as strconv and time parse them.
public enum GoValues {
    /// strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False.
    public static func parseBool(_ text: String) -> Bool? {
        switch text {
        case "1", "t", "T", "TRUE", "true", "True": return true
        case "0", "f", "F", "FALSE", "false", "False": return false
        default: return nil
        }
    }

    static func numberError(_ text: String) -> String {
        let digits = text.drop { $0 == "-" || $0 == "+" }
        if !digits.isEmpty && digits.allSatisfy(\.isNumber) { return "value out of range" }
        return "invalid syntax"
    }

    /// time.ParseDuration: `300ms`, `-1.5h`, `2h45m`, units ns us µs ms s m h; "0" alone is allowed.
    public static func parseDuration(_ text: String) -> Duration? {
        var rest = Substring(text)
        var negative = false
        if rest.first == "-" || rest.first == "+" {
            negative = rest.first == "-"
            rest = rest.dropFirst()
        }
        if rest == "0" { return .zero }
        if rest.isEmpty { return nil }
        var totalNanoseconds: Double = 0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, number != ".", let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { !$0.isNumber && $0 != "." }
            rest = rest.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "ns": scale = 1
            case "us", "µs", "μs": scale = 1e3
            case "ms": scale = 1e6
            case "s": scale = 1e9
            case "m": scale = 60e9
            case "h": scale = 3600e9
            default: return nil
            }
            totalNanoseconds += value * scale
        }
        guard totalNanoseconds < 9.2e18 else { return nil }
        let nanoseconds = Int64(totalNanoseconds)
        return .nanoseconds(negative ? -nanoseconds : nanoseconds)
    }

    /// Go's Duration.String(): `2s`, `1.5s`, `100ms`, `1m30s`, `0s`.
    public static func formatDuration(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        var nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        if nanoseconds == 0 { return "0s" }
        let negative = nanoseconds < 0
        if negative { nanoseconds = -nanoseconds }
        var text: String
        if nanoseconds < 1_000_000_000 {
            let (unit, size): (String, Int64) =
                nanoseconds < 1_000 ? ("ns", 1) : nanoseconds < 1_000_000 ? ("µs", 1_000) : ("ms", 1_000_000)
            text = fraction(nanoseconds, size) + unit
        } else {
            let hours = nanoseconds / 3_600_000_000_000
            let minutes = nanoseconds / 60_000_000_000 % 60
            let secondsPart = nanoseconds % 60_000_000_000
            text = fraction(secondsPart, 1_000_000_000) + "s"
            if hours > 0 {
                text = "\(hours)h\(minutes)m" + text
            } else if minutes > 0 {
                text = "\(minutes)m" + text
            }
        }
        return negative ? "-" + text : text
    }

    private static func fraction(_ value: Int64, _ unit: Int64) -> String {
        let whole = value / unit
        var remainder = value % unit
        if remainder == 0 { return "\(whole)" }
        var digits = ""
        var scale = unit / 10
        while remainder > 0 && scale > 0 {
            digits += "\(remainder / scale)"
            remainder %= scale
            scale /= 10
        }
        return "\(whole).\(digits)"
    }
}
