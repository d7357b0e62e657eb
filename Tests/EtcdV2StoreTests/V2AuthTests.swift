import EtcdV2Store
import Testing

/// v2 auth's records through the store (as the log applies them) and its checks, as etcd 3.4.
@Suite struct V2AuthTests {
    private func applied(_ store: inout V2Store, _ operation: V2Request.Operation, _ key: String, _ value: String? = nil) throws {
        if case .failure(let error) = store.apply(V2Request(operation, key: key, value: value, now: 0)) { throw error }
    }

    @Test func recordsCountInTheIndexAndSurviveASnapshot() throws {
        var store = V2Store()
        try applied(&store, .authCreate, "roles/foo", V2Role(name: "foo", read: nil, write: nil).json)
        try applied(&store, .authCreate, "users/root", V2User(name: "root", password: "$2a$04$x", roles: []).json(withPassword: true))
        try applied(&store, .authEnable, "enabled", "true")
        #expect(store.currentIndex == 3)
        #expect(store.auth.enabled)
        #expect(store.auth.user("root")?.roles == ["root"], "root always has the root role")
        #expect(throws: V2Error.self) { try applied(&store, .authCreate, "roles/foo", V2Role(name: "foo", read: [], write: []).json) }
        #expect(throws: V2Error.self) { try applied(&store, .authDelete, "users/nobody") }
        #expect(store.currentIndex == 3, "a refused change writes nothing")
        let restored = try #require(V2Store(decoding: store.encoded()))
        #expect(restored.auth == store.auth && restored.currentIndex == 3)
        // A snapshot from before v2 auth (the tree alone) still reads.
        #expect(V2Store(decoding: V2Store().encoded())?.auth == V2AuthState())
    }

    @Test func patternsGuestsAndRoot() {
        var state = V2AuthState()
        state.enabled = true
        state.roles["foo"] = V2Role(name: "foo", read: ["/foo", "/bar/*"], write: ["/foo"])
        let user = V2User(name: "u", password: "", roles: ["foo"])
        #expect(state.allows(user, key: "/foo", write: true, recursive: false))
        #expect(!state.allows(user, key: "/foo", write: true, recursive: true), "an exact pattern grants no subtree")
        #expect(state.allows(user, key: "/bar/x/y", write: false, recursive: true))
        #expect(!state.allows(user, key: "/bar/x", write: true, recursive: false))
        #expect(!state.allows(nil, key: "/foo", write: false, recursive: false), "no guest role: no guest access")
        state.roles["guest"] = V2AuthState.defaultGuestRole
        #expect(state.allows(nil, key: "/anything", write: true, recursive: false))
        #expect(state.allows(V2User(name: "r", password: "", roles: ["root"]), key: "/x", write: true, recursive: true))
    }

    @Test func changesAreCheckedWithEtcdsWords() throws {
        var state = V2AuthState()
        let hash: (String) throws -> String = { "hash(" + $0 + ")" }
        #expect(throws: V2AuthError(400, "auth: Cannot create user a with an empty password")) {
            try state.userChange(name: "a", password: nil, roles: nil, grant: [], revoke: [], hash: hash)
        }
        let (created, isNew) = try state.userChange(name: "a", password: "p", roles: nil, grant: [], revoke: [], hash: hash)
        #expect(isNew && created.password == "hash(p)")
        state.users["a"] = created
        let (granted, _) = try state.userChange(name: "a", password: nil, roles: nil, grant: ["r2", "r1"], revoke: [], hash: hash)
        #expect(granted.roles == ["r1", "r2"])
        state.users["a"] = granted
        #expect(throws: V2AuthError(409, "auth: Granting duplicate role r1 for user a")) {
            try state.userChange(name: "a", password: nil, roles: nil, grant: ["r1"], revoke: [], hash: hash)
        }
        #expect(throws: V2AuthError(409, "auth: Revoking ungranted role x for user a")) {
            try state.userChange(name: "a", password: nil, roles: nil, grant: [], revoke: ["x"], hash: hash)
        }
        #expect(throws: V2AuthError(403, "auth: Cannot modify role root: is root role.")) {
            try state.roleChange(V2Role(name: "root", read: nil, write: nil), grant: nil, revoke: nil)
        }
        #expect(throws: V2AuthError(409, "auth: No root user available, please create one")) { try state.checkEnable() }
        state.roles["r"] = V2Role(name: "r", read: nil, write: nil)
        let (role, _) = try state.roleChange(
            V2Role(name: "r", read: nil, write: nil), grant: V2Role(name: "r", read: ["/b", "/a"], write: nil), revoke: nil)
        #expect(role.read == ["/a", "/b"] && role.write == [])
        #expect(V2Role(name: "r", read: nil, write: nil).json == #"{"role":"r","permissions":{"kv":{"read":null,"write":null}}}"#)
    }
}
