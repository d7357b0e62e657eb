public import EtcdClient
import EtcdAPI
public import Flannel
import SwiftProtobuf

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// flannel ≥ 0.18's layout in etcd's v3 keyspace: each lease key is attached to a v3 lease
/// granted for the TTL; creating is `Txn(If Version(key) == 0, Then Put(key, value, lease))`.
public struct EtcdV3SubnetRegistry: SubnetRegistry {
    public let client: EtcdClient
    public let prefix: String

    public init(client: EtcdClient, prefix: String) {
        self.client = client
        self.prefix = prefix
    }

    public func networkConfig() async throws -> String? {
        let response = try await client.get(Self.configKey(prefix))
        return response.kvs.first.map { String(decoding: $0.value, as: UTF8.self) }
    }

    public func setNetworkConfig(_ text: String) async throws {
        _ = try await client.put(Self.configKey(prefix), text)
    }

    public func leases() async throws -> (records: [SubnetLeaseRecord], revision: Int64) {
        let response = try await client.get(Self.subnetsKey(prefix), prefix: true)
        let records = response.kvs.compactMap { kv in
            Self.record(
                key: String(decoding: kv.key, as: UTF8.self), value: String(decoding: kv.value, as: UTF8.self),
                prefix: prefix, expires: kv.lease != 0)
        }
        return (records, response.header.revision)
    }

    public func createLease(_ key: SubnetKey, _ attributes: SubnetLeaseAttributes, ttl: Int64) async throws -> Bool {
        let path = Self.subnetsKey(prefix) + key.description
        let lease = ttl > 0 ? try await client.leaseGrant(ttl: ttl).id : 0
        var request = Etcdserverpb_TxnRequest()
        request.compare = [
            .with {
                $0.key = Data(path.utf8)
                $0.target = .version
                $0.result = .equal
                $0.version = 0
            }
        ]
        request.success = [
            .with {
                $0.requestPut = .with {
                    $0.key = Data(path.utf8)
                    $0.value = Data(attributes.jsonText.utf8)
                    $0.lease = lease
                }
            }
        ]
        let response = try await client.txn(request)
        if !response.succeeded, lease != 0 { _ = try? await client.leaseRevoke(id: lease) }
        return response.succeeded
    }

    public func renewLease(_ key: SubnetKey, _ attributes: SubnetLeaseAttributes, ttl: Int64) async throws {
        let path = Self.subnetsKey(prefix) + key.description
        let lease = ttl > 0 ? try await client.leaseGrant(ttl: ttl).id : 0
        let previous = try await client.put(path, attributes.jsonText, lease: lease, prevKV: true)
        // The key now hangs on the new lease; the old one would only expire later, holding nothing.
        if previous.hasPrevKv, previous.prevKv.lease != 0, previous.prevKv.lease != lease {
            _ = try? await client.leaseRevoke(id: previous.prevKv.lease)
        }
    }

    public func deleteLease(_ key: SubnetKey) async throws {
        _ = try await client.delete(Self.subnetsKey(prefix) + key.description)
    }

    public func watchLeases(after revision: Int64, _ deliver: @escaping @Sendable ([SubnetEvent]) async -> Void) async throws {
        var start = revision + 1
        while !Task.isCancelled {
            do {
                try await client.watch(Self.subnetsKey(prefix), prefix: true, fromRevision: start) { responses in
                    for try await response in responses {
                        var events: [SubnetEvent] = []
                        for event in response.events {
                            let path = String(decoding: event.kv.key, as: UTF8.self)
                            let name = String(path.dropFirst(Self.subnetsKey(prefix).count))
                            guard let key = SubnetKey(parsing: name) else { continue }
                            if event.type == .delete {
                                events.append(.removed(key))
                            } else if let record = Self.record(
                                key: path, value: String(decoding: event.kv.value, as: UTF8.self), prefix: prefix,
                                expires: event.kv.lease != 0)
                            {
                                events.append(.added(record))
                            }
                            start = event.kv.modRevision + 1
                        }
                        if !events.isEmpty { await deliver(events) }
                    }
                }
            } catch let error as EtcdError {
                guard case .compacted = error.code else { throw error }
                // The history between our revision and now is gone: start over from a listing.
                let (records, now) = try await leases()
                await deliver([.snapshot(records)])
                start = now + 1
            }
        }
    }
}
