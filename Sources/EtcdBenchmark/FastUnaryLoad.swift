import EtcdClient
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import Synchronization

/// The load path for unary benchmarks: gRPC over HTTP/2 driven entirely on the event loops.
///
/// Why not `EtcdClient` here: a general client pays for a stream channel, async sequences
/// and two thread hops per call, about 100 µs of CPU on this machine, which made the
/// generator, not etcd, the bottleneck. This path keeps each connection in one
/// `ChannelHandler` working on HTTP/2 frames: when a response's trailers arrive, that
/// virtual client's next request is written at once, as h2load does. Requests are
/// pre-built gRPC messages; responses are checked for `grpc-status: 0`.
enum FastUnaryLoad {
    /// Shared by all connections: how many requests are left to start.
    final class Budget: Sendable {
        let remaining: Atomic<Int>
        init(_ total: Int) { remaining = Atomic(total) }

        func take() -> Bool { remaining.wrappingSubtract(1, ordering: .relaxed).oldValue > 0 }
    }

    struct Outcome: Sendable {
        var latencies: [Double]
        var errors: Int
    }

    /// Runs `clients` virtual clients spread over `connections` connections to `endpoint`
    /// until `total` requests have completed. `message(slot)` builds the protobuf request body.
    static func run(
        endpoints: [EtcdEndpoint], path: String, connections: Int, clients: Int, total: Int, keySpaceSize: Int,
        sequentialKeys: Bool, message: @escaping @Sendable (Int) -> [UInt8]
    ) async throws -> LatencyReport {
        let group = MultiThreadedEventLoopGroup.singleton
        let budget = Budget(total)
        let slots = SlotSource(keySpaceSize: keySpaceSize, sequential: sequentialKeys)
        // Requests are built before the clock starts when the key space is small enough, so
        // sending one is a reference-counted buffer write.
        let prebuilt: [ByteBuffer]? =
            keySpaceSize <= 100_000 ? (0..<max(keySpaceSize, 1)).map { grpcFramed(message($0)) } : nil
        let clock = ContinuousClock()
        let start = clock.now
        let outcomes: [Outcome] = try await withThrowingTaskGroup(of: Outcome.self) { tasks in
            for index in 0..<connections {
                let share = clients / connections + (index < clients % connections ? 1 : 0)
                if share == 0 { continue }
                let endpoint = endpoints[index % endpoints.count]
                tasks.addTask {
                    let done = group.any().makePromise(of: Outcome.self)
                    let channel = try await ClientBootstrap(group: group)
                        .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                        .channelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture {
                                let operations = channel.pipeline.syncOperations
                                try operations.addHandler(HTTP2PingResponder())
                                try operations.addHandler(
                                    NIOHTTP2Handler(
                                        mode: .client,
                                        initialSettings: [HTTP2Setting(parameter: .maxConcurrentStreams, value: 1000)]))
                                try operations.addHandler(
                                    LoadHandler(
                                        path: path, authority: endpoint.description, clients: share, budget: budget,
                                        slots: slots, prebuilt: prebuilt, message: message, done: done))
                            }
                        }
                        .connect(host: endpoint.host, port: endpoint.port).get()
                    let outcome = try await done.futureResult.get()
                    try? await channel.close().get()
                    return outcome
                }
            }
            var all: [Outcome] = []
            for try await outcome in tasks { all.append(outcome) }
            return all
        }
        let (seconds, attoseconds) = (clock.now - start).components
        return LatencyReport(
            latencies: outcomes.flatMap(\.latencies), errors: outcomes.map(\.errors).reduce(0, +),
            total: Double(seconds) + Double(attoseconds) / 1e18)
    }

    /// A gRPC message: flag byte, 4-byte length, body.
    static func grpcFramed(_ body: [UInt8]) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: body.count + 5)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(body.count))
        buffer.writeBytes(body)
        return buffer
    }

    /// Key slots: sequential from a shared counter, or random.
    final class SlotSource: Sendable {
        let keySpaceSize: Int
        let sequential: Bool
        let counter = Atomic<Int>(0)

        init(keySpaceSize: Int, sequential: Bool) {
            self.keySpaceSize = max(keySpaceSize, 1)
            self.sequential = sequential
        }

        func next() -> Int {
            if sequential { return counter.wrappingAdd(1, ordering: .relaxed).oldValue % keySpaceSize }
            return Int.random(in: 0..<keySpaceSize)
        }
    }

    /// One connection's virtual clients, on its event loop.
    final class LoadHandler: ChannelInboundHandler {
        typealias InboundIn = HTTP2Frame
        typealias OutboundOut = HTTP2Frame

        let path: String
        let authority: String
        let clients: Int
        let budget: Budget
        let slots: SlotSource
        let prebuilt: [ByteBuffer]?
        let message: @Sendable (Int) -> [UInt8]
        let done: EventLoopPromise<Outcome>
        private var nextStreamID = 1
        private var started: [HTTP2StreamID: NIODeadline] = [:]
        private var latencies: [Double] = []
        private var errors = 0
        private var finished = false
        private let headers: HPACKHeaders
        /// Response bytes not yet returned to the server's connection-level window (frame
        /// mode leaves flow control to us).
        private var unacknowledgedBytes = 0

        init(
            path: String, authority: String, clients: Int, budget: Budget, slots: SlotSource, prebuilt: [ByteBuffer]?,
            message: @escaping @Sendable (Int) -> [UInt8], done: EventLoopPromise<Outcome>
        ) {
            self.prebuilt = prebuilt
            self.path = path
            self.authority = authority
            self.clients = clients
            self.budget = budget
            self.slots = slots
            self.message = message
            self.done = done
            headers = [
                ":method": "POST", ":scheme": "http", ":path": path, ":authority": authority,
                "content-type": "application/grpc", "te": "trailers",
            ]
        }

        func channelActive(context: ChannelHandlerContext) {
            for _ in 0..<clients { sendNext(context: context) }
            context.flush()
            context.fireChannelActive()
        }

        private func sendNext(context: ChannelHandlerContext) {
            guard budget.take() else {
                if started.isEmpty { finish() }
                return
            }
            let streamID = HTTP2StreamID(nextStreamID)
            nextStreamID += 2
            let slot = slots.next()
            let buffer = prebuilt?[slot] ?? FastUnaryLoad.grpcFramed(message(slot))
            started[streamID] = .now()
            context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .headers(.init(headers: headers)))), promise: nil)
            context.write(
                wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .data(.init(data: .byteBuffer(buffer), endStream: true)))),
                promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            if case .data(let payload) = frame.payload {
                unacknowledgedBytes += payload.data.readableBytes
                if unacknowledgedBytes >= 16_384 {
                    context.write(
                        wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: unacknowledgedBytes))),
                        promise: nil)
                    unacknowledgedBytes = 0
                }
            }
            switch frame.payload {
            case .headers(let payload) where payload.endStream:
                complete(frame.streamID, ok: payload.headers.first(name: "grpc-status") == "0", context: context)
            case .data(let payload) where payload.endStream:
                complete(frame.streamID, ok: false, context: context)
            case .rstStream:
                complete(frame.streamID, ok: false, context: context)
            default:
                break
            }
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            context.flush()
        }

        private func complete(_ streamID: HTTP2StreamID, ok: Bool, context: ChannelHandlerContext) {
            guard let began = started.removeValue(forKey: streamID) else { return }
            if ok {
                latencies.append(Double((NIODeadline.now() - began).nanoseconds) / 1e9)
            } else {
                errors += 1
            }
            sendNext(context: context)
        }

        func channelInactive(context: ChannelHandlerContext) {
            errors += started.count
            started.removeAll()
            finish()
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }

        private func finish() {
            guard !finished else { return }
            finished = true
            done.succeed(Outcome(latencies: latencies, errors: errors))
        }
    }
}

