import EtcdAPI
import GRPCCore
import Foundation
import SwiftProtobuf

/// The Lease service: grants and revokes go through the log; keep-alives and remaining
/// TTLs are the leader's clock.
struct LeaseService: Etcdserverpb_Lease.SimpleServiceProtocol {
    let node: StoreNode

    func leaseGrant(request: Etcdserverpb_LeaseGrantRequest, context: ServerContext) async throws
        -> Etcdserverpb_LeaseGrantResponse
    {
        var proposal = request
        if proposal.id == 0 { proposal.id = Int64.random(in: 1...Int64.max) }
        switch await node.propose(.leaseGrant, try proposal.serializedBytes()) {
        case .leaseGranted(let id, let ttl):
            var response = Etcdserverpb_LeaseGrantResponse()
            response.header = await node.header
            response.id = id
            response.ttl = ttl
            return response
        case .leaseFailed(let message): throw RPCError(code: .failedPrecondition, message: message)
        case let other: throw KVService.failure(other)
        }
    }

    func leaseRevoke(request: Etcdserverpb_LeaseRevokeRequest, context: ServerContext) async throws
        -> Etcdserverpb_LeaseRevokeResponse
    {
        switch await node.propose(.leaseRevoke, try request.serializedBytes()) {
        case .leaseRevoked(let revision):
            var response = Etcdserverpb_LeaseRevokeResponse()
            response.header = await node.header
            response.header.revision = revision
            return response
        case .leaseFailed(let message): throw RPCError(code: .notFound, message: message)
        case let other: throw KVService.failure(other)
        }
    }

    func leaseKeepAlive(
        request: RPCAsyncSequence<Etcdserverpb_LeaseKeepAliveRequest, any Error>,
        response: RPCWriter<Etcdserverpb_LeaseKeepAliveResponse>, context: ServerContext
    ) async throws {
        for try await message in request {
            var answer = Etcdserverpb_LeaseKeepAliveResponse()
            answer.header = await node.header
            answer.id = message.id
            // An unknown lease answers TTL 0, as etcd: the client reports it expired.
            answer.ttl = await node.renew(message.id) ?? 0
            try await response.write(answer)
        }
    }

    func leaseTimeToLive(request: Etcdserverpb_LeaseTimeToLiveRequest, context: ServerContext) async throws
        -> Etcdserverpb_LeaseTimeToLiveResponse
    {
        var response = Etcdserverpb_LeaseTimeToLiveResponse()
        response.header = await node.header
        response.id = request.id
        guard let remaining = await node.remaining(request.id), let granted = await node.leases[request.id] else {
            response.ttl = -1
            return response
        }
        response.ttl = remaining
        response.grantedTtl = granted
        if request.keys { response.keys = await node.keys(attachedTo: request.id).map { Data($0) } }
        return response
    }

    func leaseLeases(request: Etcdserverpb_LeaseLeasesRequest, context: ServerContext) async throws
        -> Etcdserverpb_LeaseLeasesResponse
    {
        var response = Etcdserverpb_LeaseLeasesResponse()
        response.header = await node.header
        response.leases = await node.leases.keys.sorted().map { id in
            var status = Etcdserverpb_LeaseStatus()
            status.id = id
            return status
        }
        return response
    }
}
