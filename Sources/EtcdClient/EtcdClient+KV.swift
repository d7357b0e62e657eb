public import EtcdAPI
import GRPCCore
import SwiftProtobuf

#if canImport(FoundationEssentials)
    public import FoundationEssentials
#else
    public import Foundation
#endif

/// Key-range helpers with clientv3's conventions.
public enum EtcdKeyRange {
    /// The range end that selects every key starting with `prefix`: the prefix with its
    /// last byte below 0xff incremented (0xff bytes dropped). A prefix of only 0xff bytes
    /// has no end; `[0]` (from-key) is returned, as clientv3 does.
    public static func prefixEnd(of prefix: Data) -> Data {
        var end = [UInt8](prefix)
        while let last = end.last {
            if last < 0xFF {
                end[end.count - 1] = last + 1
                return Data(end)
            }
            end.removeLast()
        }
        return Data([0])
    }

    /// `(key, rangeEnd)` for a prefix query; the empty prefix means every key (`\0`, `\0`).
    public static func prefix(_ key: Data) -> (key: Data, rangeEnd: Data) {
        if key.isEmpty { return (Data([0]), Data([0])) }
        return (key, prefixEnd(of: key))
    }

    /// The range end meaning "every key ≥ key".
    public static let fromKey = Data([0])
}

extension EtcdClient {
    /// `KV.Range` with every option of the request.
    public func range(_ request: Etcdserverpb_RangeRequest) async throws(EtcdError) -> Etcdserverpb_RangeResponse {
        let kv = kvService
        return try await call { metadata, options in try await kv.range(request, metadata: metadata, options: options) }
    }

    /// Gets one key, or every key with the prefix.
    public func get(_ key: String, prefix: Bool = false, serializable: Bool = false) async throws(EtcdError)
        -> Etcdserverpb_RangeResponse
    {
        var request = Etcdserverpb_RangeRequest()
        request.key = Data(key.utf8)
        if prefix { (request.key, request.rangeEnd) = EtcdKeyRange.prefix(request.key) }
        request.serializable = serializable
        return try await range(request)
    }

    /// `KV.Put`.
    public func put(_ request: Etcdserverpb_PutRequest) async throws(EtcdError) -> Etcdserverpb_PutResponse {
        let kv = kvService
        return try await call { metadata, options in try await kv.put(request, metadata: metadata, options: options) }
    }

    /// Puts a key, optionally attached to a lease.
    @discardableResult
    public func put(_ key: String, _ value: String, lease: Int64 = 0, prevKV: Bool = false) async throws(EtcdError)
        -> Etcdserverpb_PutResponse
    {
        var request = Etcdserverpb_PutRequest()
        request.key = Data(key.utf8)
        request.value = Data(value.utf8)
        request.lease = lease
        request.prevKv = prevKV
        return try await put(request)
    }

    /// `KV.DeleteRange`.
    public func delete(_ request: Etcdserverpb_DeleteRangeRequest) async throws(EtcdError)
        -> Etcdserverpb_DeleteRangeResponse
    {
        let kv = kvService
        return try await call { metadata, options in try await kv.deleteRange(request, metadata: metadata, options: options) }
    }

    /// Deletes one key, or every key with the prefix.
    @discardableResult
    public func delete(_ key: String, prefix: Bool = false) async throws(EtcdError) -> Etcdserverpb_DeleteRangeResponse {
        var request = Etcdserverpb_DeleteRangeRequest()
        request.key = Data(key.utf8)
        if prefix { (request.key, request.rangeEnd) = EtcdKeyRange.prefix(request.key) }
        return try await delete(request)
    }

    /// `KV.Txn`: compares, then the success or failure operations (which may nest).
    public func txn(_ request: Etcdserverpb_TxnRequest) async throws(EtcdError) -> Etcdserverpb_TxnResponse {
        let kv = kvService
        return try await call { metadata, options in try await kv.txn(request, metadata: metadata, options: options) }
    }

    /// `KV.Compact`: discards history before `revision`.
    @discardableResult
    public func compact(revision: Int64, physical: Bool = false) async throws(EtcdError) -> Etcdserverpb_CompactionResponse {
        let request = Etcdserverpb_CompactionRequest.with {
            $0.revision = revision
            $0.physical = physical
        }
        let kv = kvService
        return try await call { metadata, options in try await kv.compact(request, metadata: metadata, options: options) }
    }
}

/// Builders for transaction parts, so callers write `.put("k", "v")` rather than protobuf setters.
extension Etcdserverpb_Compare {
    /// `target(key) result value`, e.g. `.init(key: "k", target: .version, result: .equal, version: 0)`.
    public static func version(_ key: String, _ result: Etcdserverpb_Compare.CompareResult, _ version: Int64) -> Self {
        .with {
            $0.key = Data(key.utf8)
            $0.target = .version
            $0.result = result
            $0.version = version
        }
    }

    public static func createRevision(_ key: String, _ result: Etcdserverpb_Compare.CompareResult, _ revision: Int64)
        -> Self
    {
        .with {
            $0.key = Data(key.utf8)
            $0.target = .create
            $0.result = result
            $0.createRevision = revision
        }
    }

    public static func modRevision(_ key: String, _ result: Etcdserverpb_Compare.CompareResult, _ revision: Int64) -> Self {
        .with {
            $0.key = Data(key.utf8)
            $0.target = .mod
            $0.result = result
            $0.modRevision = revision
        }
    }

    public static func value(_ key: String, _ result: Etcdserverpb_Compare.CompareResult, _ value: String) -> Self {
        .with {
            $0.key = Data(key.utf8)
            $0.target = .value
            $0.result = result
            $0.value = Data(value.utf8)
        }
    }
}

extension Etcdserverpb_RequestOp {
    public static func put(_ key: String, _ value: String, lease: Int64 = 0) -> Self {
        .with {
            $0.requestPut = .with {
                $0.key = Data(key.utf8)
                $0.value = Data(value.utf8)
                $0.lease = lease
            }
        }
    }

    public static func get(_ key: String, prefix: Bool = false) -> Self {
        .with {
            $0.requestRange = .with {
                $0.key = Data(key.utf8)
                if prefix { ($0.key, $0.rangeEnd) = EtcdKeyRange.prefix($0.key) }
            }
        }
    }

    public static func delete(_ key: String, prefix: Bool = false) -> Self {
        .with {
            $0.requestDeleteRange = .with {
                $0.key = Data(key.utf8)
                if prefix { ($0.key, $0.rangeEnd) = EtcdKeyRange.prefix($0.key) }
            }
        }
    }
}
