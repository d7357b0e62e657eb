import Foundation
import Runtime
import Testing
import TestSupport

/// A scratch directory holding a target root and, beside it, a canary directory that no
/// archive may touch.
final class UnpackScratch {
    let base: String
    var root: String { base + "/root" }
    var outside: String { base + "/outside" }

    init() throws {
        base = NSTemporaryDirectory() + "unpack-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try "canary\n".write(toFile: outside + "/canary", atomically: true, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(atPath: base) }

    func write(_ bytes: [UInt8], named name: String) -> String {
        let path = base + "/" + name
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// Applies the archives in order; returns the digests of each.
    @discardableResult
    func unpack(_ archives: [[UInt8]], policy: UnpackPolicy = UnpackPolicy()) throws -> [StreamDigests] {
        let unpacker = try LayerUnpacker(rootPath: root, policy: policy)
        return try archives.enumerated().map { index, bytes in
            try unpacker.apply(TarStream(path: write(bytes, named: "layer\(index)"), sha512: true))
        }
    }

    func read(_ relative: String) -> String? { try? String(contentsOfFile: root + "/" + relative, encoding: .utf8) }

    func exists(_ relative: String) -> Bool {
        var info = stat()
        return lstat(root + "/" + relative, &info) == 0
    }

    /// Every path outside the root that is not the canary.
    var strayFiles: [String] {
        let all = (FileManager.default.enumerator(atPath: base)?.allObjects as? [String]) ?? []
        return all.filter { !$0.hasPrefix("root") && !$0.hasPrefix("layer") && $0 != "outside" && $0 != "outside/canary" }
    }
}

@Suite struct LayerUnpackerTests {
    @Test func layersApplyInOrderWithWhiteouts() throws {
        let scratch = try UnpackScratch()
        var lower = TarBuilder()
        lower.add("etc/", .directory, mode: 0o755)
        lower.add("etc/hostname", content: Array("lower\n".utf8))
        lower.add("etc/keep", content: Array("keep\n".utf8))
        lower.add("var/cache/", .directory, mode: 0o755)
        lower.add("var/cache/old", content: Array("old\n".utf8))
        lower.add("bin/busybox", content: Array("ELF\n".utf8), mode: 0o4755, uid: 12, gid: 34)
        lower.add("bin/sh", .symlink, link: "busybox")
        lower.add("bin/ash", .hardlink, link: "bin/busybox")
        lower.add("run/fifo", .fifo, mode: 0o600)
        var upper = TarBuilder()
        upper.add("etc/.wh.hostname")
        upper.add("var/cache/new", content: Array("new\n".utf8))
        upper.add("var/cache/.wh..wh..opq")
        let digests = try scratch.unpack([lower.archive, ExternalTools.gzip(upper.archive)])
        #expect(!scratch.exists("etc/hostname"), "a whiteout removes the lower file")
        #expect(scratch.read("etc/keep") == "keep\n")
        #expect(!scratch.exists("var/cache/old"), "an opaque directory hides what lower layers put there")
        #expect(scratch.read("var/cache/new") == "new\n", "but keeps its own layer's entries")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: scratch.root + "/bin/sh") == "busybox")
        var busybox = stat()
        var ash = stat()
        lstat(scratch.root + "/bin/busybox", &busybox)
        lstat(scratch.root + "/bin/ash", &ash)
        #expect(busybox.st_ino == ash.st_ino, "hard link")
        #expect(busybox.st_mode & 0o7777 == 0o4755, "set-uid survives the chown")
        #expect(busybox.st_uid == 12 && busybox.st_gid == 34)
        #expect(busybox.st_mtim.tv_sec == 1_600_000_000)
        var fifo = stat()
        lstat(scratch.root + "/run/fifo", &fifo)
        #expect(fifo.st_mode & S_IFMT == S_IFIFO)
        // Digests: the stored bytes and the uncompressed stream, in one pass.
        let compressed = ExternalTools.gzip(upper.archive)
        #expect(digests[0].stored == digests[0].uncompressed, "an uncompressed layer's digests agree")
        #expect(digests[1].uncompressed == ExternalTools.sha256(upper.archive))
        #expect(digests[1].stored == ExternalTools.sha256(compressed))
        #expect(digests[1].uncompressedSHA512 == "sha512-" + ExternalTools.sha512Hex(upper.archive))
    }

    @Test func symlinkPlantedByOneEntryCannotCarryTheNextOutside() throws {
        // A link to an absolute path is resolved inside the root: where the target exists
        // there, the write lands there; where it does not, the entry is refused.
        let scratch = try UnpackScratch()
        var tar = TarBuilder()
        tar.add("etc/", .directory, mode: 0o755)
        tar.add("escape", .symlink, link: "/etc")
        tar.add("escape/planted", content: Array("inside\n".utf8))
        tar.add("up", .symlink, link: "../../../../../../../../etc")
        tar.add("up/planted2", content: Array("inside\n".utf8))
        try scratch.unpack([tar.archive])
        #expect(scratch.read("etc/planted") == "inside\n")
        #expect(scratch.read("etc/planted2") == "inside\n")
        #expect(FileManager.default.fileExists(atPath: "/etc/planted") == false)
        for target in [scratch.outside, "../../../../../../../.." + scratch.outside] {
            let again = try UnpackScratch()
            var dangling = TarBuilder()
            dangling.add("escape", .symlink, link: target)
            dangling.add("escape/canary", content: Array("pwned\n".utf8))
            #expect(throws: (any Error).self) { try again.unpack([dangling.archive]) }
            #expect(try String(contentsOfFile: again.outside + "/canary", encoding: .utf8) == "canary\n")
            #expect(again.strayFiles == [])
        }
    }

    @Test func hostileEntriesAreRefusedAndNothingLeaksOut() throws {
        let cases: [(String, (inout TarBuilder) -> Void)] = [
            ("dot-dot", { $0.add("../outside/canary", content: Array("x".utf8)) }),
            ("nested dot-dot", { $0.add("a/../../outside/x", content: Array("x".utf8)) }),
            ("absolute", { $0.add("/etc/passwd-coreos-test", content: Array("x".utf8)) }),
            ("hard link out", { $0.add("h", .hardlink, link: "../outside/canary") }),
            ("absolute hard link", { $0.add("h", .hardlink, link: "/etc/passwd") }),
            ("device", { $0.add("dev/sda", .blockDevice, mode: 0o600, major: 8, minor: 0) }),
            ("10 GB sparse claim", { $0.add("big", content: [], declaredSize: 10 << 30) }),
            ("lying size", { $0.add("short", content: Array("abc".utf8), declaredSize: 1 << 20) }),
        ]
        for (name, build) in cases {
            let scratch = try UnpackScratch()
            var tar = TarBuilder()
            tar.add("ok", content: Array("fine".utf8))
            build(&tar)
            #expect(throws: (any Error).self, "\(name)") { try scratch.unpack([tar.archive]) }
            #expect(scratch.strayFiles == [], "\(name)")
            #expect(try String(contentsOfFile: scratch.outside + "/canary", encoding: .utf8) == "canary\n", "\(name)")
            #expect(FileManager.default.fileExists(atPath: "/etc/passwd-coreos-test") == false)
        }
    }

    @Test func aGzipBombStopsAtTheSizeLimit() throws {
        let scratch = try UnpackScratch()
        var tar = TarBuilder()
        tar.add("zeros", content: [UInt8](repeating: 0, count: 24 << 20))
        let bomb = ExternalTools.gzip(tar.archive)
        #expect(bomb.count < 200_000)
        var policy = UnpackPolicy()
        policy.maxBytes = 16 << 20
        #expect(throws: RuntimeError.self) { try scratch.unpack([bomb], policy: policy) }
        var info = stat()
        stat(scratch.root + "/zeros", &info)
        #expect(info.st_size == 0 || lstat(scratch.root + "/zeros", &info) != 0)
    }

    @Test func devicesWhenAllowed() throws {
        let scratch = try UnpackScratch()
        var tar = TarBuilder()
        tar.add("dev/null", .characterDevice, mode: 0o666, major: 1, minor: 3)
        var policy = UnpackPolicy()
        policy.allowDevices = true
        try scratch.unpack([tar.archive], policy: policy)
        var info = stat()
        lstat(scratch.root + "/dev/null", &info)
        #expect(info.st_mode & S_IFMT == S_IFCHR)
        #expect(info.st_rdev == stat.nullDevice)
    }

    @Test func corruptAndTruncatedStreamsAreErrors() throws {
        let scratch = try UnpackScratch()
        var tar = TarBuilder()
        tar.add("a", content: [UInt8](repeating: 7, count: 5000))
        let packed = ExternalTools.gzip(tar.archive)
        #expect(throws: RuntimeError.self) { try scratch.unpack([Array(packed.prefix(packed.count / 2))]) }
        #expect(throws: RuntimeError.self) { try scratch.unpack([Array(tar.archive.prefix(700))]) }
        var garbage = packed
        garbage[garbage.count / 2] ^= 0xff
        #expect(throws: RuntimeError.self) { try scratch.unpack([garbage]) }
    }
}

extension stat {
    static var nullDevice: dev_t {
        var info = stat()
        _ = lstat("/dev/null", &info)
        return info.st_rdev
    }
}
