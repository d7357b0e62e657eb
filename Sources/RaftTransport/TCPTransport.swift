public import Raft
public import NIOCore
public import NIOPosix
public import NIOSSL
import Synchronization

/// Raft messages between members over TCP: one outgoing connection per peer, frames of
/// `length (u32) + MessageCodec bytes`. Raft tolerates loss, so a message to a peer that
/// cannot be reached is dropped; the connection is tried again on a later send.
public final class TCPTransport: Sendable {
    public struct Address: Sendable, Hashable {
        public var host: String
        public var port: Int
        /// A unix socket instead (etcd's `unix://` peer URLs), relative to the working directory.
        public var unixPath: String?
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        public init(unixPath: String) {
            self.init(host: "", port: 0)
            self.unixPath = unixPath
        }
    }

    /// What the peer port answers to a plain HTTP GET (etcd serves `/members` and
    /// `/version` there; a joining member asks for the member list): the request path in,
    /// status, extra headers and a JSON body out.
    public typealias PeerHTTPResponder = @Sendable (_ path: String) -> (status: Int, headers: [(String, String)], body: [UInt8])

    /// TLS between peers (`--peer-cert-file` and friends): the listener's context and the
    /// one for connections this member dials.
    public struct PeerTLS: Sendable {
        public let server: NIOSSLContext
        public let client: NIOSSLContext
        public init(server: NIOSSLContext, client: NIOSSLContext) {
            self.server = server
            self.client = client
        }
    }

    private let id: NodeID
    private let tls: PeerTLS?
    /// Changes with the membership (members added, removed, or moved to other URLs).
    private let peers: Mutex<[NodeID: Address]>
    private let listen: [Address]
    private let deliver: @Sendable ([Message]) -> Void
    private let httpResponder: PeerHTTPResponder?
    private let group: any EventLoopGroup
    private let connections = Mutex<[NodeID: PeerConnection]>([:])
    private let servers = Mutex<[any Channel]>([])

    private struct PeerConnection {
        var channel: (any Channel)?
        var connecting = false
        var lastAttempt: ContinuousClock.Instant?
    }

    /// `listen` defaults to this member's own entry in `peers`.
    public convenience init(
        id: NodeID, peers: [NodeID: Address], listen: [Address]? = nil, deliver: @escaping @Sendable (Message) -> Void
    ) {
        self.init(id: id, peers: peers, listen: listen, deliverBatch: { for message in $0 { deliver(message) } })
    }

    /// `deliverBatch` gets the messages of one socket read together, so a receiver can
    /// step them in one go. Connections live on `group`: a host that sends and receives
    /// from one event loop of its own passes that loop, so peer traffic never changes
    /// threads.
    public init(
        id: NodeID, peers: [NodeID: Address], listen: [Address]? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        httpResponder: PeerHTTPResponder? = nil, tls: PeerTLS? = nil,
        deliverBatch: @escaping @Sendable ([Message]) -> Void
    ) {
        self.tls = tls
        self.group = group
        self.id = id
        self.peers = Mutex(peers)
        self.listen = listen ?? peers[id].map { [$0] } ?? []
        self.deliver = deliverBatch
        self.httpResponder = httpResponder
    }

    /// Sets (or, with nil, forgets) where a peer is reached; an open connection to an old
    /// address is closed so the next send dials the new one.
    public func setPeer(_ peer: NodeID, _ address: Address?) {
        let changed = peers.withLock { table in
            let old = table[peer]
            table[peer] = address
            return old != address
        }
        guard changed else { return }
        let old = connections.withLock { $0.removeValue(forKey: peer) }
        old?.channel?.close(promise: nil)
    }

    /// Whether a connection to `peer` is open now (etcd's "active" peers, used by the
    /// reconfiguration checks).
    public func isConnected(to peer: NodeID) -> Bool {
        _ = channel(to: peer)
        return connections.withLock { $0[peer]?.channel?.isActive == true }
    }

    /// Listens on the `listen` addresses.
    public func start() async throws {
        guard !listen.isEmpty else { throw TransportError("no address to listen on for member \(id)") }
        for address in listen { try await start(address) }
    }

