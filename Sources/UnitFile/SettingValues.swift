/// A setting's value could not be interpreted.
public struct SettingValueError: Error, Hashable, Sendable, CustomStringConvertible {
    public var kind: String
    public var value: String
    public var detail: String

    public init(kind: String, value: String, detail: String) {
        self.kind = kind
        self.value = value
        self.detail = detail
    }

    public var description: String { "invalid \(kind) \(value.debugDescription): \(detail)" }
}

/// systemd's boolean syntax: `1 yes y true t on` and `0 no n false f off`, any case.
public enum UnitBoolean {
    public static func parse(_ text: String) throws(SettingValueError) -> Bool {
        switch text.lowercased() {
        case "1", "yes", "y", "true", "t", "on": return true
        case "0", "no", "n", "false", "f", "off": return false
        default:
            throw SettingValueError(kind: "boolean", value: text, detail: "expected yes/no, true/false, on/off or 1/0")
        }
    }
}

/// A systemd time span (systemd.time(7)) in microseconds: `5min 20s`, `1h`, `1.5d`,
/// `100ms`, `infinity`. A bare number means seconds unless another default unit is given.
public struct TimeSpan: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var microseconds: UInt64

    public static let infinity = TimeSpan(microseconds: .max)

    public init(microseconds: UInt64) { self.microseconds = microseconds }

    public init(seconds: UInt64) { self.microseconds = seconds * 1_000_000 }

    public var isInfinite: Bool { microseconds == .max }

    public static func < (lhs: TimeSpan, rhs: TimeSpan) -> Bool { lhs.microseconds < rhs.microseconds }

    /// Unit words and their length in microseconds. Longer spellings come first so the
    /// longest match wins (`ms` before `m`, `min` before `m`).
    static let units: [(word: String, microseconds: UInt64)] = [
        ("seconds", 1_000_000), ("second", 1_000_000), ("sec", 1_000_000), ("s", 1_000_000),
        ("minutes", 60_000_000), ("minute", 60_000_000), ("min", 60_000_000),
        ("months", 2_629_800_000_000), ("month", 2_629_800_000_000), ("M", 2_629_800_000_000),
        ("msec", 1_000), ("ms", 1_000), ("m", 60_000_000),
        ("hours", 3_600_000_000), ("hour", 3_600_000_000), ("hr", 3_600_000_000), ("h", 3_600_000_000),
        ("days", 86_400_000_000), ("day", 86_400_000_000), ("d", 86_400_000_000),
        ("weeks", 604_800_000_000), ("week", 604_800_000_000), ("w", 604_800_000_000),
        ("years", 31_557_600_000_000), ("year", 31_557_600_000_000), ("y", 31_557_600_000_000),
        ("usec", 1), ("us", 1), ("µs", 1), ("μs", 1),
        ("nsec", 0), ("ns", 0),
    ]

    /// Parses a time span. `defaultUnit` applies to numbers without a unit (seconds for
    /// most settings, as in systemd).
    public init(parsing text: String, defaultUnitMicroseconds: UInt64 = 1_000_000) throws(SettingValueError) {
        func fail(_ detail: String) -> SettingValueError {
            SettingValueError(kind: "time span", value: text, detail: detail)
        }
        let trimmed = text.trimmingUnitWhitespace()
        if trimmed == "infinity" {
            self = .infinity
            return
        }
        let scalars = Array(trimmed.unicodeScalars)
        if scalars.isEmpty { throw fail("empty") }
        var index = 0
        var total: UInt64 = 0
        var sawComponent = false
        while true {
            while index < scalars.count && scalars[index].isUnitWhitespace { index += 1 }
            if index == scalars.count { break }
            var whole: UInt64 = 0
            var digits = 0
            while index < scalars.count, let digit = scalars[index].decimalDigit {
                let (product, overflow1) = whole.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = product.addingReportingOverflow(UInt64(digit))
                if overflow1 || overflow2 { throw fail("too large") }
                whole = sum
                digits += 1
                index += 1
            }
            var fraction: [UInt8] = []
            if index < scalars.count && scalars[index] == "." {
                index += 1
                while index < scalars.count, let digit = scalars[index].decimalDigit {
                    if fraction.count < 18 { fraction.append(digit) }
                    index += 1
                }
            }
            if digits == 0 && fraction.isEmpty { throw fail("expected a number") }
            while index < scalars.count && scalars[index].isUnitWhitespace { index += 1 }
            var unitEnd = index
            while unitEnd < scalars.count && scalars[unitEnd].isUnitLetter { unitEnd += 1 }
            let word = String(String.UnicodeScalarView(scalars[index..<unitEnd]))
            let multiplier: UInt64
            if word.isEmpty {
                // A unit-less number must end the text or be followed by whitespace ("1.2.3s" is garbage).
                if index < scalars.count && !scalars[index - 1].isUnitWhitespace {
                    throw fail("expected a unit or whitespace after the number")
                }
                multiplier = defaultUnitMicroseconds
            } else if let unit = Self.units.first(where: { $0.word == word }) {
                multiplier = unit.microseconds
            } else {
                throw fail("unknown time unit \"\(word)\"")
            }
            index = unitEnd
            let (wholePart, overflow1) = whole.multipliedReportingOverflow(by: multiplier)
            if overflow1 { throw fail("too large") }
            var fractionalPart: UInt64 = 0
            var scale = multiplier
            for digit in fraction {
                scale /= 10
                fractionalPart += UInt64(digit) * scale
            }
            let (component, overflow2) = wholePart.addingReportingOverflow(fractionalPart)
            let (sum, overflow3) = total.addingReportingOverflow(component)
            if overflow2 || overflow3 || sum == .max { throw fail("too large") }
            total = sum
            sawComponent = true
        }
        if !sawComponent { throw fail("empty") }
        self.microseconds = total
    }

    /// The span in systemd's style, largest unit first: `1h 30min`, `5min 20s 500ms`,
    /// `0`, `infinity`. Parsing the text gives back the same span.
    public var description: String {
        if isInfinite { return "infinity" }
        if microseconds == 0 { return "0" }
        let table: [(String, UInt64)] = [
            ("y", 31_557_600_000_000), ("month", 2_629_800_000_000), ("w", 604_800_000_000),
            ("d", 86_400_000_000), ("h", 3_600_000_000), ("min", 60_000_000), ("s", 1_000_000),
            ("ms", 1_000), ("us", 1),
        ]
        var remaining = microseconds
        var parts: [String] = []
        for (word, size) in table where remaining >= size {
            parts.append("\(remaining / size)\(word)")
            remaining %= size
        }
        return parts.joined(separator: " ")
    }
}

extension Unicode.Scalar {
    fileprivate var isUnitWhitespace: Bool { self == " " || self == "\t" || self == "\n" || self == "\r" }
    fileprivate var decimalDigit: UInt8? {
        value >= 0x30 && value <= 0x39 ? UInt8(value - 0x30) : nil
    }
    fileprivate var isUnitLetter: Bool {
        (value >= 0x41 && value <= 0x5A) || (value >= 0x61 && value <= 0x7A) || self == "µ" || self == "μ"
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs, CR and LF (systemd's WHITESPACE).
    func trimmingUnitWhitespace() -> String {
        let bytes = Array(utf8)
        guard let first = bytes.firstIndex(where: { !isUnitWhitespace($0) }),
            let last = bytes.lastIndex(where: { !isUnitWhitespace($0) })
        else { return "" }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }
}
