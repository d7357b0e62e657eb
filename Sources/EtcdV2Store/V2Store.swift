/// etcd's v2 keys store as a pure value: a tree of directories and files with etcd 3.4's
/// v2 semantics (set, create, in-order create, update, compare-and-swap, delete,
/// compare-and-delete, TTLs, hidden `_` names, the 1000-event history that `wait=true`
/// reads). Every operation takes the time it happens at (the leader stamps it into the
/// log entry), so applying the same entries gives the same store on every member.
///
/// Indexes are the store's own, as in etcd: every change (an expiry too) takes the next
/// one, independent of Raft's.
public struct V2Store: Sendable, Equatable {
    /// Milliseconds since the Unix epoch.
    public typealias Time = Int64

    public internal(set) var currentIndex: UInt64 = 0
    /// v2 authentication's users, roles and switch (etcd keeps them under `/2`).
    public internal(set) var auth = V2AuthState()
    var root = V2Node(name: "", isDirectory: true, value: "", createdIndex: 0, modifiedIndex: 0, expiration: nil)
    /// The newest events, oldest first (at most `historyCapacity`).
    public private(set) var history: [V2Event] = []
    public static let historyCapacity = 1000

    public init() {}

    // MARK: Reads

    /// `GET`: a file, or a directory with its children (all levels when `recursive`).
    public func get(_ key: String, recursive: Bool = false, sorted: Bool = false, now: Time) throws(V2Error) -> V2Event {
        let path = try Self.path(key)
        let node = try lookup(path)
        return V2Event(
            action: .get, node: node.view(key: Self.text(path), now: now, depth: recursive ? Int.max : 1, sorted: sorted),
            prevNode: nil, index: currentIndex)
    }

    // MARK: Writes

    /// `PUT` without conditions: creates or replaces a file (or creates a directory).
    /// With `refresh`, the key must exist and keeps its value; only the TTL is new, and
    /// watchers are not told (etcd 3.4 still answers `set` with a new node).
    public mutating func set(
        _ key: String, value: String, directory: Bool = false, ttl: Int64? = nil, refresh: Bool = false, now: Time
    ) throws(V2Error) -> V2Event {
        var kept = value
        if refresh {
            let path = try Self.path(key)
            let old = try lookup(path)
            kept = old.value
        }
        return try write(key, value: kept, directory: directory, ttl: ttl, now: now, replace: true, action: .set, notify: !refresh)
    }

    /// `PUT ?prevExist=false`, or `POST` (`inOrder`: a new child named by the next index).
    public mutating func create(
        _ key: String, value: String, directory: Bool = false, ttl: Int64? = nil, inOrder: Bool = false, now: Time
    ) throws(V2Error) -> V2Event {
        var target = key
        if inOrder {
            let path = try Self.path(key)
            if let existing = root.node(at: path), !existing.isDirectory {
                throw V2Error(.notDirectory, cause: Self.text(path), index: currentIndex)
            }
            let name = String(currentIndex + 1)
            target = Self.text(path + [String(repeating: "0", count: max(0, 20 - name.count)) + name])
        }
        return try write(target, value: value, directory: directory, ttl: ttl, now: now, replace: false, action: .create, notify: true)
    }

    /// `PUT ?prevExist=true` (and `refresh=true`: a new TTL, value kept, watchers not told).
    public mutating func update(_ key: String, value: String?, ttl: Int64?, refresh: Bool = false, now: Time) throws(V2Error)
        -> V2Event
    {
        let path = try Self.path(key)
        if path.isEmpty { throw V2Error(.rootReadOnly, cause: "/", index: currentIndex) }
        let old = try lookup(path)
        if old.isDirectory, let value, !value.isEmpty { throw V2Error(.notFile, cause: Self.text(path), index: currentIndex) }
        return commit(path, old: old, value: refresh ? old.value : (value ?? old.value), ttl: ttl, now: now, action: .update, notify: !refresh)
    }

