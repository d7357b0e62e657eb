import CArchive
import CDynamicLibraries
import Crypto
import Glibc

/// Why the runtime refused or failed, with what it was working on.
public struct RuntimeError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// The digests of a stream, as it was read.
public struct StreamDigests: Sendable, Hashable {
    /// `sha256:<hex>` of the bytes as stored (the blob digest of a layer).
    public var stored: String
    /// `sha256:<hex>` of the decompressed bytes (a layer's diff_id).
    public var uncompressed: String
    /// `sha512-<hex>` of the decompressed bytes (an ACI's image ID, first 64 hex digits);
    /// nil unless asked for.
    public var uncompressedSHA512: String?
    public var storedBytes: Int64
    public var uncompressedBytes: Int64
}

/// One tar entry as libarchive read it. Valid until the next entry is read.
public struct ArchiveEntry {
    public enum Kind: Sendable, Hashable { case regular, directory, symlink, hardlink, characterDevice, blockDevice, fifo, socket }

    public var path: String
    public var kind: Kind
    public var mode: UInt32
    public var uid: Int64
    public var gid: Int64
    public var mtimeSeconds: Int
    public var mtimeNanoseconds: Int
    public var size: Int64
    /// The target of a symbolic link or a hard link.
    public var linkTarget: String?
    public var deviceMajor: UInt32
    public var deviceMinor: UInt32
    public var xattrs: [(name: String, value: [UInt8])]
}

/// A (possibly compressed) tar stream read in one pass: libarchive undoes gzip, bzip2, xz
/// or zstd in a first reader whose output is hashed and fed to a second reader that parses
/// the tar. So the blob digest, the diff_id and an ACI's SHA-512 come out of the same read
/// that extracts it, and nothing is decompressed twice.
public final class TarStream {
    private let descriptor: Int32
    private let ownsDescriptor: Bool
    private var decompressor: OpaquePointer?
    private var tarReader: OpaquePointer?
    private var storedHash = SHA256()
    private var uncompressedHash = SHA256()
    private var uncompressedHash512: SHA512?
    private var storedBytes: Int64 = 0
    private var uncompressedBytes: Int64 = 0
    private var inputBuffer = [UInt8](repeating: 0, count: 256 << 10)
    private var decompressorStarted = false
    private var inputFailure: String?
    private let name: String
    /// Where the decompressed stream is copied as it is read (an ACI is stored uncompressed).
    private let teeDescriptor: Int32?

