import EtcdAPI
import EtcdClient
import Foundation
import GRPCCore
import Synchronization

/// Watches through the proxy, coalesced as etcd's grpc-proxy does: every client watcher of
/// the same range, options and "from now on" shares one watch on the cluster. A watcher
/// asking for history (a start revision) gets a watch of its own. Upstream watches are
/// EtcdClient watches, which resume from the next revision on another member when the one
/// in use is lost, so client watchers see neither a gap nor a repeat.
actor ProxyWatchHub {
    /// What makes two watchers shareable.
    struct Shape: Hashable {
        var key: Data
        var rangeEnd: Data
        var prevKV: Bool
        var progressNotify: Bool
        var filters: [Int]
    }

    private final class Upstream {
        var subscribers: [Int: AsyncStream<Etcdserverpb_WatchResponse>.Continuation] = [:]
        var task: Task<Void, Never>?
        /// The revision after the last one delivered: where a restart picks up.
        var nextRevision: Int64
        let shape: Shape
        let shared: Bool

        init(shape: Shape, nextRevision: Int64, shared: Bool) {
            self.shape = shape
            self.nextRevision = nextRevision
            self.shared = shared
        }
    }

    private var upstreams: [Int: Upstream] = [:]
    private var sharedByShape: [Shape: Int] = [:]
    private var nextUpstream = 0
    private var nextSubscriber = 0
    private var client: EtcdClient?
    /// Client watchers and upstream watches now (for /metrics: their difference is what
    /// coalescing saved).
    nonisolated let counts = Mutex((watchers: 0, upstreams: 0))

    /// Points every upstream watch at a new client (after the member list changed): each
    /// restarts from the revision after the last it delivered.
    func use(_ newClient: EtcdClient) {
        client = newClient
        for (id, upstream) in upstreams {
            upstream.task?.cancel()
            start(id, upstream)
        }
    }

    enum Subscription {
        case started(subscriber: Int, upstream: Int, header: Etcdserverpb_ResponseHeader, responses: AsyncStream<Etcdserverpb_WatchResponse>)
        case failed(RPCError)
    }

    /// Adds a watcher; `startRevision` 0 joins (or opens) the shared watch of its shape.
    func subscribe(_ request: Etcdserverpb_WatchCreateRequest) async -> Subscription {
        guard let client else { return .failed(RPCError(code: .unavailable, message: "etcdserver: no endpoint available")) }
        let shape = Shape(
            key: request.key, rangeEnd: request.rangeEnd, prevKV: request.prevKv, progressNotify: request.progressNotify,
            filters: request.filters.map(\.rawValue))
        // The current revision: the watch starts right after it, so nothing between the
        // answer and the first event is missed.
        var probe = Etcdserverpb_RangeRequest()
        probe.key = request.key
        probe.countOnly = true
        probe.serializable = false
        let header: Etcdserverpb_ResponseHeader
        do {
            header = try await client.range(probe).header
        } catch {
            return .failed(RPCError(code: .unavailable, message: error.message))
        }
        let upstreamID: Int
        if request.startRevision == 0, let existing = sharedByShape[shape], upstreams[existing] != nil {
            upstreamID = existing
        } else {
            nextUpstream += 1
            upstreamID = nextUpstream
            let shared = request.startRevision == 0
            let upstream = Upstream(
                shape: shape, nextRevision: shared ? header.revision + 1 : request.startRevision, shared: shared)
            upstreams[upstreamID] = upstream
            if shared { sharedByShape[shape] = upstreamID }
            start(upstreamID, upstream)
        }
        let (stream, continuation) = AsyncStream<Etcdserverpb_WatchResponse>.makeStream(bufferingPolicy: .bufferingOldest(1024))
        nextSubscriber += 1
        upstreams[upstreamID]?.subscribers[nextSubscriber] = continuation
        updateCounts()
        return .started(subscriber: nextSubscriber, upstream: upstreamID, header: header, responses: stream)
    }

    func unsubscribe(subscriber: Int, upstream upstreamID: Int) {
        guard let upstream = upstreams[upstreamID] else { return }
        upstream.subscribers.removeValue(forKey: subscriber)?.finish()
        if upstream.subscribers.isEmpty {
            upstream.task?.cancel()
            upstreams[upstreamID] = nil
            if upstream.shared, sharedByShape[upstream.shape] == upstreamID { sharedByShape[upstream.shape] = nil }
        }
        updateCounts()
    }

    private func updateCounts() {
        let watchers = upstreams.values.reduce(0) { $0 + $1.subscribers.count }
        let live = upstreams.count
        counts.withLock { $0 = (watchers, live) }
    }

    private func start(_ id: Int, _ upstream: Upstream) {
        guard let client else { return }
        var request = Etcdserverpb_WatchCreateRequest()
        request.key = upstream.shape.key
        request.rangeEnd = upstream.shape.rangeEnd
        request.prevKv = upstream.shape.prevKV
        request.progressNotify = upstream.shape.progressNotify
        request.filters = upstream.shape.filters.map { Etcdserverpb_WatchCreateRequest.FilterType(rawValue: $0) ?? .noput }
        request.startRevision = upstream.nextRevision
        let watch = request
        upstream.task = Task.detached { [self] in
            do {
                try await client.watch(watch) { responses in
                    for try await response in responses { await self.deliver(response, to: id) }
                }
            } catch is CancellationError {
            } catch let error as EtcdError {
                if case .compacted(let revision) = error.code { await self.cancelAll(id, compactRevision: revision) }
            } catch {}
        }
    }

    private func deliver(_ response: Etcdserverpb_WatchResponse, to id: Int) {
        guard let upstream = upstreams[id] else { return }
        if let last = response.events.last { upstream.nextRevision = last.kv.modRevision + 1 }
        for continuation in upstream.subscribers.values { continuation.yield(response) }
    }

    /// The start revision was compacted: every watcher of that watch is canceled with it.
    private func cancelAll(_ id: Int, compactRevision: Int64) {
        guard let upstream = upstreams[id] else { return }
        var response = Etcdserverpb_WatchResponse()
        response.canceled = true
        response.compactRevision = compactRevision
        response.cancelReason = "mvcc: required revision has been compacted"
        for continuation in upstream.subscribers.values {
            continuation.yield(response)
            continuation.finish()
        }
        upstreams[id] = nil
        if upstream.shared, sharedByShape[upstream.shape] == id { sharedByShape[upstream.shape] = nil }
        updateCounts()
    }
}

