public import EtcdAPI
import GRPCCore
import SwiftProtobuf

/// Lease, Cluster, Maintenance and Auth unary calls. Each takes the full request so every
/// field etcd offers is reachable; convenience overloads cover the common shapes.
extension EtcdClient {
    // MARK: Lease

    public func leaseGrant(ttl: Int64, id: Int64 = 0) async throws(EtcdError) -> Etcdserverpb_LeaseGrantResponse {
        let request = Etcdserverpb_LeaseGrantRequest.with {
            $0.ttl = ttl
            $0.id = id
        }
        let lease = leaseService
        return try await call { metadata, options in try await lease.leaseGrant(request, metadata: metadata, options: options) }
    }

    @discardableResult
    public func leaseRevoke(id: Int64) async throws(EtcdError) -> Etcdserverpb_LeaseRevokeResponse {
        let request = Etcdserverpb_LeaseRevokeRequest.with { $0.id = id }
        let lease = leaseService
        return try await call { metadata, options in try await lease.leaseRevoke(request, metadata: metadata, options: options) }
    }

    public func leaseTimeToLive(id: Int64, keys: Bool = false) async throws(EtcdError)
        -> Etcdserverpb_LeaseTimeToLiveResponse
    {
        let request = Etcdserverpb_LeaseTimeToLiveRequest.with {
            $0.id = id
            $0.keys = keys
        }
        let lease = leaseService
        return try await call { metadata, options in
            try await lease.leaseTimeToLive(request, metadata: metadata, options: options)
        }
    }

    public func leaseLeases() async throws(EtcdError) -> Etcdserverpb_LeaseLeasesResponse {
        let lease = leaseService
        return try await call { metadata, options in
            try await lease.leaseLeases(Etcdserverpb_LeaseLeasesRequest(), metadata: metadata, options: options)
        }
    }

    // MARK: Cluster

    public func memberList() async throws(EtcdError) -> Etcdserverpb_MemberListResponse {
        let cluster = clusterService
        return try await call { metadata, options in
            try await cluster.memberList(Etcdserverpb_MemberListRequest(), metadata: metadata, options: options)
        }
    }

    public func memberAdd(peerURLs: [String], learner: Bool = false) async throws(EtcdError)
        -> Etcdserverpb_MemberAddResponse
    {
        let request = Etcdserverpb_MemberAddRequest.with {
            $0.peerUrls = peerURLs
            $0.isLearner = learner
        }
        let cluster = clusterService
        return try await call { metadata, options in try await cluster.memberAdd(request, metadata: metadata, options: options) }
    }

    public func memberRemove(id: UInt64) async throws(EtcdError) -> Etcdserverpb_MemberRemoveResponse {
        let request = Etcdserverpb_MemberRemoveRequest.with { $0.id = id }
        let cluster = clusterService
        return try await call { metadata, options in
            try await cluster.memberRemove(request, metadata: metadata, options: options)
        }
    }

    public func memberUpdate(id: UInt64, peerURLs: [String]) async throws(EtcdError) -> Etcdserverpb_MemberUpdateResponse {
        let request = Etcdserverpb_MemberUpdateRequest.with {
            $0.id = id
            $0.peerUrls = peerURLs
        }
        let cluster = clusterService
        return try await call { metadata, options in
            try await cluster.memberUpdate(request, metadata: metadata, options: options)
        }
    }

    public func memberPromote(id: UInt64) async throws(EtcdError) -> Etcdserverpb_MemberPromoteResponse {
        let request = Etcdserverpb_MemberPromoteRequest.with { $0.id = id }
        let cluster = clusterService
        return try await call { metadata, options in
            try await cluster.memberPromote(request, metadata: metadata, options: options)
        }
    }

    // MARK: Maintenance

    public func status() async throws(EtcdError) -> Etcdserverpb_StatusResponse {
        let maintenance = maintenanceService
        return try await call { metadata, options in
            try await maintenance.status(Etcdserverpb_StatusRequest(), metadata: metadata, options: options)
        }
    }

    public func alarm(_ request: Etcdserverpb_AlarmRequest) async throws(EtcdError) -> Etcdserverpb_AlarmResponse {
        let maintenance = maintenanceService
        return try await call { metadata, options in try await maintenance.alarm(request, metadata: metadata, options: options) }
    }

    public func defragment() async throws(EtcdError) -> Etcdserverpb_DefragmentResponse {
        let maintenance = maintenanceService
        return try await call { metadata, options in
            try await maintenance.defragment(Etcdserverpb_DefragmentRequest(), metadata: metadata, options: options)
        }
    }

    public func hash() async throws(EtcdError) -> Etcdserverpb_HashResponse {
        let maintenance = maintenanceService
        return try await call { metadata, options in
            try await maintenance.hash(Etcdserverpb_HashRequest(), metadata: metadata, options: options)
        }
    }

    public func hashKV(revision: Int64 = 0) async throws(EtcdError) -> Etcdserverpb_HashKVResponse {
        let request = Etcdserverpb_HashKVRequest.with { $0.revision = revision }
        let maintenance = maintenanceService
        return try await call { metadata, options in try await maintenance.hashKV(request, metadata: metadata, options: options) }
    }

    public func moveLeader(to target: UInt64) async throws(EtcdError) -> Etcdserverpb_MoveLeaderResponse {
        let request = Etcdserverpb_MoveLeaderRequest.with { $0.targetID = target }
        let maintenance = maintenanceService
        return try await call { metadata, options in
            try await maintenance.moveLeader(request, metadata: metadata, options: options)
        }
    }

    /// Streams a snapshot of the backend: `body` receives each chunk in order. Returns
    /// the number of bytes received.
    public func snapshot(_ body: @escaping @Sendable (Etcdserverpb_SnapshotResponse) async throws -> Void)
        async throws(EtcdError) -> Int
    {
        let maintenance = maintenanceService
        let metadata = self.metadata
        let options = streamOptions
        do {
            return try await maintenance.snapshot(Etcdserverpb_SnapshotRequest(), metadata: metadata, options: options) {
                response in
                var total = 0
                for try await chunk in response.messages {
                    total += chunk.blob.count
                    try await body(chunk)
                }
                return total
            }
        } catch {
            throw EtcdError.wrap(error)
        }
    }
}
