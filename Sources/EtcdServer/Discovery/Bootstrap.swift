import Foundation

/// How a new member learns its initial cluster when `--initial-cluster` does not say:
/// a discovery token (`--discovery`) or DNS SRV records (`--discovery-srv`).
public enum Bootstrap {
    /// A proxy's cluster from a discovery token: the peer URLs of its members, once as many
    /// registered as the token's size (etcd's proxy does not register itself).
    public static func proxyPeerURLs(discoveryURL: String) async throws -> [String] {
        var client = try DiscoveryClient(url: discoveryURL, memberID: 0)
        client.log = { FileHandle.standardError.write(Data("etcd: \($0)\n".utf8)) }
        return try await client.clusterPeerURLs()
    }

    enum Discovered: Equatable {
        case initialCluster(String)
        /// The cluster is complete without us and `--discovery-fallback=proxy`: run as a
        /// proxy to these peer URLs.
        case proxy(peerURLs: [String])
    }

    /// nil when neither discovery flag is set.
    static func discover(_ configuration: EtcdServerConfiguration) async throws -> Discovered? {
        let log: @Sendable (String) -> Void = { FileHandle.standardError.write(Data("etcd: \($0)\n".utf8)) }
        if let url = configuration.discoveryURL, !url.isEmpty {
            // etcd bootstraps a discovery cluster with the discovery URL as its token.
            let memberID = EtcdIdentity.memberID(peerURLs: configuration.initialAdvertisePeerURLs, token: url)
            var client = try DiscoveryClient(url: url, memberID: memberID)
            client.log = log
            let value = configuration.initialAdvertisePeerURLs.map { "\(configuration.name)=\($0)" }.joined(separator: ",")
            switch try await client.join(value: value) {
            case .joined(let initialCluster):
                return .initialCluster(initialCluster)
            case .full(let registered):
                guard configuration.discoveryFallback == .proxy else { throw EtcdServerError("discovery: cluster is full") }
                let urls = registered.split(separator: ",").compactMap { item in
                    item.firstIndex(of: "=").map { String(item[item.index(after: $0)...]) }
                }
                return .proxy(peerURLs: urls)
            }
        }
        if let domain = configuration.discoverySRV, !domain.isEmpty {
            let text = try await SRVDiscovery.initialCluster(
                domain: domain, serviceName: configuration.discoverySRVName, name: configuration.name,
                advertisedPeerURLs: configuration.initialAdvertisePeerURLs)
            log("discovery-srv: initial cluster \(text)")
            return .initialCluster(text)
        }
        return nil
    }
}
