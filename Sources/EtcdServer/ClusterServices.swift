import EtcdAPI
import GRPCCore
import SwiftProtobuf

/// etcd's answer for what this build does not do yet.
private func notYet(_ what: String) -> RPCError {
    RPCError(code: .unimplemented, message: "etcdserver: \(what) is not supported by this build of coreos etcd yet")
}

/// The Cluster service: the member list (names and client URLs as each member published
/// them); membership changes come with the cluster-operations work.
struct ClusterService: Etcdserverpb_Cluster.SimpleServiceProtocol {
    let node: StoreNode

    func memberList(request: Etcdserverpb_MemberListRequest, context: ServerContext) async throws
        -> Etcdserverpb_MemberListResponse
    {
        var response = Etcdserverpb_MemberListResponse()
        response.header = await node.header
        response.header.revision = 0
        response.members = await node.members.sorted { $0.key < $1.key }.map { id, record in
            var member = Etcdserverpb_Member()
            member.id = id
            member.name = record.name
            member.peerUrls = record.peerURLs
            member.clientUrls = record.clientURLs
            return member
        }
        return response
    }

    func memberAdd(request: Etcdserverpb_MemberAddRequest, context: ServerContext) async throws
        -> Etcdserverpb_MemberAddResponse
    { throw notYet("member add") }

    func memberRemove(request: Etcdserverpb_MemberRemoveRequest, context: ServerContext) async throws
        -> Etcdserverpb_MemberRemoveResponse
    { throw notYet("member remove") }

    func memberUpdate(request: Etcdserverpb_MemberUpdateRequest, context: ServerContext) async throws
        -> Etcdserverpb_MemberUpdateResponse
    { throw notYet("member update") }

    func memberPromote(request: Etcdserverpb_MemberPromoteRequest, context: ServerContext) async throws
        -> Etcdserverpb_MemberPromoteResponse
    { throw notYet("member promote") }
}

/// The Maintenance service: status and alarms so far.
struct MaintenanceService: Etcdserverpb_Maintenance.SimpleServiceProtocol {
    let node: StoreNode
    /// The etcd release whose behaviour this server follows (clients gate features on it).
    static let version = "3.4.23"

    func status(request: Etcdserverpb_StatusRequest, context: ServerContext) async throws -> Etcdserverpb_StatusResponse {
        var response = Etcdserverpb_StatusResponse()
        response.header = await node.header
        response.version = Self.version
        response.dbSize = await node.databaseSize
        response.dbSizeInUse = response.dbSize
        response.leader = await node.leader
        response.raftIndex = await node.raftIndex
        response.raftTerm = await node.raftTerm
        response.raftAppliedIndex = await node.raftApplied
        // etcd lists raised alarms as the status's errors.
        response.errors = await node.alarms.map { "memberID:\($0.memberID) alarm:\($0.alarm == .nospace ? "NOSPACE" : $0.alarm == .corrupt ? "CORRUPT" : "NONE") " }
        return response
    }

    func alarm(request: Etcdserverpb_AlarmRequest, context: ServerContext) async throws -> Etcdserverpb_AlarmResponse {
        var response = Etcdserverpb_AlarmResponse()
        switch request.action {
        case .get:
            response.alarms = await node.alarms.filter { request.alarm == .none || $0.alarm == request.alarm }
        default:
            // Raising and clearing go through the log, so every member agrees.
            switch await node.propose(.alarm, try request.serializedBytes()) {
            case .alarms(let changed): response.alarms = changed
            case let other: throw KVService.failure(other)
            }
        }
        response.header = await node.header
        response.header.revision = 0
        return response
    }

    func defragment(request: Etcdserverpb_DefragmentRequest, context: ServerContext) async throws
        -> Etcdserverpb_DefragmentResponse
    { throw notYet("defragment") }

    func hash(request: Etcdserverpb_HashRequest, context: ServerContext) async throws -> Etcdserverpb_HashResponse {
        throw notYet("hash")
    }

    func hashKV(request: Etcdserverpb_HashKVRequest, context: ServerContext) async throws -> Etcdserverpb_HashKVResponse {
        throw notYet("hashkv")
    }

    func snapshot(
        request: Etcdserverpb_SnapshotRequest, response: RPCWriter<Etcdserverpb_SnapshotResponse>, context: ServerContext
    ) async throws { throw notYet("snapshot") }

    func moveLeader(request: Etcdserverpb_MoveLeaderRequest, context: ServerContext) async throws
        -> Etcdserverpb_MoveLeaderResponse
    { throw notYet("move-leader") }
}