    /// `PUT ?prevValue=…&prevIndex=…`: replaces a file's value if it matches.
    public mutating func compareAndSwap(
        _ key: String, previousValue: String?, previousIndex: UInt64?, value: String?, ttl: Int64?, refresh: Bool = false, now: Time
    ) throws(V2Error) -> V2Event {
        let path = try Self.path(key)
        if path.isEmpty { throw V2Error(.rootReadOnly, cause: "/", index: currentIndex) }
        let old = try lookup(path)
        if old.isDirectory { throw V2Error(.notFile, cause: Self.text(path), index: currentIndex) }
        try Self.compare(old, previousValue: previousValue, previousIndex: previousIndex, index: currentIndex)
        return commit(
            path, old: old, value: refresh ? old.value : (value ?? ""), ttl: ttl, now: now, action: .compareAndSwap, notify: !refresh)
    }

    /// `DELETE`: a file; a directory with `directory` (empty) or `recursive` (any).
    public mutating func delete(_ key: String, directory: Bool = false, recursive: Bool = false, now: Time) throws(V2Error) -> V2Event {
        let path = try Self.path(key)
        if path.isEmpty { throw V2Error(.rootReadOnly, cause: "/", index: currentIndex) }
        let old = try lookup(path)
        if old.isDirectory {
            if !directory && !recursive { throw V2Error(.notFile, cause: Self.text(path), index: currentIndex) }
            if !recursive && !old.children.isEmpty { throw V2Error(.directoryNotEmpty, cause: Self.text(path), index: currentIndex) }
        }
        return remove(path, old: old, action: .delete, now: now)
    }

    /// `DELETE ?prevValue=…&prevIndex=…`: a file, if it matches.
    public mutating func compareAndDelete(_ key: String, previousValue: String?, previousIndex: UInt64?, now: Time) throws(V2Error)
        -> V2Event
    {
        let path = try Self.path(key)
        if path.isEmpty { throw V2Error(.rootReadOnly, cause: "/", index: currentIndex) }
        let old = try lookup(path)
        if old.isDirectory { throw V2Error(.notFile, cause: Self.text(path), index: currentIndex) }
        try Self.compare(old, previousValue: previousValue, previousIndex: previousIndex, index: currentIndex)
        return remove(path, old: old, action: .compareAndDelete, now: now)
    }

    /// Counts a write etcd makes to this store outside the keys: it keeps the cluster's
    /// members (added, removed, updated, published) under `/0` of the same store, so its
    /// indexes count them, and clients rely on that numbering (`etcdctl watch
    /// --after-index=1` on a new cluster waits for the first key written).
    public mutating func countInternalWrite() { currentIndex += 1 }

    /// Removes every node whose time ran out by `now`, one `expire` event each (the
    /// leader proposes this, so every member expires the same nodes at the same index).
    public mutating func expire(now: Time) -> [V2Event] {
        var due: [[String]] = []
        root.collectExpired(at: now, path: [], into: &due)
        var events: [V2Event] = []
        for path in due.sorted(by: { $0.count < $1.count || ($0.count == $1.count && $0.lexicographicallyPrecedes($1)) }) {
            // A parent that expired took its children with it.
            guard let old = root.node(at: path), let expiration = old.expiration, expiration <= now else { continue }
            events.append(remove(path, old: old, action: .expire, now: now))
        }
        return events
    }

    /// The earliest expiration in the store (when the leader should next propose `expire`).
    public var nextExpiration: Time? { root.earliestExpiration }

    // MARK: Watching

    /// The first event at or after `index` on `key` (or under it when `recursive`); nil
    /// when there is none yet (the watcher waits); error 401 when `index` is older than the
    /// history kept.
    public func event(since index: UInt64, key: String, recursive: Bool) throws(V2Error) -> V2Event? {
        let path = try Self.path(key)
        let text = Self.text(path)
        if let first = history.first, index < first.index, history.count >= Self.historyCapacity {
            throw V2Error(
                .eventIndexCleared, cause: "the requested history has been cleared [\(first.index)/\(index)]", index: currentIndex)
        }
        return history.first { $0.index >= index && Self.matches($0, key: text, recursive: recursive) }
    }

