import EtcdAPI
import Foundation
import GRPCCore
import MVCC

/// Between etcd's protobuf messages and the MVCC store's own types.
enum ProtoMapping {
    static func range(_ request: Etcdserverpb_RangeRequest) -> RangeRequest {
        var range = RangeRequest(key: Array(request.key), rangeEnd: Array(request.rangeEnd))
        range.limit = request.limit
        range.revision = request.revision
        range.sortOrder = request.sortOrder == .ascend ? .ascend : request.sortOrder == .descend ? .descend : .none
        switch request.sortTarget {
        case .version: range.sortTarget = .version
        case .create: range.sortTarget = .create
        case .mod: range.sortTarget = .mod
        case .value: range.sortTarget = .value
        default: range.sortTarget = .key
        }
        range.keysOnly = request.keysOnly
        range.countOnly = request.countOnly
        range.minModRevision = request.minModRevision
        range.maxModRevision = request.maxModRevision
        range.minCreateRevision = request.minCreateRevision
        range.maxCreateRevision = request.maxCreateRevision
        return range
    }

    static func put(_ request: Etcdserverpb_PutRequest) -> PutRequest {
        var put = PutRequest(key: Array(request.key), value: Array(request.value), lease: request.lease)
        put.previousKeyValue = request.prevKv
        put.ignoreValue = request.ignoreValue
        put.ignoreLease = request.ignoreLease
        return put
    }

    static func delete(_ request: Etcdserverpb_DeleteRangeRequest) -> DeleteRangeRequest {
        var delete = DeleteRangeRequest(key: Array(request.key), rangeEnd: Array(request.rangeEnd))
        delete.previousKeyValues = request.prevKv
        return delete
    }

    static func txn(_ request: Etcdserverpb_TxnRequest) -> TxnRequest {
        TxnRequest(
            compare: request.compare.map(compare), success: request.success.compactMap(operation),
            failure: request.failure.compactMap(operation))
    }

    static func compare(_ compare: Etcdserverpb_Compare) -> Compare {
        let result: Compare.Result
        switch compare.result {
        case .greater: result = .greater
        case .less: result = .less
        case .notEqual: result = .notEqual
        default: result = .equal
        }
        let target: Compare.Target
        switch compare.target {
        case .create: target = .create(compare.createRevision)
        case .mod: target = .mod(compare.modRevision)
        case .value: target = .value(Array(compare.value))
        case .lease: target = .lease(compare.lease)
        default: target = .version(compare.version)
        }
        return Compare(key: Array(compare.key), rangeEnd: Array(compare.rangeEnd), result, target)
    }

    static func operation(_ operation: Etcdserverpb_RequestOp) -> MVCC.Operation? {
        switch operation.request {
        case .requestRange(let range): return .range(self.range(range))
        case .requestPut(let put): return .put(self.put(put))
        case .requestDeleteRange(let delete): return .deleteRange(self.delete(delete))
        case .requestTxn(let txn): return .txn(self.txn(txn))
        case nil: return nil
        }
    }

    static func keyValue(_ value: KeyValue) -> Mvccpb_KeyValue {
        var result = Mvccpb_KeyValue()
        result.key = Data(value.key)
        result.createRevision = value.createRevision
        result.modRevision = value.modRevision
        result.version = value.version
        result.value = Data(value.value)
        result.lease = value.lease
        return result
    }

    static func rangeResponse(_ result: RangeResult, header: Etcdserverpb_ResponseHeader) -> Etcdserverpb_RangeResponse {
        var response = Etcdserverpb_RangeResponse()
        response.header = header
        response.header.revision = result.revision
        response.kvs = result.keyValues.map(keyValue)
        response.more = result.more
        response.count = result.count
        return response
    }

    static func txnResponse(_ result: TxnResult, header: Etcdserverpb_ResponseHeader) -> Etcdserverpb_TxnResponse {
        var response = Etcdserverpb_TxnResponse()
        response.header = header
        response.succeeded = result.succeeded
        // Inner responses carry only the revision in their headers, as etcd's.
        var inner = Etcdserverpb_ResponseHeader()
        inner.revision = header.revision
        response.responses = result.responses.map { responseOp($0, header: inner) }
        return response
    }

    static func responseOp(_ result: OperationResult, header: Etcdserverpb_ResponseHeader) -> Etcdserverpb_ResponseOp {
        var op = Etcdserverpb_ResponseOp()
        switch result {
        case .range(let range):
            op.response = .responseRange(rangeResponse(range, header: header))
        case .put(let previous):
            var put = Etcdserverpb_PutResponse()
            put.header = header
            if let previous { put.prevKv = keyValue(previous) }
            op.response = .responsePut(put)
        case .deleteRange(let deleted):
            var delete = Etcdserverpb_DeleteRangeResponse()
            delete.header = header
            delete.deleted = deleted.deleted
            delete.prevKvs = deleted.previous.map(keyValue)
            op.response = .responseDeleteRange(delete)
        case .txn(let nested):
            // etcd: a nested txn's own header is empty; its responses carry the revision.
            var txn = txnResponse(nested, header: header)
            txn.header = Etcdserverpb_ResponseHeader()
            op.response = .responseTxn(txn)
        }
        return op
    }

    /// etcd's gRPC status for each store error.
    static func rpcError(_ error: MVCCError) -> RPCError {
        switch error {
        case .compacted, .futureRevision: return RPCError(code: .outOfRange, message: error.description)
        case .leaseNotFound: return RPCError(code: .notFound, message: error.description)
        case .keyNotFound, .tooManyOperations, .duplicateKey, .emptyKey:
            return RPCError(code: .invalidArgument, message: error.description)
        }
    }
}
