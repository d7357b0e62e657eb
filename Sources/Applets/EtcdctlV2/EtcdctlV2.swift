import CLI
import EtcdClient
import Glibc

/// Exit codes of etcdctl's v2 mode (ctlv2/command/error.go).
enum EtcdctlV2Exit {
    static let success: Int32 = 0
    static let badArgs: Int32 = 1
    static let badConnection: Int32 = 2
    static let unknownCommand: Int32 = 3
    static let serverError: Int32 = 4
    static let clusterNotHealthy: Int32 = 5
}

/// One command of the v2 tree, as urfave/cli declares it.
struct EtcdctlV2CommandSpec: Sendable {
    typealias Body = @Sendable (EtcdctlV2Context) async -> Int32

    var name: String
    var aliases: [String] = []
    var usage: String
    var argsUsage: String
    var description: String?
    var flags: [GoFlag]
    var subcommands: [EtcdctlV2CommandSpec]
    var run: Body?

    init(
        _ name: String, aliases: [String] = [], usage: String, argsUsage: String = "", description: String? = nil,
        flags: [GoFlag] = [], subcommands: [EtcdctlV2CommandSpec] = [], run: Body? = nil
    ) {
        self.name = name
        self.aliases = aliases
        self.usage = usage
        self.argsUsage = argsUsage
        self.description = description
        self.flags = flags
        self.subcommands = subcommands
        self.run = run
    }
}

/// What a v2 command body gets.
struct EtcdctlV2Context: Sendable {
    var global: GoFlagResult
    var flags: GoFlagResult
    var arguments: [String]
    var io: StandardStreams
    var environment: [String: String]

    var output: String { global.string("output") ?? "simple" }
    var totalTimeout: Duration { global.string("total-timeout").flatMap(GoValues.parseDuration) ?? .seconds(5) }

    /// Prints `Error:  <err>` (and a cluster error's per-endpoint detail) and returns `code`.
    func fail(_ code: Int32, _ error: EtcdV2Error) -> Int32 {
        io.error.write("Error:  \(error.description)\n")
        if let detail = error.detail { io.error.write(detail + "\n") }
        return code
    }

    func fail(_ code: Int32, _ message: String) -> Int32 {
        io.error.line("Error:  \(message)")
        return code
    }

    /// The client for the configured endpoints, synchronized with the cluster's published
    /// client URLs unless `--no-sync` (or `sync` is false); nil after printing why not.
    func makeClient(sync: Bool = true) async -> EtcdV2Client? {
        var endpoints: [HTTPURL] = []
        for text in endpointWords() {
            let spelled = text.contains("://") ? text : "http://" + text
            guard let url = try? HTTPURL(parsing: spelled) else {
                io.error.line("parse \(text): invalid URL")
                return nil
            }
            endpoints.append(url)
        }
        // client/v2 picks endpoints in a random order, spreading clients over the members.
        var client = EtcdV2Client(endpoints: endpoints.shuffled())
        client.headerTimeout = global.string("timeout").flatMap(GoValues.parseDuration) ?? .seconds(2)
        client.dialTimeout = min(.seconds(30), totalTimeout == .zero ? .seconds(30) : totalTimeout)
        let files = (
            ca: setting("ca-file", "ETCDCTL_CA_FILE"), cert: setting("cert-file", "ETCDCTL_CERT_FILE"),
            key: setting("key-file", "ETCDCTL_KEY_FILE")
        )
        if files.ca != nil || files.cert != nil || files.key != nil {
            client.tls = EtcdTLSConfiguration(trustedCAFile: files.ca, certificateFile: files.cert, keyFile: files.key)
        }
        if let user = setting("username", "ETCDCTL_USERNAME") {
            if let colon = user.firstIndex(of: ":") {
                client.credentials = (String(user[..<colon]), String(user[user.index(after: colon)...]))
            } else {
                guard let typed = getpass("Password: ") else { return nil }
                client.credentials = (user, String(cString: typed))
            }
        }
        let debug = global.bool("debug")
        if debug {
            let errorSink = io.error
            client.requestLog = { line in errorSink.line("cURL Command: \(line)") }
        }
        if sync && !global.bool("no-sync") {
            if debug { io.error.line("start to sync cluster using endpoints(\(client.endpoints.map(\.origin).joined(separator: ",")))") }
            let before = client
            let outcome = await withDeadline(totalTimeout) { () async throws -> EtcdV2Client in
                var synced = before
                try await synced.sync()
                return synced
            }
            switch outcome {
            case .success(let synced): client = synced
            case .failure(let error):
                if error.isConnectionFailure {
                    _ = fail(EtcdctlV2Exit.badConnection, error)
                    return nil
                }
            }
            if debug { io.error.line("got endpoints(\(client.endpoints.map(\.origin).joined(separator: ",")))") }
        }
        if debug { io.error.line("Cluster-Endpoints: \(client.endpoints.map(\.origin).joined(separator: ", "))") }
        return client
    }

