import NIOCore
import NIOHTTP1

/// First in every client connection's pipeline, in front of the gRPC (HTTP/2) handlers.
/// Until the first bytes tell the protocol it holds everything back, including the
/// server preface HTTP/2 writes on activation. The HTTP/2 connection preface decides
/// for gRPC: the held writes go out and the sniffer steps aside. Anything else is
/// HTTP/1.1: HTTP/1 codec handlers are put in front of the sniffer, the bytes are replayed
/// through them, and whatever the HTTP/2 side writes from then on is dropped.
final class ProtocolSniffer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = Any
    typealias OutboundOut = Any

    private enum Mode {
        case undecided(received: ByteBuffer?, held: [(NIOAny, EventLoopPromise<Void>?)], flushPending: Bool)
        case http1
        /// Decided for gRPC; the sniffer is on its way out of the pipeline.
        case http2
    }

    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private var mode = Mode.undecided(received: nil, held: [], flushPending: false)
    private let responder: any HTTPResponder

    init(responder: any HTTPResponder) { self.responder = responder }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var received: ByteBuffer?
        let held: [(NIOAny, EventLoopPromise<Void>?)]
        let flushPending: Bool
        switch mode {
        case .undecided(let soFar, let writes, let flush): (received, held, flushPending) = (soFar, writes, flush)
        case .http2: return context.fireChannelRead(data)
        // HTTP/1: requests reach the HTTP/1 handlers in front; nothing goes on to HTTP/2.
        case .http1: return
        }
        var incoming = unwrapInboundIn(data)
        if received == nil { received = incoming } else { received!.writeBuffer(&incoming) }
        let bytes = received!.readableBytesView
        let compared = min(bytes.count, Self.preface.count)
        if bytes.prefix(compared).elementsEqual(Self.preface.prefix(compared)) {
            guard compared == Self.preface.count else {
                mode = .undecided(received: received, held: held, flushPending: flushPending)
                return  // a prefix of the preface so far: wait for more
            }
            // gRPC: let the held writes out, step aside, hand over the bytes.
            for (data, promise) in held { context.write(data, promise: promise) }
            if flushPending { context.flush() }
            // Hand the bytes on before leaving: a removed handler's context forwards nothing.
            mode = .http2
            context.fireChannelRead(wrapInboundOut(received!))
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        mode = .http1
        for (_, promise) in held { promise?.succeed() }
        do {
            let handlers: [any ChannelHandler] = [
                HTTPResponseEncoder(),
                ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                HTTP1Endpoint(responder: responder),
            ]
            try context.pipeline.syncOperations.addHandlers(handlers, position: .before(self))
        } catch {
            context.close(promise: nil)
            return
        }
        // Replay from the front of the pipeline, through the HTTP/1 handlers.
        context.pipeline.syncOperations.fireChannelRead(NIOAny(received!))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch mode {
        case .undecided(let received, var held, let flushPending):
            held.append((data, promise))
            mode = .undecided(received: received, held: held, flushPending: flushPending)
        case .http1:
            promise?.succeed()
        case .http2:
            context.write(data, promise: promise)
        }
    }

    func flush(context: ChannelHandlerContext) {
        switch mode {
        case .undecided(let received, let held, _): mode = .undecided(received: received, held: held, flushPending: true)
        case .http2: context.flush()
        case .http1: break
        }
    }
}