    private func start(_ address: Address) async throws {
        let deliver = self.deliver
        let responder = self.httpResponder
        let tls = self.tls
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.server)) }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(httpResponder: responder)))
                    try channel.pipeline.syncOperations.addHandler(InboundMessages(deliver: deliver))
                }
            }
        let channel =
            if let path = address.unixPath {
                try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            } else {
                try await bootstrap.bind(host: address.host, port: address.port).get()
            }
        servers.withLock { $0.append(channel) }
    }

    /// Sends messages in order; those to one peer go out as one write (one hop to the
    /// connection's event loop and one system call per peer, however many messages).
    public func send(_ messages: [Message]) {
        var byPeer: [(peer: NodeID, messages: [Message])] = []
        for message in messages {
            if let index = byPeer.firstIndex(where: { $0.peer == message.to }) {
                byPeer[index].messages.append(message)
            } else {
                byPeer.append((message.to, [message]))
            }
        }
        for (peer, batch) in byPeer {
            guard let channel = channel(to: peer) else { continue }
            let bodies = batch.map(MessageCodec.encode)
            var buffer = channel.allocator.buffer(capacity: bodies.reduce(0) { $0 + $1.count + 4 })
            for body in bodies {
                buffer.writeInteger(UInt32(body.count), endianness: .little)
                buffer.writeBytes(body)
            }
            channel.writeAndFlush(buffer, promise: nil)
        }
    }

    /// TCP_USER_TIMEOUT (linux/tcp.h).
    static let tcpUserTimeout: CInt = 18

    /// The open connection to `peer`, or nil while there is none (one attempt is started,
    /// at most every 200 ms).
    private func channel(to peer: NodeID) -> (any Channel)? {
        guard let address = peers.withLock({ $0[peer] }) else { return nil }
        let now = ContinuousClock.now
        let start: Bool = connections.withLock { table in
            var connection = table[peer] ?? PeerConnection()
            if let channel = connection.channel, channel.isActive { return false }
            connection.channel = nil
            if connection.connecting { return false }
            if let last = connection.lastAttempt, now - last < .milliseconds(200) { return false }
            connection.connecting = true
            connection.lastAttempt = now
            table[peer] = connection
            return true
        }
        if start {
            let tls = self.tls
            let bootstrap = ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls.client, serverHostname: nil))
                        }
                    }
                }
                .connectTimeout(.milliseconds(500))
            let connected =
                if let path = address.unixPath {
                    bootstrap.connect(unixDomainSocketPath: path)
                } else {
                    bootstrap.channelOption(.tcpOption(.tcp_nodelay), value: 1)
                        // A peer cut off by a partition leaves the connection with unacknowledged
                        // data and TCP's retransmissions backing off to seconds apart: after a
                        // heal, messages waited up to 7 s for the next one (robustness suite).
                        // Unacknowledged for 2 s, the connection is dropped and a fresh one dialed.
                        .channelOption(.tcpOption(NIOBSDSocket.Option(rawValue: Self.tcpUserTimeout)), value: 2000)
                        .connect(host: address.host, port: address.port)
                }
            connected
                .whenComplete { result in
                    self.connections.withLock { table in
                        table[peer]?.connecting = false
                        if case .success(let channel) = result { table[peer]?.channel = channel }
                    }
                }
        }
        return connections.withLock { $0[peer]?.channel }
    }

    public func shutdown() {
        servers.withLock { channels in
            for channel in channels { channel.close(promise: nil) }
        }
        connections.withLock { table in
            for connection in table.values { connection.channel?.close(promise: nil) }
        }
    }
}

public struct TransportError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Splits the stream into `length + body` frames; a frame over the limit closes the
/// connection (a broken or hostile peer). A connection that opens with `GET ` is an HTTP
/// client instead (those four bytes read as a length far over the limit, so no Raft
/// frame can be mistaken for one): it gets one answer from the responder and is closed.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let httpResponder: TCPTransport.PeerHTTPResponder?
    private var sawFirstFrame = false

    init(httpResponder: TCPTransport.PeerHTTPResponder?) { self.httpResponder = httpResponder }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self) else {
            return .needMoreData
        }
        if !sawFirstFrame, let responder = httpResponder, buffer.getString(at: buffer.readerIndex, length: 4) == "GET " {
            return answerHTTP(context: context, buffer: &buffer, responder: responder)
        }
        sawFirstFrame = true
        guard Int(length) <= MessageCodec.maxFrame else { throw TransportError("frame of \(length) bytes refused") }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        guard let frame = buffer.readSlice(length: Int(length)) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }
}

extension FrameDecoder {
    /// Reads the request head (up to 8 KiB), answers it and closes the connection.
    private func answerHTTP(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, responder: TCPTransport.PeerHTTPResponder
    ) -> DecodingState {
        let view = buffer.readableBytesView
        guard let end = view.firstRange(of: Array("\r\n\r\n".utf8)) else {
            if view.count > 8192 { context.close(promise: nil) }
            return .needMoreData
        }
        let head = String(decoding: view[view.startIndex..<end.lowerBound], as: UTF8.self)
        buffer.moveReaderIndex(to: buffer.writerIndex)
        let requestLine = head.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let words = requestLine.split(separator: " ")
        let path = words.count >= 2 ? String(words[1]) : "/"
        let (status, headers, body) = responder(path)
        var text = "HTTP/1.1 \(status) \(status == 200 ? "OK" : "Not Found")\r\nContent-Type: application/json\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        var out = context.channel.allocator.buffer(capacity: text.utf8.count + body.count)
        out.writeString(text)
        out.writeBytes(body)
        let channel = context.channel
        channel.writeAndFlush(out).whenComplete { _ in channel.close(promise: nil) }
        return .needMoreData
    }
}

final class InboundMessages: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let deliver: @Sendable ([Message]) -> Void
    private var pending: [Message] = []

    init(deliver: @escaping @Sendable ([Message]) -> Void) { self.deliver = deliver }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        guard let bytes = frame.readBytes(length: frame.readableBytes), let message = MessageCodec.decode(bytes[...]) else {
            context.close(promise: nil)
            return
        }
        pending.append(message)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !pending.isEmpty {
            deliver(pending)
            pending.removeAll(keepingCapacity: true)
        }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