    /// `--endpoints`, `ETCDCTL_ENDPOINTS`, `--endpoint`, `ETCDCTL_ENDPOINT`, `--peers`,
    /// `ETCDCTL_PEERS`, then etcd's two historical client ports.
    func endpointWords() -> [String] {
        let chosen =
            setting("endpoints", "ETCDCTL_ENDPOINTS") ?? setting("endpoint", "ETCDCTL_ENDPOINT")
            ?? setting("peers", "ETCDCTL_PEERS") ?? "http://127.0.0.1:2379,http://127.0.0.1:4001"
        return chosen.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    }

    private func setting(_ flag: String, _ variable: String) -> String? {
        if let value = global.string(flag), !value.isEmpty { return value }
        if let value = environment[variable], !value.isEmpty { return value }
        return nil
    }

    /// Runs `body` under the command's total timeout (`--total-timeout`), as Go's context
    /// deadline: when it passes, the result is `context deadline exceeded`.
    func withDeadline<Value: Sendable>(
        _ limit: Duration, _ body: @escaping @Sendable () async throws -> Value
    ) async -> Result<Value, EtcdV2Error> {
        await withTaskGroup(of: Result<Value, EtcdV2Error>?.self) { group in
            group.addTask {
                do {
                    return .success(try await body())
                } catch {
                    return .failure((error as? EtcdV2Error) ?? .unexpected("\(error)"))
                }
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return Task.isCancelled ? nil : .failure(.unexpected("context deadline exceeded"))
            }
            var outcome: Result<Value, EtcdV2Error> = .failure(.unexpected("context canceled"))
            for await result in group {
                if let result {
                    outcome = result
                    break
                }
            }
            group.cancelAll()
            return outcome
        }
    }

    /// A keys call under the total timeout: the response, or the exit code after the
    /// failure was printed (4, as etcdctl).
    func keysCall(_ body: @escaping @Sendable (EtcdV2Client) async throws -> EtcdV2Response) async -> KeysOutcome {
        guard let client = await makeClient() else { return .exit(EtcdctlV2Exit.badConnection) }
        switch await withDeadline(totalTimeout, { try await body(client) }) {
        case .success(let response): return .response(response)
        case .failure(let error): return .exit(fail(EtcdctlV2Exit.serverError, error))
        }
    }

    enum KeysOutcome {
        case response(EtcdV2Response)
        case exit(Int32)
    }
}

/// etcdctl 3.4 with `ETCDCTL_API=2`: the urfave/cli command tree of the v2 API.
enum EtcdctlV2 {
    static let version = "3.4.23"

