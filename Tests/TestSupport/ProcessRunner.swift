public import Foundation

/// What a finished child process left behind.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var standardOutput: String
    public var standardError: String
}

/// Runs real programs for differential and integration tests.
public enum ProcessRunner {
    /// A /dev/null handle of the caller's own, for a child's standard streams. The shared
    /// `FileHandle.nullDevice` is one descriptor for the whole test process; handing it to
    /// many concurrent `Process` launches is a descriptor-reuse hazard for every other test.
    public static func nullDevice() -> FileHandle {
        FileHandle(forUpdatingAtPath: "/dev/null") ?? FileHandle.nullDevice
    }

    /// Runs `executable` with `arguments` (argv[0] may be overridden, for multi-call tests),
    /// waits for it and returns its output. Standard input is /dev/null.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil)
        throws -> ProcessResult
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        process.standardInput = ProcessRunner.nullDevice()
        try process.run()
        // Drain both pipes concurrently so a chatty child cannot block on a full pipe.
        let errorData = LockedData()
        let errorDrained = DispatchGroup()
        errorDrained.enter()
        DispatchQueue.global().async {
            errorData.set(error.fileHandleForReading.readDataToEndOfFile())
            errorDrained.leave()
        }
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        errorDrained.wait()
        process.waitUntilExit()
        return ProcessResult(
            status: process.terminationStatus,
            standardOutput: String(decoding: outputData, as: UTF8.self),
            standardError: String(decoding: errorData.value, as: UTF8.self))
    }

    /// The path of a program on PATH, or nil.
    public static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// The `coreos` binary built alongside the test bundle (or `COREOS_BINARY`).
    public static var coreosBinary: String {
        if let override = ProcessInfo.processInfo.environment["COREOS_BINARY"] { return override }
        let testExecutable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        return URL(fileURLWithPath: testExecutable).deletingLastPathComponent().appendingPathComponent("coreos").path
    }
}

private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    func set(_ value: Data) {
        lock.lock()
        data = value
        lock.unlock()
    }

    var value: Data {
        lock.lock()
        defer { lock.unlock() }
        return data
    }
}
