public import NIOCore
import NIOHTTP2

/// Answers the server's HTTP/2 PING frames below the HTTP/2 handler.
///
/// Why: grpc-go servers (etcd among them) estimate bandwidth by sending a PING after data
/// they receive: roughly one per request. swift-nio-http2 counts inbound PINGs as control
/// frames for its denial-of-service heuristics (200 per 30 s by default) and, past that,
/// closes the connection with GOAWAY ENHANCE_YOUR_CALM, failing in-flight calls with
/// "Stream unexpectedly closed" about every 200 requests. grpc-swift's transport does not
/// expose that limit, so this handler sits between the socket (or TLS) and the HTTP/2
/// handler, acknowledges each non-ACK PING itself, and passes every other frame through
/// unchanged. Inbound bytes are re-framed only at frame boundaries.
public final class HTTP2PingResponder: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    public init() {}

    private static let frameHeaderLength = 9
    private static let pingType: UInt8 = 0x6
    private static let ackFlag: UInt8 = 0x1

    private var pending: ByteBuffer? = nil

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if pending == nil {
            pending = incoming
        } else {
            pending?.writeBuffer(&incoming)
        }
        guard var buffer = pending else { return }
        var forward = context.channel.allocator.buffer(capacity: buffer.readableBytes)
        var answered = false
        while buffer.readableBytes >= Self.frameHeaderLength {
            let start = buffer.readerIndex
            guard let lengthHigh = buffer.getInteger(at: start, as: UInt8.self),
                let lengthLow = buffer.getInteger(at: start + 1, as: UInt16.self),
                let type = buffer.getInteger(at: start + 3, as: UInt8.self),
                let flags = buffer.getInteger(at: start + 4, as: UInt8.self)
            else { break }
            let length = Int(lengthHigh) << 16 | Int(lengthLow)
            guard buffer.readableBytes >= Self.frameHeaderLength + length,
                var frame = buffer.readSlice(length: Self.frameHeaderLength + length)
            else { break }
            if type == Self.pingType && flags & Self.ackFlag == 0 && length == 8 {
                var ack = context.channel.allocator.buffer(capacity: Self.frameHeaderLength + 8)
                ack.writeInteger(UInt8(0))
                ack.writeInteger(UInt16(8))
                ack.writeInteger(Self.pingType)
                ack.writeInteger(Self.ackFlag)
                ack.writeInteger(UInt32(0))
                frame.moveReaderIndex(forwardBy: Self.frameHeaderLength)
                ack.writeBuffer(&frame)
                context.write(wrapOutboundOut(ack), promise: nil)
                answered = true
            } else {
                forward.writeBuffer(&frame)
            }
        }
        pending = buffer.readableBytes > 0 ? buffer : nil
        if answered { context.flush() }
        if forward.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(forward)) }
    }
}

extension HTTP2PingResponder {
    /// Installs the responder in front of the HTTP/2 handler of a freshly configured
    /// gRPC client pipeline.
    static func install(on channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            let operations = channel.pipeline.syncOperations
            let http2 = try operations.handler(type: NIOHTTP2Handler.self)
            try operations.addHandler(HTTP2PingResponder(), position: .before(http2))
        }
    }
}
