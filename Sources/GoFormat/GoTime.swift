public import Foundation

/// Go's text forms of times and durations, as its JSON and `String()` write them.
public enum GoTime {
    /// `time.Duration.String()`: `1h2m3.5s`, `2m0s`, `1.803475458s`, `350ms`, `1.5µs`, `0s`.
    public static func duration(nanoseconds: Int64) -> String {
        if nanoseconds == 0 { return "0s" }
        let sign = nanoseconds < 0 ? "-" : ""
        let magnitude = nanoseconds.magnitude
        if magnitude < 1_000 { return sign + "\(magnitude)ns" }
        if magnitude < 1_000_000 { return sign + fraction(magnitude, unit: 1_000) + "µs" }
        if magnitude < 1_000_000_000 { return sign + fraction(magnitude, unit: 1_000_000) + "ms" }
        let hours = magnitude / 3_600_000_000_000
        let minutes = magnitude / 60_000_000_000 % 60
        let seconds = fraction(magnitude % 60_000_000_000, unit: 1_000_000_000) + "s"
        if hours > 0 { return sign + "\(hours)h\(minutes)m" + seconds }
        if minutes > 0 { return sign + "\(minutes)m" + seconds }
        return sign + seconds
    }

    /// `whole.fraction` of `value / unit`, the fraction without trailing zeros.
    private static func fraction(_ value: UInt64, unit: UInt64) -> String {
        let whole = value / unit
        var rest = value % unit
        guard rest > 0 else { return "\(whole)" }
        var digits = String(rest)
        let width = String(unit).count - 1
        digits = String(repeating: "0", count: width - digits.count) + digits
        while digits.hasSuffix("0") {
            digits.removeLast()
            rest /= 10
        }
        return "\(whole).\(digits)"
    }

    /// `time.Time` in JSON (RFC 3339 with nanoseconds, trailing zeros dropped), UTC.
    public static func rfc3339Nano(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        var whole = time_t(seconds.rounded(.down))
        var nanoseconds = Int(((seconds - Double(whole)) * 1e9).rounded())
        if nanoseconds >= 1_000_000_000 {
            whole += 1
            nanoseconds -= 1_000_000_000
        }
        var parts = tm()
        gmtime_r(&whole, &parts)
        var text = String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
        if nanoseconds > 0 {
            var digits = String(format: "%09d", nanoseconds)
            while digits.hasSuffix("0") { digits.removeLast() }
            text += "." + digits
        }
        return text + "Z"
    }
}
