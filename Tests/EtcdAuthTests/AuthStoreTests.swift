import Testing

@testable import EtcdAuth

@Suite struct AuthStoreTests {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    private func store(_ changes: [AuthStore.Change]) throws -> AuthStore {
        var store = AuthStore()
        for change in changes { try store.apply(change) }
        return store
    }

    @Test func enablingNeedsARootUserWithTheRootRole() throws {
        var auth = AuthStore()
        #expect(throws: AuthError.rootUserMissing) { try auth.apply(.enable) }
        try auth.apply(.userAdd(name: "root", passwordHash: "h", noPassword: false))
        #expect(throws: AuthError.rootRoleMissing) { try auth.apply(.enable) }
        try auth.apply(.userGrantRole(user: "root", role: "root"))
        try auth.apply(.enable)
        #expect(auth.enabled)
        #expect(throws: AuthError.invalidManagement) { try auth.apply(.userDelete(name: "root")) }
        #expect(throws: AuthError.invalidManagement) { try auth.apply(.userRevokeRole(user: "root", role: "root")) }
    }

    @Test func failedChangesLeaveTheStoreAsItWas() throws {
        var auth = try store([.userAdd(name: "alice", passwordHash: "h", noPassword: false), .roleAdd(name: "r")])
        let before = auth
        #expect(throws: AuthError.userExists) { try auth.apply(.userAdd(name: "alice", passwordHash: "x", noPassword: false)) }
        #expect(throws: AuthError.roleNotFound) { try auth.apply(.userGrantRole(user: "alice", role: "none")) }
        #expect(throws: AuthError.roleNotGranted) { try auth.apply(.userRevokeRole(user: "alice", role: "r")) }
        #expect(throws: AuthError.permissionNotGranted) { try auth.apply(.roleRevokePermission(role: "r", key: [1], rangeEnd: [])) }
        #expect(throws: AuthError.userEmpty) { try auth.apply(.userAdd(name: "", passwordHash: "", noPassword: true)) }
        #expect(auth == before)
    }

    @Test func prefixPermissionsCoverRangesInsideOnly() throws {
        let auth = try store([
            .userAdd(name: "alice", passwordHash: "h", noPassword: false), .roleAdd(name: "app"),
            .roleGrantPermission(role: "app", permission: .init(type: .readwrite, key: bytes("/app/"), rangeEnd: bytes("/app0"))),
            .roleGrantPermission(role: "app", permission: .init(type: .read, key: bytes("/shared"), rangeEnd: [])),
            .userGrantRole(user: "alice", role: "app"),
        ])
        #expect(auth.isPermitted("alice", .write, key: bytes("/app/x"), rangeEnd: []))
        #expect(auth.isPermitted("alice", .read, key: bytes("/app/"), rangeEnd: bytes("/app0")))
        #expect(auth.isPermitted("alice", .read, key: bytes("/app/a"), rangeEnd: bytes("/app/b")))
        #expect(!auth.isPermitted("alice", .read, key: bytes("/app/"), rangeEnd: bytes("/app1")))
        #expect(!auth.isPermitted("alice", .read, key: bytes("/"), rangeEnd: [0]))
        #expect(!auth.isPermitted("alice", .write, key: bytes("/other"), rangeEnd: []))
        #expect(auth.isPermitted("alice", .read, key: bytes("/shared"), rangeEnd: []))
        #expect(!auth.isPermitted("alice", .write, key: bytes("/shared"), rangeEnd: []))
        #expect(!auth.isPermitted("bob", .read, key: bytes("/app/x"), rangeEnd: []))
    }

    @Test func adjacentPermissionsJoinAndOpenEndedOnesReachEverything() throws {
        let auth = try store([
            .userAdd(name: "u", passwordHash: "h", noPassword: false), .roleAdd(name: "a"), .roleAdd(name: "b"),
            .roleGrantPermission(role: "a", permission: .init(type: .read, key: bytes("a"), rangeEnd: bytes("m"))),
            .roleGrantPermission(role: "b", permission: .init(type: .read, key: bytes("m"), rangeEnd: [0])),
            .userGrantRole(user: "u", role: "a"), .userGrantRole(user: "u", role: "b"),
        ])
        #expect(auth.isPermitted("u", .read, key: bytes("b"), rangeEnd: bytes("z")))
        #expect(auth.isPermitted("u", .read, key: bytes("a"), rangeEnd: [0]))
        #expect(!auth.isPermitted("u", .read, key: bytes("0"), rangeEnd: bytes("b")))
    }

    @Test func revokingARoleOrDeletingAUserTakesItsRightsAndTokens() throws {
        var auth = try store([
            .userAdd(name: "root", passwordHash: "h", noPassword: false), .userGrantRole(user: "root", role: "root"),
            .userAdd(name: "u", passwordHash: "h", noPassword: false), .roleAdd(name: "r"),
            .roleGrantPermission(role: "r", permission: .init(type: .read, key: bytes("k"), rangeEnd: [])),
            .userGrantRole(user: "u", role: "r"), .enable, .issueToken(user: "u", token: "t.1"),
        ])
        #expect(auth.tokens["t.1"] == "u")
        #expect(auth.isPermitted("u", .read, key: bytes("k"), rangeEnd: []))
        try auth.apply(.roleDelete(name: "r"))
        #expect(auth.users["u"]?.roles == [])
        #expect(!auth.isPermitted("u", .read, key: bytes("k"), rangeEnd: []))
        try auth.apply(.userChangePassword(name: "u", passwordHash: "h2"))
        #expect(auth.tokens["t.1"] == nil)
        #expect(auth.isAdmin("root") && !auth.isAdmin("u"))
    }
}
