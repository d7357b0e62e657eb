import Glibc
public import NIOCore
import NIOHTTP1
import NIOPosix
public import NIOSSL

/// An HTTP/1.1 listener for a responder, on TCP (plain or TLS) or a unix socket (the
/// discovery service, the v2 proxy, fleetd's API).
public struct HTTP1Listener: Sendable {
    public enum Address: Sendable, Hashable, CustomStringConvertible {
        case tcp(host: String, port: Int)
        /// A unix socket path; a stale socket file is replaced.
        case unix(path: String)

        public var description: String {
            switch self {
            case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .unix(let path): "unix://" + path
            }
        }
    }

    public let address: Address
    public let responder: any HTTPResponder
    /// Serve TLS with this context (its configuration says whether a client certificate
    /// is required); `nil` serves plain HTTP.
    public let tls: NIOSSLContext?

    public init(address: Address, responder: any HTTPResponder, tls: NIOSSLContext? = nil) {
        self.address = address
        self.responder = responder
        self.tls = tls
    }

    public init(host: String, port: Int, responder: any HTTPResponder) {
        self.init(address: .tcp(host: host, port: port), responder: responder)
    }

    /// Serves until cancelled; `ready` gets the bound address first.
    public func run(ready: @Sendable (SocketAddress) -> Void) async throws {
        let responder = self.responder
        let tls = self.tls
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                if let tls {
                    do {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                }
                return channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(HTTP1Endpoint(responder: responder))
                }
            }
        let server: any Channel
        switch address {
        case .tcp(let host, let port):
            server = try await bootstrap.bind(host: host, port: port).get()
        case .unix(let path):
            var status = stat()
            if lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK { unlink(path) }
            server = try await bootstrap.bind(unixDomainSocketPath: path).get()
            // Owner and group only, whatever the umask: fleet.socket's SocketMode=0660.
            // Connecting needs write permission, so others cannot drive the API.
            chmod(path, 0o660)
        }
        if let bound = server.localAddress { ready(bound) }
        try await withTaskCancellationHandler {
            try await server.closeFuture.get()
        } onCancel: {
            server.close(promise: nil)
        }
    }
}
