import HTTPServer
import EtcdAPI
public import EtcdClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// `coreos etcd discovery`: the public discovery service's protocol (`GET /new?size=N`
/// hands out a token URL; `/<token>…` answers as etcd's v2 keys API does under
/// `/v2/keys/_etcd/registry/<token>…`), kept in a v3 store: our own `coreos etcd` or any
/// etcd 3.x, with or without its v2 API. Registry keys are the v2 paths as v3 keys
/// (`/_etcd/registry/<token>/<member-id>`); v2 indexes are v3 revisions, so `waitIndex`
/// is a v3 watch from that revision.
///
/// Sizes: 1 to 9 (a larger cluster only slows consensus; `force=true` allows up to 99);
/// an even size is accepted with a warning (`X-Discovery-Warning`), since it tolerates no
/// more failures than the odd size below it.
public struct DiscoveryService: Sendable {
    public var listenHost: String
    public var listenPort: Int
    /// The prefix of the token URLs handed out (`--host`); empty: `http://<Host header>`.
    public var publicURL: String
    public var etcd: EtcdClientConfiguration
    /// How long a `wait=true` request is held before it is answered with the listing.
    public var maxWait: Duration = .seconds(300)

    public init(listenHost: String, listenPort: Int, publicURL: String, etcd: EtcdClientConfiguration) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.publicURL = publicURL
        self.etcd = etcd
    }

    static let registry = "/_etcd/registry"

    /// Serves until cancelled; `ready` gets the bound address.
    public func run(ready: @escaping @Sendable (String) -> Void) async throws {
        try await EtcdClient.withClient(etcd) { client in
            let responder = DiscoveryResponder(client: client, publicURL: publicURL, maxWait: maxWait)
            try await HTTP1Listener(host: listenHost, port: listenPort, responder: responder).run { address in
                ready("\(address.ipAddress ?? listenHost):\(address.port ?? listenPort)")
            }
        }
    }
}