    /// Reads the file at `path`; the decompressed stream is also written to `tee` when
    /// given, and hashed with SHA-512 when `sha512` (an ACI's identity).
    public convenience init(path: String, tee: Int32? = nil, sha512: Bool = false) throws(RuntimeError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw RuntimeError("open \(path): \(String(cString: strerror(errno)))") }
        try self.init(descriptor: descriptor, name: path, ownsDescriptor: true, tee: tee, sha512: sha512)
    }

    /// A blob that need not be a tar (a manifest, a config): only `finish()` is meaningful.
    public static func raw(path: String) throws(RuntimeError) -> TarStream {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw RuntimeError("open \(path): \(String(cString: strerror(errno)))") }
        return try TarStream(descriptor: descriptor, name: path, ownsDescriptor: true, rawOnly: true)
    }

    private let rawOnly: Bool

    public init(
        descriptor: Int32, name: String, ownsDescriptor: Bool = false, rawOnly: Bool = false, tee: Int32? = nil,
        sha512: Bool = false
    ) throws(RuntimeError) {
        self.rawOnly = rawOnly
        self.teeDescriptor = tee
        self.uncompressedHash512 = sha512 ? SHA512() : nil
        self.descriptor = descriptor
        self.ownsDescriptor = ownsDescriptor
        self.name = name
        decompressor = archive_read_new()
        tarReader = archive_read_new()
        guard decompressor != nil, tarReader != nil else { throw RuntimeError("\(name): libarchive: out of memory") }
        archive_read_support_filter_all(decompressor)
        archive_read_support_format_raw(decompressor)
        archive_read_support_format_tar(tarReader)
        let context = Unmanaged.passUnretained(self).toOpaque()
        guard archive_read_open(decompressor, context, nil, Self.readStored, nil) == ARCHIVE_OK else {
            throw RuntimeError("\(name): \(inputFailure ?? Self.errorText(decompressor))")
        }
        guard rawOnly || archive_read_open(tarReader, context, nil, Self.readUncompressed, nil) == ARCHIVE_OK else {
            throw RuntimeError("\(name): \(inputFailure ?? Self.errorText(tarReader))")
        }
    }

    deinit {
        archive_read_free(tarReader)
        archive_read_free(decompressor)
        if ownsDescriptor { close(descriptor) }
    }

    static func errorText(_ archive: OpaquePointer?) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "unreadable archive"
    }

    /// The compression libarchive found (`gzip`, `bzip2`, `xz`, `zstd`, `none`).
    public var compression: String {
        let count = archive_filter_count(decompressor)
        guard count > 1 else { return "none" }
        switch archive_filter_code(decompressor, 0) {
        case ARCHIVE_FILTER_GZIP: return "gzip"
        case ARCHIVE_FILTER_BZIP2: return "bzip2"
        case ARCHIVE_FILTER_XZ: return "xz"
        case ARCHIVE_FILTER_ZSTD: return "zstd"
        case ARCHIVE_FILTER_LZMA: return "lzma"
        default: return "other"
        }
    }

    // The first reader pulls from the descriptor, hashing what is stored.
    private static let readStored: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int = {
        _, context, buffer in
        let stream = Unmanaged<TarStream>.fromOpaque(context!).takeUnretainedValue()
        return stream.inputBuffer.withUnsafeMutableBytes { bytes -> Int in
            while true {
                let count = read(stream.descriptor, bytes.baseAddress, bytes.count)
                if count < 0 && errno == EINTR { continue }
                if count < 0 {
                    stream.inputFailure = "read: \(String(cString: strerror(errno)))"
                    return -1
                }
                stream.storedHash.update(bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
                stream.storedBytes += Int64(count)
                buffer?.pointee = UnsafeRawPointer(bytes.baseAddress)
                return count
            }
        }
    }

    // The second reader pulls the decompressed bytes from the first, hashing them.
    private static let readUncompressed: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int = {
        _, context, buffer in
        let stream = Unmanaged<TarStream>.fromOpaque(context!).takeUnretainedValue()
        return stream.nextUncompressed(buffer)
    }

    private func nextUncompressed(_ buffer: UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int {
        if !decompressorStarted {
            decompressorStarted = true
            var entry: OpaquePointer?
            let status = archive_read_next_header(decompressor, &entry)
            if status == ARCHIVE_EOF { return 0 }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN else {
                if inputFailure == nil { inputFailure = Self.errorText(decompressor) }
                return -1
            }
        }
        var block: UnsafeRawPointer?
        var size = 0
        var offset: Int64 = 0
        let status = archive_read_data_block(decompressor, &block, &size, &offset)
        if status == ARCHIVE_EOF { return 0 }
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let block else {
            if inputFailure == nil { inputFailure = Self.errorText(decompressor) }
            return -1
        }
        let bytes = UnsafeRawBufferPointer(start: block, count: size)
        if let teeDescriptor {
            var written = 0
            while written < size {
                let count = write(teeDescriptor, block + written, size - written)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else {
                    inputFailure = "write: \(String(cString: strerror(errno)))"
                    return -1
                }
                written += count
            }
        }
        uncompressedHash.update(bufferPointer: bytes)
        uncompressedHash512?.update(bufferPointer: bytes)
        uncompressedBytes += Int64(size)
        buffer?.pointee = block
        return size
    }

    /// The next entry, or nil at the end of the archive.
    public func nextEntry() throws(RuntimeError) -> ArchiveEntry? {
        var entry: OpaquePointer?
        let status = archive_read_next_header(tarReader, &entry)
        if status == ARCHIVE_EOF { return nil }
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
            throw RuntimeError("\(name): \(inputFailure ?? Self.errorText(tarReader))")
        }
        guard let rawPath = archive_entry_pathname(entry) else { throw RuntimeError("\(name): an entry has no name") }
        let path = String(cString: rawPath)
        let hardlink = archive_entry_hardlink(entry).map { String(cString: $0) }
        let kind: ArchiveEntry.Kind
        // The octal values are POSIX's (`S_IFMT` is ambiguous between Glibc and libarchive's header).
        switch archive_entry_filetype(entry) & 0o170000 {
        case 0o040000: kind = .directory
        case 0o120000: kind = .symlink
        case 0o020000: kind = .characterDevice
        case 0o060000: kind = .blockDevice
        case 0o010000: kind = .fifo
        case 0o140000: kind = .socket
        default: kind = hardlink != nil ? .hardlink : .regular
        }
        var xattrs: [(String, [UInt8])] = []
        if archive_entry_xattr_reset(entry) > 0 {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK, let name {
                xattrs.append((String(cString: name), value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []))
            }
        }
        return ArchiveEntry(
            path: path, kind: kind, mode: UInt32(archive_entry_perm(entry)), uid: archive_entry_uid(entry),
            gid: archive_entry_gid(entry),
            mtimeSeconds: archive_entry_mtime(entry), mtimeNanoseconds: archive_entry_mtime_nsec(entry),
            size: archive_entry_size(entry),
            linkTarget: kind == .symlink ? archive_entry_symlink(entry).map { String(cString: $0) } : hardlink,
            deviceMajor: UInt32(archive_entry_rdevmajor(entry)), deviceMinor: UInt32(archive_entry_rdevminor(entry)),
            xattrs: xattrs)
    }

    /// Calls `body` with each data block of the current entry and its offset in the file
    /// (gaps between blocks are holes of a sparse file).
    public func readData(_ body: (UnsafeRawBufferPointer, Int64) throws(RuntimeError) -> Void) throws(RuntimeError) {
        while true {
            var block: UnsafeRawPointer?
            var size = 0
            var offset: Int64 = 0
            let status = archive_read_data_block(tarReader, &block, &size, &offset)
            if status == ARCHIVE_EOF { return }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN else {
                throw RuntimeError("\(name): \(inputFailure ?? Self.errorText(tarReader))")
            }
            if size > 0, let block { try body(UnsafeRawBufferPointer(start: block, count: size), offset) }
        }
    }

    /// Reads what is left (tar padding, trailing bytes) so the digests cover the whole
    /// stream, then returns them.
    public func finish() throws(RuntimeError) -> StreamDigests {
        var pointer: UnsafeRawPointer?
        var tail = 0
        while true {
            let count = withUnsafeMutablePointer(to: &pointer) { nextUncompressed($0) }
            if count == 0 { break }
            guard count > 0 else { throw RuntimeError("\(name): \(inputFailure ?? Self.errorText(decompressor))") }
            // Padding after the end-of-archive blocks is normal; megabytes of it are a bomb.
            // (A raw blob is all "tail": nothing to bound there.)
            tail += count
            guard rawOnly || tail <= Self.maxTrailingBytes else {
                throw RuntimeError("\(name): more than \(Self.maxTrailingBytes) bytes after the end of the archive")
            }
        }
        // The decompressor may stop before the end of the stored bytes (data after the
        // compressed stream): hash them too, the blob digest is of the whole file.
        while true {
            let count = inputBuffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            inputBuffer.withUnsafeBytes { storedHash.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            storedBytes += Int64(count)
        }
        return StreamDigests(
            stored: "sha256:" + Self.hex(storedHash.finalize()), uncompressed: "sha256:" + Self.hex(uncompressedHash.finalize()),
            uncompressedSHA512: uncompressedHash512.map { "sha512-" + Self.hex($0.finalize()) }, storedBytes: storedBytes,
            uncompressedBytes: uncompressedBytes)
    }

    static let maxTrailingBytes = 1 << 20

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
