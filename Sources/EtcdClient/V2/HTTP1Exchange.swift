import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An absolute `http://` or `https://` URL of an etcd member, as the v2 API and discovery
/// name them (`http://10.0.0.1:2379`, `https://discovery.etcd.io/<token>`).
public struct HTTPURL: Sendable, Hashable, CustomStringConvertible {
    public var secure: Bool
    public var host: String
    public var port: Int
    /// The path part, without query; empty or starting with `/`.
    public var path: String

    public init(secure: Bool, host: String, port: Int, path: String = "") {
        self.secure = secure
        self.host = host
        self.port = port
        self.path = path
    }

    /// Parses `scheme://host[:port][/path]`; a URL without a scheme is `http`.
    public init(parsing text: String) throws(EtcdError) {
        var rest = Substring(text)
        var secure = false
        if let range = rest.firstRange(of: "://") {
            switch rest[..<range.lowerBound].lowercased() {
            case "http": secure = false
            case "https": secure = true
            default: throw EtcdError(.invalidArgument, "unsupported URL scheme in \(text)")
            }
            rest = rest[range.upperBound...]
        }
        var path = ""
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        if let query = path.firstIndex(of: "?") { path = String(path[..<query]) }
        let (host, port) = try EtcdEndpoint.splitHostPort(rest, defaultPort: secure ? 443 : 80, in: text)
        self.init(secure: secure, host: host, port: port, path: path)
    }

    /// The URL and what to send as the request target for it (`/path?query`; `/` for
    /// none), since `init(parsing:)` keeps no query.
    public static func withRequestTarget(parsing text: String) throws(EtcdError) -> (HTTPURL, String) {
        let url = try HTTPURL(parsing: text)
        var target = url.path.isEmpty ? "/" : url.path
        if let query = text.firstIndex(of: "?") { target += text[query...] }
        return (url, target)
    }

    /// `host:port` with IPv6 hosts in brackets.
    public var hostPort: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The URL without its path, as Go prints an endpoint.
    public var origin: String { (secure ? "https://" : "http://") + hostPort }

    public var description: String { origin + path }
}

/// One HTTP/1.1 response, read whole.
public struct HTTP1Response: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// Why an exchange failed, worded as Go's net/http client words it, since etcdctl and
/// discovery print these texts.
public enum HTTP1Failure: Error, Sendable, CustomStringConvertible {
    /// Connecting failed: `dial tcp 127.0.0.1:1: connect: connection refused`.
    case dial(String)
    /// No response head within the header timeout.
    case headerTimeout
    /// The connection broke or the peer spoke something else than HTTP/1.1.
    case transport(String)

    public var description: String {
        switch self {
        case .dial(let text), .transport(let text): return text
        case .headerTimeout: return "header timeout"
        }
    }
}

