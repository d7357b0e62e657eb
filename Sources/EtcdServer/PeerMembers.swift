import EtcdClient
import Foundation
import Synchronization

/// The member list as etcd serves it on the peer port (`GET /members`, with the cluster ID
/// in `X-Etcd-Cluster-ID`): how a member started with `--initial-cluster-state existing`
/// learns the cluster it was added to, and its own ID in it.
enum PeerMembers {
    struct Listed: Codable, Equatable {
        var id: UInt64
        var name: String
        var peerURLs: [String]
        var clientURLs: [String]
        var isLearner: Bool?
    }

    static func encode(_ members: [UInt64: StoreNode.MemberRecord]) -> [UInt8] {
        let listed = members.sorted { $0.key < $1.key }.map { id, record in
            Listed(id: id, name: record.name, peerURLs: record.peerURLs, clientURLs: record.clientURLs, isLearner: record.isLearner)
        }
        return Array((try? JSONEncoder().encode(listed)) ?? Data("[]".utf8))
    }

    /// What the peer port answers over HTTP (everything else on it is Raft traffic).
    static func respond(path: String, members: [UInt64: StoreNode.MemberRecord], clusterID: UInt64)
        -> (status: Int, headers: [(String, String)], body: [UInt8])
    {
        let cluster = [("X-Etcd-Cluster-ID", String(clusterID, radix: 16))]
        switch path.split(separator: "?").first.map(String.init) ?? path {
        case "/members": return (200, cluster, encode(members))
        case "/version":
            return (200, cluster, Array("{\"etcdserver\":\"\(MaintenanceService.version)\",\"etcdcluster\":\"3.4.0\"}".utf8))
        default: return (404, cluster, Array("{\"message\":\"404 page not found\"}".utf8))
        }
    }

    /// Asks the members at `peerURLs` (those of `--initial-cluster` that are not this
    /// member's) for the cluster, and finds this member in it by its advertised peer URLs.
    static func join(peerURLs: [String], advertised: [String]) async throws -> MemberIdentity {
        var failures: [String] = []
        for url in peerURLs {
            do {
                let target = try HTTPURL(parsing: url)
                let response = try await HTTP1Exchange.perform(
                    "GET", url: target, pathAndQuery: "/members", tls: target.secure ? MemberTLS.peerPorts.withLock { $0 } : nil, dialTimeout: .seconds(2),
                    headerTimeout: .seconds(5),
                    maxBodyBytes: 1 << 20)
                guard response.status == 200, let clusterText = response.header("X-Etcd-Cluster-ID"),
                    let clusterID = UInt64(clusterText, radix: 16)
                else {
                    failures.append("\(url): HTTP \(response.status)")
                    continue
                }
                let listed = try JSONDecoder().decode([Listed].self, from: Data(response.body))
                guard let own = listed.first(where: { Set($0.peerURLs) == Set(advertised) }) else {
                    throw EtcdServerError(
                        "the cluster at \(url) has no member with peer URLs \(advertised.joined(separator: ",")): add it first (etcdctl member add NAME --peer-urls=\(advertised.joined(separator: ",")))"
                    )
                }
                var members: [UInt64: StoreNode.MemberRecord] = [:]
                for member in listed {
                    members[member.id] = StoreNode.MemberRecord(
                        name: member.name, peerURLs: member.peerURLs, clientURLs: member.clientURLs, isLearner: member.isLearner ?? false)
                }
                return MemberIdentity(memberID: own.id, clusterID: clusterID, members: members)
            } catch let error as EtcdServerError {
                throw error
            } catch {
                failures.append("\(url): \(error)")
            }
        }
        throw EtcdServerError(
            "cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs (\(failures.joined(separator: "; ")))")
    }
}
