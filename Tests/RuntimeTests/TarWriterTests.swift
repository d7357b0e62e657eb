import Foundation
import Runtime
import Testing
import TestSupport

@Suite struct TarWriterTests {
    /// What TarWriter writes, read back by GNU tar (not by our own reader).
    @Test func gnuTarReadsWhatWeWrite() throws {
        let path = NSTemporaryDirectory() + "tarwriter-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tar"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(descriptor >= 0)
        let writer = TarWriter(descriptor: descriptor)
        let long = "rootfs/" + String(repeating: "d", count: 120) + "/file"
        let content = Array("payload\n".utf8)
        try writer.add(TarWriter.Header(path: "rootfs", kind: .directory, mode: 0o755))
        var file = TarWriter.Header(path: long, kind: .regular, mode: 0o4755)
        file.size = Int64(content.count)
        file.uid = 7
        file.mtime = 1_700_000_000
        try writer.add(file) { (output) throws(RuntimeError) in
            _ = content.withUnsafeBytes { write(output, $0.baseAddress, $0.count) }
        }
        var link = TarWriter.Header(path: "rootfs/link", kind: .symlink, mode: 0o777)
        link.linkTarget = "/" + String(repeating: "t", count: 150)
        try writer.add(link)
        try writer.finish()
        close(descriptor)
        let listing = try ProcessRunner.run("/bin/tar", ["--numeric-owner", "-tvf", path])
        #expect(listing.status == 0, "\(listing.standardError)")
        #expect(listing.standardOutput.contains("-rwsr-xr-x 7/0") && listing.standardOutput.contains(long))
        #expect(listing.standardOutput.contains("rootfs/link -> /" + String(repeating: "t", count: 150)))
        let extracted = try ProcessRunner.run("/bin/tar", ["-xOf", path, long])
        #expect(extracted.standardOutput == "payload\n")
    }
}
