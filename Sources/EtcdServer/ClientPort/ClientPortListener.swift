import HTTPServer
import NIOCore
import NIOPosix
import NIOSSL

/// The client port as etcd has it: gRPC (HTTP/2 with prior knowledge) and HTTP/1.1 on one
/// listening socket, told apart per connection by `ProtocolSniffer`. gRPC is served by our
/// own gRPC layer over NIO's HTTP/2 handler (`GRPCConnectionHandler`): grpc-swift's server path cost about 195 µs per
/// call on this machine before the call did anything (see Documentation/benchmarks.md).
struct ClientPortListener {
    let host: String
    let port: Int
    let responder: any HTTPResponder
    let router: GRPCRouter
    let maxMessageBytes: Int
    /// TLS (https client URLs): NIO SSL's handler goes first on every connection.
    var tls: NIOSSLContext? = nil
    /// `--max-concurrent-streams`.
    var maxConcurrentStreams: UInt32 = .max

    /// Binds the listening socket without accepting: connections wait in the kernel's
    /// backlog until `startAccepting`, as etcd's wait until its member is published.
    func bind() async throws -> any Channel {
        // HTTP `/v3/…` is the JSON gateway over the same router gRPC uses; CORS wraps all.
        let responder = CORSResponder(wrapped: V3JSONGateway(router: router, fallback: self.responder))
        let router = self.router
        let maxMessageBytes = self.maxMessageBytes
        let tls = self.tls
        let maxConcurrentStreams = self.maxConcurrentStreams
        return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.autoRead, value: false)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(
                        ProtocolSniffer(
                            responder: responder, router: router, maxMessageBytes: maxMessageBytes,
                            maxConcurrentStreams: maxConcurrentStreams))
                }
            }
            .bind(host: host, port: port).get()
    }

    /// Accepts the connections that waited and those to come.
    static func startAccepting(_ server: any Channel) async throws {
        try await server.setOption(.autoRead, value: true).get()
    }

    /// Binds and serves at once until the task is cancelled; `ready` gets the bound address.
    func run(ready: @Sendable (SocketAddress) -> Void) async throws {
        let server = try await bind()
        try await Self.startAccepting(server)
        try await Self.serve(server, ready: ready)
    }

    /// Reports the bound address, then serves until the task is cancelled (which closes
    /// the listening socket). Shared by every HTTP listener of the server.
    static func serve(_ server: any Channel, ready: @Sendable (SocketAddress) -> Void) async throws {
        if let address = server.localAddress { ready(address) }
        try await withTaskCancellationHandler {
            try await server.closeFuture.get()
        } onCancel: {
            server.close(promise: nil)
        }
    }
}
