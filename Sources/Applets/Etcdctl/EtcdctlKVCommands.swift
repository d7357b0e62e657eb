import CLI
import EtcdAPI
import EtcdClient
import Glibc
import SwiftProtobuf

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// get, put, del, compaction.
enum EtcdctlKVCommands {
    static var all: [EtcdctlCommandSpec] {
        [
            EtcdctlCommandSpec(
                ["get"], use: "get [options] <key> [range_end]", short: "Gets the key or a range of keys",
                flags: [
                    PFlag("consistency", .string, default: "l", "Linearizable(l) or Serializable(s)"),
                    PFlag(
                        "from-key", .bool, default: "false",
                        "Get keys that are greater than or equal to the given key using byte compare"),
                    PFlag("keys-only", .bool, default: "false", "Get only the keys"),
                    PFlag("limit", .int, default: "0", "Maximum number of results"),
                    PFlag("order", .string, default: "", "Order of results; ASCEND or DESCEND (ASCEND by default)"),
                    PFlag("prefix", .bool, default: "false", "Get keys with matching prefix"),
                    PFlag(
                        "print-value-only", .bool, default: "false",
                        "Only write values when using the \"simple\" output format"),
                    PFlag("rev", .int, default: "0", "Specify the kv revision"),
                    PFlag("sort-by", .string, default: "", "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION"),
                ], run: get),
            EtcdctlCommandSpec(
                ["put"], use: "put [options] <key> <value> (<value> can also be given from stdin)",
                short: "Puts the given key into the store",
                description: """
                    Puts the given key into the store.

                    When <value> begins with '-', <value> is interpreted as a flag.
                    Insert '--' for workaround:

                    $ put <key> -- <value>
                    $ put -- <key> <value>

                    If <value> isn't given as a command line argument and '--ignore-value' is not specified,
                    this command tries to read the value from standard input.

                    If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
                    this command tries to read the value from standard input.

                    For example,
                    $ cat file | put <key>
                    will store the content of the file to <key>.
                    """,
                flags: [
                    PFlag("ignore-lease", .bool, default: "false", "updates the key using its current lease"),
                    PFlag("ignore-value", .bool, default: "false", "updates the key using its current value"),
                    PFlag("lease", .string, default: "0", "lease ID (in hexadecimal) to attach to the key"),
                    PFlag("prev-kv", .bool, default: "false", "return the previous key-value pair before modification"),
                ], run: put),
            EtcdctlCommandSpec(
                ["del"], use: "del [options] <key> [range_end]",
                short: "Removes the specified key or range of keys [key, range_end)",
                flags: [
                    PFlag(
                        "from-key", .bool, default: "false",
                        "delete keys that are greater than or equal to the given key using byte compare"),
                    PFlag("prefix", .bool, default: "false", "delete keys with matching prefix"),
                    PFlag("prev-kv", .bool, default: "false", "return deleted key-value pairs"),
                ], run: del),
            EtcdctlCommandSpec(
                ["compaction"], use: "compaction [options] <revision>", short: "Compacts the event history in etcd",
                flags: [
                    PFlag(
                        "physical", .bool, default: "false",
                        "'true' to wait for compaction to physically remove all old revisions")
                ], run: compaction),
        ]
    }

