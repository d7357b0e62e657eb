import Foundation
import Glibc

/// Runs a node's services as child processes of the coreos binary: in plan order, each
/// started only when the one before answers its readiness probe; a service that exits is
/// restarted with a growing delay (1 s doubling to 30 s); on cancellation all are stopped
/// in reverse order (SIGTERM, SIGKILL after 10 s). Each service's output goes to
/// `<logs>/<name>.log`.
public actor NodeSupervisor {
    public typealias Log = @Sendable (String) -> Void

    let binary: String
    let plan: NodePlan
    let logDirectory: String
    let log: Log
    private var running: [String: Process] = [:]
    private var stopping = false

    public init(binary: String, plan: NodePlan, logDirectory: String, log: @escaping Log) {
        self.binary = binary
        self.plan = plan
        self.logDirectory = logDirectory
        self.log = log
    }

    /// Starts everything, calls `ready` once all services are up, and supervises until the
    /// task is cancelled; then stops them all.
    public func run(ready: @Sendable () -> Void) async throws {
        try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        for note in plan.notes { log(note) }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for service in plan.services {
                    for command in service.preparation {
                        let status = await runOnce(command, name: service.name)
                        if status != 0 { log("\(service.name): `coreos \(command.prefix(3).joined(separator: " "))` exited \(status) (see \(logPath(service.name)))") }
                    }
                    group.addTask { try await self.keepRunning(service) }
                    log("\(service.name): starting")
                    let limit: Duration = service.optional ? .seconds(30) : .seconds(90)
                    let deadline = ContinuousClock.now + limit
                    var isReady = true
                    while !(await Self.probe(service.readiness)) {
                        if ContinuousClock.now > deadline {
                            guard service.optional else {
                                throw NodePlan.Failure(message: "\(service.name) did not become ready in \(limit) (see \(logPath(service.name)))")
                            }
                            log("\(service.name): not ready after \(limit); going on without it, still retrying (see \(logPath(service.name)))")
                            isReady = false
                            break
                        }
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    if isReady { log("\(service.name): ready — \(service.summary)") }
                }
                ready()
                try await group.next()
            }
        } catch {
            await stopAll()
            throw error
        }
        await stopAll()
    }

    func logPath(_ name: String) -> String { logDirectory + "/" + name + ".log" }

    private func keepRunning(_ service: NodePlan.Service) async throws {
        var delay = Duration.seconds(1)
        while !stopping {
            let started = ContinuousClock.now
            let status = await runService(service)
            if stopping || Task.isCancelled { return }
            if ContinuousClock.now - started > .seconds(60) { delay = .seconds(1) }
            log("\(service.name): exited with status \(status)\(status > 128 ? " (signal \(status - 128))" : ""); restarting in \(delay) (see \(logPath(service.name)))")
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(30))
        }
    }

    /// Runs the service until it exits; returns its status.
    private func runService(_ service: NodePlan.Service) async -> Int32 {
        let process = makeProcess(service.arguments, environment: service.environment, name: service.name)
        let status = await runAndWait(process, name: service.name) { self.running[service.name] = process }
        // Cancelled while the child still runs: stopAll stops it, in order.
        if !process.isRunning { running[service.name] = nil }
        return status
    }

    private func runOnce(_ arguments: [String], name: String) async -> Int32 {
        await runAndWait(makeProcess(arguments, environment: [:], name: name), name: name) {}
    }

    /// Starts `process` (`started` runs once it has) and waits for its exit: its status,
    /// 128 + N when signal N killed it, 127 when it could not start, -1 when cancelled first.
    private func runAndWait(_ process: Process, name: String, started: () -> Void) async -> Int32 {
        let exit = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { finished in
            exit.continuation.yield(finished.terminationReason == .exit ? finished.terminationStatus : 128 + finished.terminationStatus)
            exit.continuation.finish()
        }
        do {
            try process.run()
        } catch {
            log("\(name): cannot start \(binary): \(error)")
            return 127
        }
        started()
        var status: Int32 = -1
        for await value in exit.stream { status = value }
        return status
    }

    private func makeProcess(_ arguments: [String], environment: [String: String], name: String) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let path = logPath(name)
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        if let handle = FileHandle(forWritingAtPath: path) {
            handle.seekToEndOfFile()
            process.standardOutput = handle
            process.standardError = handle
        }
        process.standardInput = FileHandle.nullDevice
        return process
    }

    /// Stops the services, last started first.
    func stopAll() async {
        stopping = true
        for service in plan.services.reversed() {
            guard let process = running[service.name], process.isRunning else { continue }
            log("\(service.name): stopping")
            kill(process.processIdentifier, SIGTERM)
            let deadline = ContinuousClock.now + .seconds(10)
            while process.isRunning && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(50))
            }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
    }

    /// Runs `coreos ARGUMENTS` in the foreground (provisioning); its status.
    public static func runToCompletion(_ binary: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        do { try process.run() } catch { return 127 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    // MARK: Probes

    static func probe(_ readiness: NodePlan.Readiness) async -> Bool {
        switch readiness {
        case .file(let path):
            var status = stat()
            return stat(path, &status) == 0 && status.st_size > 0
        case .unixSocket(let path):
            return connectUnix(path)
        case .http(let host, let port, let path):
            return httpOK(host: host, port: port, path: path)
        }
    }

    static func connectUnix(_ path: String) -> Bool {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < 108 else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    /// A plain HTTP/1.0 GET with a 2 s timeout; true on a 200 status line.
    static func httpOK(host: String, port: Int, path: String) -> Bool {
        httpGet(host: host, port: port, path: path, limit: 64)?.status == 200
    }

    /// A plain `GET` over HTTP/1.0 with 2 s timeouts: the status and up to `limit` bytes of
    /// the body; nil when nothing answered like HTTP.
    public static func httpGet(host: String, port: Int, path: String, limit: Int = 1 << 16) -> (status: Int, body: String)? {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let info = result else { return nil }
        defer { freeaddrinfo(result) }
        let descriptor = socket(info.pointee.ai_family, info.pointee.ai_socktype, 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else { return nil }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(host):\(port)\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(descriptor, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while response.count < limit + 4096 {
            let received = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if received > 0 {
                response += buffer[0..<received]
                // A probe needs only the status line.
                if limit <= 64 && response.count >= 12 { break }
            } else if received < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        guard response.count >= 12, response.starts(with: Array("HTTP/1.".utf8)), let status = Int(String(decoding: response[9..<12], as: UTF8.self))
        else { return nil }
        var body = ""
        if let end = (0..<max(0, response.count - 3)).first(where: { response[$0..<($0 + 4)] == [13, 10, 13, 10][...] }) {
            body = String(decoding: response[(end + 4)...].prefix(limit), as: UTF8.self)
        }
        return (status, body)
    }
}