    /// Whether a watcher of `key` sees `event`: its own key, a key under it when
    /// `recursive`, or the deletion of a directory that held it.
    public static func matches(_ event: V2Event, key: String, recursive: Bool) -> Bool {
        let eventKey = event.node.key ?? "/"
        if eventKey == key { return true }
        if recursive {
            let prefix = key.hasSuffix("/") ? key : key + "/"
            if eventKey.hasPrefix(prefix) { return true }
        }
        if event.action == .delete || event.action == .expire || event.action == .compareAndDelete,
            let previous = event.prevNode, previous.isDirectory
        {
            let prefix = eventKey.hasSuffix("/") ? eventKey : eventKey + "/"
            if key.hasPrefix(prefix) { return true }
        }
        return false
    }

    // MARK: Internals

    /// The node at `path`, or etcd's error: the first name on the way that is missing
    /// (100), or a file on the way (104).
    func lookup(_ path: [String]) throws(V2Error) -> V2Node {
        var cursor = root
        for (depth, name) in path.enumerated() {
            guard cursor.isDirectory else { throw V2Error(.notDirectory, cause: Self.text(Array(path.prefix(depth))), index: currentIndex) }
            guard let child = cursor.children[name] else {
                throw V2Error(.keyNotFound, cause: Self.text(Array(path.prefix(depth + 1))), index: currentIndex)
            }
            cursor = child
        }
        return cursor
    }

    private mutating func write(
        _ key: String, value: String, directory: Bool, ttl: Int64?, now: Time, replace: Bool, action: V2Event.Action, notify: Bool
    ) throws(V2Error) -> V2Event {
        let path = try Self.path(key)
        if path.isEmpty { throw V2Error(.rootReadOnly, cause: "/", index: currentIndex) }
        // Every ancestor must be a directory (or not exist yet).
        var cursor = root
        for (depth, name) in path.dropLast().enumerated() {
            guard let child = cursor.children[name] else { break }
            if !child.isDirectory {
                throw V2Error(.notDirectory, cause: Self.text(Array(path.prefix(depth + 1))), index: currentIndex)
            }
            cursor = child
        }
        let old = root.node(at: path)
        if let old {
            if !replace { throw V2Error(.nodeExists, cause: Self.text(path), index: currentIndex) }
            if old.isDirectory { throw V2Error(.notFile, cause: Self.text(path), index: currentIndex) }
        }
        currentIndex += 1
        let expiration = ttl.map { now + $0 * 1000 }
        let node = V2Node(
            name: path.last ?? "", isDirectory: directory, value: directory ? "" : value, createdIndex: currentIndex,
            modifiedIndex: currentIndex, expiration: expiration)
        root.insert(node, at: path, index: currentIndex)
        let event = V2Event(
            action: action, node: node.view(key: Self.text(path), now: now, depth: 0, sorted: false),
            prevNode: old?.view(key: Self.text(path), now: now, depth: 0, sorted: false), index: currentIndex)
        if notify { record(event) }
        return event
    }

    private mutating func commit(
        _ path: [String], old: V2Node, value: String, ttl: Int64?, now: Time, action: V2Event.Action, notify: Bool
    ) -> V2Event {
        currentIndex += 1
        var node = old
        if !old.isDirectory { node.value = value }
        node.modifiedIndex = currentIndex
        node.expiration = ttl.map { now + $0 * 1000 }
        root.replace(node, at: path)
        let event = V2Event(
            action: action, node: node.view(key: Self.text(path), now: now, depth: 0, sorted: false),
            prevNode: old.view(key: Self.text(path), now: now, depth: 0, sorted: false), index: currentIndex)
        if notify { record(event) }
        return event
    }

    private mutating func remove(_ path: [String], old: V2Node, action: V2Event.Action, now: Time) -> V2Event {
        currentIndex += 1
        root.remove(at: path)
        var node = V2NodeView(key: Self.text(path), isDirectory: old.isDirectory, value: nil)
        node.modifiedIndex = currentIndex
        node.createdIndex = old.createdIndex
        let event = V2Event(
            action: action, node: node, prevNode: old.view(key: Self.text(path), now: now, depth: 0, sorted: false), index: currentIndex)
        record(event)
        return event
    }

    private mutating func record(_ event: V2Event) {
        history.append(event)
        if history.count > Self.historyCapacity { history.removeFirst(history.count - Self.historyCapacity) }
    }