/// The Watch service of the proxy: client watch streams over the hub.
struct ProxyWatchService: Sendable {
    let hub: ProxyWatchHub

    func watch(
        requests: RPCAsyncSequence<Etcdserverpb_WatchRequest, any Error>, response: RPCWriter<Etcdserverpb_WatchResponse>,
        context: ServerContext
    ) async throws {
        let outbox = WatchService.Outbox()
        let watchers = Mutex<[Int64: (subscriber: Int, upstream: Int, task: Task<Void, Never>)]>([:])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in outbox.stream {
                    try await response.write(message)
                    outbox.written()
                }
            }
            var nextID: Int64 = 0
            do {
                for try await request in requests {
                    switch request.requestUnion {
                    case .createRequest(let create):
                        var id = create.watchID
                        if id == 0 || watchers.withLock({ $0[id] != nil }) {
                            while watchers.withLock({ $0[nextID] != nil }) { nextID += 1 }
                            id = nextID
                            nextID += 1
                        }
                        switch await hub.subscribe(create) {
                        case .failed(let error):
                            var refused = Etcdserverpb_WatchResponse()
                            refused.watchID = id
                            refused.created = true
                            refused.canceled = true
                            refused.cancelReason = error.message
                            outbox.send(refused)
                        case .started(let subscriber, let upstream, let header, let stream):
                            var created = Etcdserverpb_WatchResponse()
                            created.header = header
                            created.watchID = id
                            created.created = true
                            outbox.send(created)
                            let watchID = id
                            let task = Task {
                                for await var message in stream {
                                    message.watchID = watchID
                                    await outbox.waitForRoom()
                                    outbox.send(message)
                                }
                            }
                            watchers.withLock { $0[id] = (subscriber, upstream, task) }
                        }
                    case .cancelRequest(let cancel):
                        guard let watcher = watchers.withLock({ $0.removeValue(forKey: cancel.watchID) }) else { continue }
                        watcher.task.cancel()
                        await hub.unsubscribe(subscriber: watcher.subscriber, upstream: watcher.upstream)
                        var canceled = Etcdserverpb_WatchResponse()
                        canceled.watchID = cancel.watchID
                        canceled.canceled = true
                        outbox.send(canceled)
                    case .progressRequest, nil:
                        continue
                    }
                }
            } catch {}
            for (_, watcher) in watchers.withLock({ $0 }) {
                watcher.task.cancel()
                await hub.unsubscribe(subscriber: watcher.subscriber, upstream: watcher.upstream)
            }
            outbox.finish()
            try await group.waitForAll()
        }
    }
}
