import HTTPServer
import EtcdClient
import Foundation
import GoFormat
import NIOHTTP1
import Synchronization

/// etcd 3.4's `/v2/members` (list, add, remove, update), `/v2/members/leader` and
/// `/v2/machines`, over the same membership changes as the v3 Cluster service. A change
/// that reaches a follower is passed to the leader's client URL.
struct V2MembersAPI {
    let node: StoreNode
    var maxLearners = 1

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        let path = String(request.path)
        if path == "/v2/machines" {
            guard request.method == .GET || request.method == .HEAD else { return Self.methodNotAllowed("GET, HEAD") }
            let urls = await node.members.sorted { $0.key < $1.key }.flatMap(\.value.clientURLs)
            return HTTPResponse(.ok, sniffedType: "text/plain; charset=utf-8", body: urls.joined(separator: ", "))
        }
        let rest = path.dropFirst("/v2/members".count).split(separator: "/").map(String.init)
        switch (request.method, rest.count) {
        case (.GET, 0), (.HEAD, 0):
            let members = await node.members.sorted { $0.key < $1.key }.map { Self.json($0.key, $0.value) }
            return Self.json(.ok, "{\"members\":[" + members.joined(separator: ",") + "]}")
        case (.GET, 1) where rest[0] == "leader":
            let leader = await node.leader
            guard leader != 0, let record = await node.members[leader] else {
                return Self.message(.serviceUnavailable, "During leader election")
            }
            return Self.json(.ok, Self.json(leader, record))
        case (.POST, 0):
            guard let urls = Self.peerURLs(request.body) else { return Self.message(.badRequest, "Unable to decode the request body") }
            let outcome = await node.addMember(peerURLs: urls, learner: false, maxLearners: maxLearners)
            if case .done(let id) = outcome, let record = await node.members[id] {
                return Self.json(.created, Self.json(id, record))
            }
            return await failure(outcome, request)
        case (.DELETE, 1), (.PUT, 1):
            guard let id = UInt64(rest[0], radix: 16) else { return Self.message(.notFound, "No such member: \(rest[0])") }
            let outcome: StoreNode.MembershipOutcome
            if request.method == .DELETE {
                outcome = await node.removeMember(id)
            } else {
                guard let urls = Self.peerURLs(request.body) else { return Self.message(.badRequest, "Unable to decode the request body") }
                outcome = await node.updateMember(id, peerURLs: urls)
            }
            if case .done = outcome { return HTTPResponse(.noContent, sniffedType: "text/plain; charset=utf-8", body: "") }
            return await failure(outcome, request)
        case (.GET, _), (.HEAD, _):
            return .notFound
        default:
            return Self.methodNotAllowed("GET, HEAD, POST, PUT, DELETE")
        }
    }

    /// etcd's answers for a refused change; a follower passes the request to the leader.
    private func failure(_ outcome: StoreNode.MembershipOutcome, _ request: HTTPRequest) async -> HTTPResponse {
        switch outcome {
        case .done: return Self.message(.internalServerError, "unexpected answer")
        case .timedOut: return Self.message(.internalServerError, "etcdserver: request timed out")
        case .notLeader(let url?):
            do {
                let target = try HTTPURL(parsing: url)
                let answer = try await HTTP1Exchange.perform(
                    request.method.rawValue, url: target, pathAndQuery: request.uri, headers: [("Content-Type", "application/json")],
                    body: request.body.isEmpty ? nil : request.body, tls: MemberTLS.forClientPort(secure: target.secure), dialTimeout: .seconds(2),
                    headerTimeout: .seconds(10))
                var response = HTTPResponse(HTTPResponseStatus(statusCode: answer.status), contentType: answer.header("Content-Type") ?? "application/json", body: "")
                response.body = answer.body
                return response
            } catch {
                return Self.message(.internalServerError, "etcdserver: cannot reach the leader: \(error)")
            }
        case .notLeader(nil):
            return Self.message(.serviceUnavailable, "etcdserver: no leader")
        case .refused(let code, let message):
            switch code {
            case .notFound:
                if message.contains("ID removed") { return Self.message(.gone, "Member permanently removed: \(message)") }
                return Self.message(.notFound, "No such member")
            case .failedPrecondition where message.contains("Peer URLs already exists"): return Self.message(.conflict, message)
            case .invalidArgument: return Self.message(.badRequest, message)
            default: return Self.message(.internalServerError, message)
            }
        }
    }

    static func json(_ id: UInt64, _ record: StoreNode.MemberRecord) -> String {
        "{\"id\":\"\(String(id, radix: 16))\",\"name\":\(GoJSONString.quote(record.name)),\"peerURLs\":["
            + record.peerURLs.map(GoJSONString.quote).joined(separator: ",") + "],\"clientURLs\":["
            + record.clientURLs.map(GoJSONString.quote).joined(separator: ",") + "]}"
    }

    static func json(_ status: HTTPResponseStatus, _ body: String) -> HTTPResponse {
        HTTPResponse(status, contentType: "application/json", body: body + "\n")
    }

    /// etcd's `httptypes.HTTPError`: `{"message": …}`.
    static func message(_ status: HTTPResponseStatus, _ text: String) -> HTTPResponse {
        json(status, "{\"message\":" + GoJSONString.quote(text) + "}")
    }

    static func methodNotAllowed(_ allowed: String) -> HTTPResponse { .methodNotAllowed(allow: allowed) }

    /// `{"peerURLs": [...]}`, each a URL with a scheme, host and port.
    static func peerURLs(_ body: [UInt8]) -> [String]? {
        struct Body: Decodable { var peerURLs: [String] }
        guard let decoded = try? JSONDecoder().decode(Body.self, from: Data(body)), !decoded.peerURLs.isEmpty,
            decoded.peerURLs.allSatisfy({ (try? hostAndPort($0, flag: "peerURLs")) != nil })
        else { return nil }
        return decoded.peerURLs
    }
}
