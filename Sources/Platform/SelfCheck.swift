import CArchive
import CLinux
import CSystemd
import CYAML
import Glibc

/// A start-up probe that exercises each linked C library for real: libyaml parses a
/// document, libarchive writes and reads back a tar archive in memory, libsystemd makes
/// a random 128-bit ID and tells whether systemd is PID 1. It proves the binary was
/// linked and deployed correctly on this machine.
public enum SelfCheck {
    public struct Result: Sendable, Hashable {
        public var component: String
        public var passed: Bool
        public var detail: String
    }

    public static func run() -> [Result] {
        [checkYAML(), checkArchive(), checkSystemd()]
    }

    static func checkYAML() -> Result {
        let document = "etcd:\n  name: core-01\n  peers: [a, b]\n"
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            return Result(component: "libyaml", passed: false, detail: "yaml_parser_initialize failed")
        }
        defer { yaml_parser_delete(&parser) }
        var bytes = Array(document.utf8)
        var scalars = 0
        let ok = bytes.withUnsafeMutableBufferPointer { buffer -> Bool in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return false }
                defer { yaml_event_delete(&event) }
                if event.type == YAML_SCALAR_EVENT { scalars += 1 }
                if event.type == YAML_STREAM_END_EVENT { return true }
            }
        }
        return Result(
            component: "libyaml", passed: ok && scalars == 6,
            detail: "parsed a mapping with \(scalars) scalars (libyaml \(String(cString: yaml_get_version_string())))")
    }

    static func checkArchive() -> Result {
        let payload = Array("hello from coreos\n".utf8)
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        var used = 0
        guard let writer = archive_write_new() else {
            return Result(component: "libarchive", passed: false, detail: "archive_write_new failed")
        }
        archive_write_set_format_pax_restricted(writer)
        let opened = buffer.withUnsafeMutableBytes {
            archive_write_open_memory(writer, $0.baseAddress, $0.count, &used)
        }
        guard opened == ARCHIVE_OK, let entry = archive_entry_new() else {
            archive_write_free(writer)
            return Result(component: "libarchive", passed: false, detail: "cannot open an in-memory archive")
        }
        archive_entry_set_pathname(entry, "etc/motd")
        archive_entry_set_size(entry, la_int64_t(payload.count))
        archive_entry_set_filetype(entry, UInt32(Glibc.S_IFREG))
        archive_entry_set_perm(entry, 0o644)
        archive_write_header(writer, entry)
        _ = payload.withUnsafeBytes { archive_write_data(writer, $0.baseAddress, $0.count) }
        archive_entry_free(entry)
        archive_write_close(writer)
        archive_write_free(writer)

        guard let reader = archive_read_new() else {
            return Result(component: "libarchive", passed: false, detail: "archive_read_new failed")
        }
        defer { archive_read_free(reader) }
        archive_read_support_format_all(reader)
        let readOpened = buffer.withUnsafeBytes { archive_read_open_memory(reader, $0.baseAddress, used) }
        var header: OpaquePointer? = nil
        guard readOpened == ARCHIVE_OK, archive_read_next_header(reader, &header) == ARCHIVE_OK, let header else {
            return Result(component: "libarchive", passed: false, detail: "cannot read back the archive")
        }
        let name = String(cString: archive_entry_pathname(header))
        var content = [UInt8](repeating: 0, count: 64)
        let count = content.withUnsafeMutableBytes { archive_read_data(reader, $0.baseAddress, $0.count) }
        let passed = name == "etc/motd" && count == payload.count && Array(content.prefix(max(count, 0))) == payload
        return Result(
            component: "libarchive", passed: passed,
            detail: "wrote and read back a \(used)-byte tar (\(String(cString: archive_version_string())))")
    }

    static func checkSystemd() -> Result {
        var id = sd_id128_t()
        let status = sd_id128_randomize(&id)
        let nonZero = withUnsafeBytes(of: id.bytes) { $0.contains { $0 != 0 } }
        let booted = sd_booted() > 0
        return Result(
            component: "libsystemd", passed: status == 0 && nonZero,
            detail: "generated a random 128-bit ID; systemd is \(booted ? "" : "not ")PID 1 here")
    }
}