    private static func compare(_ node: V2Node, previousValue: String?, previousIndex: UInt64?, index: UInt64) throws(V2Error) {
        let valueMatches = (previousValue ?? "").isEmpty || node.value == previousValue
        let indexMatches = (previousIndex ?? 0) == 0 || node.modifiedIndex == previousIndex
        guard !valueMatches || !indexMatches else { return }
        let cause: String
        if !valueMatches && !indexMatches {
            cause = "[\(previousValue ?? "") != \(node.value)] [\(previousIndex ?? 0) != \(node.modifiedIndex)]"
        } else if !valueMatches {
            cause = "[\(previousValue ?? "") != \(node.value)]"
        } else {
            cause = "[\(previousIndex ?? 0) != \(node.modifiedIndex)]"
        }
        throw V2Error(.compareFailed, cause: cause, index: index)
    }

    /// `/a//b/../c/` as etcd cleans it: the names on the way (`[a, c]`).
    static func path(_ key: String) throws(V2Error) -> [String] {
        var names: [String] = []
        for part in key.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..": if !names.isEmpty { names.removeLast() }
            default: names.append(String(part))
            }
        }
        return names
    }

    static func text(_ path: [String]) -> String { "/" + path.joined(separator: "/") }
}

/// A node of the tree.
struct V2Node: Sendable, Equatable {
    var name: String
    var isDirectory: Bool
    var value: String
    var createdIndex: UInt64
    var modifiedIndex: UInt64
    var expiration: V2Store.Time?
    var children: [String: V2Node] = [:]

    init(name: String, isDirectory: Bool, value: String, createdIndex: UInt64, modifiedIndex: UInt64, expiration: V2Store.Time?) {
        self.name = name
        self.isDirectory = isDirectory
        self.value = value
        self.createdIndex = createdIndex
        self.modifiedIndex = modifiedIndex
        self.expiration = expiration
    }

    func node(at path: [String]) -> V2Node? {
        var cursor = self
        for name in path {
            guard let child = cursor.children[name] else { return nil }
            cursor = child
        }
        return cursor
    }

    /// Puts `node` at `path`, creating missing directories (with `index`) on the way.
    mutating func insert(_ node: V2Node, at path: [String], index: UInt64) {
        guard let first = path.first else { return }
        if path.count == 1 {
            children[first] = node
            return
        }
        var child = children[first] ?? V2Node(name: first, isDirectory: true, value: "", createdIndex: index, modifiedIndex: index, expiration: nil)
        child.insert(node, at: Array(path.dropFirst()), index: index)
        children[first] = child
    }

    mutating func replace(_ node: V2Node, at path: [String]) {
        guard let first = path.first else { return }
        if path.count == 1 {
            children[first] = node
            return
        }
        children[first]?.replace(node, at: Array(path.dropFirst()))
    }

    mutating func remove(at path: [String]) {
        guard let first = path.first else { return }
        if path.count == 1 {
            children[first] = nil
            return
        }
        children[first]?.remove(at: Array(path.dropFirst()))
    }

    func collectExpired(at now: V2Store.Time, path: [String], into due: inout [[String]]) {
        for (name, child) in children {
            let childPath = path + [name]
            if let expiration = child.expiration, expiration <= now {
                due.append(childPath)
            } else if child.isDirectory {
                child.collectExpired(at: now, path: childPath, into: &due)
            }
        }
    }

    var earliestExpiration: V2Store.Time? {
        var earliest = expiration
        for child in children.values {
            if let candidate = child.earliestExpiration, earliest.map({ candidate < $0 }) ?? true { earliest = candidate }
        }
        return earliest
    }

    /// What a response shows: children down to `depth` levels (hidden names left out).
    func view(key: String, now: V2Store.Time, depth: Int, sorted: Bool) -> V2NodeView {
        var view = V2NodeView(key: key, isDirectory: isDirectory, value: isDirectory ? nil : value)
        view.createdIndex = createdIndex
        view.modifiedIndex = modifiedIndex
        if let expiration {
            view.expiration = expiration
            let remaining = expiration - now
            view.ttl = max(0, remaining / 1000 + (remaining % 1000 > 0 ? 1 : 0))
        }
        if isDirectory && depth > 0 {
            // etcd lists in Go's random map order unless `sorted`; ours is by name either
            // way, so every member answers alike.
            let names = children.keys.filter { !$0.hasPrefix("_") }.sorted()
            let prefix = key == "/" ? "/" : key + "/"
            view.nodes = names.compactMap { name in
                children[name]?.view(key: prefix + name, now: now, depth: depth - 1, sorted: sorted)
            }
        }
        return view
    }
}

