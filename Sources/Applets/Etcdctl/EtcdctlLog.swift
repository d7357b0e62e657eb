import CLI
import EtcdClient
import GoFormat
import Glibc
import Platform

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
            "{\"level\":\"warn\",\"ts\":\"\(GoLogTime.zap())\",\"caller\":\"clientv3/retry_interceptor.go:62\","
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
