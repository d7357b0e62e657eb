import CLI
import EtcdClient
import Glibc

/// The v2 commands: keys (set, get, mk, mkdir, rm, rmdir, ls, setdir, update, updatedir,
/// watch, exec-watch), members and cluster-health, with etcdctl 3.4's output.
enum EtcdctlV2Commands {
    static let ttl = GoFlag(["ttl"], .int, default: "0", "key time-to-live in seconds")

    static var all: [EtcdctlV2CommandSpec] {
        [
            EtcdctlV2CommandSpec(
                "cluster-health", usage: "check the health of the etcd cluster", argsUsage: " ",
                flags: [GoFlag(["forever", "f"], .bool, "forever check the health every 10 second until CTRL+C")],
                run: clusterHealth),
            EtcdctlV2CommandSpec(
                "mk", usage: "make a new key with a given value", argsUsage: "<key> <value>",
                flags: [GoFlag(["in-order"], .bool, "create in-order key under directory <key>"), ttl], run: mk),
            EtcdctlV2CommandSpec(
                "mkdir", usage: "make a new directory", argsUsage: "<key>", flags: [ttl],
                run: { await makeDirectory($0, existence: .mustNotExist) }),
            EtcdctlV2CommandSpec(
                "rm", usage: "remove a key or a directory", argsUsage: "<key>",
                flags: [
                    GoFlag(["dir"], .bool, "removes the key if it is an empty directory or a key-value pair"),
                    GoFlag(["recursive", "r"], .bool, "removes the key and all child keys(if it is a directory)"),
                    GoFlag(["with-value"], .string, "previous value"),
                    GoFlag(["with-index"], .int, default: "0", "previous index"),
                ], run: rm),
            EtcdctlV2CommandSpec(
                "rmdir", usage: "removes the key if it is an empty directory or a key-value pair", argsUsage: "<key>",
                run: rmdir),
            EtcdctlV2CommandSpec(
                "get", usage: "retrieve the value of a key", argsUsage: "<key>",
                flags: [
                    GoFlag(["sort"], .bool, "returns result in sorted order"),
                    GoFlag(["quorum", "q"], .bool, "require quorum for get request"),
                ], run: get),
            EtcdctlV2CommandSpec(
                "ls", usage: "retrieve a directory", argsUsage: "[key]",
                flags: [
                    GoFlag(["sort"], .bool, "returns result in sorted order"),
                    GoFlag(["recursive", "r"], .bool, "returns all key names recursively for the given path"),
                    GoFlag(["p"], .bool, "append slash (/) to directories"),
                    GoFlag(["quorum", "q"], .bool, "require quorum for get request"),
                ], run: ls),
            EtcdctlV2CommandSpec(
                "set", usage: "set the value of a key", argsUsage: "<key> <value>",
                description: """
                    Set sets the value of a key.

                       When <value> begins with '-', <value> is interpreted as a flag.
                       Insert '--' for workaround:

                       $ set -- <key> <value>
                    """,
                flags: [
                    ttl, GoFlag(["swap-with-value"], .string, "previous value"),
                    GoFlag(["swap-with-index"], .int, default: "0", "previous index"),
                ], run: set),
            EtcdctlV2CommandSpec(
                "setdir", usage: "create a new directory or update an existing directory TTL", argsUsage: "<key>",
                flags: [ttl], run: { await makeDirectory($0, existence: .ignore) }),
            EtcdctlV2CommandSpec(
                "update", usage: "update an existing key with a given value", argsUsage: "<key> <value>", flags: [ttl],
                run: update),
            EtcdctlV2CommandSpec(
                "updatedir", usage: "update an existing directory", argsUsage: "<key> <value>", flags: [ttl],
                run: { await makeDirectory($0, existence: .mustExist) }),
            EtcdctlV2CommandSpec(
                "watch", usage: "watch a key for changes", argsUsage: "<key>",
                flags: [
                    GoFlag(["forever", "f"], .bool, "forever watch a key until CTRL+C"),
                    GoFlag(["after-index"], .int, default: "0", "watch after the given index"),
                    GoFlag(["recursive", "r"], .bool, "returns all values for key and child keys"),
                ], run: watch),
            EtcdctlV2CommandSpec(
                "exec-watch", usage: "watch a key for changes and exec an executable",
                argsUsage: "<key> <command> [args...]",
                flags: [
                    GoFlag(["after-index"], .int, default: "0", "watch after the given index"),
                    GoFlag(["recursive", "r"], .bool, "watch all values for key and child keys"),
                ], run: execWatch),
            EtcdctlV2CommandSpec(
                "member", usage: "member add, remove and list subcommands",
                subcommands: [
                    EtcdctlV2CommandSpec(
                        "list", usage: "enumerate existing cluster members", argsUsage: " ", run: EtcdctlV2Members.list),
                    EtcdctlV2CommandSpec(
                        "add", usage: "add a new member to the etcd cluster", argsUsage: "<name> <peerURL>",
                        run: EtcdctlV2Members.add),
                    EtcdctlV2CommandSpec(
                        "remove", usage: "remove an existing member from the etcd cluster", argsUsage: "<memberID>",
                        run: EtcdctlV2Members.remove),
                    EtcdctlV2CommandSpec(
                        "update", usage: "update an existing member in the etcd cluster",
                        argsUsage: "<memberID> <peerURLs>", run: EtcdctlV2Members.update),
                ]),
        ]
    }

