public import EtcdAPI
import SwiftProtobuf

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A lease kept alive for as long as a recipe holds it (clientv3's `concurrency.Session`).
public struct EtcdSession: Sendable, Hashable {
    public let leaseID: Int64

    /// A session over a lease someone else keeps alive (etcd's lock and election services
    /// act on their callers' leases).
    public init(leaseID: Int64) { self.leaseID = leaseID }
    /// The lease ID as lock and election keys spell it: lowercase hex, no padding.
    public var keySuffix: String { String(UInt64(bitPattern: leaseID), radix: 16) }
}

/// A held lock: `key` is `<name>/<lease hex>`, the layout `etcdctl lock` uses, so our
/// locks and etcd's own tools exclude each other.
public struct EtcdMutex: Sendable, Hashable {
    public let name: String
    public let key: String
    /// The create revision of `key`: the lock's place in the queue.
    public let revision: Int64
}

/// Leadership won in an election: `key` is `<name>/<lease hex>`.
public struct EtcdLeadership: Sendable, Hashable {
    public let name: String
    public let key: String
    public let revision: Int64
    public let session: EtcdSession

    /// Leadership as a `LeaderKey` names it (etcd's election service gets it back from callers).
    public init(name: String, key: String, revision: Int64, session: EtcdSession) {
        self.name = name
        self.key = key
        self.revision = revision
        self.session = session
    }
}

extension EtcdClient {
    /// Grants a lease of `ttl` seconds, keeps it alive while `body` runs and revokes it
    /// afterwards. If the lease is lost, `body` is cancelled and ``EtcdError`` `.leaseLost`
    /// is thrown.
    public func withSession<Result: Sendable>(
        ttl: Int64 = 60, _ body: @escaping @Sendable (EtcdSession) async throws -> Result
    ) async throws -> Result {
        let lease = try await leaseGrant(ttl: ttl)
        let session = EtcdSession(leaseID: lease.id)
        do {
            let result = try await withLeaseKeepAlive(id: lease.id) { try await body(session) }
            await releaseEvenIfCancelled { _ = try? await self.leaseRevoke(id: lease.id) }
            return result
        } catch {
            // Revoking the lease also deletes every key the session held (lock, candidacy).
            await releaseEvenIfCancelled { _ = try? await self.leaseRevoke(id: lease.id) }
            throw error
        }
    }

    /// Runs clean-up in a task of its own: a cancelled caller (Ctrl-C, a lost race) must
    /// still give back what it holds.
    func releaseEvenIfCancelled(_ work: @escaping @Sendable () async -> Void) async {
        await Task { await work() }.value
    }

    // MARK: Mutex

    /// Acquires the lock `name` for `session`, waiting behind earlier holders (the oldest
    /// key under `name/` owns the lock). Unlike etcd 3.4's recipe, the key is checked to
    /// still exist after waiting, so a lock whose lease expired meanwhile is not reported held.
    public func lock(_ name: String, session: EtcdSession) async throws -> EtcdMutex {
        let prefix = name + "/"
        let key = prefix + session.keySuffix
        let owner = Etcdserverpb_RequestOp.with {
            $0.requestRange = Self.firstCreated(prefix)
        }
        let request = Etcdserverpb_TxnRequest.with {
            $0.compare = [.createRevision(key, .equal, 0)]
            $0.success = [.put(key, "", lease: session.leaseID), owner]
            $0.failure = [.get(key), owner]
        }
        let response = try await txn(request)
        var revision = response.header.revision
        if !response.succeeded, case .responseRange(let mine) = response.responses.first?.response,
            let existing = mine.kvs.first
        {
            revision = existing.createRevision
        }
        var ownerCreateRevision: Int64? = nil
        if response.responses.count > 1, case .responseRange(let current) = response.responses[1].response {
            ownerCreateRevision = current.kvs.first?.createRevision
        }
        let mutex = EtcdMutex(name: name, key: key, revision: revision)
        if ownerCreateRevision == nil || ownerCreateRevision == revision { return mutex }
        do {
            try await waitForDeletes(prefix: prefix, before: revision - 1)
            guard try await get(key).count == 1 else {
                throw EtcdError(.leaseLost(id: session.leaseID), "lock \(key) lost while waiting (session expired)")
            }
        } catch {
            try? await unlock(mutex)
            throw error
        }
        return mutex
    }

    /// Releases a lock (deletes its key).
    public func unlock(_ mutex: EtcdMutex) async throws {
        try await delete(mutex.key)
    }

    /// Holds the lock `name` while `body` runs, in its own session of `ttl` seconds.
    public func withLock<Result: Sendable>(
        _ name: String, ttl: Int64 = 60, _ body: @escaping @Sendable (EtcdMutex) async throws -> Result
    ) async throws -> Result {
        try await withSession(ttl: ttl) { session in
            let mutex = try await self.lock(name, session: session)
            do {
                let result = try await body(mutex)
                try await self.unlock(mutex)
                return result
            } catch {
                try? await self.unlock(mutex)
                throw error
            }
        }
    }

    // MARK: Election

    /// Campaigns for leadership of `name` with `value`; returns once this session leads.
    public func campaign(_ name: String, value: String, session: EtcdSession) async throws -> EtcdLeadership {
        let prefix = name + "/"
        let key = prefix + session.keySuffix
        let response = try await txn(
            .with {
                $0.compare = [.createRevision(key, .equal, 0)]
                $0.success = [.put(key, value, lease: session.leaseID)]
                $0.failure = [.get(key)]
            })
        var leadership = EtcdLeadership(name: name, key: key, revision: response.header.revision, session: session)
        if !response.succeeded, case .responseRange(let mine) = response.responses.first?.response,
            let existing = mine.kvs.first
        {
            leadership = EtcdLeadership(name: name, key: key, revision: existing.createRevision, session: session)
            if existing.value != Data(value.utf8) { try await proclaim(value, as: leadership) }
        }
        do {
            try await waitForDeletes(prefix: prefix, before: leadership.revision - 1)
        } catch {
            try? await resign(leadership)
            throw error
        }
        return leadership
    }

    /// Changes the leader's value without an election.
    public func proclaim(_ value: String, as leadership: EtcdLeadership) async throws {
        let response = try await txn(
            .with {
                $0.compare = [.createRevision(leadership.key, .equal, leadership.revision)]
                $0.success = [.put(leadership.key, value, lease: leadership.session.leaseID)]
            })
        if !response.succeeded { throw EtcdError(.failedPrecondition, "election: not leader") }
    }

    /// Gives up leadership.
    public func resign(_ leadership: EtcdLeadership) async throws {
        _ = try await txn(
            .with {
                $0.compare = [.createRevision(leadership.key, .equal, leadership.revision)]
                $0.success = [.delete(leadership.key)]
            })
    }

    /// The current leader's key and value, or nil when there is none.
    public func leader(_ name: String) async throws(EtcdError) -> Mvccpb_KeyValue? {
        try await range(Self.firstCreated(name + "/")).kvs.first
    }

    /// Follows the leader of `name`: `body` gets the range answer whenever the leader's key
    /// or value (mod revision) changed, the first time too, and returns whether to go on.
    /// Between changes it waits on a watch of `name/`, not by polling.
    public func observeLeader(
        _ name: String, _ body: (Etcdserverpb_RangeResponse, Mvccpb_KeyValue) async throws -> Bool
    ) async throws {
        var last: (key: Data, modRevision: Int64)?
        while !Task.isCancelled {
            let current = try await range(Self.firstCreated(name + "/"))
            if let leader = current.kvs.first, last.map({ $0.key != leader.key || $0.modRevision != leader.modRevision }) ?? true {
                last = (leader.key, leader.modRevision)
                guard try await body(current, leader) else { return }
            }
            var request = Etcdserverpb_WatchCreateRequest()
            request.key = Data((name + "/").utf8)
            request.rangeEnd = EtcdKeyRange.prefixEnd(of: request.key)
            request.startRevision = current.header.revision + 1
            try await watch(request) { responses in
                for try await response in responses where !response.events.isEmpty { return }
            }
        }
    }

    // MARK: Shared

    /// The oldest key under `prefix` (sorted by create revision, limit 1).
    public static func firstCreated(_ prefix: String) -> Etcdserverpb_RangeRequest {
        .with {
            $0.key = Data(prefix.utf8)
            $0.rangeEnd = EtcdKeyRange.prefixEnd(of: $0.key)
            $0.sortTarget = .create
            $0.sortOrder = .ascend
            $0.limit = 1
        }
    }

    /// Waits until no key under `prefix` has a create revision ≤ `maxCreateRevision`.
    func waitForDeletes(prefix: String, before maxCreateRevision: Int64) async throws {
        while true {
            let newest = try await range(
                .with {
                    $0.key = Data(prefix.utf8)
                    $0.rangeEnd = EtcdKeyRange.prefixEnd(of: $0.key)
                    $0.sortTarget = .create
                    $0.sortOrder = .descend
                    $0.limit = 1
                    $0.maxCreateRevision = maxCreateRevision
                })
            guard let blocker = newest.kvs.first else { return }
            var watchRequest = Etcdserverpb_WatchCreateRequest()
            watchRequest.key = blocker.key
            watchRequest.startRevision = newest.header.revision
            try await watch(watchRequest) { responses in
                for try await response in responses where response.events.contains(where: { $0.type == .delete }) {
                    return
                }
            }
        }
    }
}
