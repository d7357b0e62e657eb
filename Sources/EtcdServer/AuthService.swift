import EtcdAPI
import EtcdAuth
import Foundation
import GRPCCore
import Synchronization

/// etcd's Auth service: users, roles, permissions, enabling auth and handing out simple
/// tokens. Every change but `Authenticate` needs the root role once auth is on; a user may
/// read its own record and its own roles. Passwords are hashed here, once, before the
/// change goes through the log.
struct AuthService: Sendable {
    let node: StoreNode
    /// `--bcrypt-cost`.
    var bcryptCost = Bcrypt.defaultCost

    private func change(_ change: AuthStore.Change, _ caller: CallerCredentials) async throws -> Etcdserverpb_ResponseHeader {
        if let denial = node.permitAdmin(caller) { throw denial }
        try await node.proposeAuth(change)
        return await node.header
    }

    private func hash(_ password: String) throws -> String {
        do {
            return try Bcrypt.hash(Array(password.utf8), cost: bcryptCost)
        } catch {
            throw RPCError(code: .internalError, message: "etcdserver: \(error)")
        }
    }

    func authEnable(request: Etcdserverpb_AuthEnableRequest, caller: CallerCredentials) async throws -> Etcdserverpb_AuthEnableResponse {
        var response = Etcdserverpb_AuthEnableResponse()
        response.header = try await change(.enable, caller)
        return response
    }

    func authDisable(request: Etcdserverpb_AuthDisableRequest, caller: CallerCredentials) async throws -> Etcdserverpb_AuthDisableResponse {
        var response = Etcdserverpb_AuthDisableResponse()
        response.header = try await change(.disable, caller)
        return response
    }

    func authenticate(request: Etcdserverpb_AuthenticateRequest, caller: CallerCredentials) async throws
        -> Etcdserverpb_AuthenticateResponse
    {
        let store = node.authNow.withLock { $0 }
        guard store.enabled else { throw AuthError.notEnabled.rpcError }
        guard let user = store.users[request.name], !user.noPassword,
            Bcrypt.verify(Array(request.password.utf8), against: user.passwordHash)
        else { throw AuthError.authFailed.rpcError }
        if let jwt = StoreNode.jwt.withLock({ $0 }) {
            let signed: String?
            do {
                signed = try jwt.token(user: request.name, revision: store.revision)
            } catch {
                throw RPCError(code: .internalError, message: "etcdserver: cannot sign the token: \(error)")
            }
            guard let signed else { throw RPCError(code: .unavailable, message: "etcdserver: this member has no jwt priv-key to sign tokens") }
            var response = Etcdserverpb_AuthenticateResponse()
            response.header = await node.header
            response.token = signed
            return response
        }
        // etcd's simple token: 16 random letters, then a counter.
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        let token = String((0..<16).map { _ in letters[Int.random(in: 0..<letters.count)] }) + "." + String(UInt32.random(in: 1...UInt32.max))
        try await node.proposeAuth(.issueToken(user: request.name, token: token))
        var response = Etcdserverpb_AuthenticateResponse()
        response.header = await node.header
        response.token = token
        return response
    }

    func userAdd(request: Etcdserverpb_AuthUserAddRequest, caller: CallerCredentials) async throws -> Etcdserverpb_AuthUserAddResponse {
        guard !request.name.isEmpty else { throw AuthError.userEmpty.rpcError }
        if let denial = node.permitAdmin(caller) { throw denial }
        let noPassword = request.options.noPassword
        let passwordHash = noPassword ? "" : try hash(request.password)
        var response = Etcdserverpb_AuthUserAddResponse()
        response.header = try await change(.userAdd(name: request.name, passwordHash: passwordHash, noPassword: noPassword), caller)
        return response
    }

    func userGet(request: Etcdserverpb_AuthUserGetRequest, caller: CallerCredentials) async throws -> Etcdserverpb_AuthUserGetResponse {
        if let denial = node.permit(caller, { store, user in store.isAdmin(user) || user == request.name }) { throw denial }
        guard let user = node.authNow.withLock({ $0.users[request.name] }) else { throw AuthError.userNotFound.rpcError }
        var response = Etcdserverpb_AuthUserGetResponse()
        response.header = await node.header
        response.roles = user.roles
        return response
    }

    func userList(request: Etcdserverpb_AuthUserListRequest, caller: CallerCredentials) async throws -> Etcdserverpb_AuthUserListResponse {
        if let denial = node.permitAdmin(caller) { throw denial }
        var response = Etcdserverpb_AuthUserListResponse()
        response.header = await node.header
        response.users = node.authNow.withLock { $0.userNames }
        return response
    }

