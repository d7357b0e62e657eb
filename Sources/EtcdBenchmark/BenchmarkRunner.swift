public import EtcdClient
import EtcdAPI
import Synchronization
import SwiftProtobuf

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What to measure; modeled on etcd's tools/benchmark commands.
public enum BenchmarkOperation: Sendable {
    /// Puts of random (or sequential) keys from the key space.
    case put
    /// Gets of `key` (or the range `[key, end)`), linearizable unless `serializable`.
    case range(key: String, end: String?, serializable: Bool)
    /// Transactions of `operations` puts each.
    case txnPut(operations: Int)
    /// Event delivery latency: every client watches the benchmark prefix; `total` puts are made.
    case watch
    /// Keep-alive round trips on one lease per client, over one stream each.
    case leaseKeepAlive
}

public struct BenchmarkOptions: Sendable {
    public var endpoints: [EtcdEndpoint]
    public var connections: Int = 1
    public var clients: Int = 1
    public var total: Int = 10_000
    public var keySize: Int = 8
    public var valueSize: Int = 8
    public var keySpaceSize: Int = 1
    public var sequentialKeys = false
    /// Requests per second over all clients; 0 = as fast as possible.
    public var rate: Int = 0

    public init(endpoints: [EtcdEndpoint]) { self.endpoints = endpoints }
}

/// Runs a workload with `connections` HTTP/2 connections shared by `clients` concurrent
/// clients (round robin), each sending its next request when the previous one completes.
public enum BenchmarkRunner {
    public static func run(_ operation: BenchmarkOperation, _ options: BenchmarkOptions) async throws -> LatencyReport {
        if options.rate == 0, !options.endpoints.contains(where: \.secure), let fast = fastPath(operation, options) {
            return try await FastUnaryLoad.run(
                endpoints: options.endpoints, path: fast.path, connections: max(options.connections, 1),
                clients: max(options.clients, 1), total: options.total, keySpaceSize: options.keySpaceSize,
                sequentialKeys: options.sequentialKeys, message: fast.message)
        }
        let configuration = EtcdClientConfiguration(endpoints: options.endpoints, requestTimeout: .seconds(30))
        // The watch benchmark writes on a connection of its own, like etcd's tool.
        let extra = { if case .watch = operation { return 1 } else { return 0 } }()
        return try await withClients(count: max(options.connections, 1) + extra, configuration) { connections in
            switch operation {
            case .watch: return try await runWatch(options, Array(connections.dropLast()), writer: connections[connections.count - 1])
            default: return try await runRequests(operation, options, connections)
            }
        }
    }

    /// The event-loop-driven path for unary workloads without a rate cap (see ``FastUnaryLoad``).
    static func fastPath(_ operation: BenchmarkOperation, _ options: BenchmarkOptions)
        -> (path: String, message: @Sendable (Int) -> [UInt8])?
    {
        let value = [UInt8](randomValue(size: options.valueSize))
        let keySize = options.keySize
        switch operation {
        case .put:
            return ("/etcdserverpb.KV/Put", { slot in BenchmarkMessages.put(key: [UInt8](key(slot, size: keySize)), value: value) })
        case .range(let key, let end, let serializable):
            let body = BenchmarkMessages.range(key: Array(key.utf8), end: end.map { Array($0.utf8) }, serializable: serializable)
            return ("/etcdserverpb.KV/Range", { _ in body })
        case .txnPut(let operations):
            return (
                "/etcdserverpb.KV/Txn",
                { slot in
                    BenchmarkMessages.txnPut(
                        keys: (0..<operations).map { [UInt8](key(slot * operations + $0, size: keySize)) }, value: value)
                }
            )
        case .watch, .leaseKeepAlive:
            return nil
        }
    }

    /// Opens `count` independent clients (each its own connection) for the body.
    static func withClients<Result: Sendable>(
        count: Int, _ configuration: EtcdClientConfiguration, opened: [EtcdClient] = [],
        _ body: ([EtcdClient]) async throws -> Result
    ) async throws -> Result {
        if opened.count == count { return try await body(opened) }
        return try await EtcdClient.withClient(configuration) { client in
            try await withClients(count: count, configuration, opened: opened + [client], body)
        }
    }

    /// etcd's benchmark encodes the key index as a signed varint in a key of `keySize` bytes.
    static func key(_ index: Int, size: Int) -> Data {
        var bytes = [UInt8](repeating: 0, count: max(size, 1))
        var value = UInt64(bitPattern: Int64(index) << 1 ^ Int64(index) >> 63)
        var position = 0
        while position < bytes.count {
            if value < 0x80 {
                bytes[position] = UInt8(value)
                break
            }
            bytes[position] = UInt8(value & 0x7F) | 0x80
            value >>= 7
            position += 1
        }
        return Data(bytes)
    }

