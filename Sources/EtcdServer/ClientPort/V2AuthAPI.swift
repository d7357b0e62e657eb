import Crypto
import EtcdAuth
import EtcdV2Store
import Foundation
import GoFormat
import HTTPServer
import NIOHTTP1
import Synchronization

/// etcd 3.4's `/v2/auth` (enable, users, roles) over the replicated v2 auth records, and
/// the checks its v2 keys and members endpoints make once auth is on: the caller is the
/// user of its basic-auth credentials, else (with client certificate auth) the user named
/// by its certificate's common name, else a guest.
struct V2AuthAPI {
    let node: StoreNode
    let bcryptCost: Int

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        var response = await answer(request)
        response.headers.append(("X-Etcd-Cluster-Id", String(node.clusterID, radix: 16)))
        return response
    }

    private func answer(_ request: HTTPRequest) async -> HTTPResponse {
        // etcd cleans the path, then splits "/users/NAME".
        let pieces = String(request.path.dropFirst("/v2/auth".count)).split(separator: "/").map {
            $0.removingPercentEncoding ?? String($0)
        }
        let state = await node.v2.auth
        switch pieces.first {
        case "enable" where pieces.count == 1:
            guard [.GET, .PUT, .DELETE].contains(request.method) else { return Self.methodNotAllowed("GET,PUT,DELETE") }
            if request.method != .GET && request.method != .HEAD, !(await Self.isRoot(request, state)) { return Self.insufficientCredentials }
            return await enableOrDisable(request, state)
        case "users" where pieces.count <= 2, "roles" where pieces.count <= 2:
            let allowed: [HTTPMethod] = pieces.count == 1 ? [.GET] : [.GET, .PUT, .DELETE]
            guard allowed.contains(request.method) else {
                return Self.methodNotAllowed(pieces.count == 1 ? "GET" : "GET,PUT,DELETE")
            }
            guard await Self.isRoot(request, state) else { return Self.insufficientCredentials }
            if pieces[0] == "users" {
                return pieces.count == 1 ? Self.userList(state) : await user(pieces[1], request, state)
            }
            return pieces.count == 1 ? Self.roleList(state) : await role(pieces[1], request, state)
        case "users", "roles":
            return Self.message(.badRequest, "Invalid path")
        default:
            return .notFound
        }
    }

    // MARK: Enable

    private func enableOrDisable(_ request: HTTPRequest, _ state: V2AuthState) async -> HTTPResponse {
        switch request.method {
        case .PUT:
            do throws(V2AuthError) {
                try state.checkEnable()
            } catch {
                return Self.failure(error)
            }
            // etcd makes the guest role the first time, as a write of its own.
            if state.role("guest") == nil {
                let guest = V2Request(.authCreate, key: "roles/guest", value: V2AuthState.defaultGuestRole.json, now: Self.now)
                if let failure = await propose(guest, name: "guest", isUser: false), failure.status != 409 { return Self.failure(failure) }
            }
            if let failure = await propose(V2Request(.authEnable, key: "enabled", value: "true", now: Self.now), name: "", isUser: false) {
                return Self.failure(failure)
            }
            return Self.json(.ok, "")
        case .DELETE:
            do throws(V2AuthError) {
                try state.checkDisable()
            } catch {
                return Self.failure(error)
            }
            if let failure = await propose(V2Request(.authEnable, key: "enabled", value: "false", now: Self.now), name: "", isUser: false) {
                return Self.failure(failure)
            }
            return Self.json(.ok, "")
        default:
            return Self.json(.ok, "{\"enabled\":\(state.enabled)}\n")
        }
    }

    // MARK: Users

    private static func userList(_ state: V2AuthState) -> HTTPResponse {
        let users = state.userNames.compactMap { state.user($0) }.map { withRoles($0, state) }
        return json(.ok, "{\"users\":" + (users.isEmpty ? "null" : "[" + users.joined(separator: ",") + "]") + "}\n")
    }

    /// etcd's user with its roles spelled out (roles it cannot find are left out).
    private static func withRoles(_ user: V2User, _ state: V2AuthState) -> String {
        let roles = user.roles.compactMap { state.role($0)?.json }
        return "{\"user\":" + GoJSONString.quote(user.name) + (roles.isEmpty ? "" : ",\"roles\":[" + roles.joined(separator: ",") + "]") + "}"
    }

    private func user(_ name: String, _ request: HTTPRequest, _ state: V2AuthState) async -> HTTPResponse {
        switch request.method {
        case .GET, .HEAD:
            guard let user = state.user(name) else { return Self.failure(V2AuthError(404, "auth: User \(name) does not exist.")) }
            return Self.json(.ok, Self.withRoles(user, state) + "\n")
        case .DELETE:
            do throws(V2AuthError) {
                try state.checkUserDeletion(name)
            } catch {
                return Self.failure(error)
            }
            if let failure = await propose(V2Request(.authDelete, key: "users/" + name, now: Self.now), name: name, isUser: true) {
                return Self.failure(failure.status == 404 ? V2AuthError(404, "auth: User \(name) does not exist") : failure)
            }
            return Self.json(.ok, "")
        default:
            guard let body = Self.object(request.body) else { return Self.message(.badRequest, "Invalid JSON in request body.") }
            guard body["user"] as? String == name else { return Self.message(.badRequest, "User JSON name does not match the name in the URL") }
            let cost = bcryptCost
            do {
                let (user, created) = try state.userChange(
                    name: name, password: body["password"] as? String, roles: body["roles"] as? [String],
                    grant: body["grant"] as? [String] ?? [], revoke: body["revoke"] as? [String] ?? []
                ) { password in try Bcrypt.hash(Array(password.utf8), cost: cost) }
                let operation: V2Request.Operation = created ? .authCreate : .authUpdate
                if let failure = await propose(
                    V2Request(operation, key: "users/" + name, value: user.json(withPassword: true), now: Self.now), name: name, isUser: true)
                {
                    return Self.failure(failure)
                }
                return Self.json(created ? .created : .ok, user.json(withPassword: false) + "\n")
            } catch let error as V2AuthError {
                return Self.failure(error)
            } catch {
                return Self.message(.internalServerError, "\(error)")
            }
        }
    }

    // MARK: Roles

    private static func roleList(_ state: V2AuthState) -> HTTPResponse {
        let roles = state.roleNames.compactMap { state.role($0)?.json }
        return json(.ok, "{\"roles\":[" + roles.joined(separator: ",") + "]}\n")
    }

    private func role(_ name: String, _ request: HTTPRequest, _ state: V2AuthState) async -> HTTPResponse {
        switch request.method {
        case .GET, .HEAD:
            guard let role = state.role(name) else { return Self.failure(V2AuthError(404, "auth: Role \(name) does not exist.")) }
            return Self.json(.ok, role.json + "\n")
        case .DELETE:
            do throws(V2AuthError) {
                try state.checkRoleDeletion(name)
            } catch {
                return Self.failure(error)
            }
            if let failure = await propose(V2Request(.authDelete, key: "roles/" + name, now: Self.now), name: name, isUser: false) {
                return Self.failure(failure)
            }
            return Self.json(.ok, "")
        default:
            guard let body = Self.object(request.body) else { return Self.message(.badRequest, "Invalid JSON in request body.") }
            guard body["role"] as? String == name else { return Self.message(.badRequest, "Role JSON name does not match the name in the URL") }
            let requested = V2Role(name: name, permissions: body["permissions"])
            let grant = body["grant"].map { V2Role(name: name, permissions: $0) }
            let revoke = body["revoke"].map { V2Role(name: name, permissions: $0) }
            do throws(V2AuthError) {
                let (role, created) = try state.roleChange(requested, grant: grant, revoke: revoke)
                let operation: V2Request.Operation = created ? .authCreate : .authUpdate
                if let failure = await propose(V2Request(operation, key: "roles/" + name, value: role.json, now: Self.now), name: name, isUser: false) {
                    return Self.failure(failure)
                }
                return Self.json(created ? .created : .ok, role.json + "\n")
            } catch {
                return Self.failure(error)
            }
        }
    }

    // MARK: Through the log

    /// Proposes one change; nil when applied, else etcd's answer for what the store said.
    private func propose(_ request: V2Request, name: String, isUser: Bool) async -> V2AuthError? {
        switch await node.proposeV2(request) {
        case .v2(.success):
            return nil
        case .v2(.failure(let error)):
            let kind = isUser ? "User" : "Role"
            switch error.code {
            case .nodeExists: return V2AuthError(409, "auth: \(kind) \(name) already exists.")
            case .keyNotFound: return V2AuthError(404, "auth: \(kind) \(name) doesn't exist.")
            default: return V2AuthError(500, error.cause)
            }
        case .failed(let error):
            return V2AuthError(500, "\(error)")
        default:
            return V2AuthError(500, "etcdserver: request timed out")
        }
    }

    private static var now: V2Store.Time { Int64(Date().timeIntervalSince1970 * 1000) }

    // MARK: Who is calling

    /// The caller's user, and whether it gave credentials that did not check out.
    static func caller(_ request: HTTPRequest, _ state: V2AuthState) async -> (user: V2User?, refused: Bool) {
        if let header = request.headers.first(name: "Authorization") {
            guard let (name, password) = basicCredentials(header), let user = state.user(name),
                await PasswordCheck.shared.verify(name: name, password: password, hash: user.password)
            else { return (nil, true) }
            return (user, false)
        }
        if let commonName = request.certificateCommonName, let user = state.user(commonName) { return (user, false) }
        return (nil, false)
    }

    static func isRoot(_ request: HTTPRequest, _ state: V2AuthState) async -> Bool {
        guard state.enabled else { return true }
        return state.isRoot(await caller(request, state).user)
    }

    /// Whether the caller may do what a v2 keys request asks (`write`: not GET or HEAD).
    static func allowsKeys(_ request: HTTPRequest, key: String, recursive: Bool, state: V2AuthState) async -> Bool {
        guard state.enabled else { return true }
        let (user, refused) = await caller(request, state)
        if refused { return false }
        return state.allows(user, key: key, write: request.method != .GET && request.method != .HEAD, recursive: recursive)
    }

    private static func basicCredentials(_ header: String) -> (String, String)? {
        guard header.hasPrefix("Basic "), let data = Data(base64Encoded: String(header.dropFirst(6))),
            let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    // MARK: Answers

    static var insufficientCredentials: HTTPResponse { message(.unauthorized, "Insufficient credentials") }

    private static func failure(_ error: V2AuthError) -> HTTPResponse {
        message(HTTPResponseStatus(statusCode: error.status), error.message)
    }

    /// etcd's HTTP error (`json.Marshal`: no newline after it, unlike its answers).
    static func message(_ status: HTTPResponseStatus, _ text: String) -> HTTPResponse {
        json(status, "{\"message\":" + GoJSONString.quote(text) + "}")
    }

    private static func json(_ status: HTTPResponseStatus, _ body: String) -> HTTPResponse {
        HTTPResponse(status, contentType: "application/json", body: body)
    }

    private static func methodNotAllowed(_ allow: String) -> HTTPResponse { .methodNotAllowed(allow: allow, nosniff: true) }

    private static func object(_ body: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
    }
}

/// bcrypt is slow on purpose, and v2 clients send their password with every request:
/// a password that checked out against a hash is remembered (as a digest) until the
/// user's hash changes.
final class PasswordCheck: Sendable {
    static let shared = PasswordCheck()
    private let verified = Mutex<[String: (hash: String, digest: [UInt8])]>([:])

    func verify(name: String, password: String, hash: String) async -> Bool {
        let digest = Array(SHA256.hash(data: Array((hash + "\u{0}" + password).utf8)))
        if let known = verified.withLock({ $0[name] }), known.hash == hash, known.digest == digest { return true }
        guard Bcrypt.verify(Array(password.utf8), against: hash) else { return false }
        verified.withLock { cache in
            if cache.count > 4096 { cache.removeAll() }
            cache[name] = (hash, digest)
        }
        return true
    }
}
