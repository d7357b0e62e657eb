import Platform
import Testing

@Suite("Linked C libraries")
struct LinkedLibraryTests {
    /// Each system library is called at run time and reports a plausible version.
    @Test func versionsAreReadFromTheLoadedLibraries() {
        let versions = LinkedLibraryVersions.current()
        let systemd = Int(versions.systemd ?? "") ?? 0
        #expect(systemd >= 240, "libsystemd version from LIBSYSTEMD_<n> symbol versions")
        #expect(versions.systemdPath?.contains("libsystemd.so") == true)
        #expect(versions.yaml.split(separator: ".").count == 3)
        #expect(versions.archive.hasPrefix("3."))
        #expect(versions.archiveDetails.contains("libarchive"))
        #expect(versions.libc.hasPrefix("2."))
    }
}

@Suite("Self-check")
struct SelfCheckTests {
    @Test func everyLibraryWorks() {
        let results = SelfCheck.run()
        #expect(results.map(\.component) == ["libyaml", "libarchive", "libsystemd"])
        for result in results { #expect(result.passed, "\(result.component): \(result.detail)") }
    }
}
