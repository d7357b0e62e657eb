import EtcdV2Store
import Foundation
import Synchronization

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
        count(request.operation, result)
        if v2SharedKeyspace, case .success(let events) = result { mirrorInV3(events) }
        if request.operation == .expire { v2ExpiryProposed = false }
        if case .success(let events) = result, !events.isEmpty, !v2Watchers.isEmpty { notifyV2Watchers(events) }
        return .v2(result)
    }

    func shareV2Keyspace(_ shared: Bool) { v2SharedKeyspace = shared }

    /// `/v2/stats/store`: writes are counted as they are applied, on every member.
    private func count(_ operation: V2Request.Operation, _ result: Result<[V2Event], V2Error>) {
        let succeeded = if case .success = result { true } else { false }
        func bump(_ success: WritableKeyPath<V2StoreCounts, UInt64>, _ fail: WritableKeyPath<V2StoreCounts, UInt64>) {
            v2Stats[keyPath: succeeded ? success : fail] += 1
        }
        switch operation {
        case .set: bump(\.setsSuccess, \.setsFail)
        case .create, .createInOrder: bump(\.createSuccess, \.createFail)
        case .update: bump(\.updateSuccess, \.updateFail)
        case .compareAndSwap: bump(\.compareAndSwapSuccess, \.compareAndSwapFail)
        case .delete: bump(\.deleteSuccess, \.deleteFail)
        case .compareAndDelete: bump(\.compareAndDeleteSuccess, \.compareAndDeleteFail)
        case .expire: if case .success(let events) = result { v2Stats.expireCount += UInt64(events.count) }
        case .authCreate, .authUpdate, .authDelete, .authEnable: break
        }
    }

    /// Reads are counted where they are served, off the node (reads run beside it).
    nonisolated func countV2Get(succeeded: Bool) {
        v2GetCounts.withLock { counts in
            if succeeded { counts.success += 1 } else { counts.failure += 1 }
        }
    }

    /// The v2 store as it is now and the Raft position, for a read served off the node.
    func v2ReadView() -> (store: V2Store, raftIndex: UInt64, raftTerm: UInt64) {
        (v2, raftIndex, raftTerm)
    }

    /// `--v2-shared-keyspace`: each v2 change also changes the v3 key of the same name, in
    /// the same apply (so every member agrees). Files become v3 keys with their values; a
    /// TTL becomes a lease of the key's own (ID: the v2 index with bit 62 set, the same on
    /// every member); deleting or expiring a directory deletes every v3 key below it.
    /// Directories themselves have no v3 key, and v3 writes do not show in v2.
    private func mirrorInV3(_ events: [V2Event]) {
        for event in events {
            guard let key = event.node.key else { continue }
            let oldLease = event.prevNode.flatMap(Self.mirrorLease)
            switch event.action {
            case .set, .create, .update, .compareAndSwap:
                guard !event.node.isDirectory else { continue }
                mirrorV2Put(
                    key: Array(key.utf8), value: Array((event.node.value ?? "").utf8), lease: Self.mirrorLease(event.node),
                    ttl: event.node.ttl, dropping: oldLease)
            case .delete, .compareAndDelete, .expire:
                let bytes = Array(key.utf8)
                mirrorV2Delete(key: bytes, rangeEnd: [], dropping: oldLease)
                if event.node.isDirectory { mirrorV2Delete(key: bytes + [UInt8(ascii: "/")], rangeEnd: bytes + [UInt8(ascii: "0")], dropping: nil) }
            case .get:
                break
            }
        }
    }

    /// The lease a mirrored key with a TTL is attached to.
    static func mirrorLease(_ node: V2NodeView) -> Int64? {
        node.ttl == nil || node.isDirectory ? nil : Int64(node.modifiedIndex) | (1 << 62)
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

    /// What a long poll from `since` gets without waiting: the first event in history, an
    /// error (index cleared, too many watchers), or nil when it must wait.
    func v2PastEvent(key: String, recursive: Bool, since: UInt64) -> Result<V2Event?, V2Error> {
        do throws(V2Error) {
            if let event = try v2.event(since: since, key: key, recursive: recursive) { return .success(event) }
        } catch {
            return .failure(error)
        }
        guard v2Watchers.count < Self.maxV2Watchers else {
            return .failure(V2Error(.raftInternal, cause: "too many waiting watchers", index: v2.currentIndex))
        }
        return .success(nil)
    }

    /// `wait=true`: the first event at or after `since` (0: after the current index) on
    /// `key`; from the history when it is there, else when it happens.
    func v2Wait(key: String, recursive: Bool, since: UInt64) async -> Result<V2Event, V2Error> {
        let start = since == 0 ? v2.currentIndex + 1 : since
        switch v2PastEvent(key: key, recursive: recursive, since: start) {
        case .success(let event?): return .success(event)
        case .failure(let error): return .failure(error)
        case .success(nil): break
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
