#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A node of the v2 keys tree: a key with a value, or a directory with children.
public struct EtcdV2Node: Sendable, Hashable, Codable {
    public var key: String
    public var dir: Bool
    public var value: String
    /// Children of a directory; nil for a key, or a directory listed without its children.
    public var nodes: [EtcdV2Node]?
    public var createdIndex: UInt64
    public var modifiedIndex: UInt64
    /// RFC 3339 expiry time as the server wrote it, for keys with a TTL.
    public var expiration: String?
    /// Seconds left, for keys with a TTL.
    public var ttl: Int64

    public init(
        key: String, dir: Bool = false, value: String = "", nodes: [EtcdV2Node]? = nil, createdIndex: UInt64 = 0,
        modifiedIndex: UInt64 = 0, expiration: String? = nil, ttl: Int64 = 0
    ) {
        self.key = key
        self.dir = dir
        self.value = value
        self.nodes = nodes
        self.createdIndex = createdIndex
        self.modifiedIndex = modifiedIndex
        self.expiration = expiration
        self.ttl = ttl
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        key = try container.decodeIfPresent(String.self, forKey: .key) ?? ""
        dir = try container.decodeIfPresent(Bool.self, forKey: .dir) ?? false
        value = try container.decodeIfPresent(String.self, forKey: .value) ?? ""
        nodes = try container.decodeIfPresent([EtcdV2Node].self, forKey: .nodes)
        createdIndex = try container.decodeIfPresent(UInt64.self, forKey: .createdIndex) ?? 0
        modifiedIndex = try container.decodeIfPresent(UInt64.self, forKey: .modifiedIndex) ?? 0
        expiration = try container.decodeIfPresent(String.self, forKey: .expiration)
        ttl = try container.decodeIfPresent(Int64.self, forKey: .ttl) ?? 0
    }

    /// Every node below this one, depth first, in the order the server listed them.
    public var descendants: [EtcdV2Node] {
        (nodes ?? []).flatMap { [$0] + $0.descendants }
    }
}

/// The answer to a keys request: what happened (`get`, `set`, `create`, `update`,
/// `compareAndSwap`, `delete`, `compareAndDelete`, `expire`), the node after it and before.
public struct EtcdV2Response: Sendable, Hashable {
    public var action: String
    public var node: EtcdV2Node
    public var previousNode: EtcdV2Node?
    /// The store's index when the response was made (the `X-Etcd-Index` header).
    public var index: UInt64

    public init(action: String, node: EtcdV2Node, previousNode: EtcdV2Node? = nil, index: UInt64 = 0) {
        self.action = action
        self.node = node
        self.previousNode = previousNode
        self.index = index
    }
}

/// A cluster member as `/v2/members` lists it; a member added but not started yet has no
/// name and no client URLs.
public struct EtcdV2Member: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    public var peerURLs: [String]
    public var clientURLs: [String]

    public init(id: String, name: String = "", peerURLs: [String] = [], clientURLs: [String] = []) {
        self.id = id
        self.name = name
        self.peerURLs = peerURLs
        self.clientURLs = clientURLs
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decodeIfPresent(String.self, forKey: .id) ?? ""
        name = try container.decodeIfPresent(String.self, forKey: .name) ?? ""
        peerURLs = try container.decodeIfPresent([String].self, forKey: .peerURLs) ?? []
        clientURLs = try container.decodeIfPresent([String].self, forKey: .clientURLs) ?? []
    }
}

/// Errors of the v2 API, with the texts Go's client/v2 gives them (etcdctl prints these).
public enum EtcdV2Error: Error, Sendable, Hashable, CustomStringConvertible {
    /// The store refused: `100: Key not found (/a) [5]`.
    case store(code: Int, message: String, cause: String, index: UInt64)
    /// No endpoint answered; one text per endpoint tried.
    case cluster([String])
    /// A members request failed with the server's message.
    case members(String)
    /// The server said something this client does not understand.
    case unexpected(String)
    /// An argument was rejected before anything was sent.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .store(let code, let message, let cause, let index): return "\(code): \(message) (\(cause)) [\(index)]"
        case .cluster(let errors):
            var text = "client: etcd cluster is unavailable or misconfigured"
            for (number, error) in errors.enumerated() { text += "; error #\(number): \(error)\n" }
            return text
        case .members(let text), .unexpected(let text), .invalidArgument(let text): return text
        }
    }

    /// Each endpoint's failure on its own line (`error #0: dial tcp …`), for `.cluster`.
    public var detail: String? {
        guard case .cluster(let errors) = self else { return nil }
        return errors.enumerated().map { "error #\($0.offset): \($0.element)\n" }.joined()
    }

    /// Whether every endpoint failed to connect (etcdctl exits 2 then, not 4).
    public var isConnectionFailure: Bool {
        guard case .cluster(let errors) = self else { return false }
        return !errors.isEmpty && errors.allSatisfy { $0.hasPrefix("dial tcp") }
    }

    /// Key-not-found (100), the error discovery and old layouts branch on.
    public var isKeyNotFound: Bool {
        if case .store(100, _, _, _) = self { return true }
        return false
    }

    /// Compare failed (101) or node exists (105): a lost race for create or CAS.
    public var isConflict: Bool {
        if case .store(let code, _, _, _) = self { return code == 101 || code == 105 }
        return false
    }
}

/// How a write checks the current state of the key (`prevExist`, `prevValue`, `prevIndex`).
public struct EtcdV2SetOptions: Sendable, Hashable {
    public enum Existence: Sendable, Hashable {
        case ignore, mustExist, mustNotExist
    }

    public var ttl: Int64?
    public var previousValue: String?
    public var previousIndex: UInt64?
    public var existence: Existence
    public var directory: Bool
    /// Keep the TTL when updating (`refresh=true`): only with `existence == .mustExist`.
    public var refresh: Bool

    public init(
        ttl: Int64? = nil, previousValue: String? = nil, previousIndex: UInt64? = nil, existence: Existence = .ignore,
        directory: Bool = false, refresh: Bool = false
    ) {
        self.ttl = ttl
        self.previousValue = previousValue
        self.previousIndex = previousIndex
        self.existence = existence
        self.directory = directory
        self.refresh = refresh
    }
}

public struct EtcdV2DeleteOptions: Sendable, Hashable {
    public var previousValue: String?
    public var previousIndex: UInt64?
    public var directory: Bool
    public var recursive: Bool

    public init(previousValue: String? = nil, previousIndex: UInt64? = nil, directory: Bool = false, recursive: Bool = false) {
        self.previousValue = previousValue
        self.previousIndex = previousIndex
        self.directory = directory
        self.recursive = recursive
    }
}
