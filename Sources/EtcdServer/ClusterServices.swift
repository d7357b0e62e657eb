import Checksums
import Crypto
import EtcdAPI
import EtcdClient
import Foundation
import MVCC
import GRPCCore
import SwiftProtobuf
import Synchronization

/// The Cluster service: the member list and membership changes. Changes are decided by
/// the leader (see `StoreNode+Membership`); a member that is not the leader passes the
/// request on to the leader's client URL, as etcd forwards to its leader.
struct ClusterService: Etcdserverpb_Cluster.SimpleServiceProtocol {
    let node: StoreNode
    /// `--experimental-max-learners`.
    var maxLearners = 1

    func memberList(request: Etcdserverpb_MemberListRequest, context: ServerContext) async throws
        -> Etcdserverpb_MemberListResponse
    {
        var response = Etcdserverpb_MemberListResponse()
        response.header = await header()
        response.members = await members()
        return response
    }

    private func header() async -> Etcdserverpb_ResponseHeader {
        var header = await node.header
        header.revision = 0
        return header
    }

    private func members() async -> [Etcdserverpb_Member] {
        await node.members.sorted { $0.key < $1.key }.map { id, record in Self.member(id, record) }
    }

    static func member(_ id: UInt64, _ record: StoreNode.MemberRecord) -> Etcdserverpb_Member {
        var member = Etcdserverpb_Member()
        member.id = id
        member.name = record.name
        member.peerUrls = record.peerURLs
        member.clientUrls = record.clientURLs
        member.isLearner = record.isLearner
        return member
    }

    func memberAdd(request: Etcdserverpb_MemberAddRequest, caller: CallerCredentials) async throws
        -> Etcdserverpb_MemberAddResponse
    {
        let outcome = await node.addMember(peerURLs: request.peerUrls, learner: request.isLearner, maxLearners: maxLearners)
        guard let id = try Self.check(outcome) else {
            return try await Self.forward(outcome, caller) { try await $0.memberAdd(peerURLs: request.peerUrls, learner: request.isLearner) }
        }
        var response = Etcdserverpb_MemberAddResponse()
        response.header = await header()
        response.members = await members()
        response.member = response.members.first { $0.id == id } ?? Etcdserverpb_Member()
        return response
    }

    func memberRemove(request: Etcdserverpb_MemberRemoveRequest, caller: CallerCredentials) async throws
        -> Etcdserverpb_MemberRemoveResponse
    {
        let outcome = await node.removeMember(request.id)
        guard try Self.check(outcome) != nil else { return try await Self.forward(outcome, caller) { try await $0.memberRemove(id: request.id) } }
        var response = Etcdserverpb_MemberRemoveResponse()
        response.header = await header()
        response.members = await members()
        return response
    }

    func memberUpdate(request: Etcdserverpb_MemberUpdateRequest, caller: CallerCredentials) async throws
        -> Etcdserverpb_MemberUpdateResponse
    {
        let outcome = await node.updateMember(request.id, peerURLs: request.peerUrls)
        guard try Self.check(outcome) != nil else {
            return try await Self.forward(outcome, caller) { try await $0.memberUpdate(id: request.id, peerURLs: request.peerUrls) }
        }
        var response = Etcdserverpb_MemberUpdateResponse()
        response.header = await header()
        response.members = await members()
        return response
    }

    func memberPromote(request: Etcdserverpb_MemberPromoteRequest, caller: CallerCredentials) async throws
        -> Etcdserverpb_MemberPromoteResponse
    {
        let outcome = await node.promoteMember(request.id)
        guard try Self.check(outcome) != nil else { return try await Self.forward(outcome, caller) { try await $0.memberPromote(id: request.id) } }
        var response = Etcdserverpb_MemberPromoteResponse()
        response.header = await header()
        response.members = await members()
        return response
    }


    // The generated protocol's forms (no caller: nothing to pass on to the leader).
    func memberAdd(request: Etcdserverpb_MemberAddRequest, context: ServerContext) async throws -> Etcdserverpb_MemberAddResponse {
        try await memberAdd(request: request, caller: CallerCredentials())
    }

    func memberRemove(request: Etcdserverpb_MemberRemoveRequest, context: ServerContext) async throws -> Etcdserverpb_MemberRemoveResponse {
        try await memberRemove(request: request, caller: CallerCredentials())
    }

    func memberUpdate(request: Etcdserverpb_MemberUpdateRequest, context: ServerContext) async throws -> Etcdserverpb_MemberUpdateResponse {
        try await memberUpdate(request: request, caller: CallerCredentials())
    }

    func memberPromote(request: Etcdserverpb_MemberPromoteRequest, context: ServerContext) async throws -> Etcdserverpb_MemberPromoteResponse {
        try await memberPromote(request: request, caller: CallerCredentials())
    }

    /// The member ID a change was made for; nil when it belongs to the leader (forward it).
    /// A refusal becomes etcd's error.
    private static func check(_ outcome: StoreNode.MembershipOutcome) throws -> UInt64? {
        switch outcome {
        case .done(let id): return id
        case .notLeader: return nil
        case .timedOut: throw RPCError(code: .unavailable, message: "etcdserver: request timed out")
        case .refused(let code, let message):
            let status: RPCError.Code =
                switch code {
                case .notFound: .notFound
                case .failedPrecondition: .failedPrecondition
                case .invalidArgument: .invalidArgument
                case .unavailable: .unavailable
                }
            throw RPCError(code: status, message: message)
        }
    }

