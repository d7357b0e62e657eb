import CLI
import EtcdClient
import Glibc
import Platform

/// Timestamps in the formats etcdctl's loggers use.
enum EtcdctlLogTime {
    /// zap's ISO 8601 with milliseconds in UTC: `2026-11-26T17:05:30.180Z`.
    static func zap() -> String { format("%Y-%m-%dT%H:%M:%S", fractionDigits: 3) + "Z" }

    /// capnslog's `2006-01-02 15:04:05.000000` (local time).
    static func capnslog() -> String { format("%Y-%m-%d %H:%M:%S", fractionDigits: 6, local: true) }

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

/// The warning clientv3's retry interceptor logs for each failed unary call, which etcdctl
/// 3.4 prints to stderr before its `Error:` line.
enum EtcdCallLog {
    /// - Parameter singleEndpoint: the call went to one endpoint directly (clientv3's
    ///   per-endpoint `Status`/`HashKV`/`Defragment`), which logs a passthrough target and
    ///   the dial error instead of the balancer's summary.
    static func wrap(_ error: any Error, endpoints: [String], io: StandardStreams, singleEndpoint: Bool = false)
        -> EtcdError
    {
        let wrapped = (error as? EtcdError) ?? EtcdError(.unknown, "\(error)")
        guard let code = goCodeName(wrapped.code) else { return wrapped }
        let endpoint = endpoints.first ?? "127.0.0.1:2379"
        var description = wrapped.message
        if wrapped.code == .deadlineExceeded {
            description = "latest balancer error: all SubConns are in TransientFailure"
            if singleEndpoint, let parsed = try? EtcdEndpoint(parsing: endpoint),
                let failure = TCPProbe.connectFailure(host: parsed.host, port: parsed.port)
            {
                description =
                    "latest balancer error: connection error: desc = \"transport: Error while dialing dial tcp \(parsed.host):\(parsed.port): \(failure)\""
            }
        }
        let target = singleEndpoint ? "passthrough:///\(endpoint)" : "endpoint://client-\(randomUUID())/\(endpoint)"
        io.error.line(
            "{\"level\":\"warn\",\"ts\":\"\(EtcdctlLogTime.zap())\",\"caller\":\"clientv3/retry_interceptor.go:62\","
                + "\"msg\":\"retrying of unary invoker failed\",\"target\":\"\(target)\",\"attempt\":0,"
                + "\"error\":\(GoJSON.quote("rpc error: code = \(code) desc = \(description)"))}")
        return wrapped
    }

    /// grpc-go's names for status codes.
    static func goCodeName(_ code: EtcdError.Code) -> String? {
        switch code {
        case .invalidArgument: return "InvalidArgument"
        case .notFound: return "NotFound"
        case .alreadyExists: return "AlreadyExists"
        case .failedPrecondition: return "FailedPrecondition"
        case .permissionDenied: return "PermissionDenied"
        case .unauthenticated: return "Unauthenticated"
        case .resourceExhausted: return "ResourceExhausted"
        case .outOfRange: return "OutOfRange"
        case .unavailable: return "Unavailable"
        case .deadlineExceeded: return "DeadlineExceeded"
        case .aborted: return "Aborted"
        case .unimplemented: return "Unimplemented"
        case .internal: return "Internal"
        case .dataLoss: return "DataLoss"
        case .unknown: return "Unknown"
        case .cancelled, .compacted, .leaseLost: return nil
        }
    }

    static func randomUUID() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        let characters = Array(hex)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(characters[$0]) }.joined(separator: "-")
    }
}
