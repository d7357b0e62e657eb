import HTTPServer
import GRPCCore
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// The gRPC side of one HTTP/2 client connection: every stream's frames arrive here, in
/// the connection's own pipeline (no child channel per stream), and every response frame
/// leaves from here. Responses of calls that finish close together share one flush, so a
/// burst of answered puts costs one `writev`, not one per call.
///
/// Unary calls start when their one message is complete; streaming calls at once, fed as
/// messages arrive. Inbound flow control is ours too: without NIO's stream multiplexer
/// nothing else returns the window the client's DATA frames use up.
final class GRPCConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    static let responseHeaders: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]
    /// The stream window the client starts with (our SETTINGS_INITIAL_WINDOW_SIZE) and the
    /// connection window we grow to at once; either is topped up when half is used.
    static let streamWindow = 1 << 20
    static let connectionWindow = 1 << 22

    private struct Call {
        var method: GRPCMethod?
        var descriptor: MethodDescriptor?
        var received: ByteBuffer?
        var requests: AsyncThrowingStream<[UInt8], any Error>.Continuation?
        var task: Task<Void, Never>?
        var cancellation: ServerContext.RPCCancellationHandle?
        var started = false
        /// A streaming method (counted apart from unary ones in the metrics).
        var streams = false
        /// Answered with an error already: later frames of the stream are ignored.
        var done = false
        var headersSent = false
        /// Flow-controlled bytes received since the stream's window was last topped up.
        var unacknowledged = 0
        var caller = CallerCredentials()
        /// A plain HTTP request over HTTP/2 (TLS clients that negotiated h2: curl, browsers),
        /// answered by the HTTP responder instead of a gRPC method.
        var plainHTTP: HTTPRequest?
    }

    private let router: GRPCRouter
    private let maxMessageBytes: Int
    private var calls: [HTTP2StreamID: Call] = [:]
    private var context: ChannelHandlerContext?
    private var connection: GRPCConnection?
    private var connectionUnacknowledged = 0
    private var flushScheduled = false

    /// The common name of the client's verified certificate (TLS with client auth).
    private let certificateCommonName: String?
    /// What answers plain HTTP requests on this connection (`/health`, `/v3/…`, `/v2/…`).
    let httpResponder: (any HTTPResponder)?

    init(router: GRPCRouter, maxMessageBytes: Int, certificateCommonName: String? = nil, httpResponder: (any HTTPResponder)? = nil) {
        self.certificateCommonName = certificateCommonName
        self.httpResponder = httpResponder
        self.router = router
        self.maxMessageBytes = maxMessageBytes
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        connection = GRPCConnection(handler: self, eventLoop: context.eventLoop)
        // The connection window starts at 64 KiB whatever SETTINGS say: grow it now.
        let increment = Self.connectionWindow - 65_535
        context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        abortAll()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        abortAll()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let closed = event as? StreamClosedEvent {
            if var call = calls.removeValue(forKey: closed.streamID), closed.reason != nil {
                abort(&call)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let id = frame.streamID
        switch frame.payload {
        case .headers(let headers):
            if calls[id] == nil {
                calls[id] = Call()
                begin(id, headers.headers)
            }
            if headers.endStream { endOfRequests(id) }
        case .data(let data):
            let length = data.data.readableBytes + (data.paddingBytes.map { $0 + 1 } ?? 0)
            acknowledge(id, length)
            guard case .byteBuffer(var bytes) = data.data, calls[id]?.done == false else { return }
            if calls[id]!.plainHTTP != nil {
                if calls[id]!.plainHTTP!.body.count + bytes.readableBytes <= HTTP1Endpoint.maxBody {
                    calls[id]!.plainHTTP!.body += bytes.readBytes(length: bytes.readableBytes) ?? []
                }
                if data.endStream { servePlainHTTP(id) }
                return
            }
            if calls[id]!.received == nil {
                calls[id]!.received = bytes
            } else {
                calls[id]!.received!.writeBuffer(&bytes)
            }
            takeMessages(id)
            if data.endStream { endOfRequests(id) }
        case .rstStream:
            if var call = calls.removeValue(forKey: id) {
                if !call.done, let descriptor = call.descriptor {
                    router.metrics.handled(descriptor, streaming: call.streams, code: .cancelled)
                }
                abort(&call)
            }
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    // MARK: Requests

    private func begin(_ id: HTTP2StreamID, _ headers: HPACKHeaders) {
        let path = headers.first(name: ":path") ?? ""
        if headers.first(name: "content-type")?.hasPrefix("application/grpc") != true, httpResponder != nil {
            var converted = HTTPHeaders()
            for (name, value, _) in headers where !name.hasPrefix(":") { converted.add(name: name, value: value) }
            calls[id]!.plainHTTP = HTTPRequest(
                method: HTTPMethod(rawValue: headers.first(name: ":method") ?? "GET"), uri: path, headers: converted, body: [],
                certificateCommonName: certificateCommonName)
            return
        }
        guard headers.first(name: "content-type")?.hasPrefix("application/grpc") == true else {
            refuse(id, RPCError(code: .unknown, message: "invalid gRPC request content-type"))
            return
        }
        guard let route = router.methods[path] else {
            refuse(id, RPCError(code: .unimplemented, message: "unknown method \(path)"))
            return
        }
        if router.refusesForLearner(path) {
            refuse(id, GRPCRouter.notForLearner)
            return
        }
        calls[id]!.method = route.method
        calls[id]!.descriptor = route.descriptor
        if case .streaming = route.method { calls[id]!.streams = true }
        router.metrics.started(route.descriptor, streaming: calls[id]!.streams)
        // etcd's clients send the token as metadata `token`; grpc-gateway forwards
        // `Authorization` as `authorization`.
        calls[id]!.caller.token = headers.first(name: "token") ?? headers.first(name: "authorization")
        calls[id]!.caller.certificateCommonName = certificateCommonName
        if case .streaming = route.method { start(id, message: nil) }
    }

    /// Returns the window the client used: the connection's and the stream's, each once
    /// half of it is spent.
    private func acknowledge(_ id: HTTP2StreamID, _ length: Int) {
        guard length > 0, let context else { return }
        connectionUnacknowledged += length
        if connectionUnacknowledged >= Self.connectionWindow / 2 {
            context.write(
                wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: connectionUnacknowledged))),
                promise: nil)
            connectionUnacknowledged = 0
        }
        guard calls[id] != nil else { return }
        calls[id]!.unacknowledged += length
        if calls[id]!.unacknowledged >= Self.streamWindow / 2 {
            context.write(
                wrapOutboundOut(HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: calls[id]!.unacknowledged))),
                promise: nil)
            calls[id]!.unacknowledged = 0
        }
    }

    /// Splits complete length-prefixed messages off the received bytes.
    private func takeMessages(_ id: HTTP2StreamID) {
        while let call = calls[id], !call.done, var buffer = call.received,
            let flag = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self)
        {
            guard flag == 0 else {
                refuse(id, RPCError(code: .unimplemented, message: "compressed messages are not supported"))
                return
            }
            guard Int(length) <= maxMessageBytes else {
                refuse(id, RPCError(code: .resourceExhausted, message: "grpc: received message larger than max (\(length) vs. \(maxMessageBytes))"))
                return
            }
            guard buffer.readableBytes >= 5 + Int(length) else { return }
            buffer.moveReaderIndex(forwardBy: 5)
            let message = buffer.readBytes(length: Int(length)) ?? []
            calls[id]!.received = buffer.readableBytes > 0 ? buffer : nil
            switch call.method {
            case .unary, .direct:
                if !call.started { start(id, message: message) }
            case .streaming:
                call.requests?.yield(message)
            case nil:
                break
            }
        }
    }

    private func endOfRequests(_ id: HTTP2StreamID) {
        guard let call = calls[id], !call.done else { return }
        if call.plainHTTP != nil { return servePlainHTTP(id) }
        call.requests?.finish()
        calls[id]!.requests = nil
        if let method = call.method, !method.isStreaming, !call.started {
            refuse(id, RPCError(code: .internalError, message: "unary call without a request message"))
        }
    }

    private func start(_ id: HTTP2StreamID, message: [UInt8]?) {
        guard let context, let connection, let method = calls[id]?.method, let descriptor = calls[id]?.descriptor else { return }
        calls[id]!.started = true
        let sink = GRPCResponseSink(target: HTTP2StreamTarget(connection: connection, streamID: id), caller: calls[id]!.caller)
        let handle = ServerContext.RPCCancellationHandle()
        calls[id]!.cancellation = handle
        let serverContext = ServerContext(
            descriptor: descriptor, remotePeer: context.channel.remoteAddress?.description ?? "",
            localPeer: context.channel.localAddress?.description ?? "", cancellation: handle)
        switch method {
        case .direct(let body):
            // Last: the answer may be written (and the stream closed) before this returns.
            body(message ?? [], GRPCReply(sink: sink))
        case .unary(let body):
            calls[id]!.task = Self.runUnary(body, request: message ?? [], sink: sink, context: serverContext)
        case .streaming(let body):
            let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
            calls[id]!.requests = continuation
            calls[id]!.task = Self.runStreaming(body, requests: stream, sink: sink, context: serverContext)
        }
    }

    private static func runUnary(
        _ body: @escaping @Sendable ([UInt8], ServerContext, CallerCredentials) async throws -> [UInt8], request: [UInt8],
        sink: GRPCResponseSink,
        context: ServerContext
    ) -> Task<Void, Never> {
        Task {
            do {
                sink.respond(try await body(request, context, sink.caller))
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

    /// Answers the stream with an error status and ignores the rest of its requests.
    private func refuse(_ id: HTTP2StreamID, _ error: RPCError) {
        calls[id]?.done = true
        calls[id]?.requests?.finish()
        calls[id]?.requests = nil
        writeTrailers(id, error)
    }

    private func abort(_ call: inout Call) {
        call.done = true
        call.cancellation?.cancel()
        call.task?.cancel()
        call.requests?.finish(throwing: RPCError(code: .cancelled, message: "the client cancelled the call"))
        call.requests = nil
    }

    /// The connection is gone: stop every call.
    private func abortAll() {
        let all = calls
        calls = [:]
        for var call in all.values {
            // A call cut off with its connection ends as Canceled, as grpc-go counts it.
            if !call.done, let descriptor = call.descriptor { router.metrics.handled(descriptor, streaming: call.streams, code: .cancelled) }
            abort(&call)
        }
    }

    /// Answers a plain HTTP request through the responder: headers, then the body (in
    /// DATA frames as a stream produces it).
    private func servePlainHTTP(_ id: HTTP2StreamID) {
        guard let request = calls[id]?.plainHTTP, let responder = httpResponder, let connection else { return }
        calls[id]!.plainHTTP = nil
        calls[id]!.started = true
        calls[id]!.task = Task {
            let response = await responder.respond(to: request)
            let isHead = request.method == .HEAD
            connection.onLoop { $0.writePlainHead(id, response, isHead: isHead) }
            if let stream = response.stream {
                await stream.produce(
                    HTTPChunkWriter { bytes in
                        let promise = connection.eventLoop.makePromise(of: Void.self)
                        connection.onLoop { $0.writePlainData(id, bytes, end: false, promise: promise) }
                        try await promise.futureResult.get()
                    })
                connection.onLoop { $0.writePlainData(id, [], end: true, promise: nil) }
            }
        }
    }

    fileprivate func writePlainHead(_ id: HTTP2StreamID, _ response: HTTPResponse, isHead: Bool) {
        guard let context, calls[id]?.done == false else { return }
        var headers: HPACKHeaders = [":status": String(response.status.code)]
        for (name, value) in response.headers.sorted(by: { $0.0 < $1.0 }) { headers.add(name: name.lowercased(), value: value) }
        headers.add(name: "date", value: HTTP1Endpoint.httpDate())
        if let sniffed = response.sniffedType { headers.add(name: "content-type", value: sniffed) }
        let streams = response.stream != nil
        if !streams { headers.add(name: "content-length", value: String(response.body.count)) }
        let bodyless = !streams && (response.body.isEmpty || isHead)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers, endStream: bodyless)))), promise: nil)
        if bodyless {
            calls[id] = nil
        } else if !streams {
            writePlainData(id, response.body, end: true, promise: nil)
            return
        }
        scheduleFlush()
    }

    fileprivate func writePlainData(_ id: HTTP2StreamID, _ bytes: [UInt8], end: Bool, promise: EventLoopPromise<Void>?) {
        guard let context, calls[id]?.done == false else {
            promise?.fail(RPCError(code: .cancelled, message: "the stream ended"))
            return
        }
        let buffer = context.channel.allocator.buffer(bytes: bytes)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(buffer), endStream: end)))), promise: promise)
        if end { calls[id] = nil }
        scheduleFlush()
    }

    // MARK: Responses (on the event loop)

    /// Writes one response message; `promise` completes once HTTP/2 took the frame (flow
    /// control holds it back while the client does not read).
    fileprivate func writeMessage(_ id: HTTP2StreamID, _ message: [UInt8], promise: EventLoopPromise<Void>?) {
        guard let context, calls[id]?.done == false else {
            promise?.fail(RPCError(code: .cancelled, message: "the call ended"))
            return
        }
        if !calls[id]!.headersSent {
            calls[id]!.headersSent = true
            context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: Self.responseHeaders)))), promise: nil)
        }
        var buffer = context.channel.allocator.buffer(capacity: message.count + 5)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.count))
        buffer.writeBytes(message)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(buffer))))), promise: promise)
        scheduleFlush()
    }

    /// The trailers: status OK, or the error (as trailers only when nothing was sent).
    fileprivate func writeTrailers(_ id: HTTP2StreamID, _ error: RPCError?) {
        guard let context, calls[id] != nil else { return }
        let headersSent = calls[id]!.headersSent
        if !calls[id]!.done, let descriptor = calls[id]!.descriptor {
            router.metrics.handled(descriptor, streaming: calls[id]!.streams, code: error?.code)
        }
        calls[id]!.done = true
        var trailers: HPACKHeaders = headersSent ? [:] : Self.responseHeaders
        trailers.add(name: "grpc-status", value: String(error?.code.rawValue ?? 0))
        if let error, !error.message.isEmpty { trailers.add(name: "grpc-message", value: Self.percentEncoded(error.message)) }
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: trailers, endStream: true)))), promise: nil)
        scheduleFlush()
    }

    /// One flush for every response written before it runs.
    private func scheduleFlush() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.context?.flush()
        }
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

