import HTTPServer
import EtcdV2Store
import Foundation
import NIOHTTP1
import Storage

/// etcd's HTTP/1.1 endpoints on the client port: `/health`, `/version`, `/metrics`
/// (Prometheus text format 0.0.4 with etcd's series names). Anything else is Go's
/// "404 page not found".
struct EtcdHTTPEndpoints: HTTPResponder {
    let node: StoreNode
    let quotaBytes: Int64
    /// `--enable-v2`: without it `/v2/keys` is Go's 404, as on etcd 3.4.
    var enableV2 = true
    var maxLearners = 1
    /// `--bcrypt-cost`, for v2 auth's passwords.
    var bcryptCost = 10
    /// Completed gRPC calls, for `grpc_server_*`.
    var grpcMetrics: GRPCMetrics? = nil

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        var response: HTTPResponse
        switch (request.method, request.path) {
        case (.GET, "/version"), (.HEAD, "/version"):
            response = HTTPResponse(
                .ok, contentType: "application/json",
                body: #"{"etcdserver":"\#(MaintenanceService.version)","etcdcluster":"3.4.0"}"#)
        case (.GET, "/health"), (.HEAD, "/health"):
            response = await health()
        case (_, "/metrics"):
            // Prometheus's handler serves any method.
            response = HTTPResponse(.ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: await metrics())
        case (_, "/version"), (_, "/health"):
            response = .methodNotAllowed(allow: "GET", nosniff: true)
        case (_, let path) where enableV2 && (path == "/v2/keys" || path.hasPrefix("/v2/keys/")):
            response = await V2KeysAPI(node: node).respond(to: request)
        case (_, let path) where enableV2 && (path == "/v2/auth" || path.hasPrefix("/v2/auth/")):
            response = await V2AuthAPI(node: node, bcryptCost: bcryptCost).respond(to: request)
        case (_, let path) where enableV2 && path.hasPrefix("/v2/stats/"):
            response = await V2StatsAPI(node: node).respond(to: request)
        case (_, let path) where enableV2 && (path == "/v2/members" || path.hasPrefix("/v2/members/") || path == "/v2/machines"):
            // With v2 auth on, changing the members takes the root role, as on etcd.
            if request.method != .GET && request.method != .HEAD, !(await V2AuthAPI.isRoot(request, node.v2.auth)) {
                response = V2AuthAPI.insufficientCredentials
                break
            }
            response = await V2MembersAPI(node: node, maxLearners: maxLearners).respond(to: request)
            response.headers.append(("X-Etcd-Cluster-Id", String(node.clusterID, radix: 16)))
        default:
            response = .notFound
        }
        return response
    }

