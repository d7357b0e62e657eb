import HTTPServer
import EtcdV2Store
import Foundation
import NIOHTTP1

/// etcd 3.4's `/v2/keys` endpoint over the replicated v2 store: requests parsed and mapped
/// to store operations as etcd maps them (prevExist, prevValue, prevIndex, dir, recursive,
/// refresh, ttl, in-order POST, `wait=true`), answers with etcd's status codes, headers
/// (`X-Etcd-Cluster-Id`, `X-Etcd-Index`, `X-Raft-Index`, `X-Raft-Term`) and JSON.
struct V2KeysAPI {
    let node: StoreNode

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        let clusterHeader = ("X-Etcd-Cluster-Id", String(node.clusterID, radix: 16))
        var response = await answer(request)
        response.headers.append(clusterHeader)
        return response
    }

    private func answer(_ request: HTTPRequest) async -> HTTPResponse {
        guard [.GET, .HEAD, .PUT, .POST, .DELETE].contains(request.method) else {
            return .methodNotAllowed(allow: "GET, HEAD, POST, PUT, DELETE")
        }
        let form: V2Form
        do throws(V2Error) {
            form = try V2Form(request)
        } catch {
            return Self.errorResponse(error)
        }
        let key = form.key
        let auth = await node.v2.auth
        // etcd checks the path as the request spells it (`/foo/` matches `/foo/*`).
        let spelled = String(request.path.dropFirst("/v2/keys".count))
        if auth.enabled,
            !(await V2AuthAPI.allowsKeys(
                request, key: spelled.removingPercentEncoding ?? spelled, recursive: form.recursive, state: auth))
        {
            return Self.errorResponse(V2Error(.unauthorized, cause: "Insufficient credentials", index: 0))
        }
        switch request.method {
        case .GET, .HEAD:
            if form.wait {
                let start = await node.v2.currentIndex
                let since = form.waitIndex.flatMap { $0 == 0 ? nil : $0 } ?? start + 1
                switch await node.v2PastEvent(key: key, recursive: form.recursive, since: since) {
                case .success(let event?): return await eventResponse(event, index: start, created: false)
                case .failure(let error): return Self.errorResponse(error)
                case .success(nil): break
                }
                // etcd sends the status and headers of a long poll at once and the event when
                // it comes: clients tell a quiet watch (their read times out) from a dead server.
                let (_, raftIndex, raftTerm) = await node.v2ReadView()
                var response = HTTPResponse(.ok, contentType: "application/json", body: "")
                response.headers += [("X-Etcd-Index", String(start)), ("X-Raft-Index", String(raftIndex)), ("X-Raft-Term", String(raftTerm))]
                let node = self.node
                let recursive = form.recursive
                response.stream = HTTPBodyStream { writer in
                    guard case .success(let event) = await node.v2Wait(key: key, recursive: recursive, since: since) else { return }
                    try? await writer.write(Array(V2JSON.event(event).utf8))
                }
                return response
            }
            if form.quorum, !(await node.linearizableBarrier()) {
                return Self.errorResponse(V2Error(.raftInternal, cause: "etcdserver: request timed out", index: await node.v2.currentIndex))
            }
            // One hop to the node for the store and the Raft position; the read runs here.
            let (store, raftIndex, raftTerm) = await node.v2ReadView()
            do throws(V2Error) {
                let event = try store.get(key, recursive: form.recursive, sorted: form.sorted, now: StoreNode.v2Now)
                node.countV2Get(succeeded: true)
                return Self.eventResponse(event, index: event.index, created: false, raftIndex: raftIndex, raftTerm: raftTerm)
            } catch {
                node.countV2Get(succeeded: false)
                return Self.errorResponse(error)
            }
        default:
            let v2Request: V2Request
            do throws(V2Error) {
                v2Request = try form.write(method: request.method, now: StoreNode.v2Now)
            } catch {
                return Self.errorResponse(error)
            }
            switch await node.proposeV2(v2Request) {
            case .v2(.success(let events)):
                guard let event = events.first else { return Self.errorResponse(V2Error(.raftInternal, cause: "no event", index: 0)) }
                let created = event.action == .create || (event.action == .set && event.prevNode == nil)
                return await eventResponse(event, index: event.index, created: created)
            case .v2(.failure(let error)):
                return Self.errorResponse(error)
            case .noLeader:
                return Self.errorResponse(V2Error(.leaderElection, cause: "etcdserver: no leader", index: 0))
            default:
                return Self.errorResponse(V2Error(.raftInternal, cause: "etcdserver: request timed out", index: 0))
            }
        }
    }

    private func eventResponse(_ event: V2Event, index: UInt64, created: Bool) async -> HTTPResponse {
        let (_, raftIndex, raftTerm) = await node.v2ReadView()
        return Self.eventResponse(event, index: index, created: created, raftIndex: raftIndex, raftTerm: raftTerm)
    }

    private static func eventResponse(_ event: V2Event, index: UInt64, created: Bool, raftIndex: UInt64, raftTerm: UInt64)
        -> HTTPResponse
    {
        var response = HTTPResponse(created ? .created : .ok, contentType: "application/json", body: V2JSON.event(event))
        response.headers += [("X-Etcd-Index", String(index)), ("X-Raft-Index", String(raftIndex)), ("X-Raft-Term", String(raftTerm))]
        return response
    }

    static func errorResponse(_ error: V2Error) -> HTTPResponse {
        var response = HTTPResponse(
            HTTPResponseStatus(statusCode: error.code.httpStatus), contentType: "application/json", body: V2JSON.error(error))
        response.headers.append(("X-Etcd-Index", String(error.index)))
        return response
    }
}

