/// One v2 write as it travels through the Raft log: the operation, its arguments and the
/// time the leader stamped on it, so that every member applies it identically.
public struct V2Request: Sendable, Equatable {
    public enum Operation: UInt8, Sendable {
        case set = 1
        case create = 2
        case createInOrder = 3
        case update = 4
        case compareAndSwap = 5
        case delete = 6
        case compareAndDelete = 7
        /// Removes what has expired by `now` (proposed by the leader).
        case expire = 8
        /// v2 auth records (`key` is `users/NAME` or `roles/NAME`, `value` their JSON):
        /// create (must not exist), update (must exist), delete; `authEnable` sets
        /// whether auth is on (`value` `true` or `false`).
        case authCreate = 9
        case authUpdate = 10
        case authDelete = 11
        case authEnable = 12
    }

    public var operation: Operation
    public var key: String
    public var value: String?
    public var directory = false
    public var recursive = false
    public var refresh = false
    public var ttl: Int64?
    public var previousValue: String?
    public var previousIndex: UInt64?
    public var now: V2Store.Time

    public init(_ operation: Operation, key: String, value: String? = nil, now: V2Store.Time) {
        self.operation = operation
        self.key = key
        self.value = value
        self.now = now
    }

    /// Layout: operation, flags (directory 1, recursive 2, refresh 4, has ttl 8, has value
    /// 16, has previous value 32, has previous index 64), now, then the present fields; all
    /// integers little endian, strings length-prefixed.
    public func encoded() -> [UInt8] {
        var flags: UInt8 = 0
        if directory { flags |= 1 }
        if recursive { flags |= 2 }
        if refresh { flags |= 4 }
        if ttl != nil { flags |= 8 }
        if value != nil { flags |= 16 }
        if previousValue != nil { flags |= 32 }
        if previousIndex != nil { flags |= 64 }
        var bytes: [UInt8] = [operation.rawValue, flags]
        V2Bytes.append(UInt64(bitPattern: now), to: &bytes)
        V2Bytes.append(key, to: &bytes)
        if let ttl { V2Bytes.append(UInt64(bitPattern: ttl), to: &bytes) }
        if let value { V2Bytes.append(value, to: &bytes) }
        if let previousValue { V2Bytes.append(previousValue, to: &bytes) }
        if let previousIndex { V2Bytes.append(previousIndex, to: &bytes) }
        return bytes
    }

    /// nil for bytes that are not a request of this layout.
    public init?(decoding bytes: [UInt8]) {
        var reader = V2Bytes.Reader(bytes: bytes)
        guard let rawOperation = reader.byte(), let operation = Operation(rawValue: rawOperation), let flags = reader.byte(),
            let now = reader.u64(), let key = reader.string()
        else { return nil }
        self.init(operation, key: key, now: Int64(bitPattern: now))
        directory = flags & 1 != 0
        recursive = flags & 2 != 0
        refresh = flags & 4 != 0
        if flags & 8 != 0 {
            guard let ttl = reader.u64() else { return nil }
            self.ttl = Int64(bitPattern: ttl)
        }
        if flags & 16 != 0 {
            guard let value = reader.string() else { return nil }
            self.value = value
        }
        if flags & 32 != 0 {
            guard let previous = reader.string() else { return nil }
            previousValue = previous
        }
        if flags & 64 != 0 {
            guard let previous = reader.u64() else { return nil }
            previousIndex = previous
        }
        guard reader.isAtEnd else { return nil }
    }
}

extension V2Store {
    /// Applies a logged request: the events it made (an expiry may make several, or none),
    /// or the error every member gets alike.
    public mutating func apply(_ request: V2Request) -> Result<[V2Event], V2Error> {
        do throws(V2Error) {
            switch request.operation {
            case .set:
                return .success([
                    try set(
                        request.key, value: request.value ?? "", directory: request.directory, ttl: request.ttl, refresh: request.refresh,
                        now: request.now)
                ])
            case .create, .createInOrder:
                return .success([
                    try create(
                        request.key, value: request.value ?? "", directory: request.directory, ttl: request.ttl,
                        inOrder: request.operation == .createInOrder, now: request.now)
                ])
            case .update:
                return .success([try update(request.key, value: request.value, ttl: request.ttl, refresh: request.refresh, now: request.now)])
            case .compareAndSwap:
                return .success([
                    try compareAndSwap(
                        request.key, previousValue: request.previousValue, previousIndex: request.previousIndex, value: request.value,
                        ttl: request.ttl, refresh: request.refresh, now: request.now)
                ])
            case .delete:
                return .success([try delete(request.key, directory: request.directory, recursive: request.recursive, now: request.now)])
            case .compareAndDelete:
                return .success([
                    try compareAndDelete(
                        request.key, previousValue: request.previousValue, previousIndex: request.previousIndex, now: request.now)
                ])
            case .expire:
                return .success(expire(now: request.now))
            case .authCreate, .authUpdate, .authDelete, .authEnable:
                try applyAuth(request)
                return .success([])
            }
        } catch {
            return .failure(error)
        }
    }