/// One request on its own connection (`Connection: close`). The v2 API, discovery and
/// health checks make few requests, so a pool would buy nothing; a long-poll watch needs
/// its own connection anyway. `unixSocket` dials that path instead of the URL's host
/// (fleetd's API socket); the URL still names the Host header.
public enum HTTP1Exchange {
    public static func perform(
        _ method: String, url: HTTPURL, pathAndQuery: String, headers: [(String, String)] = [],
        body: [UInt8]? = nil, tls: EtcdTLSConfiguration? = nil, dialTimeout: Duration = .seconds(30),
        headerTimeout: Duration? = nil, maxBodyBytes: Int = 64 << 20,
        bodySink: (@Sendable ([UInt8]) -> Bool)? = nil, unixSocket: String? = nil
    ) async throws(HTTP1Failure) -> HTTP1Response {
        let group = MultiThreadedEventLoopGroup.singleton
        let loop = group.next()
        let headPromise = loop.makePromise(of: Void.self)
        let donePromise = loop.makePromise(of: HTTP1Response.self)
        let sslContext: NIOSSLContext?
        if url.secure || tls != nil {
            do {
                sslContext = try makeSSLContext(tls ?? EtcdTLSConfiguration())
            } catch {
                throw .transport("tls: \(error)")
            }
        } else {
            sslContext = nil
        }
        let serverName = isIPLiteral(url.host) ? nil : url.host
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(Int64(dialTimeout.components.seconds) * 1_000_000_000
                + dialTimeout.components.attoseconds / 1_000_000_000))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let handler = try NIOSSLClientHandler(context: sslContext, serverHostname: serverName)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        ResponseCollector(head: headPromise, done: donePromise, maxBodyBytes: maxBodyBytes, bodySink: bodySink))
                }
            }
        let channel: any Channel
        do {
            if let unixSocket {
                channel = try await bootstrap.connect(unixDomainSocketPath: unixSocket).get()
            } else {
                channel = try await bootstrap.connect(host: url.host, port: url.port).get()
            }
        } catch {
            let failure = HTTP1Failure.dial(
                unixSocket.map { "dial unix \($0): \(describeDialError(error))" } ?? "dial tcp \(url.hostPort): \(describeDialError(error))")
            headPromise.fail(failure)
            donePromise.fail(failure)
            throw failure
        }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: pathAndQuery)
        head.headers.add(name: "Host", value: url.hostPort)
        head.headers.add(name: "User-Agent", value: "Go-http-client/1.1")
        head.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body { head.headers.add(name: "Content-Length", value: String(body.count)) }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        if let headerTimeout {
            let timeout = loop.scheduleTask(in: .nanoseconds(Int64(headerTimeout.components.seconds) * 1_000_000_000
                + headerTimeout.components.attoseconds / 1_000_000_000)) {
                headPromise.fail(HTTP1Failure.headerTimeout)
                donePromise.fail(HTTP1Failure.headerTimeout)
                channel.close(promise: nil)
            }
            headPromise.futureResult.whenComplete { _ in timeout.cancel() }
        }
        do {
            return try await withTaskCancellationHandler {
                try await donePromise.futureResult.get()
            } onCancel: {
                channel.close(promise: nil)
            }
        } catch let failure as HTTP1Failure {
            throw failure
        } catch {
            throw .transport("\(error)")
        }
    }

    static func makeSSLContext(_ tls: EtcdTLSConfiguration) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let ca = tls.trustedCAFile {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
        }
        if let certificate = tls.certificateFile, let key = tls.keyFile {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        }
        if tls.insecureSkipVerify { configuration.certificateVerification = .none }
        return try NIOSSLContext(configuration: configuration)
    }

    static func isIPLiteral(_ host: String) -> Bool {
        host.contains(":") || host.split(separator: ".", omittingEmptySubsequences: false).count == 4
            && host.split(separator: ".").allSatisfy { UInt8($0) != nil }
    }

    /// Go's dialer texts: `connect: connection refused`, `i/o timeout`.
    static func describeDialError(_ error: any Error) -> String {
        if let connection = error as? NIOConnectionError {
            if let first = connection.connectionErrors.first { return describeDialError(first.error) }
            if let resolution = connection.dnsAAAAError ?? connection.dnsAError { return "lookup \(connection.host): \(resolution)" }
        }
        if let io = error as? IOError {
            let text = String(cString: strerror(io.errnoCode))
            return "connect: " + text.prefix(1).lowercased() + text.dropFirst()
        }
        if let channelError = error as? ChannelError, case .connectTimeout = channelError { return "i/o timeout" }
        return "\(error)"
    }
}

/// Collects one response: completes `head` when the status line arrives (the header
/// timeout stops there) and `done` with the whole body at the end.
private final class ResponseCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let head: EventLoopPromise<Void>
    private let done: EventLoopPromise<HTTP1Response>
    private var response = HTTP1Response(status: 0, headers: [], body: [])
    private var finished = false
    private let maxBodyBytes: Int
    /// Takes the body as it arrives instead of collecting it (downloads); false aborts.
    private let bodySink: (@Sendable ([UInt8]) -> Bool)?

    init(
        head: EventLoopPromise<Void>, done: EventLoopPromise<HTTP1Response>, maxBodyBytes: Int,
        bodySink: (@Sendable ([UInt8]) -> Bool)?
    ) {
        self.head = head
        self.done = done
        self.maxBodyBytes = maxBodyBytes
        self.bodySink = bodySink
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let responseHead):
            response.status = Int(responseHead.status.code)
            response.headers = responseHead.headers.map { (name: $0.name, value: $0.value) }
            head.succeed()
        case .body(var buffer):
            guard let bytes = buffer.readBytes(length: buffer.readableBytes) else { return }
            // Only successful responses stream; an error's body is small and wanted whole.
            if let bodySink, (200..<300).contains(response.status) {
                if !bodySink(bytes) {
                    fail(HTTP1Failure.transport("download aborted"))
                    context.close(promise: nil)
                }
                return
            }
            guard response.body.count + bytes.count <= maxBodyBytes else {
                fail(HTTP1Failure.transport("response body larger than \(maxBodyBytes) bytes"))
                context.close(promise: nil)
                return
            }
            response.body.append(contentsOf: bytes)
        case .end:
            finished = true
            done.succeed(response)
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(HTTP1Failure.transport("\(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(HTTP1Failure.transport("EOF"))
        context.fireChannelInactive()
    }

    private func fail(_ error: HTTP1Failure) {
        guard !finished else { return }
        finished = true
        head.fail(error)
        done.fail(error)
    }
}
