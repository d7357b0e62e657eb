public import Flannel

/// What went wrong in flanneld, with the context a user needs (key, device, file).
public struct FlannelError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

/// A subnet lease as read from the store.
public struct SubnetLeaseRecord: Sendable, Hashable {
    public var key: SubnetKey
    public var attributes: SubnetLeaseAttributes
    /// False for a reservation: a key written without a TTL (v2) or lease (v3) that flannel
    /// never expires and never takes.
    public var expires: Bool

    public init(key: SubnetKey, attributes: SubnetLeaseAttributes, expires: Bool) {
        self.key = key
        self.attributes = attributes
        self.expires = expires
    }
}

/// A change to the set of leases.
public enum SubnetEvent: Sendable, Hashable {
    case added(SubnetLeaseRecord)
    case removed(SubnetKey)
    /// The whole set, after the watch fell behind the store's history (compaction).
    case snapshot([SubnetLeaseRecord])
}

/// Where flannel keeps its configuration and leases: `<prefix>/config` and
/// `<prefix>/subnets/<a.b.c.d>-<len>`, in etcd's v3 keyspace or its v2 keys API.
public protocol SubnetRegistry: Sendable {
    /// The configuration's JSON text; nil when the key does not exist.
    func networkConfig() async throws -> String?
    func setNetworkConfig(_ text: String) async throws
    /// Every lease, and the revision (v3) or index (v2) to watch from.
    func leases() async throws -> (records: [SubnetLeaseRecord], revision: Int64)
    /// Creates the lease if the key is free; false when another host holds it.
    func createLease(_ key: SubnetKey, _ attributes: SubnetLeaseAttributes, ttl: Int64) async throws -> Bool
    /// Rewrites the lease unconditionally with a new TTL (`ttl` 0: a reservation, kept as one).
    func renewLease(_ key: SubnetKey, _ attributes: SubnetLeaseAttributes, ttl: Int64) async throws
    func deleteLease(_ key: SubnetKey) async throws
    /// Delivers changes after `revision` until cancelled; falls back to a snapshot when
    /// the history it needs is gone.
    func watchLeases(after revision: Int64, _ deliver: @escaping @Sendable ([SubnetEvent]) async -> Void) async throws
}

extension SubnetRegistry {
    static func configKey(_ prefix: String) -> String { trimmed(prefix) + "/config" }
    static func subnetsKey(_ prefix: String) -> String { trimmed(prefix) + "/subnets/" }

    static func trimmed(_ prefix: String) -> String {
        var prefix = prefix
        while prefix.hasSuffix("/") { prefix.removeLast() }
        return prefix
    }

    /// The record a stored key and value stand for; nil for keys that are not leases.
    static func record(key: String, value: String, prefix: String, expires: Bool) -> SubnetLeaseRecord? {
        let name = key.split(separator: "/").last.map(String.init) ?? ""
        guard key.hasPrefix(subnetsKey(prefix)), let subnet = SubnetKey(parsing: name),
            let attributes = try? SubnetLeaseAttributes(json: value)
        else { return nil }
        return SubnetLeaseRecord(key: subnet, attributes: attributes, expires: expires)
    }
}
