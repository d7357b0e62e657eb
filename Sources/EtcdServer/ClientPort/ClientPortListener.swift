import GRPCNIOTransportHTTP2
import NIOCore
import NIOPosix

/// The client port as etcd has it: gRPC (HTTP/2 with prior knowledge) and HTTP/1.1 on
/// one listening socket. Every accepted connection gets the gRPC pipeline behind a
/// `ProtocolSniffer`, which looks at the first bytes: the HTTP/2 preface goes on to gRPC;
/// anything else is served as HTTP/1.1 by `responder` (health, version, metrics).
struct ClientPortListener: HTTP2ServerTransport.ListenerFactory {
    let host: String
    let port: Int
    let responder: any HTTPResponder

    var eventLoopGroup: any EventLoopGroup { MultiThreadedEventLoopGroup.singleton }

    func makeListeningChannel(
        listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
        connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
    ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
        let responder = self.responder
        return try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { listenerConfigurator.configure(channel: $0) }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ProtocolSniffer(responder: responder))
                }.flatMap {
                    connectionConfigurator.configure(channel: channel, tls: .none)
                }
            }
    }
}
