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
    /// With `tls`: plain connections are served too (an http and an https client URL on
    /// one port, as etcd allows), told apart by their first byte.
    var alsoPlain = false
    /// `--max-concurrent-streams`.
    var maxConcurrentStreams: UInt32 = .max
    /// `--client-crl-file`.
    var revocations: RevocationList? = nil

    /// Binds the listening socket without accepting: connections wait in the kernel's
    /// backlog until `startAccepting`, as etcd's wait until its member is published.
    func bind() async throws -> any Channel {
        // HTTP `/v3/…` is the JSON gateway over the same router gRPC uses; CORS wraps all.
        var gateway = V3JSONGateway(router: router, fallback: self.responder)
        if maxConcurrentStreams != .max { gateway.streamLimit = StreamLimiter(limit: Int(maxConcurrentStreams)) }
        let responder = CORSResponder(wrapped: gateway)
        let router = self.router
        let maxMessageBytes = self.maxMessageBytes
        let tls = self.tls
        let maxConcurrentStreams = self.maxConcurrentStreams
        let alsoPlain = self.alsoPlain
        let revocations = self.revocations
        return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.autoRead, value: false)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            alsoPlain ? TLSSniffer(context: tls) as any ChannelHandler : NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ProtocolSniffer(
                            responder: responder, router: router, maxMessageBytes: maxMessageBytes,
                            maxConcurrentStreams: maxConcurrentStreams, revocations: revocations))
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

/// The first handler where one port serves TLS and plain connections: a TLS record starts
/// with the handshake content type (22); then NIO SSL's handler goes in before the rest.
final class TLSSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let context: NIOSSLContext

    init(context: NIOSSLContext) { self.context = context }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if bytes.readableBytesView.first == 22 {
            do {
                try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: self.context), position: .after(self))
            } catch {
                context.close(promise: nil)
                return
            }
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
