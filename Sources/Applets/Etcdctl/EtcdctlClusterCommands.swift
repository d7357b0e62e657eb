import CLI
import EtcdAPI
import EtcdClient
import SwiftProtobuf

/// lease, member, endpoint, alarm, defrag, move-leader, version.
enum EtcdctlClusterCommands {
    static var all: [EtcdctlCommandSpec] {
        [
            EtcdctlCommandSpec(["lease", "grant"], use: "grant <ttl>", short: "Creates leases", run: leaseGrant),
            EtcdctlCommandSpec(["lease", "revoke"], use: "revoke <leaseID>", short: "Revokes leases", run: leaseRevoke),
            EtcdctlCommandSpec(
                ["lease", "timetolive"], use: "timetolive <leaseID> [options]", short: "Get lease information",
                flags: [PFlag("keys", .bool, default: "false", "Get keys attached to this lease")], run: leaseTimeToLive),
            EtcdctlCommandSpec(["lease", "list"], use: "list", short: "List all active leases", run: leaseList),
            EtcdctlCommandSpec(
                ["lease", "keep-alive"], use: "keep-alive [options] <leaseID>", short: "Keeps leases alive (renew)",
                flags: [
                    PFlag(
                        "once", .bool, default: "false", "Resets the keep-alive time to its original value and exits immediately")
                ], run: leaseKeepAlive),
            EtcdctlCommandSpec(
                ["member", "list"], use: "list", short: "Lists all members in the cluster",
                description: """
                    When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.
                    The items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.
                    """, run: memberList),
            EtcdctlCommandSpec(
                ["member", "add"], use: "add <memberName> [options]", short: "Adds a member into the cluster",
                flags: [
                    PFlag("learner", .bool, default: "false", "indicates if the new member is raft learner"),
                    PFlag("peer-urls", .string, default: "", "comma separated peer URLs for the new member."),
                ], run: memberAdd),
            EtcdctlCommandSpec(
                ["member", "remove"], use: "remove <memberID>", short: "Removes a member from the cluster",
                run: memberRemove),
            EtcdctlCommandSpec(
                ["member", "update"], use: "update <memberID> [options]", short: "Updates a member in the cluster",
                flags: [PFlag("peer-urls", .string, default: "", "comma separated peer URLs for the updated member.")],
                run: memberUpdate),
            EtcdctlCommandSpec(
                ["member", "promote"], use: "promote <memberID>", short: "Promotes a non-voting member in the cluster",
                run: memberPromote),
            EtcdctlCommandSpec(
                ["endpoint", "status"], use: "status", short: "Prints out the status of endpoints specified in `--endpoints` flag",
                description: """
                    When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
                    The items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.
                    """,
                flags: [PFlag("cluster", .bool, default: "false", "use all endpoints from the cluster member list")],
                run: endpointStatus),
            EtcdctlCommandSpec(
                ["endpoint", "health"], use: "health",
                short: "Checks the healthiness of endpoints specified in `--endpoints` flag",
                flags: [PFlag("cluster", .bool, default: "false", "use all endpoints from the cluster member list")],
                run: endpointHealth),
            EtcdctlCommandSpec(
                ["endpoint", "hashkv"], use: "hashkv", short: "Prints the KV history hash for each endpoint in --endpoints",
                flags: [
                    PFlag("cluster", .bool, default: "false", "use all endpoints from the cluster member list"),
                    PFlag("rev", .int, default: "0", "maximum revision to hash (default: all revisions)"),
                ], run: endpointHashKV),
            EtcdctlCommandSpec(["alarm", "list"], use: "list", short: "Lists all alarms", run: alarmList),
            EtcdctlCommandSpec(["alarm", "disarm"], use: "disarm", short: "Disarms all alarms", run: alarmDisarm),
            EtcdctlCommandSpec(
                ["defrag"], use: "defrag", short: "Defragments the storage of the etcd members with given endpoints",
                flags: [
                    PFlag("cluster", .bool, default: "false", "use all endpoints from the cluster member list"),
                    PFlag(
                        "data-dir", .string, default: "",
                        "Optional. If present, defragments a data directory not in use by etcd."),
                ], run: defrag),
            EtcdctlCommandSpec(
                ["move-leader"], use: "move-leader <transferee-member-id>",
                short: "Transfers leadership to another etcd cluster member.", run: moveLeader),
            EtcdctlCommandSpec(["version"], use: "version", short: "Prints the version of etcdctl", run: version),
        ]
    }