    /// The tree and the index, for snapshots (the event history is not kept: after a
    /// restart, waits from before it are answered from what the log replays).
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = Array("V2STORE1".utf8)
        V2Bytes.append(currentIndex, to: &bytes)
        root.encode(into: &bytes)
        // v2 auth, after the tree (older snapshots end with the tree: no auth).
        if auth != V2AuthState() {
            bytes += Array("AUTH".utf8)
            bytes.append(auth.enabled ? 1 : 0)
            V2Bytes.append(UInt64(auth.users.count), to: &bytes)
            for name in auth.users.keys.sorted() { V2Bytes.append(auth.users[name]!.json(withPassword: true), to: &bytes) }
            V2Bytes.append(UInt64(auth.roles.count), to: &bytes)
            for name in auth.roles.keys.sorted() { V2Bytes.append(auth.roles[name]!.json, to: &bytes) }
        }
        return bytes
    }

    public init?(decoding bytes: [UInt8]) {
        var reader = V2Bytes.Reader(bytes: bytes)
        guard reader.take(8) == Array("V2STORE1".utf8), let index = reader.u64(), let root = V2Node.decode(&reader, depth: 0)
        else { return nil }
        self.init()
        currentIndex = index
        self.root = root
        if !reader.isAtEnd {
            guard reader.take(4) == Array("AUTH".utf8), let enabled = reader.byte(), let users = reader.u64(),
                users <= UInt64(reader.remaining)
            else { return nil }
            auth.enabled = enabled == 1
            for _ in 0..<users {
                guard let text = reader.string(), let user = V2User(json: text) else { return nil }
                auth.users[user.name] = user
            }
            guard let roles = reader.u64(), roles <= UInt64(reader.remaining) else { return nil }
            for _ in 0..<roles {
                guard let text = reader.string(), let role = V2Role(json: text) else { return nil }
                auth.roles[role.name] = role
            }
        }
        guard reader.isAtEnd else { return nil }
    }

    /// A v2 auth change, as etcd's writes under `/2`: they fail as those writes would
    /// (a record created twice exists, one missing is not found) and count in the index.
    mutating func applyAuth(_ request: V2Request) throws(V2Error) {
        let path = "/2/" + request.key
        if request.operation == .authEnable {
            auth.enabled = request.value == "true"
            currentIndex += 1
            return
        }
        let parts = request.key.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, parts[0] == "users" || parts[0] == "roles" else {
            throw V2Error(.invalidForm, cause: "invalid auth record \(path)", index: currentIndex)
        }
        let name = parts[1], isUser = parts[0] == "users"
        let exists = isUser ? auth.users[name] != nil : auth.roles[name] != nil
        switch request.operation {
        case .authCreate where exists: throw V2Error(.nodeExists, cause: path, index: currentIndex)
        case .authUpdate where !exists, .authDelete where !exists: throw V2Error(.keyNotFound, cause: path, index: currentIndex)
        default: break
        }
        if request.operation == .authDelete {
            if isUser { auth.users[name] = nil } else { auth.roles[name] = nil }
        } else if isUser {
            guard let user = V2User(json: request.value ?? ""), user.name == name else {
                throw V2Error(.invalidForm, cause: "invalid user record \(path)", index: currentIndex)
            }
            auth.users[name] = user
        } else {
            guard let role = V2Role(json: request.value ?? ""), role.name == name else {
                throw V2Error(.invalidForm, cause: "invalid role record \(path)", index: currentIndex)
            }
            auth.roles[name] = role
        }
        currentIndex += 1
    }
}

extension V2Node {
    func encode(into bytes: inout [UInt8]) {
        V2Bytes.append(name, to: &bytes)
        bytes.append((isDirectory ? 1 : 0) | (expiration != nil ? 2 : 0))
        V2Bytes.append(value, to: &bytes)
        V2Bytes.append(createdIndex, to: &bytes)
        V2Bytes.append(modifiedIndex, to: &bytes)
        if let expiration { V2Bytes.append(UInt64(bitPattern: expiration), to: &bytes) }
        V2Bytes.append(UInt64(children.count), to: &bytes)
        for name in children.keys.sorted() { children[name]?.encode(into: &bytes) }
    }

    static func decode(_ reader: inout V2Bytes.Reader, depth: Int) -> V2Node? {
        guard depth < 512, let name = reader.string(), let flags = reader.byte(), let value = reader.string(),
            let created = reader.u64(), let modified = reader.u64()
        else { return nil }
        var expiration: V2Store.Time?
        if flags & 2 != 0 {
            guard let time = reader.u64() else { return nil }
            expiration = Int64(bitPattern: time)
        }
        guard let count = reader.u64(), count <= UInt64(reader.remaining) else { return nil }
        var node = V2Node(name: name, isDirectory: flags & 1 != 0, value: value, createdIndex: created, modifiedIndex: modified, expiration: expiration)
        for _ in 0..<count {
            guard let child = decode(&reader, depth: depth + 1) else { return nil }
            node.children[child.name] = child
        }
        return node
    }
}

/// Little-endian integers and length-prefixed strings, read with bounds checks.
enum V2Bytes {
    static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    static func append(_ text: String, to bytes: inout [UInt8]) {
        let utf8 = Array(text.utf8)
        append(UInt64(utf8.count), to: &bytes)
        bytes += utf8
    }

    struct Reader {
        let bytes: [UInt8]
        var offset = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        var remaining: Int { bytes.count - offset }
        var isAtEnd: Bool { offset == bytes.count }

        mutating func byte() -> UInt8? {
            guard offset < bytes.count else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func take(_ count: Int) -> [UInt8]? {
            guard count >= 0, count <= remaining else { return nil }
            defer { offset += count }
            return Array(bytes[offset..<(offset + count)])
        }

        mutating func u64() -> UInt64? {
            guard let raw = take(8) else { return nil }
            return raw.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << UInt64(8 * $1.offset) }
        }

        mutating func string() -> String? {
            guard let length = u64(), length <= UInt64(remaining), let raw = take(Int(length)) else { return nil }
            return String(decoding: raw, as: UTF8.self)
        }
    }
}