/// The connection handler as calls running in tasks reach it: every access hops to the
/// connection's event loop.
final class GRPCConnection: Sendable {
    let eventLoop: any EventLoop
    private let handler: NIOLoopBound<GRPCConnectionHandler>

    init(handler: GRPCConnectionHandler, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
    }

    func onLoop(_ body: @escaping @Sendable (GRPCConnectionHandler) -> Void) {
        if eventLoop.inEventLoop {
            body(handler.value)
        } else {
            let handler = self.handler
            eventLoop.execute { body(handler.value) }
        }
    }
}

/// Where a call's answers go: an HTTP/2 stream of a gRPC connection, or a JSON gateway
/// response (`V3JSONGateway`). The services cannot tell them apart.
protocol GRPCResponseTarget: Sendable {
    /// Sends one message of a streaming call; returns once the transport took it, so a
    /// client that stops reading holds the writer back.
    func send(_ message: [UInt8]) async throws
    /// A unary call's answer and the end of the call.
    func respond(_ message: [UInt8])
    /// Ends the call: status OK, or the error.
    func finish(_ error: RPCError?)
}

/// A running call's answers, and who is calling.
struct GRPCResponseSink: Sendable {
    let target: any GRPCResponseTarget
    /// The caller's credentials as the request carried them.
    var caller = CallerCredentials()

