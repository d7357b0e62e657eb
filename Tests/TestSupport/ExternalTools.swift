import Foundation

/// Data made by the system's own tools, so a test does not check our code with our code.
public enum ExternalTools {
    /// `bytes` compressed by gzip(1) (`-n`: no name or time, so the output is stable).
    public static func gzip(_ bytes: [UInt8]) -> [UInt8] {
        let path = NSTemporaryDirectory() + "coreos-gzip-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer {
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: path + ".gz")
        }
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)),
            (try? ProcessRunner.run("/bin/gzip", ["-n", path]))?.status == 0,
            let packed = FileManager.default.contents(atPath: path + ".gz")
        else { return [] }
        return Array(packed)
    }
}

extension ExternalTools {
    /// `sha256:<hex>` by sha256sum(1).
    public static func sha256(_ bytes: [UInt8]) -> String { "sha256:" + digest("/usr/bin/sha256sum", bytes) }

    /// The hex SHA-512 by sha512sum(1).
    public static func sha512Hex(_ bytes: [UInt8]) -> String { digest("/usr/bin/sha512sum", bytes) }

    private static func digest(_ tool: String, _ bytes: [UInt8]) -> String {
        let path = NSTemporaryDirectory() + "coreos-digest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: path) }
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)),
            let result = try? ProcessRunner.run(tool, [path]), result.status == 0
        else { return "" }
        return String(result.standardOutput.prefix { $0 != " " })
    }
}
