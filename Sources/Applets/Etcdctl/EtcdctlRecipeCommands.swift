import CLI
import EtcdAPI
import EtcdClient
import Platform
import SwiftProtobuf

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// lock and elect: etcd's client-side recipes, with the key layout `etcdctl` 3.4 uses.
enum EtcdctlRecipeCommands {
    static var all: [EtcdctlCommandSpec] {
        [
            EtcdctlCommandSpec(
                ["lock"], use: "lock <lockname> [exec-command arg1 arg2 ...]", short: "Acquires a named lock",
                flags: [PFlag("ttl", .int, default: "10", "timeout for session")], run: lock),
            EtcdctlCommandSpec(
                ["elect"], use: "elect <election-name> [proposal]", short: "Observes and participates in leader election",
                flags: [PFlag("listen", shorthand: "l", .bool, default: "false", "observation mode")], run: elect),
        ]
    }

    @Sendable static func lock(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard let name = invocation.arguments.first else { throw .badArgs("lock takes a lock name argument and an optional command to execute.") }
        let command = Array(invocation.arguments.dropFirst()) + (invocation.afterDashDash ?? [])
        let ttl = Int64(invocation.flags.string("ttl") ?? "10") ?? 10
        let printer = invocation.printer
        Termination.install()
        let outcome: String? = try await invocation.withClient { client in
            try await untilTerminated { try await client.withSession(ttl: ttl) { session in
                let mutex = try await client.lock(name, session: session)
                if !command.isEmpty {
                    let status = ChildProcess.run(
                        command, extraEnvironment: ["ETCD_LOCK_KEY=\(mutex.key)", "ETCD_LOCK_REV=\(mutex.revision)"])
                    try await client.unlock(mutex)
                    return status == 0 ? nil : "exit status \(status)"
                }
                let held = try await client.get(mutex.key)
                guard !held.kvs.isEmpty else { return "lock lost on init" }
                printer.get(held)
                await Termination.wait()
                try await client.unlock(mutex)
                return nil
            } } ?? nil
        }
        if let outcome { throw EtcdctlFailure(EtcdctlExit.error, outcome) }
    }

    @Sendable static func elect(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let arguments = invocation.arguments
        guard arguments.count == 1 || arguments.count == 2 else {
            throw .badArgs("elect takes one election name argument and an optional proposal argument.")
        }
        let name = arguments[0]
        let printer = invocation.printer
        Termination.install()
        if invocation.flags.bool("listen") {
            try await invocation.withClient { client in
                _ = try await untilTerminated { try await observe(client, name, printer) }
            }
            return
        }
        guard arguments.count == 2 else { throw .badArgs("no proposal argument but -l not set") }
        let proposal = arguments[1]
        try await invocation.withClient { client in
            _ = try await untilTerminated {
                try await client.withSession { session in
                    let leadership = try await client.campaign(name, value: proposal, session: session)
                    printer.get(try await client.get(leadership.key))
                    await Termination.wait()
                    try await client.resign(leadership)
                }
            }
        }
    }

    /// Runs `body` until it finishes or a termination signal arrives (then `body` is
    /// cancelled and its sessions revoke their leases); nil when terminated.
    static func untilTerminated<Result: Sendable>(_ body: @escaping @Sendable () async throws -> Result) async throws
        -> Result?
    {
        try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                await Termination.wait()
                try await Task.sleep(for: .milliseconds(500))  // let a body that saw the signal finish its own clean-up
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    /// Prints the leader, then every new leader, until interrupted.
    static func observe(_ client: EtcdClient, _ name: String, _ printer: EtcdctlPrinter) async throws {
        // etcdctl prints a new leader, not a new value of the same one.
        var lastKey: Data? = nil
        try await client.observeLeader(name) { _, leader in
            if leader.key != lastKey {
                lastKey = leader.key
                printer.get(.with { $0.kvs = [leader] })
            }
            return Termination.signal == nil
        }
    }
}