    static func randomValue(size: Int) -> Data {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<size).map { _ in UInt8.random(in: 0x61...0x7A, using: &generator) })
    }

    static func runRequests(_ operation: BenchmarkOperation, _ options: BenchmarkOptions, _ connections: [EtcdClient])
        async throws -> LatencyReport
    {
        let next = SharedCounter()
        let value = randomValue(size: options.valueSize)
        let clock = ContinuousClock()
        let start = clock.now
        let perClient: [([Double], Int)] = try await withThrowingTaskGroup(of: ([Double], Int).self) { group in
            for clientIndex in 0..<max(options.clients, 1) {
                let connection = connections[clientIndex % connections.count]
                group.addTask {
                    var latencies: [Double] = []
                    latencies.reserveCapacity(options.total / max(options.clients, 1) + 1)
                    var errors = 0
                    var leaseID: Int64 = 0
                    if case .leaseKeepAlive = operation { leaseID = try await connection.leaseGrant(ttl: 600).id }
                    var generator = SystemRandomNumberGenerator()
                    let space = max(options.keySpaceSize, 1)
                    let send: @Sendable (Int) async throws -> Void
                    switch operation {
                    case .put:
                        send = { index in
                            var request = Etcdserverpb_PutRequest()
                            request.key = key(index, size: options.keySize)
                            request.value = value
                            _ = try await connection.put(request)
                        }
                    case .range(let key, let end, let serializable):
                        let request = Etcdserverpb_RangeRequest.with {
                            $0.key = Data(key.utf8)
                            if let end { $0.rangeEnd = Data(end.utf8) }
                            $0.serializable = serializable
                        }
                        send = { _ in _ = try await connection.range(request) }
                    case .txnPut(let operations):
                        send = { index in
                            let request = Etcdserverpb_TxnRequest.with {
                                $0.success = (0..<operations).map { offset in
                                    .with {
                                        $0.requestPut = .with {
                                            $0.key = BenchmarkRunner.key(index * operations + offset, size: options.keySize)
                                            $0.value = value
                                        }
                                    }
                                }
                            }
                            _ = try await connection.txn(request)
                        }
                    case .leaseKeepAlive:
                        let id = leaseID
                        send = { _ in _ = try await connection.leaseKeepAliveOnce(id: id) }
                    case .watch:
                        send = { _ in }
                    }
                    while true {
                        let index = next.value.wrappingAdd(1, ordering: .relaxed).oldValue
                        if index >= options.total { break }
                        if options.rate > 0 {
                            let due = start + .seconds(Double(index) / Double(options.rate))
                            if clock.now < due { try await Task.sleep(until: due, clock: clock) }
                        }
                        let slot =
                            options.sequentialKeys ? index % space : Int.random(in: 0..<space, using: &generator)
                        let began = clock.now
                        do {
                            try await send(slot)
                            latencies.append(seconds(clock.now - began))
                        } catch {
                            errors += 1
                        }
                    }
                    if leaseID != 0 { _ = try? await connection.leaseRevoke(id: leaseID) }
                    return (latencies, errors)
                }
            }
            var results: [([Double], Int)] = []
            for try await result in group { results.append(result) }
            return results
        }
        let total = seconds(clock.now - start)
        return LatencyReport(
            latencies: perClient.flatMap(\.0), errors: perClient.map(\.1).reduce(0, +), total: total)
    }

    /// Each client watches the benchmark prefix; one writer makes `total` puts; the latency
    /// of each delivery is measured from the put's start to its arrival at a watcher.
    static func runWatch(_ options: BenchmarkOptions, _ connections: [EtcdClient], writer: EtcdClient) async throws
        -> LatencyReport
    {
        let prefix = "coreos-benchmark-watch/"
        let clock = ContinuousClock()
        let origin = clock.now
        let sentAt = SentTimes()
        let value = randomValue(size: options.valueSize)
        let watchers = max(options.clients, 1)
        let ready = SharedCounter()
        let start = clock.now
        let perWatcher: [[Double]] = try await withThrowingTaskGroup(of: [Double].self) { group in
            for watcherIndex in 0..<watchers {
                let connection = connections[watcherIndex % connections.count]
                group.addTask {
                    try await connection.watch(prefix, prefix: true) { responses in
                        ready.value.add(1, ordering: .relaxed)
                        var latencies: [Double] = []
                        for try await response in responses {
                            let now = seconds(clock.now - origin)
                            for event in response.events {
                                let index = Int(String(decoding: event.kv.key.dropFirst(prefix.utf8.count), as: UTF8.self)) ?? 0
                                if let sent = sentAt.times.withLock({ $0[index] }) { latencies.append(now - sent) }
                            }
                            if latencies.count >= options.total { break }
                        }
                        return latencies
                    }
                }
            }
            // Give the watches time to be created before writing.
            while ready.value.load(ordering: .relaxed) < watchers { try await Task.sleep(for: .milliseconds(10)) }
            try await Task.sleep(for: .milliseconds(200))
            for index in 0..<options.total {
                if options.rate > 0 {
                    let due = start + .seconds(Double(index) / Double(options.rate))
                    if clock.now < due { try await Task.sleep(until: due, clock: clock) }
                }
                let sent = seconds(clock.now - origin)
                sentAt.times.withLock { $0[index] = sent }
                var request = Etcdserverpb_PutRequest()
                request.key = Data((prefix + String(index)).utf8)
                request.value = value
                _ = try await writer.put(request)
            }
            var results: [[Double]] = []
            for try await result in group { results.append(result) }
            _ = try? await writer.delete(prefix, prefix: true)
            return results
        }
        return LatencyReport(latencies: perWatcher.flatMap { $0 }, errors: 0, total: seconds(clock.now - start))
    }

    static func seconds(_ duration: Duration) -> Double {
        let (whole, attoseconds) = duration.components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}

/// Shared between client tasks; the wrappers make the non-copyable primitives sharable.
final class SharedCounter: Sendable {
    let value = Atomic<Int>(0)
}

final class SentTimes: Sendable {
    let times = Mutex([Int: Double]())
}
