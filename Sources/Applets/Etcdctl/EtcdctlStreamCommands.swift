import CLI
import EtcdAPI
import EtcdClient
import Glibc
import SwiftProtobuf
import UnitFile

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// watch and txn: the commands that read streams (events, standard input).
enum EtcdctlStreamCommands {
    static var all: [EtcdctlCommandSpec] {
        [
            EtcdctlCommandSpec(
                ["watch"], use: "watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]",
                short: "Watches events stream on keys or prefixes",
                flags: [
                    PFlag("interactive", shorthand: "i", .bool, default: "false", "Interactive mode"),
                    PFlag("prefix", .bool, default: "false", "Watch on a prefix if prefix is set"),
                    PFlag("prev-kv", .bool, default: "false", "get the previous key-value pair before the event happens"),
                    PFlag("rev", .int, default: "0", "Revision to start watching"),
                ], run: watch),
            EtcdctlCommandSpec(
                ["txn"], use: "txn [options]", short: "Txn processes all the requests in one transaction",
                flags: [PFlag("interactive", shorthand: "i", .bool, default: "false", "Input transaction in interactive mode")],
                run: txn),
        ]
    }

    // MARK: watch

    @Sendable static func watch(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        if invocation.flags.bool("interactive") { return try await watchInteractively(invocation) }
        let arguments = invocation.arguments
        let command = invocation.afterDashDash ?? []
        let prefix = invocation.flags.bool("prefix")
        guard !arguments.isEmpty, arguments.count <= (prefix ? 1 : 2) else {
            throw .badArgs(arguments.isEmpty ? "bad number of arguments" : "bad number of arguments")
        }
        var request = Etcdserverpb_WatchCreateRequest()
        request.key = Data(arguments[0].utf8)
        if arguments.count > 1 { request.rangeEnd = Data(arguments[1].utf8) }
        if prefix { (request.key, request.rangeEnd) = EtcdKeyRange.prefix(request.key) }
        request.startRevision = Int64(invocation.flags.string("rev") ?? "0") ?? 0
        request.prevKv = invocation.flags.bool("prev-kv")
        let printer = invocation.printer
        let io = invocation.io
        let createRequest = request
        do {
            try await invocation.withClient { client in
                try await client.watch(createRequest) { responses in
                    for try await response in responses {
                        printer.watch(response)
                        if !command.isEmpty { runForEvents(command, response, io: io) }
                    }
                }
            }
        } catch {
            if error.message == EtcdErrorTexts.compacted || error.message.hasPrefix("etcdserver:") {
                io.output.line("watch was canceled (\(error.message))")
            }
            throw EtcdctlFailure(EtcdctlExit.interrupted, "watch is canceled by the server")
        }
    }

