import CLI
import EtcdBenchmark
import EtcdClient

/// `coreos etcd`: the server (`EtcdServerCommand`), the discovery service
/// (`coreos etcd discovery`) and the load generator (`coreos etcd benchmark`); all thin
/// layers over the EtcdServer and EtcdBenchmark modules.
enum EtcdCommand {
    static let benchmarkFlags: [PFlag] = [
        PFlag("endpoints", .stringSlice, default: "[127.0.0.1:2379]", "gRPC endpoints"),
        PFlag("conns", .int, default: "1", "Total number of gRPC connections"),
        PFlag("clients", .int, default: "1", "Total number of gRPC clients"),
        PFlag("total", .int, default: "10000", "Total number of requests"),
        PFlag("key-size", .int, default: "8", "Key size of request"),
        PFlag("val-size", .int, default: "8", "Value size of request"),
        PFlag("key-space-size", .int, default: "1", "Maximum possible keys"),
        PFlag("sequential-keys", .bool, default: "false", "Use sequential keys"),
        PFlag("rate", .int, default: "0", "Maximum requests per second (0 is no limit)"),
        PFlag("consistency", .string, default: "l", "Linearizable(l) or Serializable(s) (range only)"),
        PFlag("txn-ops", .int, default: "1", "Number of puts per transaction (txn-put only)"),
        PFlag("json", .bool, default: "false", "Print one JSON object instead of the report"),
        PFlag("help", shorthand: "h", .bool, default: "false", "help for benchmark"),
    ]

    static let usage = """
        Usage: coreos etcd benchmark OPERATION [flags]

        Operations:
          put                 puts of random or sequential keys (--key-size, --val-size, --key-space-size)
          range KEY [END]     gets (--consistency l|s)
          txn-put             transactions of --txn-ops puts
          watch               event delivery latency to --clients watchers of --total puts
          lease-keepalive     keep-alive round trips, one lease per client

        Flags:

        """

    @Sendable static func main(_ argv: [String], io: StandardStreams) async -> Int32 {
        let arguments = Array(argv.dropFirst())
        if arguments.first == "discovery" {
            return await EtcdDiscoveryCommand.run(Array(arguments.dropFirst()), io: io)
        }
        if arguments.first == "grpc-proxy" || arguments.first == "gateway" {
            return await EtcdGatewayCommand.run(arguments, io: io)
        }
        guard arguments.first == "benchmark" else {
            return await EtcdServerCommand.run(arguments, io: io, environment: ProcessEnvironment.current)
        }
        let parsed: PFlagResult
        do { parsed = try PFlagParser(benchmarkFlags).parse(Array(arguments.dropFirst())) } catch {
            io.error.line("coreos etcd benchmark: \(error.message)")
            return ExitStatus.usage
        }
        if parsed.bool("help") || parsed.operands.isEmpty {
            io.output.write(usage + benchmarkFlags.map { "  --\($0.name) (default \($0.defaultValue)): \($0.usage)" }.joined(separator: "\n") + "\n")
            return parsed.operands.isEmpty && !parsed.bool("help") ? ExitStatus.usage : ExitStatus.success
        }
        func integer(_ name: String) -> Int { Int(parsed.string(name) ?? "") ?? Int(benchmarkFlags.first { $0.name == name }?.defaultValue ?? "0") ?? 0 }
        var endpointList = parsed.string("endpoints") ?? "127.0.0.1:2379"
        if endpointList.hasPrefix("[") { endpointList = String(endpointList.dropFirst().dropLast()) }
        var options: BenchmarkOptions
        do {
            options = BenchmarkOptions(endpoints: try endpointList.split(separator: ",").map { try EtcdEndpoint(parsing: String($0)) })
        } catch {
            io.error.line("coreos etcd benchmark: \(error)")
            return ExitStatus.usage
        }
        options.connections = max(integer("conns"), 1)
        options.clients = max(integer("clients"), 1)
        options.total = max(integer("total"), 1)
        options.keySize = max(integer("key-size"), 1)
        options.valueSize = max(integer("val-size"), 0)
        options.keySpaceSize = max(integer("key-space-size"), 1)
        options.sequentialKeys = parsed.bool("sequential-keys")
        options.rate = max(integer("rate"), 0)
        let operationName = parsed.operands[0]
        let operation: BenchmarkOperation
        switch operationName {
        case "put": operation = .put
        case "range":
            guard parsed.operands.count >= 2 else {
                io.error.line("coreos etcd benchmark: range needs a key")
                return ExitStatus.usage
            }
            let consistency = parsed.string("consistency") ?? "l"
            guard consistency == "l" || consistency == "s" else {
                io.error.line("coreos etcd benchmark: --consistency must be l or s")
                return ExitStatus.usage
            }
            operation = .range(
                key: parsed.operands[1], end: parsed.operands.count > 2 ? parsed.operands[2] : nil,
                serializable: consistency == "s")
        case "txn-put": operation = .txnPut(operations: max(integer("txn-ops"), 1))
        case "watch": operation = .watch
        case "lease-keepalive": operation = .leaseKeepAlive
        default:
            io.error.line("coreos etcd benchmark: unknown operation \(operationName)")
            return ExitStatus.usage
        }
        do {
            let report = try await BenchmarkRunner.run(operation, options)
            if parsed.bool("json") {
                io.output.line(report.json(operation: operationName, clients: options.clients, connections: options.connections))
            } else {
                io.output.write(report.text())
            }
            return report.errors == 0 ? ExitStatus.success : ExitStatus.failure
        } catch {
            io.error.line("coreos etcd benchmark: \(String(reflecting: error))")
            return ExitStatus.failure
        }
    }
}