    /// etcd 3.4: unhealthy while an alarm is raised or there is no leader, and unless a
    /// linearizable read completes.
    private func health() async -> HTTPResponse {
        let healthy: Bool
        let alarmed = await !node.alarms.isEmpty
        let leader = await node.leader
        if alarmed || leader == 0 {
            healthy = false
        } else {
            healthy = await node.linearizableBarrier()
        }
        await node.countHealthCheck(healthy)
        return HTTPResponse(
            healthy ? .ok : .serviceUnavailable, sniffedType: "text/plain; charset=utf-8",
            body: #"{"health":"\#(healthy)"}"#)
    }

    private func metrics() async -> String {
        let counters = await node.counters
        let leader = await node.leader
        let memberID = node.memberID
        var text = PrometheusText()
        text.gauge(
            "etcd_cluster_version", "Which version is running. 1 for 'cluster_version' label with current cluster version", 1,
            labels: #"cluster_version="\#(EtcdVersion.cluster)""#)
        text.gauge("etcd_debugging_mvcc_keys_total", "Total number of keys.", Double(await node.liveKeys))
        text.gauge(
            "etcd_debugging_mvcc_slow_watcher_total", "Total number of unsynced slow watchers.", Double(counters.slowWatchers))
        text.histogram(
            "etcd_disk_wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL.", await node.walSyncDurations)
        text.gauge("etcd_disk_wal_write_bytes_total", "Total number of bytes written in WAL.", Double(await node.walBytesWritten))
        text.gauge(
            "etcd_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.",
            Double(await node.databaseSize))
        text.gauge(
            "etcd_mvcc_db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes.",
            Double(await node.logicalSize))
        text.counter("etcd_mvcc_delete_total", "Total number of deletes seen by this member.", counters.deletes)
        text.counter("etcd_mvcc_put_total", "Total number of puts seen by this member.", counters.puts)
        text.counter("etcd_mvcc_range_total", "Total number of ranges seen by this member.", counters.ranges)
        text.counter("etcd_mvcc_txn_total", "Total number of txns seen by this member.", counters.txns)
        text.gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.", leader == 0 ? 0 : 1)
        text.counter("etcd_server_health_failures", "The total number of failed health checks", counters.healthFailures)
        text.counter("etcd_server_health_success", "The total number of successful health checks", counters.healthSuccesses)
        text.gauge(
            "etcd_server_id", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", 1,
            labels: #"server_id="\#(String(memberID, radix: 16))""#)
        text.gauge(
            "etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.", leader == memberID ? 1 : 0)
        text.gauge("etcd_server_is_learner", "Whether or not this member is a learner. 1 if is, 0 otherwise.", 0)
        text.counter("etcd_server_leader_changes_seen_total", "The number of leader changes seen.", counters.leaderChanges)
        text.gauge(
            "etcd_server_proposals_applied_total", "The total number of consensus proposals applied.", Double(await node.raftApplied))
        text.gauge(
            "etcd_server_proposals_committed_total", "The total number of consensus proposals committed.", Double(await node.raftIndex))
        text.counter("etcd_server_proposals_failed_total", "The total number of failed proposals seen.", counters.proposalsFailed)
        text.gauge(
            "etcd_server_proposals_pending", "The current number of pending proposals to commit.", Double(await node.pendingProposals))
        text.gauge("etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.", Double(quotaBytes))
        text.counter(
            "etcd_server_read_indexes_failed_total", "The total number of failed read indexes seen.", counters.readIndexesFailed)
        text.counter(
            "coreos_server_slow_disk_leader_transfers_total",
            "Leadership handed over because this member's log syncs stayed slow.", counters.slowDiskHandovers)
        text.gauge(
            "etcd_server_version", "Which version is running. 1 for 'server_version' label with current version.", 1,
            labels: #"server_version="\#(MaintenanceService.version)""#)
        if let grpcMetrics {
            let (started, handled) = grpcMetrics.snapshot()
            text.counters(
                "grpc_server_handled_total", "Total number of RPCs completed on the server, regardless of success or failure.",
                handled.map { (key, count) in
                    (#"grpc_code="\#(key.code)",grpc_method="\#(key.method)",grpc_service="\#(key.service)",grpc_type="\#(key.type)""#, count)
                })
            text.counters(
                "grpc_server_started_total", "Total number of RPCs started on the server.",
                started.map { (key, count) in (#"grpc_method="\#(key.method)",grpc_service="\#(key.service)",grpc_type="\#(key.type)""#, count) })
        }
        return text.output
    }
}

/// The Prometheus text exposition format, as Go's client writes it (`%g`-style numbers).
struct PrometheusText {
    private(set) var output = ""

    mutating func counter(_ name: String, _ help: String, _ value: UInt64) {
        header(name, help, "counter")
        output += "\(name) \(value)\n"
    }

    /// One counter family with a sample per label set (sorted, as Go's client sorts them).
    mutating func counters(_ name: String, _ help: String, _ samples: [(labels: String, value: UInt64)]) {
        guard !samples.isEmpty else { return }
        header(name, help, "counter")
        for sample in samples.sorted(by: { $0.labels < $1.labels }) { output += "\(name){\(sample.labels)} \(sample.value)\n" }
    }

    mutating func gauge(_ name: String, _ help: String, _ value: Double, labels: String? = nil) {
        header(name, help, "gauge")
        output += "\(name)\(labels.map { "{\($0)}" } ?? "") \(Self.number(value))\n"
    }

    mutating func histogram(_ name: String, _ help: String, _ histogram: DurationHistogram) {
        header(name, help, "histogram")
        for (bound, count) in zip(histogram.bounds, histogram.counts) {
            output += "\(name)_bucket{le=\"\(Self.number(bound))\"} \(count)\n"
        }
        output += "\(name)_bucket{le=\"+Inf\"} \(histogram.count)\n"
        output += "\(name)_sum \(Self.number(histogram.sum))\n"
        output += "\(name)_count \(histogram.count)\n"
    }

    private mutating func header(_ name: String, _ help: String, _ type: String) {
        output += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    /// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, as Prometheus's Go client writes
    /// values: the shortest digits that round-trip, in exponent form when the decimal
    /// exponent is below -4 or at least 6 (`2.147483648e+09`, `20480`, `0.00476697`).
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Inf" : "+Inf" }
        if value == 0 { return "0" }
        let sign = value < 0 ? "-" : ""
        // Swift's description is also shortest round-trip; take its digits and exponent.
        let text = "\(abs(value))"
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        let integer = String(parts[0])
        let fraction = parts.count > 1 ? String(parts[1]) : ""
        var digits = Array(integer + fraction)
        exponent += integer.count - 1
        while digits.first == "0", digits.count > 1 {
            digits.removeFirst()
            exponent -= 1
        }
        while digits.last == "0", digits.count > 1 { digits.removeLast() }
        if exponent < -4 || exponent >= 6 {
            let rest = digits.count > 1 ? "." + String(digits.dropFirst()) : ""
            let magnitude = abs(exponent) < 10 ? "0\(abs(exponent))" : "\(abs(exponent))"
            return sign + String(digits[0]) + rest + "e" + (exponent < 0 ? "-" : "+") + magnitude
        }
        if exponent < 0 { return sign + "0." + String(repeating: "0", count: -exponent - 1) + String(digits) }
        if digits.count <= exponent + 1 { return sign + String(digits) + String(repeating: "0", count: exponent + 1 - digits.count) }
        return sign + String(digits[...exponent]) + "." + String(digits[(exponent + 1)...])
    }
}

/// `--listen-metrics-urls`: `/metrics` and `/health` only, as etcd's metrics listeners.
struct MetricsResponder: HTTPResponder {
    let endpoints: EtcdHTTPEndpoints

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        guard request.path == "/metrics" || request.path == "/health" else { return .notFound }
        return await endpoints.respond(to: request)
    }
}