/// A node as a response shows it (etcd's `NodeExtern`).
public struct V2NodeView: Sendable, Equatable {
    /// nil for the root.
    public var key: String?
    public var isDirectory: Bool
    public var value: String?
    /// Milliseconds since the Unix epoch; with `ttl`, seconds left (rounded up).
    public var expiration: V2Store.Time?
    public var ttl: Int64?
    /// nil when not listed (a directory not expanded; always an array when listed).
    public var nodes: [V2NodeView]?
    public var modifiedIndex: UInt64 = 0
    public var createdIndex: UInt64 = 0

    init(key: String, isDirectory: Bool, value: String?) {
        self.key = key == "/" ? nil : key
        self.isDirectory = isDirectory
        self.value = value
    }
}

/// One change (or a read's answer).
public struct V2Event: Sendable, Equatable {
    public enum Action: String, Sendable {
        case get, set, create, update, delete, expire, compareAndSwap, compareAndDelete
    }

    public var action: Action
    public var node: V2NodeView
    public var prevNode: V2NodeView?
    /// The store's index after it (the `X-Etcd-Index` of a write).
    public var index: UInt64
}

/// etcd's v2 errors: code, message, cause and the store index at the time.
public struct V2Error: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Int, Sendable {
        case keyNotFound = 100
        case compareFailed = 101
        case notFile = 102
        case notDirectory = 104
        case nodeExists = 105
        case reservedPrefix = 106
        case rootReadOnly = 107
        case directoryNotEmpty = 108
        case unauthorized = 110
        case prevValueRequired = 201
        case ttlNaN = 202
        case indexNaN = 203
        case invalidField = 209
        case invalidForm = 210
        case refreshValue = 211
        case refreshTTLRequired = 212
        case raftInternal = 300
        case leaderElection = 301
        case watcherCleared = 400
        case eventIndexCleared = 401

        public var message: String {
            switch self {
            case .keyNotFound: "Key not found"
            case .compareFailed: "Compare failed"
            case .notFile: "Not a file"
            case .notDirectory: "Not a directory"
            case .nodeExists: "Key already exists"
            case .reservedPrefix: "The prefix of given key is a keyword in etcd"
            case .rootReadOnly: "Root is read only"
            case .directoryNotEmpty: "Directory not empty"
            case .unauthorized: "The request requires user authentication"
            case .prevValueRequired: "PrevValue is Required in POST form"
            case .ttlNaN: "The given TTL in POST form is not a number"
            case .indexNaN: "The given index in POST form is not a number"
            case .invalidField: "Invalid field"
            case .invalidForm: "Invalid POST form"
            case .refreshValue: "Value provided on refresh"
            case .refreshTTLRequired: "A TTL must be provided on refresh"
            case .raftInternal: "Raft Internal Error"
            case .leaderElection: "During Leader Election"
            case .watcherCleared: "watcher is cleared due to etcd recovery"
            case .eventIndexCleared: "The event in requested index is outdated and cleared"
            }
        }

        /// The HTTP status etcd answers with (everything not listed is 400, as in etcd).
        public var httpStatus: Int {
            switch self {
            case .keyNotFound: 404
            case .notFile, .directoryNotEmpty: 403
            case .compareFailed, .nodeExists: 412
            case .unauthorized: 401
            case .raftInternal, .leaderElection: 500
            default: 400
            }
        }
    }

    public var code: Code
    public var cause: String
    public var index: UInt64

    public init(_ code: Code, cause: String, index: UInt64) {
        self.code = code
        self.cause = cause
        self.index = index
    }

    public var description: String { "\(code.rawValue): \(code.message) (\(cause)) [\(index)]" }
}
