import GRPCCore
import Synchronization

/// The counters grpc-go's Prometheus interceptors keep on etcd's client port
/// (`grpc_server_started_total`, `grpc_server_handled_total`), by service, method, kind of
/// call and, for completed calls, status code (grpc-go's names: `OK`, `Canceled`, …).
final class GRPCMetrics: Sendable {
    struct Key: Hashable, Sendable {
        var service: String
        var method: String
        var type: String
        var code: String
    }

    private let counts = Mutex<(started: [Key: UInt64], handled: [Key: UInt64])>(([:], [:]))

    func started(_ descriptor: MethodDescriptor, streaming: Bool) {
        let key = Self.key(descriptor, streaming: streaming, code: "")
        counts.withLock { $0.started[key, default: 0] += 1 }
    }

    func handled(_ descriptor: MethodDescriptor, streaming: Bool, code: RPCError.Code?) {
        let key = Self.key(descriptor, streaming: streaming, code: code.map(Self.goName) ?? "OK")
        counts.withLock { $0.handled[key, default: 0] += 1 }
    }

    func snapshot() -> (started: [Key: UInt64], handled: [Key: UInt64]) { counts.withLock { $0 } }

    private static func key(_ descriptor: MethodDescriptor, streaming: Bool, code: String) -> Key {
        // etcd's streams: Snapshot and election's Observe send only; Watch and keep-alives both ways.
        let type = !streaming ? "unary" : ["Snapshot", "Observe"].contains(descriptor.method) ? "server_stream" : "bidi_stream"
        return Key(service: descriptor.service.fullyQualifiedService, method: descriptor.method, type: type, code: code)
    }

    /// grpc-go's `codes.Code.String()`.
    static func goName(_ code: RPCError.Code) -> String {
        switch code {
        case .cancelled: "Canceled"
        case .unknown: "Unknown"
        case .invalidArgument: "InvalidArgument"
        case .deadlineExceeded: "DeadlineExceeded"
        case .notFound: "NotFound"
        case .alreadyExists: "AlreadyExists"
        case .permissionDenied: "PermissionDenied"
        case .resourceExhausted: "ResourceExhausted"
        case .failedPrecondition: "FailedPrecondition"
        case .aborted: "Aborted"
        case .outOfRange: "OutOfRange"
        case .unimplemented: "Unimplemented"
        case .internalError: "Internal"
        case .unavailable: "Unavailable"
        case .dataLoss: "DataLoss"
        case .unauthenticated: "Unauthenticated"
        default: "Unknown"
        }
    }
}