    // MARK: Keys

    /// The key operand, or the `key required` failure.
    static func key(_ context: EtcdctlV2Context) -> String? {
        guard let key = context.arguments.first else {
            _ = context.fail(EtcdctlV2Exit.badArgs, "key required")
            return nil
        }
        return key
    }

    /// The value operand, else all of standard input (etcdctl's `argOrStdin`).
    static func value(_ context: EtcdctlV2Context) -> String? {
        if context.arguments.count > 1 { return context.arguments[1] }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(0, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        guard !bytes.isEmpty else {
            _ = context.fail(EtcdctlV2Exit.badArgs, "value required")
            return nil
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func ttlSeconds(_ context: EtcdctlV2Context) -> Int64? {
        let seconds = context.flags.int("ttl")
        return seconds > 0 ? Int64(seconds) : nil
    }

    @Sendable static func set(_ context: EtcdctlV2Context) async -> Int32 {
        guard let key = key(context), let value = value(context) else { return EtcdctlV2Exit.badArgs }
        let options = EtcdV2SetOptions(
            ttl: ttlSeconds(context), previousValue: context.flags.string("swap-with-value"),
            previousIndex: UInt64(max(0, context.flags.int("swap-with-index"))))
        return await write(context) { try await $0.set(key, value: value, options: options) }
    }

    @Sendable static func mk(_ context: EtcdctlV2Context) async -> Int32 {
        guard let key = key(context), let value = value(context) else { return EtcdctlV2Exit.badArgs }
        let ttl = ttlSeconds(context)
        if context.flags.bool("in-order") {
            return await write(context) { try await $0.createInOrder(key, value: value, ttl: ttl) }
        }
        return await write(context) { try await $0.create(key, value: value, ttl: ttl) }
    }

    @Sendable static func update(_ context: EtcdctlV2Context) async -> Int32 {
        guard let key = key(context), let value = value(context) else { return EtcdctlV2Exit.badArgs }
        let options = EtcdV2SetOptions(ttl: ttlSeconds(context), existence: .mustExist)
        return await write(context) { try await $0.set(key, value: value, options: options) }
    }

    /// mkdir, setdir and updatedir: print only in the extended and json formats.
    static func makeDirectory(_ context: EtcdctlV2Context, existence: EtcdV2SetOptions.Existence) async -> Int32 {
        guard let key = key(context) else { return EtcdctlV2Exit.badArgs }
        let options = EtcdV2SetOptions(ttl: ttlSeconds(context), existence: existence, directory: true)
        return await write(context, printIf: { _ in context.output != "simple" }) {
            try await $0.set(key, value: "", options: options)
        }
    }

    /// Runs a keys call and prints its response when `printIf` says so (mkdir and a
    /// deleted directory print nothing in the simple format).
    static func write(
        _ context: EtcdctlV2Context, printIf shouldPrint: (EtcdV2Response) -> Bool = { _ in true },
        _ body: @escaping @Sendable (EtcdV2Client) async throws -> EtcdV2Response
    ) async -> Int32 {
        switch await context.keysCall(body) {
        case .exit(let code): return code
        case .response(let response):
            if shouldPrint(response) { EtcdctlV2Output.print(response, format: context.output, io: context.io) }
            return EtcdctlV2Exit.success
        }
    }

    @Sendable static func rm(_ context: EtcdctlV2Context) async -> Int32 {
        guard let key = key(context) else { return EtcdctlV2Exit.badArgs }
        let options = EtcdV2DeleteOptions(
            previousValue: context.flags.string("with-value"),
            previousIndex: UInt64(max(0, context.flags.int("with-index"))), directory: context.flags.bool("dir"),
            recursive: context.flags.bool("recursive"))
        return await delete(context) { try await $0.delete(key, options: options) }
    }

    @Sendable static func rmdir(_ context: EtcdctlV2Context) async -> Int32 {
        guard let key = key(context) else { return EtcdctlV2Exit.badArgs }
        return await delete(context) { try await $0.delete(key, options: EtcdV2DeleteOptions(directory: true)) }
    }

    /// A deleted directory prints nothing in the simple format.
    static func delete(
        _ context: EtcdctlV2Context,
        _ body: @escaping @Sendable (EtcdV2Client) async throws -> EtcdV2Response
    ) async -> Int32 {
        await write(context, printIf: { !$0.node.dir || context.output != "simple" }, body)
    }

    @Sendable static func get(_ context: EtcdctlV2Context) async -> Int32 {
        guard let key = key(context) else { return EtcdctlV2Exit.badArgs }
        let sorted = context.flags.bool("sort")
        let quorum = context.flags.bool("quorum")
        switch await context.keysCall({ try await $0.get(key, sorted: sorted, quorum: quorum) }) {
        case .exit(let code): return code
        case .response(let response):
            if response.node.dir {
                context.io.error.line("\(response.node.key): is a directory")
                return EtcdctlV2Exit.badArgs
            }
            EtcdctlV2Output.print(response, format: context.output, io: context.io)
            return EtcdctlV2Exit.success
        }
    }

    @Sendable static func ls(_ context: EtcdctlV2Context) async -> Int32 {
        let key = context.arguments.first ?? "/"
        let sorted = context.flags.bool("sort")
        let recursive = context.flags.bool("recursive")
        let quorum = context.flags.bool("quorum")
        switch await context.keysCall({ try await $0.get(key, recursive: recursive, sorted: sorted, quorum: quorum) }) {
        case .exit(let code): return code
        case .response(let response):
            guard context.output == "simple" else {
                EtcdctlV2Output.print(response, format: context.output, io: context.io)
                return EtcdctlV2Exit.success
            }
            var text = response.node.dir ? "" : response.node.key + "\n"
            let slash = context.flags.bool("p")
            for node in response.node.descendants {
                text += node.key + (node.dir && slash ? "/" : "") + "\n"
            }
            context.io.output.write(text)
            return EtcdctlV2Exit.success
        }
    }

    @Sendable static func watch(_ context: EtcdctlV2Context) async -> Int32 {
        guard let key = key(context) else { return EtcdctlV2Exit.badArgs }
        guard let client = await context.makeClient() else { return EtcdctlV2Exit.badConnection }
        let recursive = context.flags.bool("recursive")
        var watcher = client.watcher(key, afterIndex: UInt64(max(0, context.flags.int("after-index"))), recursive: recursive)
        while true {
            let response: EtcdV2Response
            do {
                response = try await watcher.next()
            } catch {
                return context.fail(EtcdctlV2Exit.serverError, error)
            }
            if response.node.dir { continue }
            if recursive { context.io.output.line("[\(response.action)] \(response.node.key)") }
            EtcdctlV2Output.print(response, format: context.output, io: context.io)
            if !context.flags.bool("forever") { return EtcdctlV2Exit.success }
        }
    }

    @Sendable static func execWatch(_ context: EtcdctlV2Context) async -> Int32 {
        let arguments = context.arguments
        guard arguments.count >= 2 else {
            return context.fail(EtcdctlV2Exit.badArgs, "key and command to exec required")
        }
        let key: String
        let command: [String]
        if arguments.dropFirst().contains("--") {
            key = arguments[0]
            command = Array(arguments.dropFirst(2))
        } else {
            key = arguments[arguments.count - 1]
            command = Array(arguments.dropLast())
        }
        guard !command.isEmpty else { return context.fail(EtcdctlV2Exit.badArgs, "key and command to exec required") }
        guard let client = await context.makeClient() else { return EtcdctlV2Exit.badConnection }
        // etcdctl adds one to --after-index here and the watcher adds another: kept as is.
        let afterIndex = context.flags.int("after-index")
        var watcher = client.watcher(
            key, afterIndex: afterIndex != 0 ? UInt64(max(0, afterIndex + 1)) : 0, recursive: context.flags.bool("recursive"))
        while true {
            let response: EtcdV2Response
            do {
                response = try await watcher.next()
            } catch {
                return context.fail(EtcdctlV2Exit.serverError, error)
            }
            if response.node.dir {
                context.io.error.line("Ignored dir \(response.node.key) change")
                continue
            }
            let environment = [
                "ETCD_WATCH_ACTION=\(response.action)", "ETCD_WATCH_MODIFIED_INDEX=\(response.node.modifiedIndex)",
                "ETCD_WATCH_KEY=\(response.node.key)", "ETCD_WATCH_VALUE=\(response.node.value)",
            ]
            // Each change starts its command without waiting for the previous one.
            Task.detached { _ = ChildProcess.run(command, extraEnvironment: environment) }
        }
    }

    // MARK: cluster-health

    @Sendable static func clusterHealth(_ context: EtcdctlV2Context) async -> Int32 {
        guard let client = await context.makeClient(sync: false) else { return EtcdctlV2Exit.badConnection }
        let members: [EtcdV2Member]
        do {
            members = try await client.members()
        } catch {
            context.io.output.line("cluster may be unhealthy: failed to list members")
            return context.fail(EtcdctlV2Exit.serverError, error)
        }
        while true {
            var healthy = false
            for member in members {
                guard !member.clientURLs.isEmpty else {
                    context.io.output.line("member \(member.id) is unreachable: no available published client urls")
                    continue
                }
                var checked = false
                for text in member.clientURLs {
                    guard let url = try? HTTPURL(parsing: text) else { continue }
                    do {
                        if try await client.health(at: url) {
                            healthy = true
                            context.io.output.line("member \(member.id) is healthy: got healthy result from \(text)")
                        } else {
                            context.io.output.line("member \(member.id) is unhealthy: got unhealthy result from \(text)")
                        }
                        checked = true
                        break
                    } catch {
                        context.io.output.line("failed to check the health of member \(member.id) on \(text): \(error)")
                    }
                }
                if !checked {
                    context.io.output.line(
                        "member \(member.id) is unreachable: [\(member.clientURLs.joined(separator: " "))] are all unreachable")
                }
            }
            context.io.output.line(healthy ? "cluster is healthy" : "cluster is unhealthy")
            if !context.flags.bool("forever") {
                return healthy ? EtcdctlV2Exit.success : EtcdctlV2Exit.clusterNotHealthy
            }
            context.io.output.write("\nnext check after 10 second...\n\n")
            try? await Task.sleep(for: .seconds(10))
        }
    }
}

/// `member list|add|remove|update` over `/v2/members`.
enum EtcdctlV2Members {
    enum Prepared {
        case client(EtcdV2Client)
        case exit(Int32)

        var exitCode: Int32 {
            if case .exit(let code) = self { return code }
            return EtcdctlV2Exit.success
        }
    }

    /// Checks the operand count (printing `usage` and exiting 1 when wrong), then connects.
    static func prepare(_ context: EtcdctlV2Context, operands: Int, usage: String) async -> Prepared {
        guard context.arguments.count == operands else {
            context.io.error.line(usage)
            return .exit(EtcdctlV2Exit.badArgs)
        }
        guard let client = await context.makeClient() else { return .exit(EtcdctlV2Exit.badConnection) }
        return .client(client)
    }

    @Sendable static func list(_ context: EtcdctlV2Context) async -> Int32 {
        let prepared = await prepare(context, operands: 0, usage: "No arguments accepted")
        guard case .client(let client) = prepared else { return prepared.exitCode }
        let members: [EtcdV2Member]
        do {
            members = try await client.members()
        } catch {
            context.io.error.write(error.description + "\n")
            return EtcdctlV2Exit.badArgs
        }
        let leader: EtcdV2Member
        do {
            leader = try await client.leader()
        } catch {
            context.io.error.write("Failed to get leader:  \(error)\n")
            return EtcdctlV2Exit.badArgs
        }
        var text = ""
        for member in members {
            if member.name.isEmpty {
                text += "\(member.id)[unstarted]: peerURLs=\(member.peerURLs.joined(separator: ","))\n"
            } else {
                text += "\(member.id): name=\(member.name) peerURLs=\(member.peerURLs.joined(separator: ","))"
                text += " clientURLs=\(member.clientURLs.joined(separator: ",")) isLeader=\(member.id == leader.id)\n"
            }
        }
        context.io.output.write(text)
        return EtcdctlV2Exit.success
    }

    @Sendable static func add(_ context: EtcdctlV2Context) async -> Int32 {
        let prepared = await prepare(context, operands: 2, usage: "Provide a name and a single member peerURL")
        guard case .client(let client) = prepared else { return prepared.exitCode }
        let name = context.arguments[0]
        let added: EtcdV2Member
        let members: [EtcdV2Member]
        do {
            added = try await client.addMember(peerURLs: [context.arguments[1]])
            context.io.output.line("Added member named \(name) with ID \(added.id) to cluster")
            members = try await client.members()
        } catch {
            context.io.error.write(error.description + "\n")
            return EtcdctlV2Exit.badArgs
        }
        var cluster: [String] = []
        for member in members {
            for url in member.peerURLs { cluster.append("\(member.id == added.id ? name : member.name)=\(url)") }
        }
        context.io.output.write(
            "\nETCD_NAME=\(GoJSON.quote(name))\nETCD_INITIAL_CLUSTER=\(GoJSON.quote(cluster.joined(separator: ",")))\n"
                + "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n")
        return EtcdctlV2Exit.success
    }

    @Sendable static func remove(_ context: EtcdctlV2Context) async -> Int32 {
        let prepared = await prepare(context, operands: 1, usage: "Provide a single member ID")
        guard case .client(let client) = prepared else { return prepared.exitCode }
        let id = context.arguments[0]
        let members: [EtcdV2Member]
        do {
            members = try await client.members()
        } catch {
            context.io.error.line("Error while verifying ID against known members: \(error)")
            return EtcdctlV2Exit.badArgs
        }
        var found = false
        for member in members {
            if member.id == id { found = true }
            if member.name == id {
                context.io.error.write(
                    "Found a member named \(member.name); if this is correct, please use its ID, eg:\n\tetcdctl member remove \(member.id)\n"
                        + "For more details, read the documentation at https://github.com/coreos/etcd/blob/master/Documentation/runtime-configuration.md#remove-a-member\n\n")
            }
        }
        guard found else {
            context.io.error.line("Couldn't find a member in the cluster with an ID of \(id).")
            return EtcdctlV2Exit.badArgs
        }
        do {
            try await client.removeMember(id: id)
        } catch {
            context.io.error.write("Received an error trying to remove member \(id): \(error)")
            return EtcdctlV2Exit.badArgs
        }
        context.io.output.line("Removed member \(id) from cluster")
        return EtcdctlV2Exit.success
    }

    @Sendable static func update(_ context: EtcdctlV2Context) async -> Int32 {
        let prepared = await prepare(
            context, operands: 2,
            usage: "Provide an ID and a list of comma separated peerURL (0xabcd http://example.com,http://example1.com)")
        guard case .client(let client) = prepared else { return prepared.exitCode }
        let id = context.arguments[0]
        let urls = context.arguments[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        do {
            try await client.updateMember(id: id, peerURLs: urls)
        } catch {
            context.io.error.write(error.description + "\n")
            return EtcdctlV2Exit.badArgs
        }
        context.io.output.line("Updated member with ID \(id) in cluster")
        return EtcdctlV2Exit.success
    }
}

/// etcdctl's `printResponseKey`: simple, extended (RFC 2822 style) or json.
enum EtcdctlV2Output {
    static func print(_ response: EtcdV2Response, format: String, io: StandardStreams) {
        switch format {
        case "simple":
            if response.action != "delete" {
                io.output.line(response.node.value)
            } else {
                io.output.line("PrevNode.Value: \(response.previousNode?.value ?? "")")
            }
        case "extended":
            var text = "Key: \(response.node.key)\nCreated-Index: \(response.node.createdIndex)\n"
            text += "Modified-Index: \(response.node.modifiedIndex)\n"
            if let previous = response.previousNode { text += "PrevNode.Value: \(previous.value)\n" }
            text += "TTL: \(response.node.ttl)\nIndex: \(response.index)\n"
            if response.action != "delete" { text += "\n\(response.node.value)\n" }
            io.output.write(text)
        case "json":
            io.output.line(json(response))
        default:
            io.error.line("Unsupported output format: \(format)")
        }
    }

    /// Go's `json.Marshal` of client/v2's `Response` (the index is not marshalled).
    static func json(_ response: EtcdV2Response) -> String {
        "{\"action\":\(GoJSON.quote(response.action)),\"node\":\(json(response.node)),\"prevNode\":"
            + (response.previousNode.map(json) ?? "null") + "}"
    }

    static func json(_ node: EtcdV2Node) -> String {
        var text = "{\"key\":\(GoJSON.quote(node.key)),"
        if node.dir { text += "\"dir\":true," }
        text += "\"value\":\(GoJSON.quote(node.value)),\"nodes\":"
        text += node.nodes.map { "[" + $0.map(json).joined(separator: ",") + "]" } ?? "null"
        text += ",\"createdIndex\":\(node.createdIndex),\"modifiedIndex\":\(node.modifiedIndex)"
        if let expiration = node.expiration { text += ",\"expiration\":\(GoJSON.quote(expiration))" }
        if node.ttl != 0 { text += ",\"ttl\":\(node.ttl)" }
        return text + "}"
    }
}
