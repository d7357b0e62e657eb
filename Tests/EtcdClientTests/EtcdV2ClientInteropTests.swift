import EtcdClient
import TestSupport
import Testing

/// The v2 keys and members client against a real three-member etcd 3.4 cluster with the
/// v2 API enabled (part of the serialized interop suite: one cluster at a time).
extension EtcdClientInteropTests {
    static func v2Client(_ cluster: EtcdCluster) throws -> EtcdV2Client {
        EtcdV2Client(
            endpoints: try cluster.endpoints.map { try HTTPURL(parsing: "http://" + $0) }, headerTimeout: .seconds(10))
    }

    @Test func v2KeysOnAThreeMemberCluster() async throws {
        let cluster = try EtcdCluster(size: 3, basePort: 26160)
        defer { cluster.shutdown() }
        let client = try Self.v2Client(cluster)

        let first = try await client.set("/app/config", value: "one")
        #expect(first.action == "set")
        #expect(first.node.value == "one")
        #expect(first.index == first.node.modifiedIndex)
        #expect(try await client.get("/app/config").node.value == "one")

        // create-if-absent and compare-and-swap lose races with typed errors.
        await #expect(throws: EtcdV2Error.self) { try await client.create("/app/config", value: "two") }
        do {
            _ = try await client.create("/app/config", value: "two")
        } catch {
            #expect(error.isConflict)
            #expect(error.description.hasPrefix("105: Key already exists (/app/config) ["))
        }
        let swapped = try await client.compareAndSwap("/app/config", value: "two", previousValue: "one")
        #expect(swapped.action == "compareAndSwap")
        #expect(swapped.previousNode?.value == "one")
        do {
            _ = try await client.compareAndSwap("/app/config", value: "three", previousIndex: 1)
            Issue.record("a stale index must not swap")
        } catch {
            #expect(error.isConflict)
        }

        // Directories, in-order keys and recursive listing.
        _ = try await client.set("/app/nodes/a", value: "1")
        _ = try await client.set("/app/nodes/b/c", value: "2")
        let queued = try await client.createInOrder("/app/queue", value: "job")
        #expect(queued.node.key.hasPrefix("/app/queue/"))
        let listing = try await client.get("/app", recursive: true, sorted: true)
        #expect(listing.node.dir)
        #expect(listing.node.descendants.map(\.key).contains("/app/nodes/b/c"))
        do {
            _ = try await client.delete("/app/nodes", options: EtcdV2DeleteOptions(directory: true))
            Issue.record("a non-empty directory must not be removed without recursive")
        } catch {
            #expect(error.description.hasPrefix("108: Directory not empty (/app/nodes) ["))
        }
        let removed = try await client.delete("/app/nodes", options: EtcdV2DeleteOptions(recursive: true))
        #expect(removed.action == "delete")
        do {
            _ = try await client.get("/app/nodes/a")
            Issue.record("a deleted key must be gone")
        } catch {
            #expect(error.isKeyNotFound)
        }

        // Waits: from history with waitIndex, then a live change.
        let history = try await client.waitForChange("/app/config", waitIndex: first.node.modifiedIndex)
        #expect(history.node.value == "one")
        var watcher = client.watcher("/app/live", recursive: true)
        async let change = watcher.next()
        try await Task.sleep(for: .milliseconds(300))
        _ = try await client.set("/app/live/x", value: "now")
        let seen = try await change
        #expect(seen.node.key == "/app/live/x")
        #expect(seen.node.value == "now")

        // TTL keys carry their expiry.
        let expiring = try await client.set("/app/ttl", value: "x", options: EtcdV2SetOptions(ttl: 60))
        #expect(expiring.node.ttl > 0 && expiring.node.ttl <= 60)
        #expect(expiring.node.expiration != nil)
    }

    /// etcd refuses reconfiguration (HTTP 500) until its leader has been connected to a
    /// quorum for five seconds, which a cluster this young may not have been yet.
    static func reconfiguring<Value>(_ body: () async throws -> Value) async throws -> Value {
        for _ in 1..<40 {
            if let value = try? await body() { return value }
            try await Task.sleep(for: .milliseconds(500))
        }
        return try await body()
    }

    @Test func v2MembersFailoverAndSync() async throws {
        let cluster = try EtcdCluster(size: 3, basePort: 26170)
        defer { cluster.shutdown() }
        var client = try Self.v2Client(cluster)

        let members = try await client.members()
        #expect(Set(members.map(\.name)) == ["m0", "m1", "m2"])
        let leader = try await client.leader()
        #expect(members.contains(leader))

        // An added member is listed unstarted until it joins; removing it restores three.
        let added = try await Self.reconfiguring { try await client.addMember(peerURLs: ["http://127.0.0.1:26199"]) }
        let withNew = try await client.members()
        #expect(withNew.count == 4)
        #expect(withNew.first { $0.id == added.id }?.name == "")
        try await Self.reconfiguring { try await client.removeMember(id: added.id) }
        #expect(try await client.members().count == 3)
        do {
            try await client.updateMember(id: added.id, peerURLs: ["http://127.0.0.1:26198"])
            Issue.record("updating a removed member must fail")
        } catch {
            // etcd answers 500 here, which client/v2 (and so etcdctl) reports as "no leader".
            #expect(error.description.contains("has no leader"))
        }
        #expect(throws: EtcdV2Error.self) { try EtcdV2Client.validatePeerURL("http://no-port") }

        // A dead first endpoint is skipped; sync learns every member's client URL.
        client.endpoints.insert(try HTTPURL(parsing: "http://127.0.0.1:1"), at: 0)
        _ = try await client.set("/failover", value: "ok")
        try await client.sync()
        #expect(client.endpoints.count == 3)
        #expect(!client.endpoints.contains { $0.port == 1 })

        // Nothing reachable: one connection error per endpoint.
        let unreachable = EtcdV2Client(endpoints: [try HTTPURL(parsing: "http://127.0.0.1:1")])
        do {
            _ = try await unreachable.get("/failover")
            Issue.record("an unreachable endpoint must fail")
        } catch {
            #expect(error.isConnectionFailure)
            #expect(error.description.contains("dial tcp 127.0.0.1:1: connect: connection refused"))
        }

        // The member holding the first endpoint dies: requests fail over to the others.
        cluster.stop("m0", kill: true)
        try cluster.waitHealthy()
        #expect(try await client.get("/failover", quorum: true).node.value == "ok")
    }
}
