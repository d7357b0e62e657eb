import EtcdAPI
import EtcdAuth
import Foundation
import GRPCCore
import Synchronization

/// Authentication on a member: auth changes go through the log (`AuthStore.Change` as
/// JSON), every request's caller is resolved from its token (or its certificate's common
/// name) against the replicated state, and the services ask `permit` before they act.
extension StoreNode {
    /// How long a simple token lives without use (`--auth-token-ttl`, etcd's 300 s).
    nonisolated static let tokenLifetime = Mutex(Duration.seconds(300))
    /// When each simple token runs out on this member: every use pushes it back, as
    /// etcd's simple tokens. Tokens are replicated; their clocks are each member's own.
    nonisolated static let tokenDeadlines = Mutex([String: ContinuousClock.Instant]())
    /// `--auth-token jwt,…`: signed tokens instead of simple ones.
    nonisolated static let jwt = Mutex<JWTTokens?>(nil)

    func applyAuth(_ body: Data) -> Applied {
        guard let change = try? JSONDecoder().decode(AuthStore.Change.self, from: body) else {
            return .auth(.failure(.invalidManagement))
        }
        do throws(AuthError) {
            try auth.apply(change)
        } catch {
            return .auth(.failure(error))
        }
        if case .issueToken(_, let token) = change {
            let lifetime = Self.tokenLifetime.withLock { $0 }
            Self.tokenDeadlines.withLock { $0[token] = .now + lifetime }
        }
        return .auth(.success(()))
    }

    /// Proposes an auth change and waits for it; etcd's error when it was refused.
    func proposeAuth(_ change: AuthStore.Change) async throws {
        let body = Array((try? JSONEncoder().encode(change)) ?? Data())
        switch await propose(.auth, body) {
        case .auth(.success): return
        case .auth(.failure(let error)): throw error.rpcError
        case let other: throw KVService.failure(other)
        }
    }

    /// The user a call acts as: nil while auth is off (nothing is checked). With auth on,
    /// the token names the user; without one, a verified client certificate's common name
    /// does; else etcd's "user name is empty".
    nonisolated func caller(_ credentials: CallerCredentials) throws(AuthError) -> (store: AuthStore, user: String)? {
        // With auth off (the common case) nothing is copied out of the lock.
        guard let store = authNow.withLock({ $0.enabled ? $0 : nil }) else { return nil }
        if let token = credentials.token, !token.isEmpty {
            if let jwt = Self.jwt.withLock({ $0 }) {
                // etcd 3.4 takes a token made before a later auth change as well: the
                // permissions checked are the current ones either way.
                guard let (user, _) = jwt.check(token) else { throw .invalidToken }
                return (store, user)
            }
            guard let user = store.tokens[token] else { throw .invalidToken }
            let now = ContinuousClock.now
            let lifetime = Self.tokenLifetime.withLock { $0 }
            let alive = Self.tokenDeadlines.withLock { deadlines -> Bool in
                guard let deadline = deadlines[token], deadline > now else {
                    deadlines[token] = nil
                    return false
                }
                deadlines[token] = now + lifetime
                return true
            }
            guard alive else { throw .invalidToken }
            return (store, user)
        }
        if let name = credentials.certificateCommonName, !name.isEmpty { return (store, name) }
        throw .userEmpty
    }

    /// nil when the caller may go on (auth off, or `check` passes); else the error to answer.
    nonisolated func permit(_ credentials: CallerCredentials, _ check: (AuthStore, String) -> Bool) -> RPCError? {
        do throws(AuthError) {
            guard let (store, user) = try caller(credentials) else { return nil }
            return check(store, user) ? nil : AuthError.permissionDenied.rpcError
        } catch {
            return error.rpcError
        }
    }

    /// Whether the caller is an administrator (root role), when auth is on.
    nonisolated func permitAdmin(_ credentials: CallerCredentials) -> RPCError? {
        permit(credentials) { store, user in store.isAdmin(user) }
    }

    /// A range read: read permission over `[key, rangeEnd)`.
    nonisolated func permitRead(_ credentials: CallerCredentials, key: Data, rangeEnd: Data) -> RPCError? {
        permit(credentials) { store, user in store.isPermitted(user, .read, key: Array(key), rangeEnd: Array(rangeEnd)) }
    }

    /// Every key a txn compares or reads needs read, every key it writes needs write,
    /// nested txns included (etcd's `checkTxnAuth`).
    nonisolated func permitTxn(_ credentials: CallerCredentials, _ txn: Etcdserverpb_TxnRequest) -> RPCError? {
        permit(credentials) { store, user in Self.txnPermitted(txn, store: store, user: user) }
    }

    private nonisolated static func txnPermitted(_ txn: Etcdserverpb_TxnRequest, store: AuthStore, user: String) -> Bool {
        for compare in txn.compare
        where !store.isPermitted(user, .read, key: Array(compare.key), rangeEnd: Array(compare.rangeEnd)) {
            return false
        }
        for operation in txn.success + txn.failure {
            switch operation.request {
            case .requestRange(let range):
                if !store.isPermitted(user, .read, key: Array(range.key), rangeEnd: Array(range.rangeEnd)) { return false }
            case .requestPut(let put):
                if !store.isPermitted(user, .write, key: Array(put.key), rangeEnd: []) { return false }
                if put.prevKv && !store.isPermitted(user, .read, key: Array(put.key), rangeEnd: []) { return false }
            case .requestDeleteRange(let delete):
                if !store.isPermitted(user, .write, key: Array(delete.key), rangeEnd: Array(delete.rangeEnd)) { return false }
                if delete.prevKv && !store.isPermitted(user, .read, key: Array(delete.key), rangeEnd: Array(delete.rangeEnd)) {
                    return false
                }
            case .requestTxn(let nested):
                if !txnPermitted(nested, store: store, user: user) { return false }
            case nil:
                break
            }
        }
        return true
    }

    /// Revoking a lease deletes its keys: write permission on each (etcd's `checkLeasePuts`).
    func permitLeaseRevoke(_ credentials: CallerCredentials, id: Int64) -> RPCError? {
        let keys = keys(attachedTo: id)
        return permit(credentials) { store, user in
            keys.allSatisfy { store.isPermitted(user, .write, key: $0, rangeEnd: []) }
        }
    }

    /// Tokens whose time ran out are forgotten (their replicated entry stays harmless:
    /// `caller` refuses a token without a deadline).
    nonisolated static func dropExpiredTokens() {
        let now = ContinuousClock.now
        tokenDeadlines.withLock { deadlines in deadlines = deadlines.filter { $0.value > now } }
    }
}

extension AuthError {
    var rpcError: RPCError {
        let code: RPCError.Code =
            switch grpcCode {
            case 3: .invalidArgument
            case 7: .permissionDenied
            case 16: .unauthenticated
            default: .failedPrecondition
            }
        return RPCError(code: code, message: message)
    }
}
