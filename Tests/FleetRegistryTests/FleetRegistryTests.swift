import EtcdAPI
import EtcdClient
import Fleet
import Foundation
import TestSupport
import Testing

@testable import FleetRegistry

/// The fleet key layout against real etcd 3.4 and against `coreos etcd`: the same calls,
/// the same results. Bodies shared and collected by reference count, contents immutable
/// unless replaced, desired states, machines and unit states on leases.
@Suite("FleetRegistry against etcd 3.4 and coreos etcd", .serialized)
struct FleetRegistryTests {
    private func withRegistry(_ server: EtcdCluster.Server, _ body: (FleetRegistry) async throws -> Void) async throws {
        let cluster = try EtcdCluster(size: 1, basePort: 26500 + server.portOffset, server: server)
        // Generous deadlines: the suite runs beside every other one, and a loaded etcd syncs slowly.
        let configuration = EtcdClientConfiguration(
            endpoints: try cluster.endpoints.map { try EtcdEndpoint(parsing: $0) }, dialTimeout: .seconds(10), requestTimeout: .seconds(60))
        try await EtcdClient.withClient(configuration) { client in
            try await body(FleetRegistry(client: client, prefix: "/test-fleet/"))
        }
    }

    private func unit(_ name: String, _ command: String) throws -> FleetUnit {
        try FleetUnit(name: name, text: "[Service]\nExecStart=\(command)\n")
    }

    @Test(arguments: [EtcdCluster.Server.etcd, .coreos])
    func bodiesAreSharedAndCollectedWithTheirLastUnit(server: EtcdCluster.Server) async throws {
        try await withRegistry(server) { registry in
            let first = try unit("a.service", "/bin/sleep 100")
            let twin = try unit("b.service", "/bin/sleep 100")
            try await registry.submit(first, desired: .launched)
            try await registry.submit(twin, desired: .inactive)
            try await registry.submit(first, desired: .launched)  // again, same content: fine
            #expect(try await registry.bodyHashes() == [first.hash])
            let units = try await registry.units()
            #expect(units["a.service"]?.desiredState == .launched && units["b.service"]?.desiredState == .inactive)
            #expect(try await registry.body(first.hash) == first.text)

            await #expect(throws: FleetRegistry.Failure.differentContent("a.service")) {
                try await registry.submit(try unit("a.service", "/bin/other"), desired: .launched)
            }
            try await registry.destroy("a.service")
            #expect(try await registry.bodyHashes() == [first.hash], "b still uses the body")
            try await registry.destroy("b.service")
            #expect(try await registry.bodyHashes().isEmpty, "collected with its last unit")
            await #expect(throws: FleetRegistry.Failure.unitNotFound("b.service")) { try await registry.destroy("b.service") }
        }
    }

    @Test(arguments: [EtcdCluster.Server.etcd, .coreos])
    func replaceSwapsTheContentAndKeepsTheDesiredState(server: EtcdCluster.Server) async throws {
        try await withRegistry(server) { registry in
            let old = try unit("web.service", "/bin/web --v1")
            let new = try unit("web.service", "/bin/web --v2")
            try await registry.submit(old, desired: .loaded)
            try await registry.setDesired("web.service", .launched)
            try await registry.submit(new, desired: .inactive, replace: true)
            let record = try #require(try await registry.units()["web.service"])
            #expect(record.hash == new.hash && record.desiredState == .launched)
            #expect(try await registry.bodyHashes() == [new.hash], "the old body went with its last reference")
            await #expect(throws: FleetRegistry.Failure.unitNotFound("none.service")) {
                try await registry.setDesired("none.service", .launched)
            }
        }
    }

    @Test(arguments: [EtcdCluster.Server.etcd, .coreos])
    func machinesAndStatesGoWithTheMachinesLease(server: EtcdCluster.Server) async throws {
        try await withRegistry(server) { registry in
            let lease = try await registry.client.leaseGrant(ttl: 60).id
            let machine = FleetRegistry.MachineRecord(id: "m1", publicIP: "10.0.0.1", metadata: ["role": "core"], version: "1.0.0")
            try await registry.register(machine, lease: lease)
            try await registry.schedule("a.service", on: "m1", .init(hash: "h", desired: "launched"))
            try await registry.schedule("b.service", on: "m2", .init(hash: "h", desired: "loaded"))
            try await registry.publishState(
                "a.service", machine: "m1", .init(loadState: "loaded", activeState: "active", subState: "running", hash: "h"),
                lease: lease)
            #expect(try await registry.machines() == [machine])
            #expect(try await registry.schedule(of: "m1") == ["a.service": .init(hash: "h", desired: "launched")])
            #expect(try await registry.fullSchedule() == ["a.service": "m1", "b.service": "m2"])
            #expect(try await registry.states().map(\.unit) == ["a.service"])
            // The machine dies: one lease revocation takes its record and its states.
            _ = try await registry.client.leaseRevoke(id: lease)
            #expect(try await registry.machines().isEmpty)
            #expect(try await registry.states().isEmpty)
            #expect(try await registry.fullSchedule().count == 2, "schedules are the engine's to change")
            try await registry.unschedule("b.service", from: "m2")
            #expect(try await registry.fullSchedule() == ["a.service": "m1"])
        }
    }

    /// Submits and destroys racing on one shared body: whatever the interleaving, the body
    /// is there exactly when some unit refers to it.
    @Test(arguments: [EtcdCluster.Server.etcd, .coreos])
    func collectionNeverRacesASubmit(server: EtcdCluster.Server) async throws {
        try await withRegistry(server) { registry in
            let text = "[Service]\nExecStart=/bin/shared\n"
            let hash = FleetUnit.hash(of: text)
            for round in 0..<5 {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<8 {
                        group.addTask {
                            let unit = try FleetUnit(name: "u\(index).service", text: text)
                            try await registry.submit(unit, desired: .launched)
                            if (index + round) % 3 != 0 { try await registry.destroy("u\(index).service") }
                        }
                    }
                    try await group.waitForAll()
                }
                let remaining = try await registry.units()
                #expect(try await registry.bodyHashes() == (remaining.isEmpty ? [] : [hash]), "round \(round)")
                for name in remaining.keys { try await registry.destroy(name) }
                #expect(try await registry.bodyHashes().isEmpty)
            }
        }
    }
}
