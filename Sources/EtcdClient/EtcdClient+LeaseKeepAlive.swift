public import EtcdAPI
import GRPCCore
import SwiftProtobuf
import Synchronization

/// What finished first under ``EtcdClient/withLeaseKeepAlive(id:onRenewal:_:)``.
private enum KeepAliveOutcome<Value: Sendable>: Sendable {
    case finished(Value)
    case lost
}

extension EtcdClient {
    /// Sends one keep-alive for a lease and returns the server's answer (TTL ≤ 0: the
    /// lease is gone). This is `etcdctl lease keep-alive --once`.
    public func leaseKeepAliveOnce(id: Int64) async throws(EtcdError) -> Etcdserverpb_LeaseKeepAliveResponse {
        let lease = leaseService
        let metadata = self.metadata
        var options = unaryOptions
        options.waitForReady = true
        do {
            return try await lease.leaseKeepAlive(
                metadata: metadata, options: options,
                requestProducer: { writer in try await writer.write(.with { $0.id = id }) },
                onResponse: { response in
                    for try await message in response.messages { return message }
                    throw EtcdError(.unavailable, "keep-alive stream closed without a response")
                })
        } catch {
            throw EtcdError.wrap(error)
        }
    }

    /// Keeps a lease alive while `body` runs, renewing every TTL/3.
    ///
    /// `onRenewal` sees each keep-alive response (etcdctl prints them). If the lease is
    /// revoked or expires, or the cluster cannot be reached before the lease's TTL runs
    /// out, `body` is cancelled and this throws ``EtcdError`` `.leaseLost`.
    public func withLeaseKeepAlive<Result: Sendable>(
        id: Int64,
        onRenewal: @escaping @Sendable (Etcdserverpb_LeaseKeepAliveResponse) -> Void = { _ in },
        _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        typealias Outcome = KeepAliveOutcome<Result>
        return try await withThrowingTaskGroup(of: Outcome.self) { group in
            group.addTask { .finished(try await body()) }
            group.addTask {
                try await self.keepAliveLoop(id: id, onRenewal: onRenewal)
                return .lost
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw EtcdError(.leaseLost(id: id), "lease keep-alive ended") }
            switch first {
            case .finished(let result): return result
            case .lost: throw EtcdError(.leaseLost(id: id), "lease \(String(id, radix: 16)) expired or revoked")
            }
        }
    }

    /// Returns only when the lease is lost (TTL ≤ 0 in a response, or no successful renewal
    /// before the last known TTL ran out); throws CancellationError when cancelled.
    private func keepAliveLoop(id: Int64, onRenewal: @escaping @Sendable (Etcdserverpb_LeaseKeepAliveResponse) -> Void)
        async throws
    {
        let clock = ContinuousClock()
        // The lease is lost once this passes without a renewal; unknown TTL: the request deadline.
        let deadline = Mutex(clock.now + configuration.requestTimeout)
        // Renew at TTL/3 after each answer; before the first answer, send at once.
        let nextSend = Mutex(clock.now)
        let lost = Mutex(false)
        let lease = leaseService
        while !Task.isCancelled {
            if clock.now >= deadline.withLock({ $0 }) { return }
            do {
                try await lease.leaseKeepAlive(
                    metadata: metadata, options: streamOptions,
                    requestProducer: { writer in
                        while true {
                            if clock.now >= nextSend.withLock({ $0 }) {
                                nextSend.withLock { $0 = clock.now + .seconds(1) }  // re-send if unanswered
                                try await writer.write(.with { $0.id = id })
                            }
                            try await Task.sleep(for: .milliseconds(50))
                        }
                    },
                    onResponse: { response in
                        for try await message in response.messages {
                            onRenewal(message)
                            if message.ttl <= 0 {
                                lost.withLock { $0 = true }
                                return
                            }
                            let now = clock.now
                            deadline.withLock { $0 = now + .seconds(message.ttl) }
                            nextSend.withLock { $0 = now + .milliseconds(message.ttl * 1000 / 3) }
                        }
                    })
            } catch {
                if Task.isCancelled { throw CancellationError() }
            }
            if lost.withLock({ $0 }) { return }
            nextSend.withLock { $0 = clock.now }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw CancellationError()
    }
}