    /// `etcdctl watch -i`: reads `watch [options] KEY [RANGE_END] [-- command]` lines from
    /// standard input and runs each watch concurrently; end of input ends the command (exit 3).
    static func watchInteractively(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let printer = invocation.printer
        let io = invocation.io
        let watchFlags = all.first { $0.path == ["watch"] }?.flags ?? []
        try await invocation.withClient { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                while true {
                    guard let line = StandardInput.readLineOrEOF() else {
                        throw EtcdctlFailure(EtcdctlExit.invalidInput, "Error reading watch request line: EOF")
                    }
                    let words = (try? ShellWords.split(line)) ?? []
                    guard let verb = words.first else {
                        io.error.line("Invalid command: \(line) (watch and progress supported)")
                        continue
                    }
                    guard verb == "watch" else {
                        io.error.line("Invalid command \(line) (only support watch)")
                        continue
                    }
                    guard words.count >= 2, let parsed = try? PFlagParser(watchFlags).parse(Array(words.dropFirst())),
                        let key = parsed.operands.first
                    else {
                        io.error.line("Invalid command \(line) (command type or key is not provided)")
                        continue
                    }
                    var request = Etcdserverpb_WatchCreateRequest()
                    request.key = Data(key.utf8)
                    if parsed.operands.count > 1 { request.rangeEnd = Data(parsed.operands[1].utf8) }
                    if parsed.bool("prefix") { (request.key, request.rangeEnd) = EtcdKeyRange.prefix(request.key) }
                    request.startRevision = Int64(parsed.string("rev") ?? "0") ?? 0
                    request.prevKv = parsed.bool("prev-kv")
                    let createRequest = request
                    let command = parsed.afterDashDash ?? []
                    group.addTask {
                        try await client.watch(createRequest) { responses in
                            for try await response in responses {
                                printer.watch(response)
                                if !command.isEmpty { runForEvents(command, response, io: io) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `etcdctl watch key -- cmd args`: runs the command once per event with the event in
    /// its environment (ETCD_WATCH_REVISION, _KEY, _EVENT_TYPE, _VALUE).
    static func runForEvents(_ command: [String], _ response: Etcdserverpb_WatchResponse, io: StandardStreams) {
        for event in response.events {
            let environment = [
                "ETCD_WATCH_REVISION=\(response.header.revision)",
                "ETCD_WATCH_KEY=\(String(decoding: event.kv.key, as: UTF8.self))",
                "ETCD_WATCH_EVENT_TYPE=\(event.type == .delete ? "DELETE" : "PUT")",
                "ETCD_WATCH_VALUE=\(String(decoding: event.kv.value, as: UTF8.self))",
            ]
            let status = ChildProcess.run(command, extraEnvironment: environment)
            if status != 0 {
                io.error.line("command \(EtcdctlHelp.goQuote(command.joined(separator: " "))) failed with exit status \(status)")
            }
        }
    }

    // MARK: txn

    @Sendable static func txn(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let interactive = invocation.flags.bool("interactive")
        var reader = LineReader(bytes: StandardInput.readAll())
        let out = invocation.io.output
        var request = Etcdserverpb_TxnRequest()
        if interactive { out.line("compares:") }
        for line in try reader.section() { request.compare.append(try parseCompare(line)) }
        if interactive { out.line("success requests (get, put, del):") }
        for line in try reader.section() { request.success.append(try parseRequest(line)) }
        if interactive { out.line("failure requests (get, put, del):") }
        for line in try reader.section() { request.failure.append(try parseRequest(line)) }
        if interactive { out.line("") }
        let txnRequest = request
        let response = try await invocation.withClient { try await $0.txn(txnRequest) }
        invocation.printer.txn(response)
    }

    /// `value("key") = "v"`, `mod("key") > "3"`, `create(…)`, `version(…)`/`ver`, `lease(…)` (hex).
    static func parseCompare(_ line: String) throws(EtcdctlFailure) -> Etcdserverpb_Compare {
        func malformed(_ detail: String? = nil) -> EtcdctlFailure {
            EtcdctlFailure(EtcdctlExit.invalidInput, "malformed comparison: \(line)" + (detail.map { " (\($0))" } ?? ""))
        }
        guard let open = line.firstIndex(of: "(") else { throw malformed() }
        let target = String(line[..<open])
        var scanner = GoScanner(text: String(line[line.index(after: open)...]))
        guard let key = scanner.quoted(), scanner.literal(")"), let operation = scanner.word(), let value = scanner.quoted()
        else { throw malformed() }
        var compare = Etcdserverpb_Compare()
        compare.key = Data(key.utf8)
        switch operation {
        case "=", "==": compare.result = .equal
        case "!=": compare.result = .notEqual
        case ">": compare.result = .greater
        case "<": compare.result = .less
        default: throw malformed("unknown operator \(operation)")
        }
        func integer() throws(EtcdctlFailure) -> Int64 {
            guard let number = Int64(value) else {
                throw EtcdctlFailure(EtcdctlExit.invalidInput, "invalid txn compare request: \(line)")
            }
            return number
        }
        switch target {
        case "ver", "version":
            compare.target = .version
            compare.version = try integer()
        case "c", "create":
            compare.target = .create
            compare.createRevision = try integer()
        case "m", "mod":
            compare.target = .mod
            compare.modRevision = try integer()
        case "val", "value":
            compare.target = .value
            compare.value = Data(value.utf8)
        case "lease":
            guard let lease = Int64(value, radix: 16) else { throw malformed("bad lease ID \(value)") }
            compare.target = .lease
            compare.lease = lease
        default:
            throw malformed("unknown target \(target)")
        }
        return compare
    }

    /// `put k v [--lease=…]`, `get k [--prefix …]`, `del k [--prefix …]`, with those
    /// commands' own flags.
    static func parseRequest(_ line: String) throws(EtcdctlFailure) -> Etcdserverpb_RequestOp {
        let words = (try? ShellWords.split(line)) ?? []
        let invalid = EtcdctlFailure(EtcdctlExit.invalidInput, "invalid txn request: \(line)")
        guard words.count >= 2 else {
            throw EtcdctlFailure(EtcdctlExit.invalidInput, "invalid txn compare request: \(line)")
        }
        guard let command = EtcdctlKVCommands.all.first(where: { $0.path == [words[0]] }),
            ["put", "get", "del"].contains(words[0])
        else { throw invalid }
        guard let parsed = try? PFlagParser(command.flags).parse(Array(words.dropFirst())) else { throw invalid }
        // Errors of the put/get/del builders end etcdctl with their own code, as there.
        switch words[0] {
        case "put":
            let put = try EtcdctlKVCommands.putRequest(parsed.operands, parsed, readStandardInput: false)
            return .with { $0.requestPut = put }
        case "get":
            let range = try EtcdctlKVCommands.rangeRequest(parsed.operands, parsed)
            return .with { $0.requestRange = range }
        default:
            let delete = try EtcdctlKVCommands.deleteRequest(parsed.operands, parsed)
            return .with { $0.requestDeleteRange = delete }
        }
    }
}

/// Error texts etcd clients match on.
enum EtcdErrorTexts {
    static let compacted = "etcdserver: mvcc: required revision has been compacted"
}

/// Lines of standard input, in sections ended by an empty line; running out of input
/// before a section ends is etcdctl's `Error: EOF` (exit 3).
struct LineReader {
    let bytes: [UInt8]
    var position = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func section() throws(EtcdctlFailure) -> [String] {
        var lines: [String] = []
        while true {
            guard let newline = bytes[position...].firstIndex(of: 0x0A) else {
                throw EtcdctlFailure(EtcdctlExit.invalidInput, "EOF")
            }
            let line = String(decoding: bytes[position..<newline], as: UTF8.self)
            position = newline + 1
            let trimmed = String(line.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
            if trimmed.isEmpty { return lines }
            lines.append(trimmed)
        }
    }
}

/// A tiny `fmt.Sscanf("%q) %s %q")` for txn compares.
struct GoScanner {
    var text: Substring

    init(text: String) { self.text = Substring(text) }

    mutating func skipSpaces() { text = text.drop { $0 == " " || $0 == "\t" } }

    /// A double-quoted Go string (with backslash escapes kept simple: \" and \\).
    mutating func quoted() -> String? {
        skipSpaces()
        guard text.first == "\"" else { return nil }
        var result = ""
        var index = text.index(after: text.startIndex)
        while index < text.endIndex {
            let character = text[index]
            if character == "\\" {
                index = text.index(after: index)
                guard index < text.endIndex else { return nil }
                let escaped = text[index]
                result.append(escaped == "n" ? "\n" : escaped == "t" ? "\t" : escaped)
            } else if character == "\"" {
                text = text[text.index(after: index)...]
                return result
            } else {
                result.append(character)
            }
            index = text.index(after: index)
        }
        return nil
    }

    mutating func literal(_ expected: String) -> Bool {
        guard text.hasPrefix(expected) else { return false }
        text = text.dropFirst(expected.count)
        return true
    }

    mutating func word() -> String? {
        skipSpaces()
        let word = text.prefix { $0 != " " && $0 != "\t" }
        guard !word.isEmpty else { return nil }
        text = text.dropFirst(word.count)
        return String(word)
    }
}

/// Splits a line into words with shell-like quoting, as etcdctl's `argify` does.
enum ShellWords {
    struct Unterminated: Error {}

    static func split(_ line: String) throws(Unterminated) -> [String] {
        let (words, unterminated) = QuotedWords.split(line)
        if unterminated { throw Unterminated() }
        return words
    }
}

/// fork/exec of a child with extra environment variables, waiting for it.
enum ChildProcess {
    static func run(_ command: [String], extraEnvironment: [String]) -> Int32 {
        var environment = ProcessEnvironment.current.map { "\($0.key)=\($0.value)" } + extraEnvironment
        environment.sort()
        var pid: pid_t = 0
        let argv = command.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        let spawned = posix_spawnp(&pid, command[0], nil, nil, argv, envp)
        guard spawned == 0 else { return 127 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }
}
