import EtcdAPI
import EtcdClient
import Fleet
import Foundation
import TestSupport
import Testing

@testable import FleetRegistry

/// The engine over the registry, against etcd 3.4 and `coreos etcd`: units land on the
/// machines their requirements allow, desired-state changes reach the schedule entries, a
/// machine that disappears keeps its units for the grace period and loses them after it.
@Suite("FleetEngine against etcd 3.4 and coreos etcd", .serialized)
struct FleetEngineTests {
    @Test(arguments: [EtcdCluster.Server.etcd, .coreos])
    func schedulesFollowsStatesAndWaitsOutTheGrace(server: EtcdCluster.Server) async throws {
        let cluster = try EtcdCluster(size: 1, basePort: 26520 + server.portOffset, server: server)
        // Generous deadlines: the suite runs beside every other one, and a loaded etcd syncs slowly.
        let configuration = EtcdClientConfiguration(
            endpoints: try cluster.endpoints.map { try EtcdEndpoint(parsing: $0) }, dialTimeout: .seconds(10), requestTimeout: .seconds(60))
        try await EtcdClient.withClient(configuration) { client in
            let registry = FleetRegistry(client: client, prefix: "/engine-test/")
            var leases: [String: Int64] = [:]
            for (id, role) in [("m-core", "core"), ("m-worker1", "worker"), ("m-worker2", "worker")] {
                let lease = try await client.leaseGrant(ttl: 60).id
                leases[id] = lease
                try await registry.register(.init(id: id, publicIP: "10.0.0.1", metadata: ["role": role], version: "1.0.0"), lease: lease)
            }
            func submit(_ name: String, _ fleet: String, _ desired: DesiredState) async throws {
                try await registry.submit(
                    try FleetUnit(name: name, text: "[Service]\nExecStart=/bin/sleep 1000\n[X-Fleet]\n" + fleet), desired: desired)
            }
            try await submit("db.service", "MachineMetadata=role=core\n", .launched)
            try await submit("web@1.service", "MachineMetadata=role=worker\nConflicts=web@*.service\n", .launched)
            try await submit("web@2.service", "MachineMetadata=role=worker\nConflicts=web@*.service\n", .loaded)
            try await submit("idle.service", "", .inactive)
            let engine = FleetEngine(registry: registry, grace: .seconds(30))
            let start = ContinuousClock.now
            _ = try await engine.reconcile(now: start)
            var entries = try await registry.scheduleEntries()
            #expect(entries["db.service"]?.machine == "m-core")
            #expect(Set([entries["web@1.service"]?.machine, entries["web@2.service"]?.machine]) == ["m-worker1", "m-worker2"])
            #expect(entries["idle.service"] == nil)
            #expect(entries["web@2.service"]?.entry.desired == "loaded")
            #expect(try await engine.reconcile(now: start).decisions.isEmpty, "a second pass changes nothing")

            // A desired-state change reaches the machine's schedule entry.
            try await registry.setDesired("web@2.service", .launched)
            #expect(try await engine.reconcile(now: start).updatedEntries == ["web@2.service"])
            entries = try await registry.scheduleEntries()
            #expect(entries["web@2.service"]?.entry.desired == "launched")

            // A worker disappears: its web stays put through the grace period, then waits
            // (the other worker already runs a web, and webs conflict).
            let lost = entries["web@1.service"]?.machine ?? ""
            _ = try await client.leaseRevoke(id: leases[lost] ?? 0)
            let during = try await engine.reconcile(now: start + .seconds(10))
            #expect(during.decisions.isEmpty)
            #expect(during.nextDeadline == start + .seconds(30))
            let after = try await engine.reconcile(now: start + .seconds(31))
            #expect(after.decisions == [.unschedule(unit: "web@1.service", machine: lost, reason: "target machine went away")])
            // Destroying a unit takes it off its machine at the next pass.
            try await registry.destroy("db.service")
            _ = try await engine.reconcile(now: start + .seconds(32))
            #expect(try await registry.scheduleEntries()["db.service"] == nil)
        }
    }
}
