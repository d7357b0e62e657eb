/// Counts of durations in exponential buckets (Prometheus histogram semantics: each
/// bucket counts observations at or below its bound), with their sum.
public struct DurationHistogram: Sendable {
    /// Upper bounds in seconds, ascending; `+Inf` is implicit.
    public let bounds: [Double]
    public private(set) var counts: [UInt64]
    public private(set) var sum = 0.0
    public private(set) var count: UInt64 = 0

    /// `buckets` bounds starting at `start` seconds, each `factor` times the previous.
    public init(start: Double, factor: Double, buckets: Int) {
        var bounds: [Double] = []
        var bound = start
        for _ in 0..<buckets {
            bounds.append(bound)
            bound *= factor
        }
        self.bounds = bounds
        counts = Array(repeating: 0, count: buckets)
    }

    public mutating func observe(_ seconds: Double) {
        sum += seconds
        count += 1
        if let first = bounds.firstIndex(where: { seconds <= $0 }) {
            for index in first..<counts.count { counts[index] += 1 }
        }
    }
}
