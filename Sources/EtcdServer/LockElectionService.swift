import EtcdAPI
import EtcdClient
import Foundation
import GRPCCore
import Synchronization

/// etcd's `v3lockpb.Lock` and `v3electionpb.Election` services. As in etcd, they are the
/// client recipes (`EtcdClient+Concurrency`: keys `<name>/<lease hex>`, the oldest create
/// revision wins) run by the member against its own client port, so locks taken here and
/// by `etcdctl lock` or any clientv3 program exclude each other. Each call uses the
/// caller's token, so auth applies to the keys as if the caller wrote them.
final class LockElectionService: Sendable {
    /// This member's client address, known once the client port is bound.
    private let endpoint = Mutex<EtcdEndpoint?>(nil)

    func listening(on endpoint: EtcdEndpoint) { self.endpoint.withLock { $0 = endpoint } }

    /// Runs `body` with a client of this member acting for `caller`.
    private func asCaller<Result: Sendable>(
        _ caller: CallerCredentials, _ body: @escaping @Sendable (EtcdClient) async throws -> Result
    ) async throws -> Result {
        guard let endpoint = endpoint.withLock({ $0 }) else {
            throw RPCError(code: .unavailable, message: "etcdserver: not yet serving")
        }
        var configuration = EtcdClientConfiguration(
            endpoints: [endpoint], requestTimeout: .seconds(30), tls: MemberTLS.forClientPort(secure: endpoint.secure))
        configuration.token = caller.token
        do {
            return try await EtcdClient.withClient(configuration) { client in try await body(client) }
        } catch let error as EtcdError {
            // etcd's election errors are plain Go errors: gRPC's Unknown.
            let code = error.message.hasPrefix("election: ") ? .unknown : GRPCRouter.code(error.code)
            throw RPCError(code: code, message: error.message)
        }
    }

    /// A lock or election name; etcd takes an empty one too (keys `/<lease hex>`).
    private static func name(_ bytes: Data) -> String { String(decoding: bytes, as: UTF8.self) }

    // MARK: Lock

    func lock(request: V3lockpb_LockRequest, caller: CallerCredentials) async throws -> V3lockpb_LockResponse {
        let name = Self.name(request.name)
        return try await asCaller(caller) { client in
            let mutex = try await client.lock(name, session: EtcdSession(leaseID: request.lease))
            var response = V3lockpb_LockResponse()
            response.header = try await client.get(mutex.key).header
            response.key = Data(mutex.key.utf8)
            return response
        }
    }

    func unlock(request: V3lockpb_UnlockRequest, caller: CallerCredentials) async throws -> V3lockpb_UnlockResponse {
        try await asCaller(caller) { client in
            var response = V3lockpb_UnlockResponse()
            response.header = try await client.delete(String(decoding: request.key, as: UTF8.self)).header
            return response
        }
    }

    // MARK: Election

    private static func leadership(_ key: V3electionpb_LeaderKey) -> EtcdLeadership {
        EtcdLeadership(
            name: String(decoding: key.name, as: UTF8.self), key: String(decoding: key.key, as: UTF8.self), revision: key.rev,
            session: EtcdSession(leaseID: key.lease))
    }

    func campaign(request: V3electionpb_CampaignRequest, caller: CallerCredentials) async throws -> V3electionpb_CampaignResponse {
        let name = Self.name(request.name)
        return try await asCaller(caller) { client in
            let won = try await client.campaign(
                name, value: String(decoding: request.value, as: UTF8.self), session: EtcdSession(leaseID: request.lease))
            var response = V3electionpb_CampaignResponse()
            response.header = try await client.get(won.key).header
            response.leader.name = request.name
            response.leader.key = Data(won.key.utf8)
            response.leader.rev = won.revision
            response.leader.lease = request.lease
            return response
        }
    }

    /// etcd's answer to a Proclaim or Resign without its `leader` field.
    static let missingLeader = RPCError(code: .unknown, message: "\"leader\" field must be provided")

    func proclaim(request: V3electionpb_ProclaimRequest, caller: CallerCredentials) async throws -> V3electionpb_ProclaimResponse {
        guard request.hasLeader else { throw Self.missingLeader }
        return try await asCaller(caller) { client in
            try await client.proclaim(String(decoding: request.value, as: UTF8.self), as: Self.leadership(request.leader))
            var response = V3electionpb_ProclaimResponse()
            response.header = try await client.get(String(decoding: request.leader.key, as: UTF8.self)).header
            return response
        }
    }

    func leader(request: V3electionpb_LeaderRequest, caller: CallerCredentials) async throws -> V3electionpb_LeaderResponse {
        let name = Self.name(request.name)
        return try await asCaller(caller) { client in
            let current = try await client.range(EtcdClient.firstCreated(name + "/"))
            guard let kv = current.kvs.first else { throw RPCError(code: .unknown, message: "election: no leader") }
            var response = V3electionpb_LeaderResponse()
            response.header = current.header
            response.kv = kv
            return response
        }
    }

    func resign(request: V3electionpb_ResignRequest, caller: CallerCredentials) async throws -> V3electionpb_ResignResponse {
        guard request.hasLeader else { throw Self.missingLeader }
        return try await asCaller(caller) { client in
            try await client.resign(Self.leadership(request.leader))
            var response = V3electionpb_ResignResponse()
            response.header = try await client.get(String(decoding: request.leader.key, as: UTF8.self)).header
            return response
        }
    }

    /// The leader now, then every change of leader or of its value, until the caller leaves.
    func observe(
        request: RPCAsyncSequence<V3electionpb_LeaderRequest, any Error>, response: RPCWriter<V3electionpb_LeaderResponse>,
        context: ServerContext, caller: CallerCredentials
    ) async throws {
        var first: V3electionpb_LeaderRequest?
        for try await message in request {
            first = message
            break
        }
        guard let first else { return }
        let name = Self.name(first.name)
        try await asCaller(caller) { client in
            try await client.observeLeader(name) { current, leader in
                var answer = V3electionpb_LeaderResponse()
                answer.header = current.header
                answer.kv = leader
                try await response.write(answer)
                return true
            }
        }
    }
}