/// A v2 request's parameters (query and form body together), checked as etcd checks them.
struct V2Form {
    var key: String
    var values: [String: String]
    var recursive = false
    var sorted = false
    var wait = false
    var quorum = false
    var directory = false
    var refresh = false
    var waitIndex: UInt64?
    var previousIndex: UInt64?
    var ttl: Int64?
    var previousExist: Bool?

    init(_ request: HTTPRequest) throws(V2Error) {
        let raw = String(request.path.dropFirst("/v2/keys".count))
        key = "/" + raw.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }.joined(separator: "/")
        values = [:]
        for (name, value) in Self.pairs(request.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? "") {
            values[name] = value
        }
        if request.method != .GET && request.method != .HEAD,
            request.headers.first(name: "content-type")?.hasPrefix("application/x-www-form-urlencoded") ?? !request.body.isEmpty
        {
            for (name, value) in Self.pairs(String(decoding: request.body, as: UTF8.self)) where values[name] == nil {
                values[name] = value
            }
        }
        recursive = try boolean("recursive")
        sorted = try boolean("sorted")
        wait = try boolean("wait")
        quorum = try boolean("quorum")
        directory = try boolean("dir")
        refresh = try boolean("refresh")
        waitIndex = try unsigned("waitIndex", code: .indexNaN)
        previousIndex = try unsigned("prevIndex", code: .indexNaN)
        if let text = values["ttl"], !text.isEmpty {
            guard let parsed = UInt64(text), parsed <= UInt64(Int64.max / 1000) else {
                throw V2Error(.ttlNaN, cause: "invalid value for \"ttl\"", index: 0)
            }
            ttl = Int64(parsed)
        }
        if values["prevExist"] != nil { previousExist = try boolean("prevExist") }
        if let previous = values["prevValue"], previous.isEmpty {
            throw V2Error(.prevValueRequired, cause: "\"prevValue\" cannot be empty", index: 0)
        }
    }

    private func boolean(_ name: String) throws(V2Error) -> Bool {
        guard let text = values[name], !text.isEmpty else { return false }
        switch text {
        case "true", "1", "t", "T", "TRUE", "True": return true
        case "false", "0", "f", "F", "FALSE", "False": return false
        default: throw V2Error(.invalidField, cause: "invalid value for \"\(name)\"", index: 0)
        }
    }

    private func unsigned(_ name: String, code: V2Error.Code) throws(V2Error) -> UInt64? {
        guard let text = values[name], !text.isEmpty else { return nil }
        guard let value = UInt64(text) else { throw V2Error(code, cause: "invalid value for \"\(name)\"", index: 0) }
        return value
    }

    /// The store operation etcd's v2 applier picks for a write.
    func write(method: HTTPMethod, now: V2Store.Time) throws(V2Error) -> V2Request {
        let value = values["value"]
        let previousValue = values["prevValue"]
        let hasComparison = (previousIndex ?? 0) > 0 || previousValue != nil
        if refresh {
            if let value, !value.isEmpty { throw V2Error(.refreshValue, cause: "A value was provided on a refresh", index: 0) }
            if ttl == nil { throw V2Error(.refreshTTLRequired, cause: "No TTL value set", index: 0) }
        }
        var request: V2Request
        switch method {
        case .POST:
            request = V2Request(.createInOrder, key: key, value: value ?? "", now: now)
        case .DELETE:
            request = V2Request(hasComparison ? .compareAndDelete : .delete, key: key, now: now)
        default:
            switch previousExist {
            case true?:
                request = V2Request(hasComparison ? .compareAndSwap : .update, key: key, value: value, now: now)
            case false?:
                request = V2Request(.create, key: key, value: value ?? "", now: now)
            case nil where hasComparison:
                request = V2Request(.compareAndSwap, key: key, value: value, now: now)
            case nil:
                request = V2Request(.set, key: key, value: value ?? "", now: now)
            }
        }
        request.directory = directory
        request.recursive = recursive
        request.refresh = refresh
        request.ttl = ttl
        request.previousValue = previousValue
        request.previousIndex = previousIndex
        return request
    }

    /// `a=1&b=x+y` decoded as a form.
    static func pairs(_ text: String) -> [(String, String)] {
        text.split(separator: "&").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = parts.first, !name.isEmpty else { return nil }
            func decode(_ part: Substring) -> String {
                let spaced = part.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            return (decode(name), parts.count > 1 ? decode(parts[1]) : "")
        }
    }
}
