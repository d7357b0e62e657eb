import Glibc
public import NIOCore
public import NIOHTTP1

/// An HTTP/1.1 request as the responder sees it.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    public var uri: String
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// The common name of the client's verified TLS certificate.
    public var certificateCommonName: String? = nil

    public init(method: HTTPMethod, uri: String, headers: HTTPHeaders, body: [UInt8], certificateCommonName: String? = nil) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
        self.certificateCommonName = certificateCommonName
    }

    /// The path without the query.
    public var path: Substring { uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0] }
}

/// A response as Go's net/http writes it: the handler's headers sorted by name, then
/// `Date` and `Content-Length`, then a `Content-Type` the server guessed when the handler
/// set none (`sniffedType`). Clients compare such bytes, so the order is kept.
public struct HTTPResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var sniffedType: String?
    /// A body written as it is produced, in chunks (`Transfer-Encoding: chunked`), instead
    /// of `body`: the JSON gateway's streams.
    public var stream: HTTPBodyStream?
    /// Trailers after a streamed body (announced in a `Trailer` header by the handler).
    public var trailers: [(String, String)] = []

    /// A response whose handler set its content type.
    public init(_ status: HTTPResponseStatus, contentType: String, body: String) {
        self.status = status
        headers = [("Content-Type", contentType)]
        self.body = Array(body.utf8)
    }

    /// A response with a body of bytes.
    public init(_ status: HTTPResponseStatus, contentType: String, bytes: [UInt8]) {
        self.status = status
        headers = [("Content-Type", contentType)]
        body = bytes
    }

    /// A response whose content type the server guesses (Go: `DetectContentType`).
    public init(_ status: HTTPResponseStatus, sniffedType: String, body: String) {
        self.status = status
        headers = []
        self.body = Array(body.utf8)
        self.sniffedType = sniffedType
    }

    /// Go's `http.Error(w, "Method Not Allowed", 405)` with the `Allow` header when given;
    /// `nosniff` where the handler's Go version adds `X-Content-Type-Options`.
    public static func methodNotAllowed(allow: String? = nil, nosniff: Bool = false) -> HTTPResponse {
        var response = HTTPResponse(.methodNotAllowed, contentType: "text/plain; charset=utf-8", body: "Method Not Allowed\n")
        if let allow { response.headers.append(("Allow", allow)) }
        if nosniff { response.headers.append(("X-Content-Type-Options", "nosniff")) }
        return response
    }

    /// Go's `http.NotFound`.
    public static var notFound: HTTPResponse {
        var response = HTTPResponse(.notFound, contentType: "text/plain; charset=utf-8", body: "404 page not found\n")
        response.headers.append(("X-Content-Type-Options", "nosniff"))
        return response
    }
}

/// A response body produced over time. `produce` writes chunks until it returns; it is
/// cancelled when the client goes away.
public struct HTTPBodyStream: Sendable {
    public let produce: @Sendable (HTTPChunkWriter) async -> Void

    public init(produce: @escaping @Sendable (HTTPChunkWriter) async -> Void) { self.produce = produce }
}

/// Writes one chunk of a streamed body and waits until the connection took it, so a
/// client that stops reading holds the producer back. Throws once the connection is gone.
public struct HTTPChunkWriter: Sendable {
    public let write: @Sendable ([UInt8]) async throws -> Void

    public init(write: @escaping @Sendable ([UInt8]) async throws -> Void) { self.write = write }

    public func write(_ bytes: [UInt8]) async throws { try await write(bytes) }
}

/// Answers HTTP/1.1 requests.
public protocol HTTPResponder: Sendable {
    func respond(to request: HTTPRequest) async -> HTTPResponse
}

