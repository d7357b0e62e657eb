import Foundation
import GoFormat

/// etcd 3.4's v2 authentication (separate from v3's): users with bcrypt password hashes
/// and roles, roles with read and write patterns over v2 keys (`/foo` exactly, `/foo/*` as
/// a prefix), the built-in `root` role (everything; the `root` user always has it) and a
/// `guest` role for requests without credentials, made when auth is first enabled.
///
/// etcd keeps each record as JSON in its v2 store (`/2/users/NAME`, `/2/roles/NAME`,
/// `/2/enabled`); here the same JSON travels through the log, and every change counts in
/// the store's index as it does on etcd.
public struct V2AuthState: Sendable, Equatable {
    public var enabled = false
    public var users: [String: V2User] = [:]
    public var roles: [String: V2Role] = [:]

    public init() {}

    /// `root`, with access to every key; it is not stored and cannot be changed.
    public static let rootRole = V2Role(name: "root", read: ["/*"], write: ["/*"])
    /// What a request without credentials may do once auth is on, unless changed.
    public static let defaultGuestRole = V2Role(name: "guest", read: ["/*"], write: ["/*"])

    public func user(_ name: String) -> V2User? {
        guard var user = users[name] else { return nil }
        if name == "root", !user.roles.contains("root") { user.roles.append("root") }
        return user
    }

    public func role(_ name: String) -> V2Role? { name == "root" ? Self.rootRole : roles[name] }

    /// Role names as etcd lists them: `root` first among the sorted stored ones.
    public var roleNames: [String] { (["root"] + roles.keys).sorted() }
    public var userNames: [String] { users.keys.sorted() }

    /// May `user` (nil: a request without credentials) read or write `key`? `recursive`
    /// asks for the whole tree under it (a `/key/*` pattern).
    public func allows(_ user: V2User?, key: String, write: Bool, recursive: Bool) -> Bool {
        guard enabled else { return true }
        guard let user else {
            // Guests are checked on the key itself, as etcd does, even for recursive reads.
            return role("guest")?.allows(key: key, write: write, recursive: false) ?? false
        }
        return user.roles.contains { role($0)?.allows(key: key, write: write, recursive: recursive) ?? false }
    }

    public func isRoot(_ user: V2User?) -> Bool { user?.roles.contains("root") ?? false }
}

public struct V2User: Sendable, Equatable {
    public var name: String
    /// bcrypt; empty only in a request that leaves the password alone.
    public var password: String
    public var roles: [String]

    public init(name: String, password: String, roles: [String]) {
        self.name = name
        self.password = password
        self.roles = roles
    }
}

public struct V2Role: Sendable, Equatable {
    public var name: String
    /// nil where etcd's JSON has `null` (a role created without that list).
    public var read: [String]?
    public var write: [String]?

    public init(name: String, read: [String]?, write: [String]?) {
        self.name = name
        self.read = read
        self.write = write
    }

    public var isEmpty: Bool { (read ?? []).isEmpty && (write ?? []).isEmpty }

    func allows(key: String, write writing: Bool, recursive: Bool) -> Bool {
        if name == "root" { return true }
        return (writing ? write : read)?.contains { pattern in
            guard let last = pattern.last else { return false }
            if last == "*" { return key.hasPrefix(pattern.dropLast()) }
            return !recursive && key == pattern
        } ?? false
    }
}

/// An answer etcd's v2 auth gives with its HTTP status (`{"message":"auth: …"}`).
public struct V2AuthError: Error, Sendable, Equatable {
    public var status: Int
    public var message: String

    public init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    static func auth(_ status: Int, _ message: String) -> V2AuthError { V2AuthError(status, "auth: " + message) }
}

// MARK: - Changes, checked as etcd checks them

extension V2AuthState {
    /// The record a user `PUT` leads to, and whether it creates the user; the password
    /// (when given) is hashed by `hash` before it goes into the log.
    public func userChange(
        name: String, password: String?, roles: [String]?, grant: [String], revoke: [String], hash: (String) throws -> String
    ) throws -> (user: V2User, created: Bool) {
        if grant.isEmpty && revoke.isEmpty {
            if let roles, !roles.isEmpty {
                // etcd: roles with a user means a new user.
                guard users[name] == nil else { throw V2AuthError.auth(409, "User \(name) already exists.") }
                return (try newUser(name, password: password, roles: roles, hash: hash), true)
            }
            guard let old = users[name] else { return (try newUser(name, password: password, roles: [], hash: hash), true) }
            guard let password, !password.isEmpty else {
                throw V2AuthError.auth(400, "User not updated. Use grant/revoke/password to update the user.")
            }
            return (V2User(name: name, password: try hash(password), roles: old.roles), false)
        }
        guard roles?.isEmpty ?? true else { throw V2AuthError(400, "User JSON contains both roles and grant/revoke") }
        guard let old = users[name] else { throw V2AuthError.auth(404, "User \(name) doesn't exist.") }
        var current = Set(old.roles)
        for role in grant {
            guard current.insert(role).inserted else { throw V2AuthError.auth(409, "Granting duplicate role \(role) for user \(name)") }
        }
        for role in revoke {
            guard current.remove(role) != nil else { throw V2AuthError.auth(409, "Revoking ungranted role \(role) for user \(name)") }
        }
        var updated = V2User(name: name, password: old.password, roles: current.sorted())
        if let password, !password.isEmpty { updated.password = try hash(password) }
        guard updated != old else { throw V2AuthError.auth(400, "User not updated. Use grant/revoke/password to update the user.") }
        return (updated, false)
    }

