public import EtcdAPI
import GRPCCore
import Synchronization
import SwiftProtobuf

/// The responses of one watch, as an async sequence. Responses carry events (in revision
/// order) or are progress notifications (no events). The `created` confirmation is not
/// delivered. Iteration throws ``EtcdError`` with code `.compacted` when the requested
/// start revision has been compacted, or the server's reason when it cancels the watch.
public struct EtcdWatchResponses: AsyncSequence, Sendable {
    public typealias Element = Etcdserverpb_WatchResponse
    let stream: AsyncThrowingStream<Etcdserverpb_WatchResponse, any Error>

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<Etcdserverpb_WatchResponse, any Error>.AsyncIterator

        public mutating func next() async throws -> Etcdserverpb_WatchResponse? { try await base.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: stream.makeAsyncIterator()) }
}

extension EtcdClient {
    /// Watches a key or range while `body` runs; the watch is cancelled when `body` returns.
    /// `body` starts once the server confirmed the watch (or the watch failed), so a write
    /// made in `body` after that is seen by the watch.
    ///
    /// A broken connection (a member restart, a network blip) is repaired by re-creating
    /// the watch from the revision after the last one delivered, so no event is lost or
    /// repeated. Set `request.startRevision` to replay history from that revision.
    public func watch<Result: Sendable>(
        _ request: Etcdserverpb_WatchCreateRequest,
        _ body: (EtcdWatchResponses) async throws -> Result
    ) async throws -> Result {
        let (stream, continuation) = AsyncThrowingStream<Etcdserverpb_WatchResponse, any Error>.makeStream()
        let (established, confirm) = AsyncStream<Void>.makeStream()
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await self.runWatch(request, continuation, established: confirm)
                confirm.finish()
            }
            for await _ in established { break }
            let result = try await body(EtcdWatchResponses(stream: stream))
            group.cancelAll()
            return result
        }
    }

    private func runWatch(
        _ request: Etcdserverpb_WatchCreateRequest,
        _ continuation: AsyncThrowingStream<Etcdserverpb_WatchResponse, any Error>.Continuation,
        established: AsyncStream<Void>.Continuation
    ) async {
        let nextRevision = Mutex(request.startRevision)
        var backoff = Duration.milliseconds(100)
        let watchService = self.watchService
        while !Task.isCancelled {
            var attempt = request
            attempt.startRevision = nextRevision.withLock { $0 }
            let create = attempt
            do {
                try await watchService.watch(
                    metadata: metadata, options: streamOptions,
                    requestProducer: { writer in
                        try await writer.write(.with { $0.createRequest = create })
                        // The request side stays open for the life of the watch.
                        while true { try await Task.sleep(for: .seconds(3600)) }
                    },
                    onResponse: { response in
                        for try await message in response.messages {
                            if message.canceled {
                                if message.compactRevision != 0 {
                                    throw EtcdError(
                                        .compacted(compactRevision: message.compactRevision), EtcdError.compactedText)
                                }
                                throw EtcdError(.cancelled, message.cancelReason.isEmpty ? "watch canceled" : message.cancelReason)
                            }
                            nextRevision.withLock { next in
                                if let last = message.events.last {
                                    next = last.kv.modRevision + 1
                                } else if message.created {
                                    if next == 0 { next = message.header.revision + 1 }
                                } else {
                                    next = max(next, message.header.revision + 1)
                                }
                            }
                            if message.created { established.finish() }
                            if message.created && message.events.isEmpty { continue }
                            continuation.yield(message)
                        }
                    })
                // The server ended the stream without an error: reconnect.
            } catch {
                let wrapped = EtcdError.wrap(error)
                switch wrapped.code {
                case .unavailable, .unknown, .internal:
                    break  // transient: retry below
                case .cancelled where Task.isCancelled:
                    continuation.finish()
                    return
                default:
                    continuation.finish(throwing: wrapped)
                    return
                }
            }
            do { try await Task.sleep(for: backoff) } catch { break }
            backoff = min(backoff * 2, .seconds(2))
        }
        continuation.finish()
    }

    /// Convenience: watch a key (or prefix) from `revision` (0 = now).
    public func watch<Result: Sendable>(
        _ key: String, prefix: Bool = false, fromRevision revision: Int64 = 0, prevKV: Bool = false,
        _ body: (EtcdWatchResponses) async throws -> Result
    ) async throws -> Result {
        var request = Etcdserverpb_WatchCreateRequest()
        request.key = Data(key.utf8)
        if prefix { (request.key, request.rangeEnd) = EtcdKeyRange.prefix(request.key) }
        request.startRevision = revision
        request.prevKv = prevKV
        return try await watch(request, body)
    }
}

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