    static func leaseID(_ text: String) throws(EtcdctlFailure) -> Int64 {
        guard let id = Int64(text, radix: 16) else {
            throw .badArgs("bad lease ID arg (strconv.ParseInt: parsing \(EtcdctlHelp.goQuote(text)): \(numberError(text))), expecting ID in Hex")
        }
        return id
    }

    static func memberID(_ text: String) throws(EtcdctlFailure) -> UInt64 {
        guard let id = UInt64(text, radix: 16) else {
            throw .badArgs("bad member ID arg (strconv.ParseUint: parsing \(EtcdctlHelp.goQuote(text)): \(numberError(text))), expecting ID in Hex")
        }
        return id
    }

    private static func numberError(_ text: String) -> String {
        !text.isEmpty && text.allSatisfy(\.isHexDigit) ? "value out of range" : "invalid syntax"
    }

    /// Runs `body`; a client error becomes `Error: <prefix> (<etcd text>)`.
    static func wrapped<Result: Sendable>(
        _ invocation: EtcdctlInvocation, _ prefix: String, _ body: (EtcdClient) async throws -> Result
    ) async throws(EtcdctlFailure) -> Result {
        do {
            return try await invocation.withClient(body)
        } catch {
            throw EtcdctlFailure(error.code, "\(prefix) (\(error.message))")
        }
    }

    // MARK: lease

