import CLI
import EtcdClient
import Glibc

/// Exit codes of etcdctl 3.4 (ctlv3/command/error.go).
enum EtcdctlExit {
    static let error: Int32 = 1
    static let badConnection: Int32 = 2
    static let invalidInput: Int32 = 3
    static let badFeature: Int32 = 4
    static let interrupted: Int32 = 5
    static let io: Int32 = 6
    static let badArgs: Int32 = 128
}

/// A failure that etcdctl reports as `Error: <message>` with an exit code.
struct EtcdctlFailure: Error {
    var code: Int32
    var message: String

    init(_ code: Int32, _ message: String) {
        self.code = code
        self.message = message
    }

    static func badArgs(_ message: String) -> EtcdctlFailure { EtcdctlFailure(EtcdctlExit.badArgs, message) }
}

/// One etcdctl command: its place in the tree, cobra's `Use` and `Short`, local flags and body.
struct EtcdctlCommandSpec: Sendable {
    typealias Body = @Sendable (EtcdctlInvocation) async throws(EtcdctlFailure) -> Void

    var path: [String]
    var use: String
    var short: String
    var description: String?
    var flags: [PFlag]
    var run: Body

    init(
        _ path: [String], use: String, short: String, description: String? = nil, flags: [PFlag] = [],
        run: @escaping Body
    ) {
        self.path = path
        self.use = use
        self.short = short
        self.description = description
        self.flags = flags
        self.run = run
    }
}

/// What a command body gets: operands, parsed flags, global options and output.
struct EtcdctlInvocation: Sendable {
    var arguments: [String]
    var afterDashDash: [String]?
    var flags: PFlagResult
    var global: EtcdctlGlobalOptions
    var io: StandardStreams
    var printer: EtcdctlPrinter

    /// Runs `body` with a client for the configured endpoints, mapping errors as etcdctl does.
    func withClient<Result: Sendable>(_ body: (EtcdClient) async throws -> Result) async throws(EtcdctlFailure) -> Result {
        do {
            return try await EtcdClient.withClient(global.clientConfiguration, body)
        } catch let failure as EtcdctlFailure {
            throw failure
        } catch {
            let wrapped = EtcdCallLog.wrap(error, endpoints: global.endpoints, io: io)
            // etcdctl fails to create its client when authentication is refused: exit 2.
            let refused = global.credentials != nil && wrapped.message.hasPrefix("etcdserver: authentication failed")
            throw EtcdctlFailure(refused ? EtcdctlExit.badConnection : EtcdctlExit.error, wrapped.message)
        }
    }
}

/// The `etcdctl` applet: etcdctl 3.4's command tree, flags, output formats and exit codes.
enum Etcdctl {
    @Sendable static func main(_ argv: [String], io: StandardStreams) async -> Int32 {
        let environment = ProcessEnvironment.current
        if environment["ETCDCTL_API"] == "2" {
            return await EtcdctlV2.main(argv, io: io)
        }
        let arguments = Array(argv.dropFirst())
        if let helpFor = helpRequest(arguments) {
            if helpFor.isEmpty {
                io.output.write(EtcdctlHelp.rootUsage())
            } else if let command = EtcdctlCommands.all.first(where: { $0.path == helpFor }) {
                io.output.write(EtcdctlHelp.usage(for: command) + "\n")
            } else {
                io.output.write("Unknown help topic [`\(helpFor.joined(separator: " "))`]\n" + EtcdctlHelp.rootUsage())
            }
            return ExitStatus.success
        }
        let (path, command) = resolve(arguments)
        guard let command else {
            return unknownCommand(arguments, path: path, io: io)
        }
        let words = removePath(path.count, from: arguments)
        let parser = PFlagParser(command.flags + EtcdctlGlobalOptions.flags + [helpFlag(command)])
        let parsed: PFlagResult
        do {
            parsed = try parser.parse(words)
        } catch {
            // cobra reports the flag error, prints usage, then etcdctl reports it again.
            io.error.line("Error: \(error.message)")
            io.output.write(EtcdctlHelp.usage(for: command) + "\n")
            io.error.write("\n")
            io.error.line("Error: \(error.message)")
            return EtcdctlExit.error
        }
        if parsed.bool("help") {
            io.output.write(EtcdctlHelp.usage(for: command) + "\n")
            return ExitStatus.success
        }
        let global: EtcdctlGlobalOptions
        do {
            global = try EtcdctlGlobalOptions(flags: parsed, environment: environment)
        } catch {
            io.error.line(error.message)
            return error.code
        }
        guard let printer = EtcdctlPrinter(format: global.writeOut, hex: global.hex, io: io) else {
            io.error.line("Error: unsupported output format")
            return EtcdctlExit.badFeature
        }
        let invocation = EtcdctlInvocation(
            arguments: parsed.operands, afterDashDash: parsed.afterDashDash, flags: parsed, global: global, io: io,
            printer: printer)
        do {
            try await command.run(invocation)
            return ExitStatus.success
        } catch {
            if !error.message.isEmpty { io.error.line("Error: \(error.message)") }
            return error.code
        }
    }

