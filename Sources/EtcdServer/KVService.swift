import EtcdAPI
import Foundation
import GRPCCore
import MVCC
import SwiftProtobuf

/// The KV service: writes through Raft, serializable reads from the local store,
/// linearizable reads after a ReadIndex round.
struct KVService: Etcdserverpb_KV.SimpleServiceProtocol {
    let node: StoreNode

    static let noLeader = RPCError(code: .unavailable, message: "etcdserver: no leader")
    static let timedOut = RPCError(code: .unavailable, message: "etcdserver: request timed out")

    /// The error for a proposal that did not give the expected result.
    static func failure(_ outcome: StoreNode.Applied) -> RPCError {
        switch outcome {
        case .failed(let error): ProtoMapping.rpcError(error)
        case .timedOut: timedOut
        case .leaseFailed(let message): RPCError(code: .notFound, message: message)
        case .tooLarge: RPCError(code: .invalidArgument, message: "etcdserver: request is too large")
        case .overTransportLimit(let size, let limit):
            RPCError(code: .resourceExhausted, message: "grpc: received message larger than max (\(size) vs. \(limit))")
        case .noSpace: RPCError(code: .resourceExhausted, message: "etcdserver: mvcc: database space exceeded")
        default: noLeader
        }
    }

    func range(request: Etcdserverpb_RangeRequest, context: ServerContext) async throws -> Etcdserverpb_RangeResponse {
        if !request.serializable {
            guard await node.linearizableBarrier() else { throw await node.leader == 0 ? Self.noLeader : Self.timedOut }
        }
        let (store, header) = await node.readView()
        do {
            return ProtoMapping.rangeResponse(try store.range(ProtoMapping.range(request)), header: header)
        } catch {
            throw ProtoMapping.rpcError(error)
        }
    }

    func put(request: Etcdserverpb_PutRequest, context: ServerContext) async throws -> Etcdserverpb_PutResponse {
        guard !request.key.isEmpty else { throw ProtoMapping.rpcError(.emptyKey) }
        let (applied, header) = await node.proposeWithHeader(.put, try request.serializedBytes())
        switch applied {
        case .put(let outcome):
            var response = Etcdserverpb_PutResponse()
            response.header = header
            response.header.revision = outcome.revision
            if let previous = outcome.value { response.prevKv = ProtoMapping.keyValue(previous) }
            return response
        case let other: throw KVService.failure(other)
        }
    }

    func deleteRange(request: Etcdserverpb_DeleteRangeRequest, context: ServerContext) async throws
        -> Etcdserverpb_DeleteRangeResponse
    {
        guard !request.key.isEmpty else { throw ProtoMapping.rpcError(.emptyKey) }
        let (applied, header) = await node.proposeWithHeader(.deleteRange, try request.serializedBytes())
        switch applied {
        case .deleteRange(let outcome):
            var response = Etcdserverpb_DeleteRangeResponse()
            response.header = header
            response.header.revision = outcome.revision
            response.deleted = outcome.value.deleted
            response.prevKvs = outcome.value.previous.map(ProtoMapping.keyValue)
            return response
        case let other: throw KVService.failure(other)
        }
    }

    func txn(request: Etcdserverpb_TxnRequest, context: ServerContext) async throws -> Etcdserverpb_TxnResponse {
        let body: [UInt8] = try request.serializedBytes()
        if let refusal = await node.spaceRefusal(.txn, body) { throw Self.failure(refusal) }
        do {
            try MVCCStore.validate(ProtoMapping.txn(request), maxOperations: node.limits.maxTxnOperations)
        } catch {
            throw ProtoMapping.rpcError(error)
        }
        let (applied, current) = await node.proposeWithHeader(.txn, body)
        switch applied {
        case .txn(let outcome):
            var header = current
            header.revision = outcome.revision
            return ProtoMapping.txnResponse(outcome.value, header: header)
        case let other: throw KVService.failure(other)
        }
    }

    func compact(request: Etcdserverpb_CompactionRequest, context: ServerContext) async throws
        -> Etcdserverpb_CompactionResponse
    {
        switch await node.propose(.compact, try request.serializedBytes()) {
        case .compact(let revision):
            var response = Etcdserverpb_CompactionResponse()
            response.header = await node.header
            response.header.revision = revision
            return response
        case let other: throw KVService.failure(other)
        }
    }
}