    @Sendable static func leaseGrant(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("lease grant command needs TTL argument") }
        let text = invocation.arguments[0]
        guard let ttl = Int64(text) else {
            throw .badArgs("bad TTL (strconv.ParseInt: parsing \(EtcdctlHelp.goQuote(text)): invalid syntax)")
        }
        let response = try await wrapped(invocation, "failed to grant lease") { try await $0.leaseGrant(ttl: ttl) }
        invocation.printer.grant(response)
    }

    @Sendable static func leaseRevoke(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("lease revoke command needs 1 argument") }
        let id = try leaseID(invocation.arguments[0])
        let response = try await wrapped(invocation, "failed to revoke lease") { try await $0.leaseRevoke(id: id) }
        invocation.printer.revoke(id, response)
    }

    @Sendable static func leaseTimeToLive(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("lease timetolive command needs lease ID as argument") }
        let id = try leaseID(invocation.arguments[0])
        let keys = invocation.flags.bool("keys")
        let response = try await invocation.withClient { try await $0.leaseTimeToLive(id: id, keys: keys) }
        invocation.printer.timeToLive(response, keys: keys)
    }

    @Sendable static func leaseList(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let response = try await wrapped(invocation, "failed to list leases") { try await $0.leaseLeases() }
        invocation.printer.leases(response)
    }

    @Sendable static func leaseKeepAlive(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("lease keep-alive command needs lease ID as argument") }
        let id = try leaseID(invocation.arguments[0])
        let printer = invocation.printer
        if invocation.flags.bool("once") {
            let response: Etcdserverpb_LeaseKeepAliveResponse
            do {
                response = try await invocation.withClient { try await $0.leaseKeepAliveOnce(id: id) }
            } catch {
                throw EtcdctlFailure(EtcdctlExit.badConnection, error.message)
            }
            if response.ttl <= 0 {
                throw EtcdctlFailure(EtcdctlExit.badConnection, "etcdserver: requested lease not found")
            }
            printer.keepAlive(response)
            return
        }
        do {
            _ = try await invocation.withClient { client in
                try await client.withLeaseKeepAlive(
                    id: id, onRenewal: { response in if response.ttl > 0 { printer.keepAlive(response) } },
                    { while true { try await Task.sleep(for: .seconds(3600)) } })
            }
        } catch {
            if printer.format == .simple { invocation.io.output.line("lease \(EtcdctlPrinter.leaseHex(id)) expired or revoked.") }
        }
    }

    // MARK: member

    @Sendable static func memberList(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let response = try await invocation.withClient { try await $0.memberList() }
        invocation.printer.memberList(response)
    }

    static func peerURLs(_ invocation: EtcdctlInvocation) throws(EtcdctlFailure) -> [String] {
        let text = invocation.flags.string("peer-urls") ?? ""
        if text.isEmpty { throw .badArgs("member peer urls not provided") }
        return text.split(separator: ",").map(String.init)
    }

    @Sendable static func memberAdd(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard let name = invocation.arguments.first else { throw .badArgs("member name not provided") }
        if invocation.arguments.count > 1 {
            throw .badArgs("too many arguments (\(invocation.arguments.count) given, want 1)")
        }
        let peers = try peerURLs(invocation)
        let learner = invocation.flags.bool("learner")
        let (added, list) = try await invocation.withClient { client in
            let added = try await client.memberAdd(peerURLs: peers, learner: learner)
            return (added, try await client.memberList())
        }
        let printer = invocation.printer
        printer.memberAdd(added)
        guard printer.format == .simple else { return }
        var configuration: [String] = []
        for member in list.members {
            for url in member.peerUrls {
                configuration.append("\(member.id == added.member.id ? name : member.name)=\(url)")
            }
        }
        let out = invocation.io.output
        out.write("\n")
        out.line("ETCD_NAME=\(EtcdctlHelp.goQuote(name))")
        out.line("ETCD_INITIAL_CLUSTER=\(EtcdctlHelp.goQuote(configuration.joined(separator: ",")))")
        out.line("ETCD_INITIAL_ADVERTISE_PEER_URLS=\(EtcdctlHelp.goQuote(peers.joined(separator: ",")))")
        out.line("ETCD_INITIAL_CLUSTER_STATE=\"existing\"")
    }

    @Sendable static func memberRemove(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("member ID is not provided") }
        let id = try memberID(invocation.arguments[0])
        let response = try await invocation.withClient { try await $0.memberRemove(id: id) }
        invocation.printer.memberRemove(id, response)
    }

    @Sendable static func memberUpdate(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("member ID is not provided") }
        let id = try memberID(invocation.arguments[0])
        let peers = try peerURLs(invocation)
        let response = try await invocation.withClient { try await $0.memberUpdate(id: id, peerURLs: peers) }
        invocation.printer.memberUpdate(id, response)
    }

    @Sendable static func memberPromote(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("member ID is not provided") }
        let id = try memberID(invocation.arguments[0])
        let response = try await invocation.withClient { try await $0.memberPromote(id: id) }
        invocation.printer.memberPromote(id, response)
    }

    // MARK: endpoint

    /// The endpoints a per-endpoint command visits: `--endpoints`, or with `--cluster` every
    /// member's client URLs.
    static func endpoints(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) -> [String] {
        guard invocation.flags.bool("cluster") else { return invocation.global.endpoints }
        let members = try await invocation.withClient { try await $0.memberList() }
        return members.members.flatMap(\.clientUrls)
    }

    static func onEndpoint<Result: Sendable>(
        _ invocation: EtcdctlInvocation, _ endpoint: String, _ body: (EtcdClient) async throws -> Result
    ) async -> Result? {
        guard let parsed = try? EtcdEndpoint(parsing: endpoint) else { return nil }
        return try? await EtcdClient.withClient(invocation.global.clientConfiguration, endpoint: parsed, body)
    }

    /// Runs `call` against each endpoint on a client of its own, as clientv3's per-endpoint
    /// Status/HashKV/Defragment do. A failure is logged like clientv3 does, reported on stderr
    /// with `failureLine(endpoint, error)`, and the remaining endpoints are still visited.
    static func perEndpoint<Result: Sendable>(
        _ invocation: EtcdctlInvocation, failureLine: (String, String) -> String,
        _ call: @escaping @Sendable (EtcdClient) async throws -> Result
    ) async throws(EtcdctlFailure) -> (results: [(endpoint: String, result: Result)], failed: Bool) {
        var results: [(endpoint: String, result: Result)] = []
        var failed = false
        for endpoint in try await endpoints(invocation) {
            do {
                let parsed = try EtcdEndpoint(parsing: endpoint)
                results.append((endpoint, try await EtcdClient.withClient(invocation.global.clientConfiguration, endpoint: parsed, call)))
            } catch {
                let wrapped = EtcdCallLog.wrap(error, endpoints: [endpoint], io: invocation.io, singleEndpoint: true)
                invocation.io.error.line(failureLine(endpoint, wrapped.message))
                failed = true
            }
        }
        return (results, failed)
    }

    @Sendable static func endpointStatus(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let (statuses, failed) = try await perEndpoint(
            invocation, failureLine: { "Failed to get the status of endpoint \($0) (\($1))" }, { try await $0.status() })
        invocation.printer.endpointStatus(statuses.map { .init(endpoint: $0.endpoint, response: $0.result) })
        if failed { throw EtcdctlFailure(EtcdctlExit.error, "") }
    }

    @Sendable static func endpointHashKV(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let revision = Int64(invocation.flags.string("rev") ?? "0") ?? 0
        let (hashes, failed) = try await perEndpoint(
            invocation, failureLine: { "Failed to get the hash of endpoint \($0) (\($1))" },
            { try await $0.hashKV(revision: revision) })
        invocation.printer.endpointHashKV(hashes.map { .init(endpoint: $0.endpoint, response: $0.result) })
        if failed { throw EtcdctlFailure(EtcdctlExit.error, "") }
    }

    @Sendable static func endpointHealth(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        var unhealthy = false
        let clock = ContinuousClock()
        for endpoint in try await endpoints(invocation) {
            let start = clock.now
            var failure: String? = nil
            do {
                let parsed = try EtcdEndpoint(parsing: endpoint)
                _ = try await EtcdClient.withClient(invocation.global.clientConfiguration, endpoint: parsed) {
                    try await $0.get("health")
                }
            } catch {
                let wrapped = EtcdCallLog.wrap(error, endpoints: [endpoint], io: invocation.io)
                // A permission error still proves the member committed a proposal.
                if wrapped.code != .permissionDenied { failure = wrapped.message }
            }
            let took = clock.now - start
            if let failure {
                unhealthy = true
                invocation.io.error.line("\(endpoint) is unhealthy: failed to commit proposal: \(failure)")
            } else {
                invocation.io.error.line(
                    "\(endpoint) is healthy: successfully committed proposal: took = \(GoValues.formatDuration(took))")
            }
        }
        if unhealthy { throw EtcdctlFailure(EtcdctlExit.error, "unhealthy cluster") }
    }

    // MARK: maintenance

    @Sendable static func alarmList(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let response = try await invocation.withClient { try await $0.alarm(.with { $0.action = .get }) }
        invocation.printer.alarms(response)
    }

    @Sendable static func alarmDisarm(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let response = try await invocation.withClient { try await $0.alarm(.with { $0.action = .deactivate }) }
        invocation.printer.alarms(response)
    }

    @Sendable static func defrag(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        if let directory = invocation.flags.string("data-dir"), !directory.isEmpty {
            throw EtcdctlFailure(EtcdctlExit.badFeature, "defragmenting a data directory offline is not supported by coreos etcdctl")
        }
        let (done, failed) = try await perEndpoint(
            invocation, failureLine: { "Failed to defragment etcd member[\($0)] (\($1))" },
            { _ = try await $0.defragment() })
        for member in done { invocation.io.output.line("Finished defragmenting etcd member[\(member.endpoint)]") }
        if failed { throw EtcdctlFailure(EtcdctlExit.error, "") }
    }

    @Sendable static func moveLeader(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("move-leader command needs 1 argument") }
        let target = try memberID(invocation.arguments[0])
        // The request must reach the current leader: find it among the endpoints.
        var leaderEndpoint: String? = nil
        var leaderID: UInt64 = 0
        for endpoint in invocation.global.endpoints {
            if let status = await onEndpoint(invocation, endpoint, { try await $0.status() }),
                status.leader == status.header.memberID
            {
                leaderEndpoint = endpoint
                leaderID = status.leader
                break
            }
        }
        guard let leaderEndpoint else {
            throw EtcdctlFailure(EtcdctlExit.badArgs, "no leader endpoint given at \(invocation.global.endpoints)")
        }
        do {
            let parsed = try EtcdEndpoint(parsing: leaderEndpoint)
            _ = try await EtcdClient.withClient(invocation.global.clientConfiguration, endpoint: parsed) {
                try await $0.moveLeader(to: target)
            }
        } catch {
            let wrapped = EtcdCallLog.wrap(error, endpoints: [leaderEndpoint], io: invocation.io)
            throw EtcdctlFailure(EtcdctlExit.error, wrapped.message)
        }
        invocation.io.output.line(
            "Leadership transferred from \(String(leaderID, radix: 16)) to \(String(target, radix: 16))")
    }

    @Sendable static func version(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        // The etcdctl release whose command line this applet implements, and its API level.
        invocation.io.output.line("etcdctl version: 3.4.23")
        invocation.io.output.line("API version: 3.4")
    }
}
