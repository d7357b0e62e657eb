import EtcdAPI
import Foundation
import GRPCCore
import MVCC

/// The Watch service: one bidirectional stream carries many watchers. A watcher starting
/// in the past first gets the history, then live events; a compacted start revision is
/// answered with `canceled` and the compact revision, as etcd does.
struct WatchService: Etcdserverpb_Watch.SimpleServiceProtocol {
    let node: StoreNode

    func watch(
        request: RPCAsyncSequence<Etcdserverpb_WatchRequest, any Error>, response: RPCWriter<Etcdserverpb_WatchResponse>,
        context: ServerContext
    ) async throws {
        let (outbox, send) = AsyncStream<Etcdserverpb_WatchResponse>.makeStream()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in outbox { try await response.write(message) }
            }
            var feeds: [Int64: (subscriber: Int, task: Task<Void, Never>)] = [:]
            var nextWatchID: Int64 = 0
            for try await message in request {
                switch message.requestUnion {
                case .createRequest(let create):
                    var watchID = create.watchID
                    if watchID == 0 {
                        while feeds[nextWatchID] != nil { nextWatchID += 1 }
                        watchID = nextWatchID
                        nextWatchID += 1
                    }
                    let start = await node.watch(
                        key: Array(create.key), end: Array(create.rangeEnd), startRevision: create.startRevision)
                    var created = Etcdserverpb_WatchResponse()
                    created.header = await node.header
                    created.watchID = watchID
                    created.created = true
                    switch start {
                    case .compacted(let compactRevision):
                        send.yield(created)
                        var canceled = Etcdserverpb_WatchResponse()
                        canceled.header = await node.header
                        canceled.watchID = watchID
                        canceled.canceled = true
                        canceled.compactRevision = compactRevision
                        send.yield(canceled)
                    case .future:
                        send.yield(created)
                    case .started(let subscriber, let history, let revision, let live):
                        send.yield(created)
                        let filter = Self.filter(create)
                        let header = created.header
                        let id = watchID
                        let task = Task { @Sendable in
                            func deliver(_ events: [Event], _ revision: Int64) {
                                let selected = events.compactMap(filter)
                                guard !selected.isEmpty else { return }
                                var update = Etcdserverpb_WatchResponse()
                                update.header = header
                                update.header.revision = revision
                                update.watchID = id
                                update.events = selected
                                send.yield(update)
                            }
                            if !history.isEmpty { deliver(history, revision) }
                            for await (events, revision) in live { deliver(events, revision) }
                        }
                        feeds[watchID] = (subscriber, task)
                    }
                case .cancelRequest(let cancel):
                    if let feed = feeds.removeValue(forKey: cancel.watchID) {
                        feed.task.cancel()
                        await node.unwatch(feed.subscriber)
                        var canceled = Etcdserverpb_WatchResponse()
                        canceled.header = await node.header
                        canceled.watchID = cancel.watchID
                        canceled.canceled = true
                        send.yield(canceled)
                    }
                case .progressRequest:
                    var progress = Etcdserverpb_WatchResponse()
                    progress.header = await node.header
                    progress.watchID = -1
                    send.yield(progress)
                case nil:
                    break
                }
            }
            for feed in feeds.values {
                feed.task.cancel()
                await node.unwatch(feed.subscriber)
            }
            send.finish()
            try await group.waitForAll()
        }
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
