import Net

/// `--discovery-srv DOMAIN`: the initial cluster from the SRV records
/// `_etcd-server-ssl._tcp.DOMAIN` (https peers) and `_etcd-server._tcp.DOMAIN` (http),
/// with `--discovery-srv-name` appended to the service name as etcd does
/// (`_etcd-server-NAME._tcp`). The record that resolves to one of this member's advertised
/// peer URLs is this member (named by `--name`, with its advertised URL); the others are
/// named by their position, as etcd names them.
enum SRVDiscovery {
    static func initialCluster(
        domain: String, serviceName: String, name: String, advertisedPeerURLs: [String]
    ) async throws -> String {
        let suffix = serviceName.isEmpty ? "" : "-" + serviceName
        var entries: [String] = []
        var foundSelf = false
        var failures: [String] = []
        var ownAddresses: Set<String> = []
        for url in advertisedPeerURLs {
            guard let (host, port) = try? hostAndPort(url, flag: "--initial-advertise-peer-urls") else { continue }
            for address in DNSQuery.ipv4Addresses(of: host) { ownAddresses.insert("\(address):\(port)") }
        }
        for (service, scheme) in [("_etcd-server-ssl\(suffix)._tcp.", "https"), ("_etcd-server\(suffix)._tcp.", "http")] {
            let records: [SRVRecord]
            do {
                records = try DNSQuery.lookupSRV(service + domain)
            } catch {
                failures.append("\(error)")
                continue
            }
            for (position, record) in records.enumerated() {
                let addresses = Set(DNSQuery.ipv4Addresses(of: record.target).map { "\($0):\(record.port)" })
                if !foundSelf, !addresses.isDisjoint(with: ownAddresses),
                    let own = advertisedPeerURLs.first(where: { $0.hasPrefix(scheme + "://") })
                {
                    foundSelf = true
                    entries.append("\(name)=\(own)")
                } else {
                    entries.append("\(position)=\(scheme)://\(record.target):\(record.port)")
                }
            }
        }
        guard !entries.isEmpty else {
            throw EtcdServerError("discovery-srv: no SRV records for \(domain) (\(failures.joined(separator: "; ")))")
        }
        guard foundSelf else {
            throw EtcdServerError(
                "discovery-srv: none of the SRV records of \(domain) points at this member's --initial-advertise-peer-urls \(advertisedPeerURLs.joined(separator: ","))")
        }
        return entries.joined(separator: ",")
    }
}
