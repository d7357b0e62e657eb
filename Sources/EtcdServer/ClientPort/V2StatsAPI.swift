import HTTPServer
import Foundation
import GoFormat
import NIOHTTP1
import Synchronization

/// etcd's `/v2/stats/self`, `/v2/stats/leader` and `/v2/stats/store`: this member's Raft
/// traffic, the leader's view of its followers, and the v2 store's operation counts.
struct V2StatsAPI {
    let node: StoreNode

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        guard request.method == .GET || request.method == .HEAD else {
            return .methodNotAllowed(allow: "GET", nosniff: true)
        }
        switch request.path {
        case "/v2/stats/self": return HTTPResponse(.ok, contentType: "application/json", body: await selfStats())
        case "/v2/stats/leader":
            guard let body = await leaderStats() else {
                return HTTPResponse(.forbidden, contentType: "application/json", body: #"{"message":"not current leader"}"#)
            }
            return HTTPResponse(.ok, contentType: "application/json", body: body)
        case "/v2/stats/store": return HTTPResponse(.ok, contentType: "application/json", body: await storeStats())
        default: return .notFound
        }
    }

    private func selfStats() async -> String {
        let id = String(node.memberID, radix: 16)
        let name = node.membersNow.withLock { $0[node.memberID]?.name } ?? ""
        let state = await node.raftStateName
        let stats = await node.peerStats
        let leader = await node.leader
        let leaderSince = await node.leaderSince
        let uptime = GoTime.duration(nanoseconds: Int64(Date().timeIntervalSince(leaderSince) * 1e9))
        return #"{"name":\#(GoJSONString.quote(name)),"id":"\#(id)","state":"\#(state)","startTime":"\#(GoTime.rfc3339Nano(node.started))","#
            + #""leaderInfo":{"leader":"\#(leader == 0 ? "" : String(leader, radix: 16))","uptime":"\#(uptime)","startTime":"\#(GoTime.rfc3339Nano(leaderSince))"},"#
            + #""recvAppendRequestCnt":\#(stats.receivedAppends),"sendAppendRequestCnt":\#(stats.sentAppends)}"#
    }

    private func leaderStats() async -> String? {
        guard await node.isLeader else { return nil }
        let stats = await node.peerStats
        let others = node.membersNow.withLock { Array($0.keys) }.filter { $0 != node.memberID }.sorted()
        let followers = others.map { id -> String in
            let follower = stats.followers[id] ?? PeerStats.Follower()
            func number(_ value: Double) -> String { PrometheusText.number(value) }
            return #""\#(String(id, radix: 16))":{"latency":{"current":\#(number(follower.current)),"average":\#(number(follower.average)),"#
                + #""standardDeviation":\#(number(follower.standardDeviation)),"minimum":\#(number(follower.minimum)),"#
                + #""maximum":\#(number(follower.maximum))},"counts":{"fail":\#(follower.fail),"success":\#(follower.success)}}"#
        }
        return #"{"leader":"\#(String(node.memberID, radix: 16))","followers":{\#(followers.joined(separator: ","))}}"#
    }

    private func storeStats() async -> String {
        var counts = await node.v2Stats
        (counts.getsSuccess, counts.getsFail) = node.v2GetCounts.withLock { ($0.success, $0.failure) }
        let watchers = await node.waitingV2Watchers
        let fields: [(String, UInt64)] = [
            ("getsSuccess", counts.getsSuccess), ("getsFail", counts.getsFail), ("setsSuccess", counts.setsSuccess),
            ("setsFail", counts.setsFail), ("deleteSuccess", counts.deleteSuccess), ("deleteFail", counts.deleteFail),
            ("updateSuccess", counts.updateSuccess), ("updateFail", counts.updateFail), ("createSuccess", counts.createSuccess),
            ("createFail", counts.createFail), ("compareAndSwapSuccess", counts.compareAndSwapSuccess),
            ("compareAndSwapFail", counts.compareAndSwapFail), ("compareAndDeleteSuccess", counts.compareAndDeleteSuccess),
            ("compareAndDeleteFail", counts.compareAndDeleteFail), ("expireCount", counts.expireCount), ("watchers", UInt64(watchers)),
        ]
        return "{" + fields.map { #""\#($0.0)":\#($0.1)"# }.joined(separator: ",") + "}"
    }
}

/// The v2 store's operation counts, as etcd keeps them per member: writes counted when
/// applied (on every member), reads where they are served.
struct V2StoreCounts: Sendable {
    var getsSuccess: UInt64 = 0, getsFail: UInt64 = 0
    var setsSuccess: UInt64 = 0, setsFail: UInt64 = 0
    var deleteSuccess: UInt64 = 0, deleteFail: UInt64 = 0
    var updateSuccess: UInt64 = 0, updateFail: UInt64 = 0
    var createSuccess: UInt64 = 0, createFail: UInt64 = 0
    var compareAndSwapSuccess: UInt64 = 0, compareAndSwapFail: UInt64 = 0
    var compareAndDeleteSuccess: UInt64 = 0, compareAndDeleteFail: UInt64 = 0
    var expireCount: UInt64 = 0
}