    /// Passes the request to the leader's client URL and returns its answer.
    private static func forward<Response: Sendable>(
        _ outcome: StoreNode.MembershipOutcome, _ caller: CallerCredentials, _ call: @Sendable (EtcdClient) async throws -> Response
    ) async throws -> Response {
        guard case .notLeader(let url?) = outcome, let endpoint = try? EtcdEndpoint(parsing: url) else {
            throw RPCError(code: .unavailable, message: "etcdserver: no leader")
        }
        do {
            var configuration = EtcdClientConfiguration(endpoints: [endpoint], tls: MemberTLS.forClientPort(secure: endpoint.secure))
            // In the caller's name: with auth on, the leader checks its token too.
            configuration.token = caller.token
            return try await EtcdClient.withClient(configuration) { client in try await call(client) }
        } catch let error as EtcdError {
            throw RPCError(code: rpcCode(error.code), message: error.message)
        }
    }

    private static func rpcCode(_ code: EtcdError.Code) -> RPCError.Code {
        switch code {
        case .notFound: .notFound
        case .failedPrecondition: .failedPrecondition
        case .invalidArgument: .invalidArgument
        case .deadlineExceeded: .deadlineExceeded
        default: .unavailable
        }
    }
}

/// The Maintenance service: status and alarms so far.
struct MaintenanceService: Etcdserverpb_Maintenance.SimpleServiceProtocol {
    let node: StoreNode
    /// The etcd release whose behaviour this server follows (clients gate features on it).
    static let version = EtcdVersion.server

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
        response.isLearner = node.isLearnerNow
        // etcd lists raised alarms as the status's errors.
        response.errors = await node.alarms.map { "memberID:\($0.memberID) alarm:\($0.alarm == .nospace ? "NOSPACE" : $0.alarm == .corrupt ? "CORRUPT" : "NONE") " }
        return response
    }

    func alarm(request: Etcdserverpb_AlarmRequest, context: ServerContext) async throws -> Etcdserverpb_AlarmResponse {
        var response = Etcdserverpb_AlarmResponse()
        switch request.action {
        case .get:
            // etcd answers a listing without a header (`{}` when nothing is raised).
            response.alarms = await node.alarms.filter { request.alarm == .none || $0.alarm == request.alarm }
            return response
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

    /// Our backend has no free pages to give back; what grows is the WAL. Defragmenting
    /// snapshots the state now, which drops the WAL before it (db size shrinks).
    func defragment(request: Etcdserverpb_DefragmentRequest, context: ServerContext) async throws
        -> Etcdserverpb_DefragmentResponse
    {
        await node.takeSnapshot()
        var response = Etcdserverpb_DefragmentResponse()
        response.header = await node.header
        return response
    }

    /// CRC-32C of the whole kept history (etcd hashes its backend file; ours is equal on
    /// members with equal history, which is what the hash is compared for).
    func hash(request: Etcdserverpb_HashRequest, context: ServerContext) async throws -> Etcdserverpb_HashResponse {
        let (store, header) = await node.readView()
        var response = Etcdserverpb_HashResponse()
        response.header = header
        response.hash = Self.historyHash(store, through: store.currentRevision)
        return response
    }

    /// CRC-32C of the kept history up to a revision (0: the current one), with the
    /// compaction point, as `etcdctl endpoint hashkv` prints it.
    func hashKV(request: Etcdserverpb_HashKVRequest, context: ServerContext) async throws -> Etcdserverpb_HashKVResponse {
        let (store, header) = await node.readView()
        if request.revision > store.currentRevision { throw ProtoMapping.rpcError(.futureRevision) }
        if request.revision > 0 && request.revision < store.compactedRevision { throw ProtoMapping.rpcError(.compacted) }
        var response = Etcdserverpb_HashKVResponse()
        response.header = header
        response.hash = Self.historyHash(store, through: request.revision > 0 ? request.revision : store.currentRevision)
        response.compactRevision = store.compactedRevision
        return response
    }

    /// The checksum starts from the name of etcd's key bucket, as etcd's does, so that a
    /// member with no history yet answers a non-zero hash (a client reads 0 as "unset").
    private static func historyHash(_ store: MVCCStore, through revision: Int64) -> UInt32 {
        var crc = CRC32C()
        crc.update(Array("key".utf8))
        crc.update(store.encodedHistory(through: revision))
        return crc.value
    }

    /// Streams the replicated state as an `EtcdSnapshotFile`, in 32 KiB chunks.
    func snapshot(
        request: Etcdserverpb_SnapshotRequest, response: RPCWriter<Etcdserverpb_SnapshotResponse>, context: ServerContext
    ) async throws {
        let state = await node.state.encoded()
        let header = await node.header
        var sent = 0
        let payload = EtcdSnapshotFile.encode(state)
        while sent < payload.count {
            let chunk = payload[sent..<min(sent + 32 * 1024, payload.count)]
            sent += chunk.count
            var message = Etcdserverpb_SnapshotResponse()
            message.header = header
            message.blob = Data(chunk)
            message.remainingBytes = UInt64(payload.count - sent)
            try await response.write(message)
        }
    }

    func moveLeader(request: Etcdserverpb_MoveLeaderRequest, context: ServerContext) async throws
        -> Etcdserverpb_MoveLeaderResponse
    {
        switch await node.moveLeader(to: request.targetID) {
        case .moved:
            var response = Etcdserverpb_MoveLeaderResponse()
            response.header = await node.header
            return response
        case .notLeader: throw RPCError(code: .failedPrecondition, message: "etcdserver: not leader")
        case .badTransferee: throw RPCError(code: .failedPrecondition, message: "etcdserver: bad leader transferee")
        case .timedOut:
            throw RPCError(code: .deadlineExceeded, message: "etcdserver: request timed out, leader transfer took too long")
        }
    }
}
