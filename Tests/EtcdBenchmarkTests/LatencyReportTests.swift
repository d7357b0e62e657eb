import EtcdBenchmark
import Testing

@Suite("Benchmark report")
struct LatencyReportTests {
    @Test func statistics() {
        let report = LatencyReport(latencies: (1...100).map { Double($0) / 1000 }, errors: 0, total: 2)
        #expect(report.requestsPerSecond == 50)
        #expect(abs(report.average - 0.0505) < 1e-9)
        let sorted = report.sorted
        #expect(report.percentile(50, sorted: sorted) == 0.050)
        #expect(report.percentile(99, sorted: sorted) == 0.099)
        #expect(report.percentile(99.9, sorted: sorted) == 0.100)
        #expect(report.histogram(sorted: sorted).map(\.count).reduce(0, +) == 100)
        let text = report.text()
        #expect(text.contains("Requests/sec:\t50.0000"))
        #expect(text.contains("99.9% in 0.1000 secs."))
        #expect(report.json(operation: "put", clients: 1, connections: 1).contains("\"p99_9_ms\":100.0000"))
    }

    @Test func emptyRun() {
        let report = LatencyReport(latencies: [], errors: 3, total: 0)
        #expect(report.requestsPerSecond == 0)
        #expect(report.text().contains("3 requests failed."))
    }
}
