import EtcdAPI
import Foundation
import GRPCCore
import MVCC
import SwiftProtobuf
import Synchronization

/// The Watch service: one bidirectional stream carries many watchers. A watcher starting
/// in the past first gets the history, then live events; a compacted start revision is
/// answered with `canceled` and the compact revision, as etcd does.
///
/// Memory stays bounded when a client reads slowly: responses wait in a small outbox, a
/// watcher whose outbox is full stops taking live events, its bounded live feed then
/// overflows and ends (`StoreNode.publish`), and the watcher re-registers from the revision
/// after the last one it sent, replaying the gap from history. If that revision has been
/// compacted meanwhile it is canceled with the compact revision, as etcd cancels a slow
/// watcher it cannot catch up.
struct WatchService: Etcdserverpb_Watch.SimpleServiceProtocol {
    let node: StoreNode
    /// Responses queued for the client before watchers wait.
    static let outboxLimit = 64
    /// How often watchers created with `progress_notify` get an empty response carrying the
    /// current revision (etcd's default interval).
    let progressInterval: Duration
    /// Fragmented watchers split responses of this many bytes (etcd: the request limit
    /// plus the 512 KiB it allows for gRPC framing).
    let fragmentBytes: Int

    init(node: StoreNode, progressInterval: Duration = .seconds(600), fragmentBytes: Int = 2_097_152) {
        self.node = node
        self.progressInterval = progressInterval
        self.fragmentBytes = fragmentBytes
    }

    /// The responses of one stream, written in order by one task; `pending` counts those
    /// not yet written so watchers can wait for room.
    final class Outbox: Sendable {
        let stream: AsyncStream<Etcdserverpb_WatchResponse>
        private let continuation: AsyncStream<Etcdserverpb_WatchResponse>.Continuation
        private let pending = Mutex(0)

        init() { (stream, continuation) = AsyncStream.makeStream() }

        func send(_ response: Etcdserverpb_WatchResponse) {
            pending.withLock { $0 += 1 }
            continuation.yield(response)
        }

        func written() { pending.withLock { $0 -= 1 } }