    static let globalFlags: [GoFlag] = [
        GoFlag(["debug"], .bool, "output cURL commands which can be used to reproduce the request"),
        GoFlag(["no-sync"], .bool, "don't synchronize cluster information before sending request"),
        GoFlag(
            ["output", "o"], .string, default: "\"simple\"", placeholder: "simple",
            "output response in the given format (simple, `extended` or `json`)"),
        GoFlag(["discovery-srv", "D"], .string, "domain name to query for SRV records describing cluster endpoints"),
        GoFlag(["insecure-discovery"], .bool, "accept insecure SRV records describing cluster endpoints"),
        GoFlag(["peers", "C"], .string, "DEPRECATED - \"--endpoints\" should be used instead"),
        GoFlag(["endpoint"], .string, "DEPRECATED - \"--endpoints\" should be used instead"),
        GoFlag(
            ["endpoints"], .string, default: "\"http://127.0.0.1:2379,http://127.0.0.1:4001\"",
            "a comma-delimited list of machine addresses in the cluster"),
        GoFlag(["cert-file"], .string, "identify HTTPS client using this SSL certificate file"),
        GoFlag(["key-file"], .string, "identify HTTPS client using this SSL key file"),
        GoFlag(["ca-file"], .string, "verify certificates of HTTPS-enabled servers using this CA bundle"),
        GoFlag(["username", "u"], .string, "provide username[:password] and prompt if password is not supplied."),
        GoFlag(["timeout"], .duration, default: "2s", "connection timeout per request"),
        GoFlag(["total-timeout"], .duration, default: "5s", "timeout for the command execution (except watch)"),
        GoFlag(["help", "h"], .bool, "show help"),
        GoFlag(["version", "v"], .bool, "print the version"),
    ]

    static let helpCommand = EtcdctlV2CommandSpec(
        "help", aliases: ["h"], usage: "Shows a list of commands or help for one command", argsUsage: "[command]")

    static var commands: [EtcdctlV2CommandSpec] { EtcdctlV2Commands.all + [helpCommand] }

    @Sendable static func main(_ argv: [String], io: StandardStreams) async -> Int32 {
        let environment = ProcessEnvironment.current
        let arguments = Array(argv.dropFirst())
        let global: GoFlagResult
        do {
            global = try GoFlagParser(globalFlags).parse(arguments)
        } catch {
            io.output.line("Incorrect Usage. \(error.message)")
            io.output.line()
            io.output.write(rootHelp())
            io.error.line(error.message)
            return EtcdctlV2Exit.badArgs
        }
        if global.bool("version") {
            io.output.line("etcdctl version: \(version)")
            io.output.line("API version: 2")
            return EtcdctlV2Exit.success
        }
        guard let name = global.arguments.first, !global.bool("help") else {
            io.output.write(rootHelp())
            return EtcdctlV2Exit.success
        }
        let format = global.string("output") ?? "simple"
        if !["simple", "extended", "json"].contains(format) {
            // etcdctl only notices when it prints a response; it then exits 0.
        }
        if name == "help" || name == "h" {
            return showHelp(Array(global.arguments.dropFirst()), parents: [], in: commands, io: io)
        }
        return await dispatch(
            Array(global.arguments.dropFirst()), command: name, parents: [], in: commands, global: global, io: io,
            environment: environment)
    }

    static func dispatch(
        _ words: [String], command name: String, parents: [String], in table: [EtcdctlV2CommandSpec],
        global: GoFlagResult, io: StandardStreams, environment: [String: String]
    ) async -> Int32 {
        guard let command = table.first(where: { $0.name == name || $0.aliases.contains(name) }) else {
            io.error.line("No help topic for '\(name)'")
            return EtcdctlV2Exit.unknownCommand
        }
        if !command.subcommands.isEmpty {
            let sub = command.subcommands + [helpCommand]
            guard let next = words.first, !next.hasPrefix("-") else {
                if words.contains(where: { $0 == "--help" || $0 == "-h" }) || words.isEmpty {
                    io.output.write(groupHelp(command, parents: parents))
                    return EtcdctlV2Exit.success
                }
                io.output.write(groupHelp(command, parents: parents))
                return EtcdctlV2Exit.success
            }
            if next == "help" || next == "h" {
                return showHelp(Array(words.dropFirst()), parents: parents + [command.name], in: sub, io: io)
            }
            return await dispatch(
                Array(words.dropFirst()), command: next, parents: parents + [command.name], in: sub, global: global,
                io: io, environment: environment)
        }
        let helpFlag = GoFlag(["help", "h"], .bool, "show help")
        let parser = GoFlagParser(command.flags + [helpFlag])
        let parsed: GoFlagResult
        do {
            parsed = try parser.parse(parser.reorder(words))
        } catch {
            io.output.line("Incorrect Usage: \(error.message)")
            io.output.line()
            io.output.write(commandHelp(command, parents: parents))
            io.error.line(error.message)
            return EtcdctlV2Exit.badArgs
        }
        if parsed.bool("help") {
            io.output.write(commandHelp(command, parents: parents))
            return EtcdctlV2Exit.success
        }
        guard let run = command.run else { return EtcdctlV2Exit.success }
        let context = EtcdctlV2Context(
            global: global, flags: parsed, arguments: parsed.arguments, io: io, environment: environment)
        return await run(context)
    }

