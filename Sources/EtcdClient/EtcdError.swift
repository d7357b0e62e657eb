import GRPCCore

/// An error from an etcd call, keeping the server's text (`etcdserver: requested lease
/// not found`) so tools can print exactly what etcdctl prints.
public struct EtcdError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        case invalidArgument
        case notFound
        case alreadyExists
        case failedPrecondition
        case permissionDenied
        case unauthenticated
        case resourceExhausted
        case outOfRange
        case unavailable
        case deadlineExceeded
        case cancelled
        case aborted
        case unimplemented
        case `internal`
        case dataLoss
        case unknown
        /// A watch asked for a revision older than the compacted one.
        case compacted(compactRevision: Int64)
        /// A managed lease could not be kept alive (revoked, expired or the cluster unreachable).
        case leaseLost(id: Int64)
    }

    public var code: Code
    /// The text etcd (or the transport) gave, as etcdctl prints it after `Error: `.
    public var message: String
    /// The endpoint the call went to, when known.
    public var endpoint: String?

    public init(_ code: Code, _ message: String, endpoint: String? = nil) {
        self.code = code
        self.message = message
        self.endpoint = endpoint
    }

    public var description: String { message }

    /// Maps a gRPC error, translating transport failures to the wording Go's gRPC client uses.
    init(_ error: RPCError) {
        let code: Code
        switch error.code {
        case .invalidArgument: code = .invalidArgument
        case .notFound: code = .notFound
        case .alreadyExists: code = .alreadyExists
        case .failedPrecondition: code = .failedPrecondition
        case .permissionDenied: code = .permissionDenied
        case .unauthenticated: code = .unauthenticated
        case .resourceExhausted: code = .resourceExhausted
        case .outOfRange: code = .outOfRange
        case .unavailable: code = .unavailable
        case .deadlineExceeded: code = .deadlineExceeded
        case .cancelled: code = .cancelled
        case .aborted: code = .aborted
        case .unimplemented: code = .unimplemented
        case .internalError: code = .internal
        case .dataLoss: code = .dataLoss
        default: code = .unknown
        }
        var message = error.message
        if code == .deadlineExceeded { message = "context deadline exceeded" }
        self.init(code, message)
    }

    /// Wraps anything thrown by a call into an ``EtcdError``.
    static func wrap(_ error: any Error) -> EtcdError {
        if let etcd = error as? EtcdError { return etcd }
        if let rpc = error as? RPCError { return EtcdError(rpc) }
        if error is CancellationError { return EtcdError(.cancelled, "context canceled") }
        return EtcdError(.unknown, "\(error)")
    }

    // Server error texts clients react to (etcdserver/api/v3rpc/rpctypes).
    static let invalidAuthToken = "etcdserver: invalid auth token"
    static let compactedText = "etcdserver: mvcc: required revision has been compacted"
}
