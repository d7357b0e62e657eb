/// etcd's users, roles and key permissions as a pure value the server replicates: every
/// change is a `AuthChange` applied in log order on every member, so every member decides
/// the same. Passwords arrive already hashed (bcrypt is slow; the member that took the
/// request hashes once). Simple tokens are handed out through the log too, so a token
/// from one member works on all.
public struct AuthStore: Sendable, Equatable, Codable {
    public enum PermissionType: Int, Sendable, Codable, Comparable {
        case read = 0, write = 1, readwrite = 2

        public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
        func allows(_ access: PermissionType) -> Bool { self == .readwrite || self == access }
    }

    public struct Permission: Sendable, Equatable, Codable {
        public var type: PermissionType
        public var key: [UInt8]
        /// Empty: the key alone. `[0]`: every key from `key` on.
        public var rangeEnd: [UInt8]

        public init(type: PermissionType, key: [UInt8], rangeEnd: [UInt8]) {
            self.type = type
            self.key = key
            self.rangeEnd = rangeEnd
        }
    }

    public struct User: Sendable, Equatable, Codable {
        public var name: String
        /// A bcrypt hash; empty for a user made with `--no-password` (cannot authenticate).
        public var passwordHash: String
        /// Sorted, as etcd keeps them.
        public var roles: [String]
        public var noPassword: Bool
    }

    public struct Role: Sendable, Equatable, Codable {
        public var name: String
        /// Sorted by key, as etcd keeps them.
        public var permissions: [Permission]
    }

    public static let rootUser = "root"
    public static let rootRole = "root"

    public private(set) var enabled = false
    /// Bumped by every change, as etcd's auth revision.
    public private(set) var revision: UInt64 = 1
    public private(set) var users: [String: User] = [:]
    public private(set) var roles: [String: Role] = [:]
    /// Simple tokens handed out: token → user name. Expiry is each member's business.
    public private(set) var tokens: [String: String] = [:]

    public init() {}

    // MARK: Changes

    /// One replicated change. `Codable` so it travels in the log as JSON.
    public enum Change: Sendable, Equatable, Codable {
        case enable
        case disable
        case issueToken(user: String, token: String)
        case userAdd(name: String, passwordHash: String, noPassword: Bool)
        case userDelete(name: String)
        case userChangePassword(name: String, passwordHash: String)
        case userGrantRole(user: String, role: String)
        case userRevokeRole(user: String, role: String)
        case roleAdd(name: String)
        case roleDelete(name: String)
        case roleGrantPermission(role: String, permission: Permission)
        case roleRevokePermission(role: String, key: [UInt8], rangeEnd: [UInt8])
    }

    /// Applies one change; an error leaves the store as it was.
    public mutating func apply(_ change: Change) throws(AuthError) {
        switch change {
        case .enable:
            if enabled { return }
            guard let root = users[Self.rootUser] else { throw .rootUserMissing }
            guard root.roles.contains(Self.rootRole) else { throw .rootRoleMissing }
            enabled = true
            tokens = [:]
        case .disable:
            if !enabled { return }
            enabled = false
            tokens = [:]
        case .issueToken(let user, let token):
            guard enabled else { throw .notEnabled }
            guard users[user] != nil else { throw .authFailed }
            tokens[token] = user
            return  // tokens are not part of the revision: they change nothing a check reads
        case .userAdd(let name, let hash, let noPassword):
            guard !name.isEmpty else { throw .userEmpty }
            guard users[name] == nil else { throw .userExists }
            users[name] = User(name: name, passwordHash: hash, roles: [], noPassword: noPassword)
        case .userDelete(let name):
            guard !(enabled && name == Self.rootUser) else { throw .invalidManagement }
            guard users.removeValue(forKey: name) != nil else { throw .userNotFound }
            dropTokens(of: name)
        case .userChangePassword(let name, let hash):
            guard users[name] != nil else { throw .userNotFound }
            users[name]!.passwordHash = hash
            users[name]!.noPassword = false
            dropTokens(of: name)
        case .userGrantRole(let user, let role):
            guard users[user] != nil else { throw .userNotFound }
            guard role == Self.rootRole || roles[role] != nil else { throw .roleNotFound }
            if users[user]!.roles.contains(role) { return }
            users[user]!.roles.append(role)
            users[user]!.roles.sort()
        case .userRevokeRole(let user, let role):
            guard !(enabled && user == Self.rootUser && role == Self.rootRole) else { throw .invalidManagement }
            guard users[user] != nil else { throw .userNotFound }
            guard let index = users[user]!.roles.firstIndex(of: role) else { throw .roleNotGranted }
            users[user]!.roles.remove(at: index)
        case .roleAdd(let name):
            guard !name.isEmpty else { throw .roleEmpty }
            guard roles[name] == nil else { throw .roleExists }
            roles[name] = Role(name: name, permissions: [])
        case .roleDelete(let name):
            guard !(enabled && name == Self.rootRole) else { throw .invalidManagement }
            guard roles.removeValue(forKey: name) != nil else { throw .roleNotFound }
            for (userName, user) in users where user.roles.contains(name) {
                users[userName]!.roles.removeAll { $0 == name }
            }
        case .roleGrantPermission(let role, let permission):
            guard roles[role] != nil else { throw .roleNotFound }
            var permissions = roles[role]!.permissions
            if let index = permissions.firstIndex(where: { $0.key == permission.key && $0.rangeEnd == permission.rangeEnd }) {
                permissions[index].type = permission.type
            } else {
                permissions.append(permission)
                permissions.sort { $0.key.lexicographicallyPrecedes($1.key) }
            }
            roles[role]!.permissions = permissions
        case .roleRevokePermission(let role, let key, let rangeEnd):
            guard roles[role] != nil else { throw .roleNotFound }
            guard let index = roles[role]!.permissions.firstIndex(where: { $0.key == key && $0.rangeEnd == rangeEnd }) else {
                throw .permissionNotGranted
            }
            roles[role]!.permissions.remove(at: index)
        }
        revision += 1
    }