    func userDelete(request: Etcdserverpb_AuthUserDeleteRequest, caller: CallerCredentials) async throws
        -> Etcdserverpb_AuthUserDeleteResponse
    {
        var response = Etcdserverpb_AuthUserDeleteResponse()
        response.header = try await change(.userDelete(name: request.name), caller)
        return response
    }

    func userChangePassword(request: Etcdserverpb_AuthUserChangePasswordRequest, caller: CallerCredentials) async throws
        -> Etcdserverpb_AuthUserChangePasswordResponse
    {
        if let denial = node.permitAdmin(caller) { throw denial }
        guard node.authNow.withLock({ $0.users[request.name] }) != nil else { throw AuthError.userNotFound.rpcError }
        var response = Etcdserverpb_AuthUserChangePasswordResponse()
        response.header = try await change(.userChangePassword(name: request.name, passwordHash: try hash(request.password)), caller)
        return response
    }

    func userGrantRole(request: Etcdserverpb_AuthUserGrantRoleRequest, caller: CallerCredentials) async throws
        -> Etcdserverpb_AuthUserGrantRoleResponse
    {
        var response = Etcdserverpb_AuthUserGrantRoleResponse()
        response.header = try await change(.userGrantRole(user: request.user, role: request.role), caller)
        return response
    }

    func userRevokeRole(request: Etcdserverpb_AuthUserRevokeRoleRequest, caller: CallerCredentials) async throws
        -> Etcdserverpb_AuthUserRevokeRoleResponse
    {
        var response = Etcdserverpb_AuthUserRevokeRoleResponse()
        response.header = try await change(.userRevokeRole(user: request.name, role: request.role), caller)
        return response
    }

    func roleAdd(request: Etcdserverpb_AuthRoleAddRequest, caller: CallerCredentials) async throws -> Etcdserverpb_AuthRoleAddResponse {
        var response = Etcdserverpb_AuthRoleAddResponse()
        response.header = try await change(.roleAdd(name: request.name), caller)
        return response
    }

    func roleGet(request: Etcdserverpb_AuthRoleGetRequest, caller: CallerCredentials) async throws -> Etcdserverpb_AuthRoleGetResponse {
        if let denial = node.permit(caller, { store, user in
            store.isAdmin(user) || store.users[user]?.roles.contains(request.role) == true
        }) { throw denial }
        guard let role = node.authNow.withLock({ $0.roles[request.role] }) else { throw AuthError.roleNotFound.rpcError }
        var response = Etcdserverpb_AuthRoleGetResponse()
        response.header = await node.header
        response.perm = role.permissions.map { permission in
            var perm = Authpb_Permission()
            perm.permType = Authpb_Permission.TypeEnum(rawValue: permission.type.rawValue) ?? .read
            perm.key = Data(permission.key)
            perm.rangeEnd = Data(permission.rangeEnd)
            return perm
        }
        return response
    }

    func roleList(request: Etcdserverpb_AuthRoleListRequest, caller: CallerCredentials) async throws -> Etcdserverpb_AuthRoleListResponse {
        if let denial = node.permitAdmin(caller) { throw denial }
        var response = Etcdserverpb_AuthRoleListResponse()
        response.header = await node.header
        response.roles = node.authNow.withLock { $0.roleNames }
        return response
    }

    func roleDelete(request: Etcdserverpb_AuthRoleDeleteRequest, caller: CallerCredentials) async throws
        -> Etcdserverpb_AuthRoleDeleteResponse
    {
        var response = Etcdserverpb_AuthRoleDeleteResponse()
        response.header = try await change(.roleDelete(name: request.role), caller)
        return response
    }

    func roleGrantPermission(request: Etcdserverpb_AuthRoleGrantPermissionRequest, caller: CallerCredentials) async throws
        -> Etcdserverpb_AuthRoleGrantPermissionResponse
    {
        guard let type = AuthStore.PermissionType(rawValue: request.perm.permType.rawValue) else {
            throw RPCError(code: .invalidArgument, message: "etcdserver: invalid permission type")
        }
        let permission = AuthStore.Permission(type: type, key: Array(request.perm.key), rangeEnd: Array(request.perm.rangeEnd))
        var response = Etcdserverpb_AuthRoleGrantPermissionResponse()
        response.header = try await change(.roleGrantPermission(role: request.name, permission: permission), caller)
        return response
    }

    func roleRevokePermission(request: Etcdserverpb_AuthRoleRevokePermissionRequest, caller: CallerCredentials) async throws
        -> Etcdserverpb_AuthRoleRevokePermissionResponse
    {
        var response = Etcdserverpb_AuthRoleRevokePermissionResponse()
        response.header = try await change(
            .roleRevokePermission(role: request.role, key: Array(request.key), rangeEnd: Array(request.rangeEnd)), caller)
        return response
    }
}
