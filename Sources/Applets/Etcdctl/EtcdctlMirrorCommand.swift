import CLI
import EtcdAPI
import EtcdClient
import SwiftProtobuf
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `make-mirror`: copies a prefix to another cluster, then keeps it up to date from the
/// watch stream, one destination transaction per source revision (as etcdctl 3.4 does).
/// It runs until interrupted; like etcdctl it keeps the default signal disposition, so
/// Ctrl-C ends it at once (the destination is consistent per source revision).
enum EtcdctlMirrorCommand {
    static var all: [EtcdctlCommandSpec] {
        [
            EtcdctlCommandSpec(
                ["make-mirror"], use: "make-mirror [options] <destination>",
                short: "Makes a mirror at the destination etcd cluster",
                flags: [
                    PFlag("dest-cacert", .string, default: "", "Verify certificates of TLS enabled secure servers using this CA bundle"),
                    PFlag(
                        "dest-cert", .string, default: "",
                        "Identify secure client using this TLS certificate file for the destination cluster"),
                    PFlag("dest-insecure-transport", .bool, default: "true", "Disable transport security for client connections"),
                    PFlag("dest-key", .string, default: "", "Identify secure client using this TLS key file"),
                    PFlag(
                        "dest-prefix", .string, default: "",
                        "destination prefix to mirror a prefix to a different prefix in the destination cluster"),
                    PFlag("no-dest-prefix", .bool, default: "false", "mirror key-values to the root of the destination cluster"),
                    PFlag("prefix", .string, default: "", "Key-value prefix to mirror"),
                ], run: run),
        ]
    }

    final class Counter: Sendable {
        let value = Atomic<Int64>(0)
    }

    @Sendable static func run(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("make-mirror takes one destination argument") }
        let flags = invocation.flags
        let prefix = flags.string("prefix") ?? ""
        var destinationPrefix = flags.string("dest-prefix") ?? ""
        let noDestinationPrefix = flags.bool("no-dest-prefix")
        if noDestinationPrefix && !destinationPrefix.isEmpty {
            throw .badArgs("`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one")
        }
        if !noDestinationPrefix && destinationPrefix.isEmpty { destinationPrefix = prefix }
        let targetPrefix = destinationPrefix
        let renamed: @Sendable (Data) -> Data = { key in Data(targetPrefix.utf8) + key.dropFirst(prefix.utf8.count) }
        var destination = invocation.global.clientConfiguration
        do {
            destination.endpoints = [try EtcdEndpoint(parsing: invocation.arguments[0])]
        } catch {
            throw .badArgs(error.message)
        }
        let cacert = flags.string("dest-cacert").flatMap { $0.isEmpty ? nil : $0 }
        let cert = flags.string("dest-cert").flatMap { $0.isEmpty ? nil : $0 }
        let key = flags.string("dest-key").flatMap { $0.isEmpty ? nil : $0 }
        destination.tls =
            cacert == nil && cert == nil && key == nil
            ? nil : EtcdTLSConfiguration(trustedCAFile: cacert, certificateFile: cert, keyFile: key)
        destination.credentials = nil
        let total = Counter()
        let out = invocation.io.output
        let destinationConfiguration = destination
        try await invocation.withClient { source in
            try await EtcdClient.withClient(destinationConfiguration) { target in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        while true {
                            try await Task.sleep(for: .seconds(30))
                            out.line("\(total.value.load(ordering: .relaxed))")
                        }
                    }
                    group.addTask {
                        let revision = try await copyBase(source, target, prefix: prefix, renamed: renamed, total: total)
                        try await follow(source, target, prefix: prefix, from: revision + 1, renamed: renamed, total: total)
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
        }
    }

    /// Copies every key under the prefix as of one revision, in pages of 1,000; returns the revision.
    static func copyBase(
        _ source: EtcdClient, _ target: EtcdClient, prefix: String, renamed: (Data) -> Data, total: Counter
    ) async throws -> Int64 {
        var request = Etcdserverpb_RangeRequest()
        (request.key, request.rangeEnd) = EtcdKeyRange.prefix(Data(prefix.utf8))
        request.limit = 1000
        var revision: Int64 = 0
        while true {
            request.revision = revision
            let page = try await source.range(request)
            if revision == 0 { revision = page.header.revision }
            for kv in page.kvs {
                _ = try await target.put(.with {
                    $0.key = renamed(kv.key)
                    $0.value = kv.value
                })
                total.value.add(1, ordering: .relaxed)
            }
            guard page.more, let last = page.kvs.last else { return revision }
            request.key = last.key + Data([0])
        }
    }

    /// Applies the source's changes after `revision`, one destination transaction per source revision.
    static func follow(
        _ source: EtcdClient, _ target: EtcdClient, prefix: String, from revision: Int64,
        renamed: @escaping @Sendable (Data) -> Data, total: Counter
    ) async throws {
        var request = Etcdserverpb_WatchCreateRequest()
        (request.key, request.rangeEnd) = EtcdKeyRange.prefix(Data(prefix.utf8))
        request.startRevision = revision
        try await source.watch(request) { responses in
            for try await response in responses {
                var operations: [Etcdserverpb_RequestOp] = []
                var lastRevision: Int64 = 0
                for event in response.events {
                    if lastRevision != 0 && event.kv.modRevision > lastRevision {
                        _ = try await target.txn(.with { $0.success = operations })
                        operations.removeAll()
                    }
                    lastRevision = event.kv.modRevision
                    let key = renamed(event.kv.key)
                    if event.type == .delete {
                        operations.append(.with { $0.requestDeleteRange = .with { $0.key = key } })
                    } else {
                        operations.append(.with { $0.requestPut = .with {
                            $0.key = key
                            $0.value = event.kv.value
                        } })
                    }
                    total.value.add(1, ordering: .relaxed)
                }
                if !operations.isEmpty { _ = try await target.txn(.with { $0.success = operations }) }
            }
        }
    }
}