/// Hand-built protobuf messages for the fast path (field numbers from etcd's rpc.proto).
enum BenchmarkMessages {
    static func appendVarint(_ value: Int, to bytes: inout [UInt8]) {
        var remaining = UInt64(value)
        while remaining >= 0x80 {
            bytes.append(UInt8(remaining & 0x7F) | 0x80)
            remaining >>= 7
        }
        bytes.append(UInt8(remaining))
    }

    static func appendField(_ number: Int, _ payload: [UInt8], to bytes: inout [UInt8]) {
        bytes.append(UInt8(number << 3 | 2))
        appendVarint(payload.count, to: &bytes)
        bytes.append(contentsOf: payload)
    }

    /// PutRequest{key=1, value=2}.
    static func put(key: [UInt8], value: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(key.count + value.count + 8)
        appendField(1, key, to: &bytes)
        appendField(2, value, to: &bytes)
        return bytes
    }

    /// RangeRequest{key=1, range_end=2, serializable=7}.
    static func range(key: [UInt8], end: [UInt8]?, serializable: Bool) -> [UInt8] {
        var bytes: [UInt8] = []
        appendField(1, key, to: &bytes)
        if let end { appendField(2, end, to: &bytes) }
        if serializable { bytes += [0x38, 0x01] }
        return bytes
    }

    /// TxnRequest{success=2: [RequestOp{request_put=2: PutRequest}]}.
    static func txnPut(keys: [[UInt8]], value: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        for key in keys {
            var operation: [UInt8] = []
            appendField(2, put(key: key, value: value), to: &operation)
            appendField(2, operation, to: &bytes)
        }
        return bytes
    }
}