    func send(_ message: [UInt8]) async throws { try await target.send(message) }
    func respond(_ message: [UInt8]) { target.respond(message) }
    func finish(_ error: RPCError?) { target.finish(error) }
}

/// What a call says about its caller: the auth token (gRPC metadata `token`, or the
/// gateway's `Authorization` header) and the common name of a verified client
/// certificate.
struct CallerCredentials: Sendable {
    var token: String?
    var certificateCommonName: String?
}

/// An HTTP/2 stream's answers: messages framed as gRPC has them (flag byte, big-endian
/// length), each in one DATA frame, then the trailers.
struct HTTP2StreamTarget: GRPCResponseTarget {
    let connection: GRPCConnection
    let streamID: HTTP2StreamID

    func send(_ message: [UInt8]) async throws {
        let promise = connection.eventLoop.makePromise(of: Void.self)
        let id = streamID
        connection.onLoop { $0.writeMessage(id, message, promise: promise) }
        try await promise.futureResult.get()
    }

    /// Headers, the message and the trailers in one hop.
    func respond(_ message: [UInt8]) {
        let id = streamID
        connection.onLoop { handler in
            handler.writeMessage(id, message, promise: nil)
            handler.writeTrailers(id, nil)
        }
    }

    func finish(_ error: RPCError?) {
        let id = streamID
        connection.onLoop { $0.writeTrailers(id, error) }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
