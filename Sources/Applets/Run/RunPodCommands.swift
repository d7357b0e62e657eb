import CLI
import Foundation
import Runtime

/// `run`, `prepare`, `run-prepared`, `list`, `status`, `stop`, `rm`, `gc`, `enter`,
/// `cat-manifest`: rkt's pod commands.
enum RunPodCommands {
    /// Flags that take a value (`--net=host` or `--net host`).
    static let valueFlags: Set<String> = [
        "net", "hostname", "memory", "cpu", "set-env", "set-env-file", "volume", "mount", "caps-retain", "caps-remove",
        "uuid-file-save", "name", "exec", "user", "group", "working-dir", "environment", "pull-policy", "insecure-options",
        "dns", "hosts-entry", "port", "rlimit",
    ]
    static let booleanFlags: Set<String> = ["inherit-env", "no-overlay", "readonly-rootfs", "interactive", "quiet", "q", "private-users"]

    struct RunArguments {
        var options = PodOptions()
        var uuidFile: String?
        var quiet = false
        var mounts: [(volume: String, target: String)] = []
        var insecureHTTP = false
        var skipSignatures = false
        var pullPolicy = "new"
        var volumes: [String: PodManifest.Volume] = [:]
    }

    /// rkt's run line: pod flags, then `IMAGE [app flags] [-- ARGS…] [--- IMAGE …]`.
    static func parseRun(_ words: [String], environment: [String: String]) throws(UsageError) -> RunArguments {
        var result = RunArguments()
        result.options.processEnvironment = environment
        var index = 0
        var current: AppRequest?
        func finishApp() {
            if let app = current { result.options.apps.append(app) }
            current = nil
        }
        while index < words.count {
            let word = words[index]
            index += 1
            if word == "---" {
                finishApp()
                continue
            }
            if word == "--" {
                guard current != nil else { throw UsageError("-- must follow an image") }
                while index < words.count && words[index] != "---" {
                    current?.arguments.append(words[index])
                    index += 1
                }
                continue
            }
            guard word.hasPrefix("--") || (word.hasPrefix("-") && word.count == 2) else {
                finishApp()
                current = AppRequest(image: word)
                continue
            }
            var name = String(word.drop { $0 == "-" })
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if booleanFlags.contains(name) {
                let on = value.map { GoValues.parseBool($0) ?? false } ?? true
                switch name {
                case "inherit-env": result.options.inheritEnvironment = on
                case "no-overlay": result.options.overlay = !on
                case "readonly-rootfs": result.options.readOnlyRootfs = on
                case "private-users": result.options.privateUsers = on
                case "quiet", "q": result.quiet = on
                default: break
                }
                continue
            }
            guard valueFlags.contains(name) else { throw UsageError("unknown flag: --\(name)") }
            if value == nil {
                guard index < words.count else { throw UsageError("flag needs an argument: --\(name)") }
                value = words[index]
                index += 1
            }
            let text = value ?? ""
            do {
                try apply(name, text, to: &result, app: &current)
            } catch {
                throw UsageError(error.message)
            }
        }
        finishApp()
        for (volume, target) in result.mounts {
            guard var declared = result.volumes[volume] else { throw UsageError("--mount: no --volume named \(volume)") }
            declared.target = target
            result.options.volumes.append(declared)
        }
        return result
    }