        /// Waits while the client is behind.
        func waitForRoom() async {
            while pending.withLock({ $0 }) >= WatchService.outboxLimit, !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(2))
            }
        }

        func finish() { continuation.finish() }
    }

    /// One watcher: its feed task and the store subscription it currently holds.
    final class Feed: Sendable {
        let subscriber: Mutex<Int>
        let task: Mutex<Task<Void, Never>?> = Mutex(nil)
        let progressNotify: Bool
        /// True while the watcher has sent everything up to the store's revision.
        let synced = Mutex(false)

        init(subscriber: Int, progressNotify: Bool) {
            self.subscriber = Mutex(subscriber)
            self.progressNotify = progressNotify
        }
    }

    /// The watchers of one stream by watch ID.
    final class FeedTable: Sendable {
        private let feeds = Mutex<[Int64: Feed]>([:])
        func contains(_ id: Int64) -> Bool { feeds.withLock { $0[id] != nil } }
        func insert(_ feed: Feed, for id: Int64) { feeds.withLock { $0[id] = feed } }
        func remove(_ id: Int64) -> Feed? { feeds.withLock { $0.removeValue(forKey: id) } }
        var all: [(id: Int64, feed: Feed)] { feeds.withLock { $0.map { ($0.key, $0.value) } } }
    }

    func watch(
        request: RPCAsyncSequence<Etcdserverpb_WatchRequest, any Error>, response: RPCWriter<Etcdserverpb_WatchResponse>,
        context: ServerContext
    ) async throws {
        try await watch(request: request, response: response, context: context, caller: CallerCredentials())
    }

    /// A watch stream; with auth on, each watch needs read permission over its range, else
    /// it is answered created and canceled with etcd's reason.
    func watch(
        request: RPCAsyncSequence<Etcdserverpb_WatchRequest, any Error>, response: RPCWriter<Etcdserverpb_WatchResponse>,
        context: ServerContext, caller: CallerCredentials
    ) async throws {
        let outbox = Outbox()
        let feeds = FeedTable()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in outbox.stream {
                    try await response.write(message)
                    outbox.written()
                }
            }
            let progress = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: progressInterval)
                    guard !Task.isCancelled else { return }
                    let header = await node.header
                    for (id, feed) in feeds.all where feed.progressNotify && feed.synced.withLock({ $0 }) {
                        var notice = Etcdserverpb_WatchResponse()
                        notice.header = header
                        notice.watchID = id
                        outbox.send(notice)
                    }
                }
            }
            var nextWatchID: Int64 = 0
            for try await message in request {
                switch message.requestUnion {
                case .createRequest(let create):
                    var watchID = create.watchID
                    if watchID == 0 {
                        while feeds.contains(nextWatchID) { nextWatchID += 1 }
                        watchID = nextWatchID
                        nextWatchID += 1
                    }
                    if let denial = node.permitRead(caller, key: create.key, rangeEnd: create.rangeEnd) {
                        var refused = Etcdserverpb_WatchResponse()
                        refused.header = await node.header
                        refused.watchID = watchID
                        refused.created = true
                        refused.canceled = true
                        refused.cancelReason = denial.message
                        outbox.send(refused)
                        continue
                    }
                    await start(create, id: watchID, outbox: outbox, feeds: feeds)
                case .cancelRequest(let cancel):
                    if let feed = feeds.remove(cancel.watchID) {
                        feed.task.withLock { $0 }?.cancel()
                        await node.unwatch(feed.subscriber.withLock { $0 })
                        var canceled = Etcdserverpb_WatchResponse()
                        canceled.header = await node.header
                        canceled.watchID = cancel.watchID
                        canceled.canceled = true
                        outbox.send(canceled)
                    }
                case .progressRequest:
                    var notice = Etcdserverpb_WatchResponse()
                    notice.header = await node.header
                    notice.watchID = -1
                    outbox.send(notice)
                case nil:
                    break
                }
            }
            progress.cancel()
            for (_, feed) in feeds.all {
                feed.task.withLock { $0 }?.cancel()
                await node.unwatch(feed.subscriber.withLock { $0 })
            }
            outbox.finish()
            try await group.waitForAll()
        }
    }

    private func start(_ create: Etcdserverpb_WatchCreateRequest, id: Int64, outbox: Outbox, feeds: FeedTable) async {
        let key = Array(create.key)
        let end = Array(create.rangeEnd)
        let first = await node.watch(key: key, end: end, startRevision: create.startRevision)
        var created = Etcdserverpb_WatchResponse()
        created.header = await node.header
        created.watchID = id
        created.created = true
        outbox.send(created)
        guard case .started(let subscriber, let history, let revision, let live) = first else {
            if case .compacted(let compactRevision) = first { outbox.send(Self.canceled(id, compactRevision, header: created.header)) }
            return
        }
        let feed = Feed(subscriber: subscriber, progressNotify: create.progressNotify)
        feeds.insert(feed, for: id)
        let filter = Self.filter(create)
        // Events before the requested start revision are not sent (a future start waits).
        let minimum = create.startRevision
        let fragment = create.fragment
        let baseHeader = created.header
        let node = self.node
        let limit = fragmentBytes
        let task = Task { @Sendable in
            var history = history
            var live = live
            var next = max(minimum, revision + 1)
            while !Task.isCancelled {
                if !history.isEmpty {
                    feed.synced.withLock { $0 = false }
                    let header = await node.header
                    await Self.send(
                        history.filter { $0.keyValue.modRevision >= minimum }, id: id, header: header, revision: header.revision,
                        filter: filter, fragment: fragment, limit: limit, outbox: outbox)
                    next = max(next, (history.last?.keyValue.modRevision ?? 0) + 1)
                }
                feed.synced.withLock { $0 = true }
                for await (events, batchRevision) in live {
                    await outbox.waitForRoom()
                    await Self.send(
                        events.filter { $0.keyValue.modRevision >= minimum }, id: id, header: baseHeader, revision: batchRevision,
                        filter: filter, fragment: fragment, limit: limit, outbox: outbox)
                    next = batchRevision + 1
                }
                guard !Task.isCancelled else { return }
                // The live feed overflowed: take the gap from history and a new feed.
                switch await node.watch(key: key, end: end, startRevision: next) {
                case .started(let again, let missed, _, let feedAgain):
                    feed.subscriber.withLock { $0 = again }
                    if Task.isCancelled {
                        await node.unwatch(again)
                        return
                    }
                    (history, live) = (missed, feedAgain)
                case .compacted(let compactRevision):
                    _ = feeds.remove(id)
                    outbox.send(Self.canceled(id, compactRevision, header: await node.header))
                    return
                case .future:
                    return
                }
            }
        }
        feed.task.withLock { $0 = task }
    }

    static func canceled(_ id: Int64, _ compactRevision: Int64, header: Etcdserverpb_ResponseHeader) -> Etcdserverpb_WatchResponse {
        var canceled = Etcdserverpb_WatchResponse()
        canceled.header = header
        // etcd's store answers a compacted watcher with no revision of its own.
        canceled.header.revision = 0
        canceled.watchID = id
        canceled.canceled = true
        canceled.compactRevision = compactRevision
        return canceled
    }

    /// One response with the selected events; with `fragment`, a response of `limit`
    /// bytes or more is split as etcd splits it: each piece takes events while it stays
    /// under the limit (at least one), all but the last marked as fragments.
    static func send(
        _ events: [Event], id: Int64, header: Etcdserverpb_ResponseHeader, revision: Int64,
        filter: @Sendable (Event) -> Mvccpb_Event?, fragment: Bool, limit: Int, outbox: Outbox
    ) async {
        let selected = events.compactMap(filter)
        guard !selected.isEmpty else { return }
        var update = Etcdserverpb_WatchResponse()
        update.header = header
        update.header.revision = revision
        update.watchID = id
        // Each event's bytes inside the response: tag, length, message.
        let sizes = selected.map { event -> Int in
            let length = (try? event.serializedBytes() as [UInt8])?.count ?? 0
            return 1 + varintLength(length) + length
        }
        var piece = update
        piece.fragment = true
        let base = (try? piece.serializedBytes() as [UInt8])?.count ?? 0
        guard fragment, selected.count > 1, base + sizes.reduce(0, +) >= limit else {
            update.events = selected
            outbox.send(update)
            return
        }
        var index = 0
        while index < selected.count {
            var size = base
            piece.events = []
            while index < selected.count {
                if !piece.events.isEmpty && size + sizes[index] >= limit { break }
                piece.events.append(selected[index])
                size += sizes[index]
                index += 1
            }
            piece.fragment = index < selected.count
            await outbox.waitForRoom()
            outbox.send(piece)
        }
    }

    static func varintLength(_ value: Int) -> Int {
        var length = 1
        var rest = value >> 7
        while rest > 0 {
            length += 1
            rest >>= 7
        }
        return length
    }

    /// The create request's NOPUT/NODELETE filters and prev_kv choice, as an event mapping.
    static func filter(_ create: Etcdserverpb_WatchCreateRequest) -> @Sendable (Event) -> Mvccpb_Event? {
        let noPut = create.filters.contains(.noput)
        let noDelete = create.filters.contains(.nodelete)
        let withPrevious = create.prevKv
        return { event in
            if event.kind == .put && noPut { return nil }
            if event.kind == .delete && noDelete { return nil }
            var result = Mvccpb_Event()
            result.type = event.kind == .put ? .put : .delete
            result.kv = ProtoMapping.keyValue(event.keyValue)
            if withPrevious, let previous = event.previous { result.prevKv = ProtoMapping.keyValue(previous) }
            return result
        }
    }
}
