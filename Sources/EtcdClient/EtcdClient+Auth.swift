public import EtcdAPI
import GRPCCore
import SwiftProtobuf

#if canImport(FoundationEssentials)
    public import FoundationEssentials
#else
    public import Foundation
#endif

/// The Auth service: enabling authentication, users, roles and key permissions.
extension EtcdClient {
    public func authEnable() async throws(EtcdError) -> Etcdserverpb_AuthEnableResponse {
        let auth = authService
        return try await call { metadata, options in try await auth.authEnable(.init(), metadata: metadata, options: options) }
    }

    public func authDisable() async throws(EtcdError) -> Etcdserverpb_AuthDisableResponse {
        let auth = authService
        return try await call { metadata, options in try await auth.authDisable(.init(), metadata: metadata, options: options) }
    }

    public func userAdd(_ name: String, password: String, noPassword: Bool = false) async throws(EtcdError)
        -> Etcdserverpb_AuthUserAddResponse
    {
        let request = Etcdserverpb_AuthUserAddRequest.with {
            $0.name = name
            $0.password = password
            if noPassword { $0.options = .with { $0.noPassword = true } }
        }
        let auth = authService
        return try await call { metadata, options in try await auth.userAdd(request, metadata: metadata, options: options) }
    }

    public func userGet(_ name: String) async throws(EtcdError) -> Etcdserverpb_AuthUserGetResponse {
        let request = Etcdserverpb_AuthUserGetRequest.with { $0.name = name }
        let auth = authService
        return try await call { metadata, options in try await auth.userGet(request, metadata: metadata, options: options) }
    }

    public func userList() async throws(EtcdError) -> Etcdserverpb_AuthUserListResponse {
        let auth = authService
        return try await call { metadata, options in try await auth.userList(.init(), metadata: metadata, options: options) }
    }

    public func userDelete(_ name: String) async throws(EtcdError) -> Etcdserverpb_AuthUserDeleteResponse {
        let request = Etcdserverpb_AuthUserDeleteRequest.with { $0.name = name }
        let auth = authService
        return try await call { metadata, options in try await auth.userDelete(request, metadata: metadata, options: options) }
    }

    public func userChangePassword(_ name: String, password: String) async throws(EtcdError)
        -> Etcdserverpb_AuthUserChangePasswordResponse
    {
        let request = Etcdserverpb_AuthUserChangePasswordRequest.with {
            $0.name = name
            $0.password = password
        }
        let auth = authService
        return try await call { metadata, options in
            try await auth.userChangePassword(request, metadata: metadata, options: options)
        }
    }

    public func userGrantRole(user: String, role: String) async throws(EtcdError) -> Etcdserverpb_AuthUserGrantRoleResponse {
        let request = Etcdserverpb_AuthUserGrantRoleRequest.with {
            $0.user = user
            $0.role = role
        }
        let auth = authService
        return try await call { metadata, options in try await auth.userGrantRole(request, metadata: metadata, options: options) }
    }

    public func userRevokeRole(user: String, role: String) async throws(EtcdError) -> Etcdserverpb_AuthUserRevokeRoleResponse {
        let request = Etcdserverpb_AuthUserRevokeRoleRequest.with {
            $0.name = user
            $0.role = role
        }
        let auth = authService
        return try await call { metadata, options in
            try await auth.userRevokeRole(request, metadata: metadata, options: options)
        }
    }

    public func roleAdd(_ name: String) async throws(EtcdError) -> Etcdserverpb_AuthRoleAddResponse {
        let request = Etcdserverpb_AuthRoleAddRequest.with { $0.name = name }
        let auth = authService
        return try await call { metadata, options in try await auth.roleAdd(request, metadata: metadata, options: options) }
    }

    public func roleGet(_ name: String) async throws(EtcdError) -> Etcdserverpb_AuthRoleGetResponse {
        let request = Etcdserverpb_AuthRoleGetRequest.with { $0.role = name }
        let auth = authService
        return try await call { metadata, options in try await auth.roleGet(request, metadata: metadata, options: options) }
    }

    public func roleList() async throws(EtcdError) -> Etcdserverpb_AuthRoleListResponse {
        let auth = authService
        return try await call { metadata, options in try await auth.roleList(.init(), metadata: metadata, options: options) }
    }

    public func roleDelete(_ name: String) async throws(EtcdError) -> Etcdserverpb_AuthRoleDeleteResponse {
        let request = Etcdserverpb_AuthRoleDeleteRequest.with { $0.role = name }
        let auth = authService
        return try await call { metadata, options in try await auth.roleDelete(request, metadata: metadata, options: options) }
    }

    public func roleGrantPermission(_ role: String, _ permission: Authpb_Permission) async throws(EtcdError)
        -> Etcdserverpb_AuthRoleGrantPermissionResponse
    {
        let request = Etcdserverpb_AuthRoleGrantPermissionRequest.with {
            $0.name = role
            $0.perm = permission
        }
        let auth = authService
        return try await call { metadata, options in
            try await auth.roleGrantPermission(request, metadata: metadata, options: options)
        }
    }

    public func roleRevokePermission(_ role: String, key: Data, rangeEnd: Data) async throws(EtcdError)
        -> Etcdserverpb_AuthRoleRevokePermissionResponse
    {
        let request = Etcdserverpb_AuthRoleRevokePermissionRequest.with {
            $0.role = role
            $0.key = key
            $0.rangeEnd = rangeEnd
        }
        let auth = authService
        return try await call { metadata, options in
            try await auth.roleRevokePermission(request, metadata: metadata, options: options)
        }
    }
}