/// The discovery endpoints over one v3 client.
struct DiscoveryResponder: HTTPResponder {
    let client: EtcdClient
    let publicURL: String
    let maxWait: Duration

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        let path = String(request.path)
        let query = Self.query(request.uri)
        if path == "/health" { return HTTPResponse(.ok, contentType: "text/plain; charset=utf-8", body: "OK") }
        if path == "/new" && (request.method == .GET || request.method == .POST) {
            return await newToken(size: query["size"], force: query["force"] == "true", host: request.headers.first(name: "host"))
        }
        let parts = path.split(separator: "/").map(String.init)
        guard let token = parts.first, Self.validToken(token), parts.count <= 3,
            parts.dropFirst().allSatisfy({ Self.validName($0) })
        else { return Self.v2Error(404, code: 100, message: "Key not found", cause: path, index: 0) }
        let key = DiscoveryService.registry + path
        do {
            switch request.method {
            case .GET:
                if query["wait"] == "true" {
                    return try await wait(directory: DiscoveryService.registry + "/" + token, key: key, from: query["waitIndex"].flatMap(Int64.init))
                }
                return try await get(key)
            case .PUT:
                let form = Self.query("?" + String(decoding: request.body, as: UTF8.self))
                let value = form["value"] ?? query["value"] ?? ""
                guard value.utf8.count <= 4096, parts.count >= 2 else {
                    return Self.v2Error(400, code: 209, message: "Invalid field", cause: "value", index: 0)
                }
                return try await put(key, value: value, mustCreate: (form["prevExist"] ?? query["prevExist"]) == "false")
            case .DELETE:
                return try await delete(key)
            default:
                return .methodNotAllowed()
            }
        } catch {
            return Self.v2Error(503, code: 300, message: "Raft Internal Error", cause: "\(error)", index: 0)
        }
    }

    // MARK: Tokens

    private func newToken(size text: String?, force: Bool, host: String?) async -> HTTPResponse {
        guard let size = Int(text ?? "3"), size >= 1 else {
            return HTTPResponse(.badRequest, contentType: "text/plain; charset=utf-8", body: "size must be a positive number\n")
        }
        if size > (force ? 99 : 9) {
            return HTTPResponse(
                .badRequest, contentType: "text/plain; charset=utf-8",
                body: "size \(size) is refused: more than 9 members slows every write and adds no useful fault tolerance; add force=true to insist\n")
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
        let token = bytes.map { String(format: "%02x", $0) }.joined()
        do {
            _ = try await client.put(DiscoveryService.registry + "/\(token)/_config/size", String(size))
        } catch {
            return HTTPResponse(.internalServerError, contentType: "text/plain; charset=utf-8", body: "Unable to generate token: \(error)\n")
        }
        let prefix = publicURL.isEmpty ? "http://" + (host ?? "localhost") : publicURL
        var response = HTTPResponse(.ok, contentType: "text/plain; charset=utf-8", body: "\(prefix)/\(token)")
        if size % 2 == 0 {
            response.headers.append(
                ("X-Discovery-Warning", "size \(size) is even: it tolerates no more failures than a cluster of \(size - 1)"))
        }
        return response
    }

    static func validToken(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 64 && text.utf8.allSatisfy { $0.isAlphanumeric || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }
    }

    static func validName(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 64 && text != "." && text != ".."
            && text.utf8.allSatisfy { $0.isAlphanumeric || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }

    // MARK: v2 keys over v3

    private func get(_ key: String) async throws -> HTTPResponse {
        let exact = try await client.get(key)
        if let kv = exact.kvs.first {
            return Self.v2Answer(200, ["action": "get", "node": Self.node(kv)], index: exact.header.revision)
        }
        let listing = try await client.get(key + "/", prefix: true)
        guard !listing.kvs.isEmpty else {
            return Self.v2Error(404, code: 100, message: "Key not found", cause: key, index: listing.header.revision)
        }
        // The directory's direct children; names starting with `_` are hidden, as in v2.
        let children = listing.kvs.filter { kv in
            let rest = String(decoding: kv.key.dropFirst(key.utf8.count + 1), as: UTF8.self)
            return !rest.contains("/") && !rest.hasPrefix("_")
        }
        let created = listing.kvs.map(\.createRevision).min() ?? 0
        let node: [String: Any] = [
            "key": key, "dir": true, "nodes": children.map(Self.node), "createdIndex": created, "modifiedIndex": created,
        ]
        return Self.v2Answer(200, ["action": "get", "node": node], index: listing.header.revision)
    }

    private func put(_ key: String, value: String, mustCreate: Bool) async throws -> HTTPResponse {
        var request = Etcdserverpb_TxnRequest()
        var put = Etcdserverpb_RequestOp()
        var putRequest = Etcdserverpb_PutRequest()
        putRequest.key = Data(key.utf8)
        putRequest.value = Data(value.utf8)
        putRequest.prevKv = true
        put.requestPut = putRequest
        var range = Etcdserverpb_RequestOp()
        var rangeRequest = Etcdserverpb_RangeRequest()
        rangeRequest.key = Data(key.utf8)
        range.requestRange = rangeRequest
        if mustCreate {
            var compare = Etcdserverpb_Compare()
            compare.key = Data(key.utf8)
            compare.target = .create
            compare.result = .equal
            compare.createRevision = 0
            request.compare = [compare]
        }
        request.success = [put, range]
        request.failure = [range]
        let response = try await client.txn(request)
        guard response.succeeded else {
            return Self.v2Error(412, code: 105, message: "Key already exists", cause: key, index: response.header.revision)
        }
        guard response.responses.count == 2, case .responseRange(let stored)? = response.responses[1].response,
            let kv = stored.kvs.first
        else { return Self.v2Error(503, code: 300, message: "Raft Internal Error", cause: key, index: response.header.revision) }
        var body: [String: Any] = ["action": mustCreate ? "create" : "set", "node": Self.node(kv)]
        if case .responsePut(let previous)? = response.responses[0].response, previous.hasPrevKv {
            body["prevNode"] = Self.node(previous.prevKv)
        }
        return Self.v2Answer(kv.version == 1 ? 201 : 200, body, index: response.header.revision)
    }

    private func delete(_ key: String) async throws -> HTTPResponse {
        var request = Etcdserverpb_DeleteRangeRequest()
        request.key = Data(key.utf8)
        request.prevKv = true
        let response = try await client.delete(request)
        guard let previous = response.prevKvs.first else {
            return Self.v2Error(404, code: 100, message: "Key not found", cause: key, index: response.header.revision)
        }
        var node = Self.node(previous)
        node["modifiedIndex"] = response.header.revision
        node["value"] = nil
        return Self.v2Answer(200, ["action": "delete", "node": node, "prevNode": Self.node(previous)], index: response.header.revision)
    }

    /// `wait=true`: the first change under the token's directory at or after `from`
    /// (v2's recursive wait), or the listing again after `maxWait`.
    private func wait(directory: String, key: String, from start: Int64?) async throws -> HTTPResponse {
        var request = Etcdserverpb_WatchCreateRequest()
        request.key = Data((directory + "/").utf8)
        (request.key, request.rangeEnd) = EtcdKeyRange.prefix(request.key)
        request.startRevision = start ?? 0
        request.prevKv = true
        let limit = maxWait
        let watchRequest = request
        let client = self.client
        do {
            return try await withThrowingTaskGroup(of: HTTPResponse?.self) { group in
                group.addTask {
                    try await client.watch(watchRequest) { responses in
                        for try await response in responses {
                            guard let event = response.events.first(where: { !Self.hidden($0.kv.key, under: directory) }) else { continue }
                            var node = Self.node(event.kv)
                            var body: [String: Any] = [:]
                            if event.type == .delete {
                                node["value"] = nil
                                body["action"] = "delete"
                            } else {
                                body["action"] = event.kv.version == 1 ? "create" : "set"
                            }
                            body["node"] = node
                            if event.hasPrevKv { body["prevNode"] = Self.node(event.prevKv) }
                            return Self.v2Answer(200, body, index: response.header.revision)
                        }
                        return nil
                    }
                }
                group.addTask {
                    try await Task.sleep(for: limit)
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                if let first { return first }
                return try await get(key)
            }
        } catch let error as EtcdError {
            if case .compacted(let revision) = error.code {
                return Self.v2Error(
                    400, code: 401, message: "The event in requested index is outdated and cleared",
                    cause: "the requested history has been cleared [\(revision)/\(start ?? 0)]", index: revision)
            }
            throw error
        }
    }

    private static func hidden(_ key: Data, under directory: String) -> Bool {
        let rest = String(decoding: key.dropFirst(directory.utf8.count + 1), as: UTF8.self)
        return rest.split(separator: "/").contains { $0.hasPrefix("_") }
    }

    // MARK: v2 JSON

    static func node(_ kv: Mvccpb_KeyValue) -> [String: Any] {
        ["key": String(decoding: kv.key, as: UTF8.self), "value": String(decoding: kv.value, as: UTF8.self),
         "createdIndex": kv.createRevision, "modifiedIndex": kv.modRevision]
    }

    static func v2Answer(_ status: Int, _ body: [String: Any], index: Int64) -> HTTPResponse {
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        var response = HTTPResponse(HTTPResponseStatus(statusCode: status), contentType: "application/json", body: "")
        response.body = Array(data) + [0x0a]
        response.headers.append(("X-Etcd-Index", String(index)))
        return response
    }

    static func v2Error(_ status: Int, code: Int, message: String, cause: String, index: Int64) -> HTTPResponse {
        v2Answer(status, ["errorCode": code, "message": message, "cause": cause, "index": index], index: index)
    }

    /// A request's query (or form body) by name; a repeated name keeps its last value.
    static func query(_ uri: String) -> [String: String] {
        Dictionary(HTTPQuery.pairs(inTarget: uri).map { ($0.name, $0.value) }) { _, last in last }
    }
}

private extension UInt8 {
    var isAlphanumeric: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}
