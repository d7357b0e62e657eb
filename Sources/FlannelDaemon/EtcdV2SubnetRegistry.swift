public import EtcdClient
public import Flannel

/// flannel ≤ 0.17's layout in etcd's v2 keys API (what every CoreOS release shipped):
/// the same keys and values; leases are keys with a TTL, created with `prevExist=false`;
/// changes come from a recursive long-poll watch with `waitIndex`.
public struct EtcdV2SubnetRegistry: SubnetRegistry {
    public let client: EtcdV2Client
    public let prefix: String

    public init(client: EtcdV2Client, prefix: String) {
        self.client = client
        self.prefix = prefix
    }

    public func networkConfig() async throws -> String? {
        do {
            return try await client.get(Self.configKey(prefix), quorum: true).node.value
        } catch {
            if case .store(100, _, _, _) = error { return nil }
            throw error
        }
    }

    public func setNetworkConfig(_ text: String) async throws {
        _ = try await client.set(Self.configKey(prefix), value: text)
    }

    public func leases() async throws -> (records: [SubnetLeaseRecord], revision: Int64) {
        let directory = String(Self.subnetsKey(prefix).dropLast())
        do {
            let response = try await client.get(directory, recursive: true, quorum: true)
            let records = (response.node.nodes ?? []).compactMap { node in
                node.dir ? nil : Self.record(key: node.key, value: node.value, prefix: prefix, expires: node.ttl > 0)
            }
            return (records, Int64(response.index))
        } catch {
            if case .store(100, _, _, let index) = error { return ([], Int64(index)) }
            throw error
        }
    }

    public func createLease(_ key: SubnetKey, _ attributes: SubnetLeaseAttributes, ttl: Int64) async throws -> Bool {
        do {
            _ = try await client.create(Self.subnetsKey(prefix) + key.description, value: attributes.jsonText, ttl: ttl)
            return true
        } catch {
            if case .store(105, _, _, _) = error { return false }
            throw error
        }
    }

    public func renewLease(_ key: SubnetKey, _ attributes: SubnetLeaseAttributes, ttl: Int64) async throws {
        _ = try await client.set(
            Self.subnetsKey(prefix) + key.description, value: attributes.jsonText,
            options: EtcdV2SetOptions(ttl: ttl > 0 ? ttl : nil))
    }

    public func deleteLease(_ key: SubnetKey) async throws {
        _ = try await client.delete(Self.subnetsKey(prefix) + key.description)
    }

    public func watchLeases(after revision: Int64, _ deliver: @escaping @Sendable ([SubnetEvent]) async -> Void) async throws {
        let directory = String(Self.subnetsKey(prefix).dropLast())
        var next = UInt64(max(revision, 0)) + 1
        while !Task.isCancelled {
            do {
                let response = try await client.waitForChange(directory, waitIndex: next, recursive: true)
                next = response.node.modifiedIndex + 1
                let name = String(response.node.key.split(separator: "/").last ?? "")
                guard let key = SubnetKey(parsing: name) else { continue }
                switch response.action {
                case "delete", "expire", "compareAndDelete":
                    await deliver([.removed(key)])
                default:
                    if let record = Self.record(
                        key: response.node.key, value: response.node.value, prefix: prefix, expires: response.node.ttl > 0)
                    {
                        await deliver([.added(record)])
                    }
                }
            } catch {
                // 401, "the event in requested index is outdated and cleared": list again.
                guard case .store(401, _, _, _) = error else { throw error }
                let (records, now) = try await leases()
                await deliver([.snapshot(records)])
                next = UInt64(now) + 1
            }
        }
    }
}
