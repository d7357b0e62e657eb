import Glibc

/// The timestamps of the two loggers etcd 3.4 and its tools write with.
public enum GoLogTime {
    /// zap's ISO 8601 with milliseconds in UTC: `2026-11-26T17:05:30.180Z`.
    public static func zap() -> String { format("%Y-%m-%dT%H:%M:%S", fractionDigits: 3) + "Z" }

    /// capnslog's `2006-01-02 15:04:05.000000`, in local time.
    public static func capnslog() -> String { format("%Y-%m-%d %H:%M:%S", fractionDigits: 6, local: true) }

    private static func format(_ pattern: String, fractionDigits: Int, local: Bool = false) -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        if local { localtime_r(&seconds, &parts) } else { gmtime_r(&seconds, &parts) }
        var buffer = [CChar](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, pattern, &parts)
        let base = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var fraction = String(Int(now.tv_nsec))
        fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
        return base + "." + fraction.prefix(fractionDigits)
    }
}
