/// Summary statistics of a benchmark run, printed like etcd's tools/benchmark report.
public struct LatencyReport: Sendable {
    /// Per-request latencies in seconds, in completion order.
    public let latencies: [Double]
    public let errors: Int
    /// Wall time of the whole run in seconds.
    public let total: Double

    public init(latencies: [Double], errors: Int, total: Double) {
        self.latencies = latencies
        self.errors = errors
        self.total = total
    }

    public var sorted: [Double] { latencies.sorted() }
    public var requestsPerSecond: Double { total > 0 ? Double(latencies.count) / total : 0 }
    public var average: Double { latencies.isEmpty ? 0 : latencies.reduce(0, +) / Double(latencies.count) }

    public var standardDeviation: Double {
        guard latencies.count > 1 else { return 0 }
        let mean = average
        let variance = latencies.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(latencies.count)
        return variance.squareRoot()
    }

    /// Latency at percentile `p` (0…100), nearest-rank on the sorted sample.
    public func percentile(_ p: Double, sorted: [Double]) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }

    public static let percentiles: [Double] = [10, 25, 50, 75, 90, 95, 99, 99.9]

    /// Ten buckets between the fastest and slowest request, as etcd's report draws them.
    public func histogram(sorted: [Double]) -> [(upperBound: Double, count: Int)] {
        guard let fastest = sorted.first, let slowest = sorted.last else { return [] }
        let bucketCount = 10
        let step = (slowest - fastest) / Double(bucketCount)
        var bounds = (0..<bucketCount).map { fastest + step * Double($0) }
        bounds.append(slowest)
        var counts = [Int](repeating: 0, count: bounds.count)
        var bucket = 0
        for latency in sorted {
            while bucket < bounds.count - 1 && latency > bounds[bucket] { bucket += 1 }
            counts[bucket] += 1
        }
        return zip(bounds, counts).map { ($0, $1) }
    }

    /// The human-readable report.
    public func text() -> String {
        let sorted = self.sorted
        var text = "\nSummary:\n"
        text += "  Total:\t\(Self.fixed(total)) secs.\n"
        text += "  Slowest:\t\(Self.fixed(sorted.last ?? 0)) secs.\n"
        text += "  Fastest:\t\(Self.fixed(sorted.first ?? 0)) secs.\n"
        text += "  Average:\t\(Self.fixed(average)) secs.\n"
        text += "  Stddev:\t\(Self.fixed(standardDeviation)) secs.\n"
        text += "  Requests/sec:\t\(Self.fixed(requestsPerSecond))\n"
        let buckets = histogram(sorted: sorted)
        let largest = buckets.map(\.count).max() ?? 0
        text += "\nResponse time histogram:\n"
        for bucket in buckets {
            let bar = largest > 0 ? String(repeating: "∎", count: bucket.count * 40 / largest) : ""
            text += "  \(Self.fixed(bucket.upperBound)) [\(bucket.count)]\t|\(bar)\n"
        }
        text += "\nLatency distribution:\n"
        for p in Self.percentiles {
            text += "  \(Self.percentText(p))% in \(Self.fixed(percentile(p, sorted: sorted))) secs.\n"
        }
        if errors > 0 { text += "\n\(errors) requests failed.\n" }
        return text
    }

    /// One JSON object on one line, for scripts.
    public func json(operation: String, clients: Int, connections: Int) -> String {
        let sorted = self.sorted
        var fields = [
            "\"operation\":\"\(operation)\"", "\"clients\":\(clients)", "\"connections\":\(connections)",
            "\"requests\":\(latencies.count)", "\"errors\":\(errors)", "\"total_seconds\":\(Self.fixed(total))",
            "\"requests_per_second\":\(Self.fixed(requestsPerSecond))", "\"average_ms\":\(Self.fixed(average * 1000))",
            "\"stddev_ms\":\(Self.fixed(standardDeviation * 1000))", "\"fastest_ms\":\(Self.fixed((sorted.first ?? 0) * 1000))",
            "\"slowest_ms\":\(Self.fixed((sorted.last ?? 0) * 1000))",
        ]
        for p in Self.percentiles {
            fields.append("\"p\(Self.percentText(p).replacingDots())_ms\":\(Self.fixed(percentile(p, sorted: sorted) * 1000))")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func percentText(_ p: Double) -> String {
        p == p.rounded() ? "\(Int(p))" : "\(p)"
    }

    /// Four decimals, as etcd's report prints seconds.
    static func fixed(_ value: Double) -> String {
        let scaled = (value * 10_000).rounded()
        let whole = Int(scaled) / 10_000
        let fraction = abs(Int(scaled) % 10_000)
        let digits = String(fraction)
        return "\(whole).\(String(repeating: "0", count: 4 - digits.count))\(digits)"
    }
}

extension String {
    fileprivate func replacingDots() -> String { String(map { $0 == "." ? "_" : $0 }) }
}
