import CLI
import Cluster
import EtcdAPI
import EtcdClient
import FleetRegistry

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `cluster status`: the nodes' processes from /proc, etcd's members and leader, fleet's
/// machines and unit states, and flannel's leases, asked of the core members' etcd.
enum ClusterStatusQuery {
    static func status(_ options: ClusterCommand.Options, io: StandardStreams) async throws -> Int32 {
        let directory = ClusterLifecycle.absolute(options.resolvedDirectory)
        guard let state = try ClusterLifecycle.loadState(directory) else {
            throw ClusterError("no cluster in \(directory) (`coreos cluster up` starts one)")
        }
        io.output.write(try await table(state, directory))
        return ExitStatus.success
    }

    static func table(_ state: ClusterState, _ directory: String) async throws -> String {
        let layout = state.layout
        var observations: [String: NodeObservation] = [:]
        for node in layout.nodes {
            var seen = NodeObservation()
            if let pid = state.nodePIDs[node.name] { seen.processRunning = ClusterHost.isAlive(pid) && ClusterLifecycle.owns(directory, pid) }
            if node.role == .worker && seen.processRunning { seen.etcd = "proxy" }
            observations[node.name] = seen
        }
        var note: String?
        let running = layout.cores.filter { observations[$0.name]?.processRunning == true }
        do {
            let endpoints = try running.map { node throws(EtcdError) in try EtcdEndpoint(parsing: node.clientURL) }
            guard !endpoints.isEmpty else { throw ClusterError("no core node runs") }
            let configuration = EtcdClientConfiguration(endpoints: endpoints, dialTimeout: .seconds(1), requestTimeout: .seconds(3))
            let facts = try await EtcdClient.withClient(configuration) { etcd in try await gather(etcd, layout: layout, configuration: configuration) }
            for node in layout.nodes {
                var seen = observations[node.name] ?? NodeObservation()
                if let role = facts.members[node.name] { seen.etcd = role }
                seen.machinePresent = facts.machines.contains(node.machineID)
                seen.subnet = layout.mode == .namespaces ? facts.subnets[node.address] ?? "-" : "-"
                seen.units = (facts.units[node.machineID] ?? []).sorted()
                observations[node.name] = seen
            }
        } catch {
            note = "etcd did not answer (\(error))"
        }
        return ClusterStatusTable.render(layout, observations: observations, etcdNote: note)
    }

    struct Facts: Sendable {
        /// Member name → `leader` or `member`.
        var members: [String: String] = [:]
        var machines: Set<String> = []
        /// Machine ID → `unit:active-state`.
        var units: [String: [String]] = [:]
        /// Public IP → subnet.
        var subnets: [String: String] = [:]
    }

    struct Lease: Decodable {
        var PublicIP: String
    }

    static func gather(_ etcd: EtcdClient, layout: ClusterLayout, configuration: EtcdClientConfiguration) async throws -> Facts {
        var facts = Facts()
        let members = try await etcd.memberList().members
        // Each member is asked itself: one that does not answer is down, whatever the list says.
        var leader: UInt64 = 0
        var answering = Set<UInt64>()
        for member in members {
            for url in member.clientUrls {
                guard let endpoint = try? EtcdEndpoint(parsing: url),
                    let status = try? await EtcdClient.withClient(configuration, endpoint: endpoint, { try await $0.status() })
                else { continue }
                if status.leader != 0 { leader = status.leader }
                answering.insert(member.id)
                break
            }
        }
        for member in members where !member.name.isEmpty {
            facts.members[member.name] = !answering.contains(member.id) ? "down" : member.id == leader ? "leader" : "member"
        }
        let registry = FleetRegistry(client: etcd)
        facts.machines = Set(try await registry.machines().map(\.id))
        for state in try await registry.schemaStates() {
            facts.units[state.machineID, default: []].append("\(state.name):\(state.systemdActiveState)")
        }
        for kv in try await etcd.get("/coreos.com/network/subnets/", prefix: true).kvs {
            let key = String(decoding: kv.key, as: UTF8.self)
            guard let lease = try? JSONDecoder().decode(Lease.self, from: kv.value) else { continue }
            let subnet = String(key.split(separator: "/").last ?? "").split(separator: "-").joined(separator: "/")
            facts.subnets[lease.PublicIP] = subnet
        }
        return facts
    }
}