    static func apply(_ name: String, _ value: String, to result: inout RunArguments, app: inout AppRequest?) throws(RuntimeError) {
        func pair(_ text: String) throws(RuntimeError) -> (String, String) {
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                throw RuntimeError("--\(name): expected NAME=VALUE, got \(text)")
            }
            return (String(text[..<equals]), String(text[text.index(after: equals)...]))
        }
        switch name {
        case "net": result.options.network = value
        case "hostname": result.options.hostname = value
        case "memory": result.options.limits.memoryBytes = try ResourceLimits.parseMemory(value)
        case "cpu": result.options.limits.cpuMillis = try ResourceLimits.parseCPU(value)
        case "caps-retain": result.options.capsRetain = try Capabilities.parse(value)
        case "caps-remove": result.options.capsRemove = try Capabilities.parse(value)
        case "uuid-file-save": result.uuidFile = value
        case "dns": result.options.dns.append(value)
        case "port": result.options.ports.append(value)
        case "rlimit": result.options.resourceLimits.append(try ResourceLimit(parsing: value))
        case "hosts-entry":
            let (address, host) = try pair(value)
            result.options.hostsEntries.append((address, host))
        case "pull-policy":
            guard ["new", "update", "never"].contains(value) else { throw RuntimeError("--pull-policy: new, update or never") }
            result.pullPolicy = value
        case "insecure-options":
            let options = value.split(separator: ",")
            result.insecureHTTP = options.contains { ["http", "all-fetch", "all"].contains($0) }
            result.skipSignatures = options.contains { ["image", "all-fetch", "all"].contains($0) }
        case "set-env": result.options.setEnvironment.append(try pair(value))
        case "set-env-file":
            guard let text = try? String(contentsOfFile: value, encoding: .utf8) else { throw RuntimeError("--set-env-file: cannot read \(value)") }
            for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
                result.options.setEnvironment.append(try pair(String(line)))
            }
        case "volume":
            var fields: [String: String] = [:]
            let parts = value.split(separator: ",").map(String.init)
            guard let volumeName = parts.first, !volumeName.contains("=") else { throw RuntimeError("--volume: NAME,kind=host|empty[,source=PATH][,readOnly=true]") }
            for part in parts.dropFirst() {
                let (key, fieldValue) = try pair(part)
                fields[key] = fieldValue
            }
            guard let kind = fields["kind"], kind == "host" || kind == "empty" else { throw RuntimeError("--volume \(volumeName): kind=host or kind=empty") }
            result.volumes[volumeName] = PodManifest.Volume(
                name: volumeName, kind: kind, source: fields["source"], readOnly: fields["readOnly"].flatMap(GoValues.parseBool), target: "")
        case "mount":
            var fields: [String: String] = [:]
            for part in value.split(separator: ",") {
                let (key, fieldValue) = try pair(String(part))
                fields[key] = fieldValue
            }
            guard let volume = fields["volume"], let target = fields["target"], target.hasPrefix("/") else {
                throw RuntimeError("--mount: volume=NAME,target=/PATH")
            }
            result.mounts.append((volume, target))
        default:
            // App flags: on the app they follow, else on every app (rkt's rule for --exec is the app).
            guard app != nil else { throw RuntimeError("--\(name) must follow the image it applies to") }
            switch name {
            case "name": app?.name = value
            case "exec": app?.exec = [value]
            case "user": app?.user = value
            case "group": app?.group = value
            case "working-dir": app?.workingDirectory = value
            case "environment":
                let (key, fieldValue) = try pair(value)
                app?.environment[key] = fieldValue
            default: break
            }
        }
    }

    static func run(
        _ command: String, _ words: [String], images: ImageStore, fetch: FetchOptions, localConfig: String, io: StandardStreams
    ) async throws(RuntimeError) -> Int32 {
        let pods = try PodStore(directory: images.directory)
        let runner = PodRunner(images: images, pods: pods)
        switch command {
        case "run", "prepare":
            var arguments: RunArguments
            do {
                arguments = try parseRun(words, environment: ProcessEnvironment.current)
            } catch {
                return RunCommand.usageError(error.message, io)
            }
            arguments.options.localConfig = localConfig
            var fetch = fetch
            fetch.pullPolicy = arguments.pullPolicy
            if arguments.insecureHTTP { fetch.insecureHTTP = true }
            if arguments.skipSignatures { fetch.verifySignatures = false }
            let pod = try await runner.prepare(arguments.options, fetch: fetch)
            if let file = arguments.uuidFile, !FileManager.default.createFile(atPath: file, contents: Data((pod.uuid + "\n").utf8)) {
                throw RuntimeError("--uuid-file-save: cannot write \(file)")
            }
            if command == "prepare" {
                io.output.line(pod.uuid)
                return ExitStatus.success
            }
            return try runner.runPrepared(pod)
        case "run-prepared":
            guard words.count == 1 else { return RunCommand.usageError("run-prepared: exactly one UUID is required", io) }
            let pod = try pods.find(words[0])
            guard pod.state == .prepared else { throw RuntimeError("pod \(pod.uuid) is not prepared (it is \(pod.state.rawValue))") }
            return try runner.runPrepared(pod)
        case "list":
            return list(pods, json: words.contains { $0.hasPrefix("--format=json") }, legend: !words.contains("--no-legend"), full: words.contains("--full"), io: io)
        case "status":
            let operands = words.filter { !$0.hasPrefix("--") }
            guard operands.count == 1 else { return RunCommand.usageError("status: exactly one UUID is required", io) }
            var pod = try pods.find(operands[0])
            if words.contains(where: { $0 == "--wait" || $0.hasPrefix("--wait=") }) {
                waitForExit(pod)
                pod = try pods.find(pod.uuid)
            }
            io.output.write(status(pod, pods: pods, json: words.contains { $0.hasPrefix("--format=json") }))
            return ExitStatus.success
        case "stop":
            let force = words.contains("--force")
            guard let operands = uuidOperands(words, "stop", io) else { return RunCommand.runtimeFailure }
            guard !operands.isEmpty else { return RunCommand.usageError("stop: at least one UUID is required", io) }
            var failed = false
            for operand in operands {
                do {
                    let pod = try pods.find(operand)
                    guard pod.state == .run, PodStore.isAlive(pod), let pid = PodStore.readNumber(pod.directory + "/pid") else {
                        throw RuntimeError("pod \(pod.uuid) is not running")
                    }
                    guard kill(Int32(pid), force ? SIGKILL : SIGTERM) == 0 else { throw RuntimeError("kill \(pid): \(String(cString: strerror(errno)))") }
                    io.output.line(pod.uuid)
                } catch {
                    io.error.line("stop: \(error)")
                    failed = true
                }
            }
            return failed ? RunCommand.runtimeFailure : ExitStatus.success
        case "rm":
            guard let operands = uuidOperands(words, "rm", io) else { return RunCommand.runtimeFailure }
            guard !operands.isEmpty else { return RunCommand.usageError("rm: at least one UUID is required", io) }
            var failed = false
            for operand in operands {
                do {
                    let pod = try pods.find(operand)
                    guard !PodStore.isAlive(pod) || pod.state == .prepared else { throw RuntimeError("pod \(pod.uuid) is running; stop it first") }
                    try pods.destroy(pod)
                    io.output.line("\"\(pod.uuid)\"")
                } catch {
                    io.error.line("rm: \(error)")
                    failed = true
                }
            }
            return failed ? RunCommand.runtimeFailure : ExitStatus.success
        case "gc":
            let grace = words.first { $0.hasPrefix("--grace-period=") }.flatMap { GoValues.parseDuration(String($0.dropFirst(15))) } ?? .seconds(1800)
            let expire = words.first { $0.hasPrefix("--expire-prepared=") }.flatMap { GoValues.parseDuration(String($0.dropFirst(18))) } ?? .seconds(86400)
            try collectGarbage(pods, grace: grace, expirePrepared: expire, io: io)
            return ExitStatus.success
        case "enter":
            var operands = words
            var appName: String?
            while let first = operands.first, first.hasPrefix("--app") {
                operands.removeFirst()
                if first.hasPrefix("--app=") {
                    appName = String(first.dropFirst(6))
                } else if !operands.isEmpty {
                    appName = operands.removeFirst()
                }
            }
            guard let uuid = operands.first else { return RunCommand.usageError("enter: a UUID is required", io) }
            let pod = try pods.find(uuid)
            let command = operands.count > 1 ? Array(operands.dropFirst()) : ["/bin/sh"]
            return try runner.enter(pod, app: appName, command: command)
        case "export":
            var appName: String?
            var overwrite = false
            var operands: [String] = []
            for word in words {
                if word.hasPrefix("--app=") {
                    appName = String(word.dropFirst(6))
                } else if word == "--overwrite" {
                    overwrite = true
                } else if word.hasPrefix("--") {
                    return RunCommand.usageError("export: unknown flag \(word)", io)
                } else {
                    operands.append(word)
                }
            }
            guard operands.count == 2 else { return RunCommand.usageError("export: UUID and OUTPUT_ACI_FILE are required", io) }
            try runner.export(try pods.find(operands[0]), app: appName, to: operands[1], overwrite: overwrite)
            return ExitStatus.success
        case "cat-manifest":
            guard let uuid = words.first(where: { !$0.hasPrefix("--") }) else { return RunCommand.usageError("cat-manifest: a UUID is required", io) }
            let pod = try pods.find(uuid)
            guard let data = FileManager.default.contents(atPath: pod.manifestPath) else { throw RuntimeError("pod \(pod.uuid) has no manifest") }
            io.output.write(bytes: Array(data))
            io.output.line()
            return ExitStatus.success
        default:
            return RunCommand.usageError("unknown command \"\(command)\" for \"rkt\"", io)
        }
    }

    static func waitForExit(_ pod: Pod) {
        let descriptor = open(pod.directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        // A shared lock is granted once the runner's exclusive one is gone.
        while flock(descriptor, LOCK_SH) != 0 && errno == EINTR {}
        close(descriptor)
    }

    static func isoTime(_ date: Date?) -> String {
        guard let date else { return "" }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    static func list(_ pods: PodStore, json: Bool, legend: Bool, full: Bool, io: StandardStreams) -> Int32 {
        var rows: [[String]] = []
        var objects: [[String: Any]] = []
        for pod in pods.all().sorted(by: { (PodStore.timestamp($0.manifestPath) ?? .distantPast) < (PodStore.timestamp($1.manifestPath) ?? .distantPast) }) {
            let alive = PodStore.isAlive(pod)
            let manifest = try? pods.manifest(pod)
            let state = pod.state.shown(alive: alive)
            let created = PodStore.timestamp(pod.manifestPath)
            let started = PodStore.timestamp(pod.directory + "/started")
            let networks = pods.networks(pod).map(\.summary).joined(separator: ",")
            for app in manifest?.apps ?? [] {
                rows.append([
                    full ? pod.uuid : String(pod.uuid.prefix(8)), app.name, app.image.name, state, isoTime(created), isoTime(started),
                    networks.isEmpty ? manifest?.coreos.network ?? "" : networks,
                ])
            }
            var object: [String: Any] = ["name": pod.uuid, "state": state, "app_names": manifest?.apps.map(\.name) ?? [], "networks": [String]()]
            if let created { object["created_at"] = Int64(created.timeIntervalSince1970 * 1e9) }
            if let started { object["started_at"] = Int64(started.timeIntervalSince1970 * 1e9) }
            objects.append(object)
        }
        if json {
            let data = (try? JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys])) ?? Data("[]".utf8)
            io.output.line(String(decoding: data, as: UTF8.self))
            return ExitStatus.success
        }
        if legend { rows.insert(["UUID", "APP", "IMAGE NAME", "STATE", "CREATED", "STARTED", "NETWORKS"], at: 0) }
        let widths = (0..<7).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            io.output.line(row.enumerated().map { $0.offset == 6 ? $0.element : $0.element.padding(toLength: widths[$0.offset] + 1, withPad: " ", startingAt: 0) }.joined())
        }
        return ExitStatus.success
    }

    /// The UUIDs named on the command line and by rkt's `--uuid-file=FILE` (the file
    /// `run --uuid-file-save` wrote); nil, said, when such a file cannot be read.
    static func uuidOperands(_ words: [String], _ command: String, _ io: StandardStreams) -> [String]? {
        var operands: [String] = []
        var index = 0
        while index < words.count {
            let word = words[index]
            index += 1
            var file: String?
            if word.hasPrefix("--uuid-file=") {
                file = String(word.dropFirst(12))
            } else if word == "--uuid-file", index < words.count {
                file = words[index]
                index += 1
            } else if !word.hasPrefix("--") {
                operands.append(word)
            }
            guard let file else { continue }
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                io.error.line("\(command): cannot read the UUID file \(file)")
                return nil
            }
            operands.append(String(text.filter { !$0.isWhitespace }))
        }
        return operands
    }

    static func status(_ pod: Pod, pods: PodStore, json: Bool) -> String {
        let alive = PodStore.isAlive(pod)
        let manifest = try? pods.manifest(pod)
        var lines: [(String, String)] = [
            ("state", pod.state.shown(alive: alive)), ("created", isoTime(PodStore.timestamp(pod.manifestPath))),
            ("started", isoTime(PodStore.timestamp(pod.directory + "/started"))),
            ("networks", alive ? pods.networks(pod).map(\.summary).joined(separator: ",") : ""),
        ]
        if alive, pod.state == .run, let pid = PodStore.readNumber(pod.directory + "/pid") { lines.append(("pid", String(pid))) }
        let exited = pod.state == .run && !alive || pod.state == .exitedGarbage
        lines.append(("exited", exited ? "true" : "false"))
        for app in manifest?.apps ?? [] {
            if let code = PodStore.readNumber(pod.directory + "/apps/\(app.name)/exit") { lines.append(("app-\(app.name)", String(code))) }
        }
        if json {
            var object: [String: Any] = [:]
            for (key, value) in lines {
                if let number = Int(value) {
                    object[key] = number
                } else if value == "true" || value == "false" {
                    object[key] = value == "true"
                } else {
                    object[key] = value
                }
            }
            object["name"] = pod.uuid
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            return String(decoding: data, as: UTF8.self) + "\n"
        }
        return lines.map { "\($0.0)=\($0.1)\n" }.joined()
    }

    /// rkt's gc: exited pods are marked (moved to exited-garbage), and removed once marked
    /// for longer than the grace period; failed prepares and stale prepared pods go too.
    static func collectGarbage(_ pods: PodStore, grace: Duration, expirePrepared: Duration, io: StandardStreams) throws(RuntimeError) {
        let now = Date()
        func older(_ pod: Pod, than limit: Duration) -> Bool {
            let seconds = Double(limit.components.seconds) + Double(limit.components.attoseconds) / 1e18
            return now.timeIntervalSince(PodStore.timestamp(pod.directory) ?? now) >= seconds
        }
        for pod in pods.all() {
            switch pod.state {
            case .run where !PodStore.isAlive(pod):
                if let marked = try pods.move(pod, to: .exitedGarbage) {
                    // The mark time is what the grace period counts from.
                    utimes(marked.directory, nil)
                    io.output.line("Moving pod \"\(pod.uuid)\" to garbage")
                    if grace == .zero {
                        try pods.destroy(marked)
                        io.output.line("Garbage collecting pod \"\(pod.uuid)\"")
                    }
                }
            case .exitedGarbage where !PodStore.isAlive(pod) && older(pod, than: grace),
                .garbage where !PodStore.isAlive(pod),
                .prepare where !PodStore.isAlive(pod),
                .embryo where older(pod, than: .seconds(60)):
                try pods.destroy(pod)
                io.output.line("Garbage collecting pod \"\(pod.uuid)\"")
            case .prepared where older(pod, than: expirePrepared):
                try pods.destroy(pod)
                io.output.line("Garbage collecting pod \"\(pod.uuid)\"")
            default:
                break
            }
        }
    }
}