    private func newUser(_ name: String, password: String?, roles: [String], hash: (String) throws -> String) throws -> V2User {
        guard let password, !password.isEmpty else { throw V2AuthError.auth(400, "Cannot create user \(name) with an empty password") }
        var roles = roles
        if name == "root", !roles.contains("root") { roles.append("root") }
        return V2User(name: name, password: try hash(password), roles: roles)
    }

    public func checkUserDeletion(_ name: String) throws(V2AuthError) {
        if enabled && name == "root" { throw .auth(403, "Cannot delete root user while auth is enabled.") }
        guard users[name] != nil else { throw .auth(404, "User \(name) does not exist") }
    }

    /// The record a role `PUT` leads to: a new role, or grants and revokes on one.
    public func roleChange(_ requested: V2Role, grant: V2Role?, revoke: V2Role?) throws(V2AuthError) -> (role: V2Role, created: Bool) {
        let name = requested.name
        if name == "root" { throw .auth(403, "Cannot modify role root: is root role.") }
        if (grant?.isEmpty ?? true) && (revoke?.isEmpty ?? true) {
            guard roles[name] == nil else { throw .auth(409, "Role \(name) already exists.") }
            return (requested, true)
        }
        guard requested.isEmpty else { throw V2AuthError(400, "Role JSON contains both permissions and grant/revoke") }
        guard let old = roles[name] else { throw .auth(404, "Role \(name) doesn't exist.") }
        var read = Set(old.read ?? []), write = Set(old.write ?? [])
        for pattern in grant?.read ?? [] {
            guard read.insert(pattern).inserted else { throw .auth(409, "Granting duplicate read permission \(pattern)") }
        }
        for pattern in grant?.write ?? [] {
            guard write.insert(pattern).inserted else { throw .auth(409, "Granting duplicate write permission \(pattern)") }
        }
        // Revoking what was never granted is no error (etcd only logs it).
        for pattern in revoke?.read ?? [] { read.remove(pattern) }
        for pattern in revoke?.write ?? [] { write.remove(pattern) }
        let updated = V2Role(name: name, read: read.sorted(), write: write.sorted())
        guard updated != old else { throw .auth(400, "Role not updated. Use grant/revoke to update the role.") }
        return (updated, false)
    }

    public func checkRoleDeletion(_ name: String) throws(V2AuthError) {
        if name == "root" { throw .auth(403, "Cannot modify role root: is root role.") }
        guard roles[name] != nil else { throw .auth(404, "Role \(name) doesn't exist.") }
    }

    public func checkEnable() throws(V2AuthError) {
        if enabled { throw .auth(409, "already enabled") }
        guard users["root"] != nil else { throw .auth(409, "No root user available, please create one") }
    }

    public func checkDisable() throws(V2AuthError) {
        if !enabled { throw .auth(409, "already disabled") }
    }
}

// MARK: - etcd's JSON

extension V2User {
    /// As etcd stores it (with the hash) or shows it (`withPassword: false`).
    public func json(withPassword: Bool) -> String {
        var text = "{\"user\":" + GoJSON.quote(name)
        if withPassword && !password.isEmpty { text += ",\"password\":" + GoJSON.quote(password) }
        // Go writes a user created without roles as `null`.
        return text + ",\"roles\":" + (roles.isEmpty ? "null" : GoJSON.list(roles)) + "}"
    }

    public init?(json: String) {
        guard let object = GoJSON.object(json), let name = object["user"] as? String else { return nil }
        self.init(name: name, password: object["password"] as? String ?? "", roles: object["roles"] as? [String] ?? [])
    }
}

extension V2Role {
    public var json: String {
        "{\"role\":" + GoJSON.quote(name) + ",\"permissions\":" + permissionsJSON + "}"
    }

    public var permissionsJSON: String {
        "{\"kv\":{\"read\":" + (read.map { GoJSON.list($0) } ?? "null") + ",\"write\":" + (write.map { GoJSON.list($0) } ?? "null") + "}}"
    }

    public init?(json: String) {
        guard let object = GoJSON.object(json), let name = object["role"] as? String else { return nil }
        self.init(name: name, permissions: object["permissions"])
    }

    /// A role from etcd's `{"kv":{"read":[…],"write":[…]}}` (nil or missing lists stay nil).
    public init(name: String, permissions: Any?) {
        let kv = (permissions as? [String: Any])?["kv"] as? [String: Any]
        self.init(name: name, read: kv?["read"] as? [String], write: kv?["write"] as? [String])
    }
}

/// Go's JSON encoding for the few shapes v2 auth needs.
enum GoJSON {
    static func quote(_ text: String) -> String { GoJSONString.quote(text) }
    static func list(_ items: [String]) -> String { "[" + items.map { GoJSONString.quote($0) }.joined(separator: ",") + "]" }
    static func object(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }
}
