import GRPCCore
import NIOCore
import NIOHPACK
import NIOHTTP2
import Synchronization

/// Where a running call writes its response messages: each is framed (flag byte, big
/// endian length) and sent as one DATA frame; `send` returns once HTTP/2 took the frame,
/// so a client that stops reading holds the writer back (flow control is the bound).
final class GRPCResponseSink: Sendable {
    private let channel: any Channel
    private let headersSent = Mutex(false)

    init(channel: any Channel) { self.channel = channel }

    func send(_ message: [UInt8]) async throws {
        let first = headersSent.withLock { sent in
            defer { sent = true }
            return !sent
        }
        if first { channel.write(HTTP2Frame.FramePayload.headers(.init(headers: GRPCStreamHandler.responseHeaders)), promise: nil) }
        var buffer = channel.allocator.buffer(capacity: message.count + 5)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.count))
        buffer.writeBytes(message)
        try await channel.writeAndFlush(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(buffer)))).get()
    }

    /// The trailers: status OK, or the error (as trailers only when nothing was sent).
    func finish(_ error: RPCError?) {
        let sent = headersSent.withLock { $0 }
        var trailers: HPACKHeaders = sent ? [:] : GRPCStreamHandler.responseHeaders
        trailers.add(name: "grpc-status", value: String(error?.code.rawValue ?? 0))
        if let error, !error.message.isEmpty { trailers.add(name: "grpc-message", value: GRPCStreamHandler.percentEncoded(error.message)) }
        channel.writeAndFlush(HTTP2Frame.FramePayload.headers(.init(headers: trailers, endStream: true)), promise: nil)
    }
}

/// One HTTP/2 stream of a gRPC call: reads the request headers and messages, runs the
/// method from the router in a task, writes the response. Unary calls start when their
/// one message is complete; streaming calls at once, fed as messages arrive.
final class GRPCStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    static let responseHeaders: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]

    private let router: GRPCRouter
    private let maxMessageBytes: Int
    private var method: GRPCMethod?
    private var descriptor: MethodDescriptor?
    private var received: ByteBuffer?
    private var requests: AsyncThrowingStream<[UInt8], any Error>.Continuation?
    private var task: Task<Void, Never>?
    private var cancellation: ServerContext.RPCCancellationHandle?
    private var started = false
    private var done = false

    init(router: GRPCRouter, maxMessageBytes: Int) {
        self.router = router
        self.maxMessageBytes = maxMessageBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            if method == nil {
                begin(headers.headers, context: context)
            }
            if headers.endStream { endOfRequests(context: context) }
        case .data(let frame):
            guard case .byteBuffer(var bytes) = frame.data else { return }
            if received == nil { received = bytes } else { received!.writeBuffer(&bytes) }
            takeMessages(context: context)
            if frame.endStream { endOfRequests(context: context) }
        case .rstStream:
            abort()
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        abort()
        context.fireChannelInactive()
    }

    private func begin(_ headers: HPACKHeaders, context: ChannelHandlerContext) {
        let path = headers.first(name: ":path") ?? ""
        guard headers.first(name: "content-type")?.hasPrefix("application/grpc") == true else {
            respondAndClose(RPCError(code: .unknown, message: "invalid gRPC request content-type"), context: context)
            return
        }
        guard let route = router.methods[path] else {
            respondAndClose(RPCError(code: .unimplemented, message: "unknown method \(path)"), context: context)
            return
        }
        method = route.method
        descriptor = route.descriptor
        if case .streaming = route.method { start(context: context, message: nil) }
    }

    /// Splits complete length-prefixed messages off the received bytes.
    private func takeMessages(context: ChannelHandlerContext) {
        while var buffer = received, let flag = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self)
        {
            guard flag == 0 else {
                respondAndClose(RPCError(code: .unimplemented, message: "compressed messages are not supported"), context: context)
                return
            }
            guard Int(length) <= maxMessageBytes else {
                respondAndClose(
                    RPCError(code: .resourceExhausted, message: "grpc: received message larger than max (\(length) vs. \(maxMessageBytes))"),
                    context: context)
                return
            }
            guard buffer.readableBytes >= 5 + Int(length) else { return }
            buffer.moveReaderIndex(forwardBy: 5)
            let message = buffer.readBytes(length: Int(length)) ?? []
            received = buffer.readableBytes > 0 ? buffer : nil
            deliver(message, context: context)
        }
    }

    private func deliver(_ message: [UInt8], context: ChannelHandlerContext) {
        switch method {
        case .unary:
            if !started { start(context: context, message: message) }
        case .streaming:
            requests?.yield(message)
        case nil:
            break
        }
    }

    private func endOfRequests(context: ChannelHandlerContext) {
        requests?.finish()
        requests = nil
        if case .unary = method, !started {
            respondAndClose(RPCError(code: .internalError, message: "unary call without a request message"), context: context)
        }
    }

    private func start(context: ChannelHandlerContext, message: [UInt8]?) {
        guard let method, let descriptor else { return }
        started = true
        let sink = GRPCResponseSink(channel: context.channel)
        let handle = ServerContext.RPCCancellationHandle()
        cancellation = handle
        let serverContext = ServerContext(
            descriptor: descriptor, remotePeer: context.channel.remoteAddress?.description ?? "",
            localPeer: context.channel.localAddress?.description ?? "", cancellation: handle)
        switch method {
        case .unary(let body):
            task = Self.runUnary(body, request: message ?? [], sink: sink, context: serverContext)
        case .streaming(let body):
            let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
            requests = continuation
            task = Self.runStreaming(body, requests: stream, sink: sink, context: serverContext)
        }
    }

    private static func runUnary(
        _ body: @escaping @Sendable ([UInt8], ServerContext) async throws -> [UInt8], request: [UInt8], sink: GRPCResponseSink,
        context: ServerContext
    ) -> Task<Void, Never> {
        Task {
            do {
                let response = try await body(request, context)
                try await sink.send(response)
                sink.finish(nil)
            } catch {
                sink.finish(rpcError(error))
            }
        }
    }

    private static func runStreaming(
        _ body: @escaping @Sendable (AsyncThrowingStream<[UInt8], any Error>, GRPCResponseSink, ServerContext) async throws -> Void,
        requests: AsyncThrowingStream<[UInt8], any Error>, sink: GRPCResponseSink, context: ServerContext
    ) -> Task<Void, Never> {
        Task {
            do {
                try await body(requests, sink, context)
                sink.finish(nil)
            } catch {
                sink.finish(rpcError(error))
            }
        }
    }

    private func respondAndClose(_ error: RPCError, context: ChannelHandlerContext) {
        done = true
        requests?.finish()
        requests = nil
        GRPCResponseSink(channel: context.channel).finish(error)
    }

    /// The client went away or reset the stream: stop the call.
    private func abort() {
        done = true
        cancellation?.cancel()
        task?.cancel()
        requests?.finish(throwing: RPCError(code: .cancelled, message: "the client cancelled the call"))
        requests = nil
    }

    static func rpcError(_ error: any Error) -> RPCError {
        if let error = error as? RPCError { return error }
        if error is CancellationError { return RPCError(code: .cancelled, message: "the call was cancelled") }
        return RPCError(code: .unknown, message: "\(error)")
    }

    /// grpc-message is percent-encoded outside printable ASCII (and `%` itself).
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte >= 0x20, byte <= 0x7E, byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(UnicodeScalar(byte))
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