/// Collects one request at a time (body up to a limit), asks the responder, writes the
/// answer; keep-alive as HTTP/1.1 has it. Requests pipelined behind wait their turn.
public final class HTTP1Endpoint: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundOut = HTTPServerResponsePart

    /// Bodies larger than this are refused with 413 (the v2 API's largest values fit).
    public static let maxBody = 4 << 20
    private let responder: any HTTPResponder
    private var current: HTTPRequest?
    /// Complete requests waiting their turn; `tooLarge` ones are answered 413 unread.
    private var queued: [(request: HTTPRequest, tooLarge: Bool)] = []
    private var busy = false
    private var tooLarge = false
    /// The request being answered: cancelled when the client goes away, which ends a v2
    /// long poll's wait or a gateway stream.
    private var running: Task<Void, Never>?

    private let certificateCommonName: String?

    public init(responder: any HTTPResponder, certificateCommonName: String? = nil) {
        self.responder = responder
        self.certificateCommonName = certificateCommonName
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            current = HTTPRequest(
                method: head.method, uri: head.uri, headers: head.headers, body: [], certificateCommonName: certificateCommonName)
            tooLarge = false
        case .body(var chunk):
            guard current != nil, !tooLarge else { return }
            if current!.body.count + chunk.readableBytes > Self.maxBody {
                tooLarge = true
                current!.body = []
            } else {
                current!.body += chunk.readBytes(length: chunk.readableBytes) ?? []
            }
        case .end:
            guard let request = current else { return }
            current = nil
            queued.append((request, tooLarge))
            serveNext(context: context)
        }
    }

    private func serveNext(context: ChannelHandlerContext) {
        guard !busy, !queued.isEmpty else { return }
        busy = true
        let (request, tooLarge) = queued.removeFirst()
        let responder = self.responder
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        running = Task {
            let response: HTTPResponse
            if tooLarge {
                response = HTTPResponse(.payloadTooLarge, contentType: "text/plain; charset=utf-8", body: "request body too large\n")
            } else {
                response = await responder.respond(to: request)
            }
            loop.execute {
                let (handler, context) = bound.value
                handler.write(response, for: request, context: context)
            }
            guard let stream = response.stream else { return }
            let writer = HTTPChunkWriter { bytes in
                let promise = loop.makePromise(of: Void.self)
                loop.execute {
                    let (handler, context) = bound.value
                    context.writeAndFlush(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: bytes)))), promise: promise)
                }
                try await promise.futureResult.get()
            }
            await stream.produce(writer)
            let trailers = response.trailers
            loop.execute {
                let (handler, context) = bound.value
                handler.finish(request, context: context, trailers: trailers.isEmpty ? nil : HTTPHeaders(trailers))
            }
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        running?.cancel()
        running = nil
        queued = []
        context.fireChannelInactive()
    }

    private func write(_ response: HTTPResponse, for request: HTTPRequest, context: ChannelHandlerContext) {
        var headers = HTTPHeaders(response.headers.sorted { $0.0 < $1.0 })
        headers.add(name: "Date", value: Self.httpDate())
        if response.stream != nil {
            headers.add(name: "Transfer-Encoding", value: "chunked")
        } else {
            headers.add(name: "Content-Length", value: String(response.body.count))
        }
        if let sniffed = response.sniffedType { headers.add(name: "Content-Type", value: sniffed) }
        if Self.closes(request) { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
        if response.stream != nil {
            context.flush()
            return
        }
        if !response.body.isEmpty, request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        }
        finish(request, context: context)
    }

    private static func closes(_ request: HTTPRequest) -> Bool {
        request.headers[canonicalForm: "connection"].contains { $0.lowercased() == "close" }
    }

    /// Ends the response; the next request's turn, or the connection's end.
    private func finish(_ request: HTTPRequest, context: ChannelHandlerContext, trailers: HTTPHeaders? = nil) {
        let written = context.writeAndFlush(wrapOutboundOut(.end(trailers)))
        let close = Self.closes(request)
        if close {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
            return
        }
        busy = false
        running = nil
        serveNext(context: context)
    }

    /// RFC 7231's IMF-fixdate, as the Date header carries it.
    public static func httpDate() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A request the decoder cannot parse has had its 400 from NIO's protocol error
        // handler before this one. Any other error (a failed TLS handshake, a reset in the
        // middle of a response) leaves nothing to answer: a response written now could
        // interleave with one in flight, which NIO treats as a programming error and traps.
        context.close(promise: nil)
    }
}
