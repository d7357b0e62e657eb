import Foundation
import Testing
import UnitFile

@Suite("Drop-ins")
struct DropInTests {
    @Test func mergeOrderAndReset() throws {
        let base = try UnitFile(parsing: "[Service]\nExecStartPre=/bin/a\nUser=core\n")
        let first = try UnitFile(parsing: "[Service]\nExecStartPre=\nExecStartPre=/bin/b\n")
        let second = try UnitFile(parsing: "[Service]\nUser=root\n[Install]\nWantedBy=multi-user.target\n")
        let merged = base.merging([first, second])
        #expect(merged.values("ExecStartPre", in: "Service") == ["/bin/b"])
        #expect(merged.value("User", in: "Service") == "root")
        #expect(merged.value("WantedBy", in: "Install") == "multi-user.target")
    }

    @Test func directoryNames() throws {
        #expect(
            UnitFileLoader.dropInDirectoryNames(for: try UnitName("a-b@x.service"))
                == ["service.d", "a-.service.d", "a-b@.service.d", "a-b@x.service.d"])
        #expect(
            UnitFileLoader.dropInDirectoryNames(for: try UnitName("etcd.service")) == ["service.d", "etcd.service.d"])
    }

    @Test func loaderAppliesDropInsInLexicalOrderWithPriority() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("coreos-dropins-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let etc = root.appendingPathComponent("etc").path
        let lib = root.appendingPathComponent("lib").path
        func write(_ path: String, _ text: String) throws {
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        try write("\(lib)/web@.service", "[Service]\nExecStart=/bin/web %i\nEnvironment=A=1\n")
        try write("\(lib)/web@.service.d/10-env.conf", "[Service]\nEnvironment=B=lib\n")
        try write("\(etc)/web@.service.d/10-env.conf", "[Service]\nEnvironment=B=etc\n")
        try write("\(lib)/web@one.service.d/20-reset.conf", "[Service]\nEnvironment=\nEnvironment=C=3\n")
        try write("\(lib)/service.d/05-all.conf", "[Service]\nTimeoutSec=5\n")
        try write("\(lib)/web@one.service.d/ignored.txt", "not a drop-in")

        let loader = UnitFileLoader(searchPaths: [etc, lib])
        let unit = try loader.load(try UnitName("web@one.service"))
        #expect(unit.values("Environment", in: "Service") == ["C=3"])
        #expect(unit.value("TimeoutSec", in: "Service") == "5")
        #expect(
            loader.dropInPaths(for: try UnitName("web@one.service")).map { ($0 as NSString).lastPathComponent }
                == ["05-all.conf", "10-env.conf", "20-reset.conf"])
        let other = try loader.load(try UnitName("web@two.service"))
        #expect(other.values("Environment", in: "Service") == ["A=1", "B=etc"])
        #expect(throws: UnitFileError.self) { try loader.load(try UnitName("missing.service")) }
    }
}