    /// Builds the range request `etcdctl get` sends (also used by txn's `get`).
    static func rangeRequest(_ arguments: [String], _ flags: PFlagResult) throws(EtcdctlFailure) -> Etcdserverpb_RangeRequest {
        guard !arguments.isEmpty else {
            throw .badArgs("get command needs one argument as key and an optional argument as range_end")
        }
        let prefix = flags.bool("prefix")
        let fromKey = flags.bool("from-key")
        if prefix && fromKey { throw .badArgs("`--prefix` and `--from-key` cannot be set at the same time, choose one") }
        var request = Etcdserverpb_RangeRequest()
        switch flags.string("consistency") ?? "l" {
        case "s": request.serializable = true
        case "l": break
        case let other: throw EtcdctlFailure(EtcdctlExit.badFeature, "unknown consistency flag \(EtcdctlHelp.goQuote(other))")
        }
        request.key = Data(arguments[0].utf8)
        if arguments.count > 1 {
            if prefix || fromKey {
                throw .badArgs("too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
            }
            request.rangeEnd = Data(arguments[1].utf8)
        }
        request.limit = Int64(flags.string("limit") ?? "0") ?? 0
        request.revision = max(Int64(flags.string("rev") ?? "0") ?? 0, 0)
        let orderText = flags.string("order") ?? ""
        switch orderText.uppercased() {
        case "ASCEND": request.sortOrder = .ascend
        case "DESCEND": request.sortOrder = .descend
        case "": request.sortOrder = .none
        default: throw EtcdctlFailure(EtcdctlExit.badFeature, "bad sort order \(orderText)")
        }
        let targetText = flags.string("sort-by") ?? ""
        switch targetText.uppercased() {
        case "CREATE": request.sortTarget = .create
        case "KEY", "": request.sortTarget = .key
        case "MODIFY": request.sortTarget = .mod
        case "VALUE": request.sortTarget = .value
        case "VERSION": request.sortTarget = .version
        default: throw EtcdctlFailure(EtcdctlExit.badFeature, "bad sort target \(targetText)")
        }
        // clientv3 drops an ascending sort by key: the server returns that order anyway.
        if request.sortTarget == .key && request.sortOrder == .ascend { request.sortOrder = .none }
        applyRange(&request.key, &request.rangeEnd, prefix: prefix, fromKey: fromKey)
        request.keysOnly = flags.bool("keys-only")
        return request
    }

    static func applyRange(_ key: inout Data, _ rangeEnd: inout Data, prefix: Bool, fromKey: Bool) {
        if prefix {
            if key.isEmpty {
                key = Data([0])
                rangeEnd = EtcdKeyRange.fromKey
            } else {
                rangeEnd = EtcdKeyRange.prefixEnd(of: key)
            }
        }
        if fromKey {
            if key.isEmpty { key = Data([0]) }
            rangeEnd = EtcdKeyRange.fromKey
        }
    }

    @Sendable static func get(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let request = try rangeRequest(invocation.arguments, invocation.flags)
        var printer = invocation.printer
        if invocation.flags.bool("print-value-only") {
            guard printer.format == .simple else {
                throw .badArgs("print-value-only is only for `--write-out=simple`")
            }
            printer.valueOnly = true
        }
        let response = try await invocation.withClient { client in try await client.range(request) }
        printer.get(response)
    }

    static func putRequest(_ arguments: [String], _ flags: PFlagResult, readStandardInput: Bool) throws(EtcdctlFailure)
        -> Etcdserverpb_PutRequest
    {
        let usage = "put command needs 1 argument and input from stdin or 2 arguments"
        guard let key = arguments.first else { throw .badArgs(usage) }
        let ignoreValue = flags.bool("ignore-value")
        if ignoreValue && arguments.count > 1 { throw .badArgs("put command needs only 1 argument when 'ignore-value' is set") }
        var request = Etcdserverpb_PutRequest()
        request.key = Data(key.utf8)
        if !ignoreValue {
            if arguments.count > 1 {
                request.value = Data(arguments[1].utf8)
            } else {
                let input = readStandardInput ? StandardInput.readAll() : []
                if input.isEmpty { throw .badArgs(usage) }
                request.value = Data(input)
            }
        }
        let leaseText = flags.string("lease") ?? "0"
        guard let lease = Int64(leaseText, radix: 16) else {
            throw .badArgs(
                "bad lease ID (strconv.ParseInt: parsing \(EtcdctlHelp.goQuote(leaseText)): invalid syntax), expecting ID in Hex")
        }
        request.lease = lease
        request.prevKv = flags.bool("prev-kv")
        request.ignoreValue = ignoreValue
        request.ignoreLease = flags.bool("ignore-lease")
        return request
    }

    @Sendable static func put(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let request = try putRequest(invocation.arguments, invocation.flags, readStandardInput: true)
        let response = try await invocation.withClient { client in try await client.put(request) }
        invocation.printer.put(response)
    }

    static func deleteRequest(_ arguments: [String], _ flags: PFlagResult) throws(EtcdctlFailure)
        -> Etcdserverpb_DeleteRangeRequest
    {
        guard !arguments.isEmpty else {
            throw .badArgs("del command needs one argument as key and an optional argument as range_end")
        }
        let prefix = flags.bool("prefix")
        let fromKey = flags.bool("from-key")
        if prefix && fromKey { throw .badArgs("`--prefix` and `--from-key` cannot be set at the same time, choose one") }
        var request = Etcdserverpb_DeleteRangeRequest()
        request.key = Data(arguments[0].utf8)
        if arguments.count > 1 {
            if prefix || fromKey {
                throw .badArgs("too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
            }
            request.rangeEnd = Data(arguments[1].utf8)
        }
        applyRange(&request.key, &request.rangeEnd, prefix: prefix, fromKey: fromKey)
        request.prevKv = flags.bool("prev-kv")
        return request
    }

    @Sendable static func del(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let request = try deleteRequest(invocation.arguments, invocation.flags)
        let response = try await invocation.withClient { client in try await client.delete(request) }
        invocation.printer.delete(response)
    }

    @Sendable static func compaction(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("compaction command needs 1 argument") }
        let text = invocation.arguments[0]
        guard let revision = Int64(text) else {
            throw EtcdctlFailure(
                EtcdctlExit.error, "strconv.ParseInt: parsing \(EtcdctlHelp.goQuote(text)): invalid syntax")
        }
        let physical = invocation.flags.bool("physical")
        _ = try await invocation.withClient { client in try await client.compact(revision: revision, physical: physical) }
        invocation.io.output.line("compacted revision \(revision)")
    }
}

/// Reading standard input, for `put` without a value, `txn` and passwords.
enum StandardInput {
    /// One line without its newline (reads byte by byte so nothing after it is consumed).
    static func readLine() -> String { readLineOrEOF() ?? "" }

    /// One complete line, or nil when input ends before a newline.
    static func readLineOrEOF() -> String? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let count = read(0, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            if count != 1 { return nil }
            if byte == 0x0A { break }
            bytes.append(byte)
        }
        if bytes.last == 0x0D { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func readAll(limit: Int = 64 << 20) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while bytes.count <= limit {
            let count = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return bytes
    }
}
