import EtcdV2Store
import Foundation

/// The v2 keys store on a member: writes go through the log as `V2Request`s stamped with
/// the time they were made, TTLs are expired by the leader through the log, and
/// `wait=true` requests wait here for the event they ask for.
extension StoreNode {
    struct V2Watcher {
        var key: String
        var recursive: Bool
        var since: UInt64
        var deliver: CheckedContinuation<Result<V2Event, V2Error>, Never>
    }

    /// At most this many v2 watchers wait at once; more are refused rather than let grow.
    static let maxV2Watchers = 10_000

    /// Milliseconds since the Unix epoch: what v2 requests carry.
    static var v2Now: V2Store.Time { Int64(Date().timeIntervalSince1970 * 1000) }

    func applyV2(_ body: [UInt8]) -> Applied {
        guard let request = V2Request(decoding: body) else {
            return .v2(.failure(V2Error(.invalidForm, cause: "undecodable v2 request", index: v2.currentIndex)))
        }
        let result = v2.apply(request)
        if request.operation == .expire { v2ExpiryProposed = false }
        if case .success(let events) = result, !events.isEmpty, !v2Watchers.isEmpty { notifyV2Watchers(events) }
        return .v2(result)
    }

    private func notifyV2Watchers(_ events: [V2Event]) {
        for (id, watcher) in v2Watchers {
            guard let event = events.first(where: {
                $0.index >= watcher.since && V2Store.matches($0, key: watcher.key, recursive: watcher.recursive)
            }) else { continue }
            v2Watchers[id] = nil
            watcher.deliver.resume(returning: .success(event))
        }
    }

    /// The leader proposes an expiry once a TTL has run out (one at a time).
    func expireV2Keys() {
        guard isLeader, !v2ExpiryProposed, let due = v2.nextExpiration else { return }
        let now = Self.v2Now
        guard due <= now else { return }
        v2ExpiryProposed = true
        let body = V2Request(.expire, key: "/", now: now).encoded()
        Task {
            if case .v2 = await self.propose(.v2, body) { return }
            self.v2ExpiryProposed = false
        }
    }

    /// Proposes a v2 write and waits for it to be applied.
    func proposeV2(_ request: V2Request) async -> Applied {
        await propose(.v2, request.encoded())
    }

    /// `wait=true`: the first event at or after `since` (0: after the current index) on
    /// `key`; from the history when it is there, else when it happens.
    func v2Wait(key: String, recursive: Bool, since: UInt64) async -> Result<V2Event, V2Error> {
        let start = since == 0 ? v2.currentIndex + 1 : since
        do throws(V2Error) {
            if let event = try v2.event(since: start, key: key, recursive: recursive) { return .success(event) }
        } catch {
            return .failure(error)
        }
        guard v2Watchers.count < Self.maxV2Watchers else {
            return .failure(V2Error(.raftInternal, cause: "too many waiting watchers", index: v2.currentIndex))
        }
        let cleaned = "/" + key.split(separator: "/").joined(separator: "/")
        nextV2Watcher += 1
        let id = nextV2Watcher
        // A client that hangs up (its request task is cancelled) takes its watcher along.
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume(returning: .failure(V2Error(.raftInternal, cause: "the client went away", index: v2.currentIndex)))
                    return
                }
                v2Watchers[id] = V2Watcher(key: cleaned, recursive: recursive, since: start, deliver: continuation)
            }
        } onCancel: {
            Task { await self.dropV2Watcher(id) }
        }
    }

    private func dropV2Watcher(_ id: Int) {
        guard let watcher = v2Watchers.removeValue(forKey: id) else { return }
        watcher.deliver.resume(returning: .failure(V2Error(.raftInternal, cause: "the client went away", index: v2.currentIndex)))
    }

    /// How many v2 long polls are waiting (tests check that hung-up clients leave none).
    var waitingV2Watchers: Int { v2Watchers.count }
}