    private mutating func dropTokens(of user: String) {
        tokens = tokens.filter { $0.value != user }
    }

    /// Forgets a token whose time ran out (each member's own clock decides).
    public mutating func dropToken(_ token: String) { tokens[token] = nil }

    // MARK: Checks

    /// Whether `user` may do everything (has the root role).
    public func isAdmin(_ user: String) -> Bool {
        users[user]?.roles.contains(Self.rootRole) ?? false
    }

    /// Whether `user` may `access` every key in `[key, rangeEnd)` (`rangeEnd` empty: the
    /// key alone; `[0]`: every key from `key` on). The user's permissions of that kind, over
    /// all its roles, must cover the whole range, as etcd's interval check has it.
    public func isPermitted(_ user: String, _ access: PermissionType, key: [UInt8], rangeEnd: [UInt8]) -> Bool {
        guard let account = users[user] else { return false }
        if account.roles.contains(Self.rootRole) { return true }
        var intervals: [(start: [UInt8], end: [UInt8]?)] = []
        for roleName in account.roles {
            for permission in roles[roleName]?.permissions ?? [] where permission.type.allows(access) {
                intervals.append(Self.interval(permission.key, permission.rangeEnd))
            }
        }
        let wanted = Self.interval(key, rangeEnd)
        intervals.sort { $0.start.lexicographicallyPrecedes($1.start) }
        // Sweep: how far from the wanted start the union reaches without a gap.
        var reached = wanted.start
        for interval in intervals {
            if reached.lexicographicallyPrecedes(interval.start) { break }
            guard let end = interval.end else { return true }
            if reached.lexicographicallyPrecedes(end) { reached = end }
            if let wantedEnd = wanted.end, !reached.lexicographicallyPrecedes(wantedEnd) { return true }
        }
        if let wantedEnd = wanted.end { return !reached.lexicographicallyPrecedes(wantedEnd) }
        return false
    }

    /// A key range as a half-open interval; `nil` end: unbounded.
    private static func interval(_ key: [UInt8], _ rangeEnd: [UInt8]) -> (start: [UInt8], end: [UInt8]?) {
        if rangeEnd.isEmpty { return (key, key + [0]) }
        if rangeEnd == [0] { return (key, nil) }
        return (key, rangeEnd)
    }

    /// The names of every user, sorted.
    public var userNames: [String] { users.keys.sorted() }
    /// The names of every role, sorted (the root role once it was added).
    public var roleNames: [String] { roles.keys.sorted() }
}

/// etcd's auth errors, with its texts and gRPC codes.
public enum AuthError: Error, Equatable, Sendable {
    case rootUserMissing, rootRoleMissing, userExists, userEmpty, userNotFound, roleExists, roleNotFound, roleEmpty
    case authFailed, permissionDenied, roleNotGranted, permissionNotGranted, notEnabled, invalidToken, invalidManagement

    public var message: String {
        switch self {
        case .rootUserMissing: "etcdserver: root user does not exist"
        case .rootRoleMissing: "etcdserver: root user does not have root role"
        case .userExists: "etcdserver: user name already exists"
        case .userEmpty: "etcdserver: user name is empty"
        case .userNotFound: "etcdserver: user name not found"
        case .roleExists: "etcdserver: role name already exists"
        case .roleNotFound: "etcdserver: role name not found"
        case .roleEmpty: "etcdserver: role name is empty"
        case .authFailed: "etcdserver: authentication failed, invalid user ID or password"
        case .permissionDenied: "etcdserver: permission denied"
        case .roleNotGranted: "etcdserver: role is not granted to the user"
        case .permissionNotGranted: "etcdserver: permission is not granted to the role"
        case .notEnabled: "etcdserver: authentication is not enabled"
        case .invalidToken: "etcdserver: invalid auth token"
        case .invalidManagement: "etcdserver: invalid auth management"
        }
    }

    /// The gRPC status code etcd answers with.
    public var grpcCode: Int {
        switch self {
        case .userEmpty, .roleEmpty, .authFailed, .invalidManagement: 3  // InvalidArgument
        case .permissionDenied: 7  // PermissionDenied
        case .invalidToken: 16  // Unauthenticated
        default: 9  // FailedPrecondition
        }
    }
}
