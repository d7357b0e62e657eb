/// A key's state at one revision, as etcd's `mvccpb.KeyValue`.
public struct KeyValue: Sendable, Hashable {
    public var key: [UInt8]
    /// Revision of the write that created this generation of the key.
    public var createRevision: Int64
    /// Revision of the last write to the key.
    public var modRevision: Int64
    /// Writes since creation: 1 for a new key, reset by a delete.
    public var version: Int64
    public var value: [UInt8]
    public var lease: Int64

    public init(key: [UInt8], createRevision: Int64, modRevision: Int64, version: Int64, value: [UInt8], lease: Int64 = 0) {
        self.key = key
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.value = value
        self.lease = lease
    }
}

/// A change, as watchers see it.
public struct Event: Sendable, Hashable {
    public enum Kind: Sendable, Hashable { case put, delete }
    public var kind: Kind
    /// For a delete: the key with `modRevision` of the delete and empty value.
    public var keyValue: KeyValue
    public var previous: KeyValue?

    public init(kind: Kind, keyValue: KeyValue, previous: KeyValue?) {
        self.kind = kind
        self.keyValue = keyValue
        self.previous = previous
    }
}

/// etcd's sort orders and targets for Range.
public enum SortOrder: Sendable, Hashable { case none, ascend, descend }
public enum SortTarget: Sendable, Hashable { case key, version, create, mod, value }

/// Every field of etcd's RangeRequest that the store interprets.
public struct RangeRequest: Sendable, Hashable {
    public var key: [UInt8]
    /// Empty: just `key`; `[0]`: every key ≥ `key`; else `[key, rangeEnd)`.
    public var rangeEnd: [UInt8] = []
    public var limit: Int64 = 0
    /// 0: the current revision.
    public var revision: Int64 = 0
    public var sortOrder: SortOrder = .none
    public var sortTarget: SortTarget = .key
    public var keysOnly = false
    public var countOnly = false
    public var minModRevision: Int64 = 0
    public var maxModRevision: Int64 = 0
    public var minCreateRevision: Int64 = 0
    public var maxCreateRevision: Int64 = 0

    public init(key: [UInt8], rangeEnd: [UInt8] = []) {
        self.key = key
        self.rangeEnd = rangeEnd
    }
}

public struct RangeResult: Sendable, Hashable {
    public var keyValues: [KeyValue]
    public var more: Bool
    /// Keys in the range at that revision (before limit and filters), as etcd counts.
    public var count: Int64
    public var revision: Int64

    public init(keyValues: [KeyValue], more: Bool, count: Int64, revision: Int64) {
        self.keyValues = keyValues
        self.more = more
        self.count = count
        self.revision = revision
    }
}

public struct PutRequest: Sendable, Hashable {
    public var key: [UInt8]
    public var value: [UInt8]
    public var lease: Int64 = 0
    public var previousKeyValue = false
    public var ignoreValue = false
    public var ignoreLease = false

    public init(key: [UInt8], value: [UInt8], lease: Int64 = 0) {
        self.key = key
        self.value = value
        self.lease = lease
    }
}

public struct DeleteRangeRequest: Sendable, Hashable {
    public var key: [UInt8]
    public var rangeEnd: [UInt8] = []
    public var previousKeyValues = false

    public init(key: [UInt8], rangeEnd: [UInt8] = []) {
        self.key = key
        self.rangeEnd = rangeEnd
    }
}

public struct Compare: Sendable, Hashable {
    public enum Result: Sendable, Hashable { case equal, greater, less, notEqual }
    public enum Target: Sendable, Hashable {
        case version(Int64)
        case create(Int64)
        case mod(Int64)
        case value([UInt8])
        case lease(Int64)
    }

    public var key: [UInt8]
    public var rangeEnd: [UInt8] = []
    public var result: Result
    public var target: Target

    public init(key: [UInt8], rangeEnd: [UInt8] = [], _ result: Result, _ target: Target) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.result = result
        self.target = target
    }
}

public indirect enum Operation: Sendable, Hashable {
    case range(RangeRequest)
    case put(PutRequest)
    case deleteRange(DeleteRangeRequest)
    case txn(TxnRequest)
}

public struct TxnRequest: Sendable, Hashable {
    public var compare: [Compare]
    public var success: [Operation]
    public var failure: [Operation]

    public init(compare: [Compare] = [], success: [Operation] = [], failure: [Operation] = []) {
        self.compare = compare
        self.success = success
        self.failure = failure
    }
}

public indirect enum OperationResult: Sendable, Hashable {
    case range(RangeResult)
    case put(previous: KeyValue?)
    case deleteRange(DeleteResult)
    case txn(TxnResult)
}

public struct DeleteResult: Sendable, Hashable {
    public var deleted: Int64
    /// The deleted keys' last values, when asked for.
    public var previous: [KeyValue]

    public init(deleted: Int64, previous: [KeyValue]) {
        self.deleted = deleted
        self.previous = previous
    }
}

public struct TxnResult: Sendable, Hashable {
    public var succeeded: Bool
    public var responses: [OperationResult]

    public init(succeeded: Bool, responses: [OperationResult]) {
        self.succeeded = succeeded
        self.responses = responses
    }
}

/// What a write produced: its revision (unchanged when nothing changed) and the events.
public struct WriteOutcome<Value: Sendable & Hashable>: Sendable, Hashable {
    public var value: Value
    public var revision: Int64
    public var events: [Event]
}

/// Errors with etcd 3.4's texts (as clients print them after `Error: `).
public enum MVCCError: Error, Sendable, Hashable, CustomStringConvertible {
    case compacted
    case futureRevision
    case keyNotFound
    case leaseNotFound
    case tooManyOperations
    case duplicateKey
    case emptyKey

    public var description: String {
        switch self {
        case .compacted: return "etcdserver: mvcc: required revision has been compacted"
        case .futureRevision: return "etcdserver: mvcc: required revision is a future revision"
        case .keyNotFound: return "etcdserver: key not found"
        case .leaseNotFound: return "etcdserver: requested lease not found"
        case .tooManyOperations: return "etcdserver: too many operations in txn request"
        case .duplicateKey: return "etcdserver: duplicate key given in txn request"
        case .emptyKey: return "etcdserver: key is not provided"
        }
    }
}