    /// `etcdctl`, `etcdctl --help`/`-h` and `etcdctl help [COMMAND…]`: the path whose help is
    /// wanted (empty for the root), or nil when this is not a help request.
    static func helpRequest(_ arguments: [String]) -> [String]? {
        if arguments.isEmpty { return [] }
        let words = arguments.filter { !$0.hasPrefix("-") }
        if words.first == "help" { return Array(words.dropFirst()) }
        if words.isEmpty && arguments.contains(where: { $0 == "--help" || $0 == "-h" }) { return [] }
        return nil
    }

    static func helpFlag(_ command: EtcdctlCommandSpec) -> PFlag {
        PFlag("help", shorthand: "h", .bool, default: "false", "help for \(command.path.last ?? "")")
    }

    /// Finds the longest command path named by the operands, skipping flags (and the
    /// values of global flags that take one) the way cobra does.
    static func resolve(_ arguments: [String]) -> (path: [String], command: EtcdctlCommandSpec?) {
        var operands: [String] = []
        var index = 0
        let valueFlags = Set(EtcdctlGlobalOptions.flags.filter { $0.kind != .bool }.flatMap { flag in
            ["--" + flag.name] + (flag.shorthand.map { ["-\($0)"] } ?? [])
        })
        while index < arguments.count && operands.count < 2 {
            let word = arguments[index]
            index += 1
            if word == "--" { break }
            if word.hasPrefix("-") {
                if valueFlags.contains(word) { index += 1 }
                continue
            }
            operands.append(word)
        }
        let commands = EtcdctlCommands.all
        if operands.count == 2, let command = commands.first(where: { $0.path == operands }) {
            return (operands, command)
        }
        if let first = operands.first, let command = commands.first(where: { $0.path == [first] }) {
            return ([first], command)
        }
        return (operands, nil)
    }

    /// The arguments without the words that named the command.
    static func removePath(_ count: Int, from arguments: [String]) -> [String] {
        var remaining = count
        var result: [String] = []
        var index = 0
        let valueFlags = Set(EtcdctlGlobalOptions.flags.filter { $0.kind != .bool }.map { "--" + $0.name } + ["-w", "-d"])
        while index < arguments.count {
            let word = arguments[index]
            index += 1
            if remaining > 0 && word == "--" { remaining = 0 }
            if remaining > 0 && !word.hasPrefix("-") {
                remaining -= 1
                continue
            }
            result.append(word)
            if remaining > 0 && valueFlags.contains(word) && index < arguments.count {
                result.append(arguments[index])
                index += 1
            }
        }
        return result
    }

    static func unknownCommand(_ arguments: [String], path: [String], io: StandardStreams) -> Int32 {
        guard let first = path.first else {
            io.output.write(EtcdctlHelp.rootUsage())
            return ExitStatus.success
        }
        if EtcdctlCommands.all.contains(where: { $0.path.first == first }) {
            // A group such as `lease` without (or with an unknown) subcommand.
            let children = EtcdctlCommands.all.filter { $0.path.first == first }.map { $0.path.last ?? "" }
            io.output.write("Available subcommands of \(first): \(children.joined(separator: ", "))\n")
            return ExitStatus.success
        }
        io.error.line("Error: unknown command \"\(first)\" for \"etcdctl\"")
        io.error.line("Run 'etcdctl --help' for usage.")
        io.error.line("Error: unknown command \"\(first)\" for \"etcdctl\"")
        return EtcdctlExit.error
    }
}

/// The process environment as a dictionary.
enum ProcessEnvironment {
    static var current: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}
