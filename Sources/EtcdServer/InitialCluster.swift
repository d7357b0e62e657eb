import Foundation
import RaftTransport

/// The members a new cluster starts with, from `--initial-cluster name=peerURL,…` (a name
/// may repeat for a member with several peer URLs), with the IDs etcd derives from it.
public struct InitialCluster: Sendable, Equatable {
    public struct Member: Sendable, Equatable {
        public var name: String
        public var peerURLs: [String]
        public var id: UInt64
    }

    /// Sorted by ID, as etcd lists members.
    public private(set) var members: [Member]
    public let clusterID: UInt64

    /// Parses the flag's value. Errors use etcd's words where etcd has them.
    public init(parsing text: String, token: String) throws(EtcdServerError) {
        var urlsByName: [(name: String, urls: [String])] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            guard let equals = item.firstIndex(of: "=") else {
                throw EtcdServerError("--initial-cluster: \"\(item)\" is not in the form name=peerURL")
            }
            let name = String(item[..<equals])
            let url = String(item[item.index(after: equals)...])
            guard (try? peerAddress(url, flag: "--initial-cluster")) != nil else {
                throw EtcdServerError("--initial-cluster: URL scheme must be http, https, unix or unixs with a host and port: \(url)")
            }
            if let position = urlsByName.firstIndex(where: { $0.name == name }) {
                urlsByName[position].urls.append(url)
            } else {
                urlsByName.append((name, [url]))
            }
        }
        guard !urlsByName.isEmpty else { throw EtcdServerError("--initial-cluster is empty") }
        var members: [Member] = []
        var seenURLs: Set<String> = []
        for entry in urlsByName {
            for url in entry.urls where !seenURLs.insert(url).inserted {
                throw EtcdServerError("--initial-cluster: peer URL \(url) is given to more than one member")
            }
            members.append(Member(name: entry.name, peerURLs: entry.urls, id: EtcdIdentity.memberID(peerURLs: entry.urls, token: token)))
        }
        self.members = members.sorted { $0.id < $1.id }
        clusterID = EtcdIdentity.clusterID(memberIDs: members.map(\.id))
    }

    /// The member called `name`, checked against its advertised peer URLs as etcd does.
    public func member(named name: String, advertisedPeerURLs: [String]) throws(EtcdServerError) -> Member {
        guard let member = members.first(where: { $0.name == name }) else {
            throw EtcdServerError("couldn't find local name \"\(name)\" in the initial cluster configuration")
        }
        guard member.peerURLs.sorted() == advertisedPeerURLs.sorted() else {
            throw EtcdServerError(
                "--initial-cluster has \(name)=\(member.peerURLs.joined(separator: ",")) but missing from --initial-advertise-peer-urls=\(advertisedPeerURLs.joined(separator: ","))"
            )
        }
        return member
    }
}

/// Splits a URL into the host and port to bind or dial (`localhost` as 127.0.0.1, as the
/// rest of the stack only speaks IPv4 loopback for it).
/// Where a peer URL points: host and port, or a unix socket for etcd's `unix://` and
/// `unixs://` (the rest of the URL is the socket's path, `unix://etcd.unix:1`).
func peerAddress(_ url: String, flag: String) throws(EtcdServerError) -> TCPTransport.Address {
    for scheme in ["unix://", "unixs://"] where url.hasPrefix(scheme) {
        let path = String(url.dropFirst(scheme.count))
        guard !path.isEmpty else { throw EtcdServerError("invalid \(flag) \(url): a unix URL names a socket path") }
        return TCPTransport.Address(unixPath: path)
    }
    guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
        throw EtcdServerError("invalid \(flag) \(url): want scheme://host:port")
    }
    let (host, port) = try hostAndPort(url, flag: flag)
    return TCPTransport.Address(host: host, port: port)
}

func hostAndPort(_ url: String, flag: String) throws(EtcdServerError) -> (host: String, port: Int) {
    guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty,
        let port = components.port
    else { throw EtcdServerError("invalid \(flag) \(url): want scheme://host:port") }
    return (host == "localhost" ? "127.0.0.1" : host, port)
}
