import HTTPServer
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOSSL

/// The first handler of every client connection: the first bytes tell the protocol. The
/// HTTP/2 connection preface (gRPC) gets NIO's HTTP/2 handler and our
/// `GRPCConnectionHandler` for all its streams; anything else is HTTP/1.1 for `HTTP1Endpoint`. The sniffer then leaves, so it
/// costs nothing per request.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// `HTTP1Endpoint` sets Content-Length or Transfer-Encoding itself, spelled as Go does.
    private static let explicitFraming: HTTPResponseEncoder.Configuration = {
        var configuration = HTTPResponseEncoder.Configuration()
        configuration.automaticallySetFramingHeaders = false
        return configuration
    }()
    private var received: ByteBuffer?
    private let responder: any HTTPResponder
    private let router: GRPCRouter
    private let maxMessageBytes: Int
    private let maxConcurrentStreams: UInt32

    private let revocations: RevocationList?

    init(
        responder: any HTTPResponder, router: GRPCRouter, maxMessageBytes: Int, maxConcurrentStreams: UInt32 = .max,
        revocations: RevocationList? = nil
    ) {
        self.responder = responder
        self.router = router
        self.maxMessageBytes = maxMessageBytes
        self.maxConcurrentStreams = maxConcurrentStreams
        self.revocations = revocations
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if received == nil { received = incoming } else { received!.writeBuffer(&incoming) }
        let bytes = received!.readableBytesView
        let compared = min(bytes.count, Self.preface.count)
        let isHTTP2 = bytes.prefix(compared).elementsEqual(Self.preface.prefix(compared))
        if isHTTP2 && compared < Self.preface.count { return }  // a prefix of the preface: wait
        // Over TLS the handshake is done by now: a verified client certificate names the caller,
        // unless the revocation list names it (then the connection goes, as on etcd).
        let certificate = (try? context.pipeline.syncOperations.nioSSL_peerCertificate()).flatMap { $0 }
        if let revocations, let certificate, revocations.revokes(certificate) {
            context.close(promise: nil)
            return
        }
        let certificateName = certificate.flatMap(commonName)
        do {
            if isHTTP2 {
                try addHTTP2(context: context, certificateName: certificateName)
            } else {
                let handlers: [any ChannelHandler] = [
                    HTTPResponseEncoder(configuration: Self.explicitFraming),
                    ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                    HTTP1Endpoint(responder: responder, certificateCommonName: certificateName),
                ]
                try context.pipeline.syncOperations.addHandlers(handlers, position: .last)
            }
        } catch {
            context.close(promise: nil)
            return
        }
        // Hand the bytes on, then leave: a removed handler's context forwards nothing.
        context.fireChannelRead(wrapInboundOut(received!))
        received = nil
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func addHTTP2(context: ChannelHandlerContext, certificateName: String?) throws {
        let router = self.router
        let maxMessageBytes = self.maxMessageBytes
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        // etcd lets a client open as many concurrent streams as it likes, unless
        // --max-concurrent-streams says otherwise (a million is as good as unlimited).
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: Int(min(maxConcurrentStreams, 1 << 20))),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 1 << 14),
            HTTP2Setting(parameter: .initialWindowSize, value: GRPCConnectionHandler.streamWindow),
        ]
        try context.pipeline.syncOperations.addHandlers(
            [
                NIOHTTP2Handler(mode: .server, connectionConfiguration: connection),
                GRPCConnectionHandler(
                    router: router, maxMessageBytes: maxMessageBytes, certificateCommonName: certificateName, httpResponder: responder),
            ], position: .last)
    }
}
