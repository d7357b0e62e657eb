import CArchive
import CDynamicLibraries
import CLinux
import CSystemd
import CYAML

/// The run-time versions of the C libraries the binary links, read from the libraries
/// actually loaded (not the headers it was compiled against).
public struct LinkedLibraryVersions: Sendable, Hashable {
    /// The systemd release libsystemd was built from (`252`), taken from the highest
    /// `LIBSYSTEMD_<n>` symbol-version definition of the loaded object, which is how
    /// libsystemd versions its ABI. `nil` if it cannot be read.
    public var systemd: String?
    /// libyaml's `yaml_get_version_string()`, e.g. `0.2.5`.
    public var yaml: String
    /// libarchive's `archive_version_number()` rendered as `3.6.2`.
    public var archive: String
    /// libarchive's `archive_version_details()`: the compression libraries it uses.
    public var archiveDetails: String
    /// glibc's `gnu_get_libc_version()`.
    public var libc: String
    /// The file libsystemd was loaded from.
    public var systemdPath: String?

    /// Reads the versions. Calling into each library also proves it loaded and links.
    public static func current() -> LinkedLibraryVersions {
        // A side-effect-free libsystemd call (it loads the library); the real function's
        // address locates the loaded file.
        _ = sd_booted()
        let systemdVersion = coreos_loaded_library_version("libsystemd.so", "LIBSYSTEMD_")
        let number = Int(archive_version_number())
        let archiveVersion = "\(number / 1_000_000).\(number / 1_000 % 1_000).\(number % 1_000)"
        return LinkedLibraryVersions(
            systemd: systemdVersion >= 0 ? String(systemdVersion) : nil,
            yaml: String(cString: yaml_get_version_string()),
            archive: archiveVersion,
            archiveDetails: String(cString: archive_version_details()),
            libc: String(cString: coreos_libc_version()),
            systemdPath: coreos_library_symbol("libsystemd.so.0", "sd_booted").flatMap { libraryPath(of: $0) }
        )
    }

    private static func libraryPath(of address: UnsafeRawPointer) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        guard coreos_library_path_of(address, &buffer, buffer.count) == 0 else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
