import EtcdAPI
import EtcdAuth
import Foundation
import GRPCCore
import MVCC
import SwiftProtobuf

/// The KV service: writes through Raft, serializable reads from the local store,
/// linearizable reads after a ReadIndex round.
struct KVService: Sendable {
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

    // Each method runs on the connection's event loop, hands the request to the node and
    // returns; the node's completion answers the call. No task and no await per request.

    func range(request: Etcdserverpb_RangeRequest, reply: GRPCReply) {
        guard !request.key.isEmpty else { return reply.fail(ProtoMapping.rpcError(.emptyKey)) }
        if let denial = node.permitRead(reply.sink.caller, key: request.key, rangeEnd: request.rangeEnd) { return reply.fail(denial) }
        let mapped = ProtoMapping.range(request)
        if !request.serializable && node.isLearnerNow { return reply.fail(GRPCRouter.notForLearner) }
        node.submit(
            .read(linearizable: !request.serializable) { outcome in
                switch outcome {
                case .ready(let store, let header):
                    do throws(MVCCError) {
                        reply.respond(ProtoMapping.rangeResponse(try store.range(mapped), header: header))
                    } catch {
                        reply.fail(ProtoMapping.rpcError(error))
                    }
                case .noLeader: reply.fail(Self.noLeader)
                case .timedOut: reply.fail(Self.timedOut)
                }
            })
    }

    func put(request: Etcdserverpb_PutRequest, bytes: [UInt8], reply: GRPCReply) {
        guard !request.key.isEmpty else { return reply.fail(ProtoMapping.rpcError(.emptyKey)) }
        if let denial = node.permit(reply.sink.caller, { store, user in
            store.isPermitted(user, .write, key: Array(request.key), rangeEnd: [])
                && (!request.prevKv || store.isPermitted(user, .read, key: Array(request.key), rangeEnd: []))
        }) { return reply.fail(denial) }
        propose(.put, bytes, reply) { applied, header -> Etcdserverpb_PutResponse? in
            guard case .put(let outcome) = applied else { return nil }
            var response = Etcdserverpb_PutResponse()
            response.header = header
            response.header.revision = outcome.revision
            if let previous = outcome.value { response.prevKv = ProtoMapping.keyValue(previous) }
            return response
        }
    }

    func deleteRange(request: Etcdserverpb_DeleteRangeRequest, bytes: [UInt8], reply: GRPCReply) {
        guard !request.key.isEmpty else { return reply.fail(ProtoMapping.rpcError(.emptyKey)) }
        if let denial = node.permit(reply.sink.caller, { store, user in
            let key = Array(request.key), end = Array(request.rangeEnd)
            return store.isPermitted(user, .write, key: key, rangeEnd: end)
                && (!request.prevKv || store.isPermitted(user, .read, key: key, rangeEnd: end))
        }) { return reply.fail(denial) }
        propose(.deleteRange, bytes, reply) { applied, header -> Etcdserverpb_DeleteRangeResponse? in
            guard case .deleteRange(let outcome) = applied else { return nil }
            var response = Etcdserverpb_DeleteRangeResponse()
            response.header = header
            response.header.revision = outcome.revision
            response.deleted = outcome.value.deleted
            response.prevKvs = outcome.value.previous.map(ProtoMapping.keyValue)
            return response
        }
    }

    /// The txn's limits (`--max-txn-ops`, duplicate keys) are checked here, off the store
    /// thread; the node reports a violation after its quota check, in etcd's order.
    func txn(request: Etcdserverpb_TxnRequest, bytes: [UInt8], reply: GRPCReply) {
        // etcd refuses an operation that names no request before anything else.
        if Self.hasEmptyOperation(request) { return reply.fail(RPCError(code: .invalidArgument, message: "etcdserver: key not found")) }
        if let denial = node.permitTxn(reply.sink.caller, request) { return reply.fail(denial) }
        var invalid: MVCCError?
        do throws(MVCCError) {
            try MVCCStore.validate(ProtoMapping.txn(request), maxOperations: node.limits.maxTxnOperations)
        } catch {
            invalid = error
        }
        propose(.txn, bytes, invalid: invalid, reply) { applied, header -> Etcdserverpb_TxnResponse? in
            guard case .txn(let outcome) = applied else { return nil }
            var current = header
            current.revision = outcome.revision
            return ProtoMapping.txnResponse(outcome.value, header: current)
        }
    }

    private static func hasEmptyOperation(_ request: Etcdserverpb_TxnRequest) -> Bool {
        (request.success + request.failure).contains { operation in
            switch operation.request {
            case nil: true
            case .requestTxn(let nested): hasEmptyOperation(nested)
            default: false
            }
        }
    }

    /// Proposes the request's bytes and answers with `response(outcome)`, or with the
    /// error the outcome stands for when `response` gives nil.
    private func propose<Response: SwiftProtobuf.Message>(
        _ kind: StoreNode.RequestKind, _ body: [UInt8], invalid: MVCCError? = nil, _ reply: GRPCReply,
        response: @escaping @Sendable (StoreNode.Applied, Etcdserverpb_ResponseHeader) -> Response?
    ) {
        node.submit(
            .proposal(kind, body, invalid: invalid) { applied, header in
                if let answer = response(applied, header) { reply.respond(answer) } else { reply.fail(Self.failure(applied)) }
            })
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