    static func showHelp(_ words: [String], parents: [String], in table: [EtcdctlV2CommandSpec], io: StandardStreams)
        -> Int32
    {
        guard let name = words.first else {
            io.output.write(rootHelp())
            return EtcdctlV2Exit.success
        }
        guard let command = table.first(where: { $0.name == name || $0.aliases.contains(name) }) else {
            io.error.line("No help topic for '\(name)'")
            return EtcdctlV2Exit.unknownCommand
        }
        io.output.write(command.subcommands.isEmpty ? commandHelp(command, parents: parents) : groupHelp(command, parents: parents))
        return EtcdctlV2Exit.success
    }

    // MARK: Help, in urfave/cli 1.x's templates

    static func rootHelp() -> String {
        var text = "NAME:\n   etcdctl - A simple command line client for etcd.\n\n"
        text += "USAGE:\n   etcdctl [global options] command [command options] [arguments...]\n\n"
        text += "VERSION:\n   \(version)\n\n"
        text += "COMMANDS:\n" + commandRows(commands).joined(separator: "\n") + "\n\n"
        text += "GLOBAL OPTIONS:\n" + GoFlagParser.helpRows(globalFlags).joined(separator: "\n") + "\n"
        return text
    }

    static func commandRows(_ table: [EtcdctlV2CommandSpec]) -> [String] {
        let names = table.map { ([$0.name] + $0.aliases).joined(separator: ", ") }
        let width = (names.map(\.count).max() ?? 0) + 2
        return zip(names, table).map { name, command in
            "   " + name + String(repeating: " ", count: width - name.count) + command.usage
        }
    }

    static func commandHelp(_ command: EtcdctlV2CommandSpec, parents: [String]) -> String {
        let helpName = (["etcdctl"] + parents + [command.name]).joined(separator: " ")
        var text = "NAME:\n   \(helpName) - \(command.usage)\n\n"
        text += "USAGE:\n   \(helpName)\(command.flags.isEmpty ? "" : " [command options]") "
        text += command.argsUsage.isEmpty ? "[arguments...]" : command.argsUsage
        if let description = command.description { text += "\n\nDESCRIPTION:\n   \(description)" }
        if !command.flags.isEmpty {
            text += "\n\nOPTIONS:\n" + GoFlagParser.helpRows(command.flags).map { $0 + "\n" }.joined() + "   "
        }
        return text + "\n"
    }

    static func groupHelp(_ command: EtcdctlV2CommandSpec, parents: [String]) -> String {
        let helpName = (["etcdctl"] + parents + [command.name]).joined(separator: " ")
        var text = "NAME:\n   \(helpName) - \(command.usage)\n\n"
        text += "USAGE:\n   \(helpName) command [command options] [arguments...]\n\n"
        text += "COMMANDS:\n" + commandRows(command.subcommands).map { $0 + "\n" }.joined() + "\n"
        text += "OPTIONS:\n   --help, -h  show help\n   \n"
        return text
    }
}
