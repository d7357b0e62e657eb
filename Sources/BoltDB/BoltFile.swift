import Glibc

/// A read-only view of a bbolt database file (etcd's backend format, and what
/// `etcdctl snapshot save` writes): meta pages, buckets and their keys in order.
///
/// The file is memory-mapped; every page reference is bounds-checked, so a damaged file
/// gives a ``BoltError`` naming the page, never a crash.
public final class BoltFile {
    public let path: String
    public let pageSize: Int
    /// The meta page in use: the valid one with the higher transaction id.
    public let meta: Meta
    private let base: UnsafeRawPointer
    private let mappedLength: Int

    public struct Meta: Sendable, Hashable {
        public var version: UInt32
        public var pageSize: UInt32
        public var rootPage: UInt64
        public var freelistPage: UInt64
        /// The high-water mark: pages at or above it are not part of the database.
        public var pageCount: UInt64
        public var transactionID: UInt64
    }

    static let magic: UInt32 = 0xED0C_DAED
    static let pageHeaderSize = 16
    static let elementSize = 16
    static let noFreelist = UInt64.max

    enum PageFlag {
        static let branch: UInt16 = 0x01
        static let leaf: UInt16 = 0x02
        static let meta: UInt16 = 0x04
        static let freelist: UInt16 = 0x10
    }

    public init(path: String) throws(BoltError) {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw BoltError(path, "open \(path): \(Self.errnoText())") }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw BoltError(path, "stat \(path): \(Self.errnoText())") }
        let size = Int(info.st_size)
        // bbolt first reads 4 KiB for the meta page, then wants two whole pages.
        guard size >= 4096 else { throw BoltError(path, "invalid database") }
        guard let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), mapping != MAP_FAILED else {
            throw BoltError(path, "mmap \(path): \(Self.errnoText())")
        }
        let mapped = UnsafeRawPointer(mapping)
        base = mapped
        mappedLength = size
        do throws(BoltError) {
            let first = try Self.readMeta(mapped, size: size, offset: 0)
            // Without a valid first meta page, bbolt looks for the second one at the OS page size.
            let second = try Self.readMeta(mapped, size: size, offset: Int(first?.pageSize ?? 4096))
            let candidates = [first, second].compactMap { $0 }
            guard let chosen = candidates.max(by: { $0.transactionID < $1.transactionID }) else {
                throw BoltError(path, "invalid database")
            }
            meta = chosen
            pageSize = Int(chosen.pageSize)
            guard size >= 2 * pageSize else { throw BoltError(path, "file size too small") }
        } catch {
            munmap(mapping, size)
            throw error
        }
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), mappedLength) }

    /// Reads one meta page; nil when its magic, version or checksum is wrong.
    static func readMeta(_ base: UnsafeRawPointer, size: Int, offset: Int) throws(BoltError) -> Meta? {
        let start = offset + pageHeaderSize
        guard start + 64 <= size else { return nil }
        func u32(_ at: Int) -> UInt32 { base.loadUnaligned(fromByteOffset: start + at, as: UInt32.self).littleEndian }
        func u64(_ at: Int) -> UInt64 { base.loadUnaligned(fromByteOffset: start + at, as: UInt64.self).littleEndian }
        guard u32(0) == magic, u32(4) == 2 else { return nil }
        // FNV-1a 64 over the meta fields before the checksum.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for index in 0..<56 {
            hash ^= UInt64(base.load(fromByteOffset: start + index, as: UInt8.self))
            hash = hash &* 0x100_0000_01b3
        }
        guard hash == u64(56) else { return nil }
        let pageSize = u32(8)
        guard pageSize >= 512, pageSize.nonzeroBitCount == 1 else { return nil }
        return Meta(
            version: u32(4), pageSize: pageSize, rootPage: u64(16), freelistPage: u64(32), pageCount: u64(40),
            transactionID: u64(48))
    }

    static func errnoText() -> String {
        let text = String(cString: strerror(errno))
        return text.prefix(1).lowercased() + text.dropFirst()
    }

    /// The database size as bbolt reports it (`Tx.Size`): pages in use × page size.
    public var size: Int { Int(meta.pageCount) * pageSize }

    // MARK: Pages

    struct Page {
        var id: UInt64
        var flags: UInt16
        var count: Int
        var overflow: Int
        var offset: Int
    }

    func page(_ id: UInt64) throws(BoltError) -> Page {
        guard id >= 2, id < meta.pageCount else { throw BoltError(path, "page \(id): out of bounds: \(meta.pageCount)") }
        let offset = Int(id) * pageSize
        guard offset + Self.pageHeaderSize <= mappedLength else {
            throw BoltError(path, "page \(id): beyond the end of the file (\(mappedLength) bytes)")
        }
        let header = Page(
            id: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian,
            flags: base.loadUnaligned(fromByteOffset: offset + 8, as: UInt16.self).littleEndian,
            count: Int(base.loadUnaligned(fromByteOffset: offset + 10, as: UInt16.self).littleEndian),
            overflow: Int(base.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self).littleEndian),
            offset: offset)
        guard header.id == id else { throw BoltError(path, "page \(id): header says page \(header.id)") }
        guard offset + (header.overflow + 1) * pageSize <= mappedLength else {
            throw BoltError(path, "page \(id): its \(header.overflow) overflow pages pass the end of the file")
        }
        return header
    }

    func bytes(_ start: Int, _ count: Int, limit: Int, page id: UInt64) throws(BoltError) -> [UInt8] {
        guard count >= 0, start >= 0, start + count <= limit else {
            throw BoltError(path, "page \(id): an element points outside the page")
        }
        return Array(UnsafeRawBufferPointer(start: base + start, count: count))
    }

    /// One key/value of a leaf, with the bucket flag.
    struct LeafElement {
        var key: [UInt8]
        var value: [UInt8]
        var isBucket: Bool
    }

    /// Visits every leaf element under `pageID` in key order; `inline` is an inline
    /// bucket's page bytes (root 0) instead. `visitPage` sees each page id reached.
    func walk(
        root pageID: UInt64, inline: [UInt8]?, depth: Int = 0, visitPage: (UInt64, Int) throws(BoltError) -> Void,
        _ visit: (LeafElement) throws(BoltError) -> Void
    ) throws(BoltError) {
        guard depth < 64 else { throw BoltError(path, "page \(pageID): tree deeper than 64 levels") }
        if let inline {
            let outcome: Result<Void, BoltError> = inline.withUnsafeBytes { buffer in
                do throws(BoltError) {
                    guard buffer.count >= Self.pageHeaderSize, let start = buffer.baseAddress else {
                        throw BoltError(path, "inline bucket shorter than a page header")
                    }
                    let flags = start.loadUnaligned(fromByteOffset: 8, as: UInt16.self).littleEndian
                    let count = Int(start.loadUnaligned(fromByteOffset: 10, as: UInt16.self).littleEndian)
                    guard flags & PageFlag.leaf != 0 else { throw BoltError(path, "inline bucket is not a leaf page") }
                    try leafElements(start, count: count, limit: buffer.count, page: 0, visit)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
            try outcome.get()
            return
        }
        let page = try page(pageID)
        try visitPage(pageID, page.overflow)
        let limit = (page.overflow + 1) * pageSize
        let start = base + page.offset
        if page.flags & PageFlag.leaf != 0 {
            try leafElements(start, count: page.count, limit: limit, page: pageID, visit)
        } else if page.flags & PageFlag.branch != 0 {
            guard Self.pageHeaderSize + page.count * Self.elementSize <= limit else {
                throw BoltError(path, "page \(pageID): \(page.count) elements do not fit")
            }
            for index in 0..<page.count {
                let element = Self.pageHeaderSize + index * Self.elementSize
                let child = start.loadUnaligned(fromByteOffset: element + 8, as: UInt64.self).littleEndian
                try walk(root: child, inline: nil, depth: depth + 1, visitPage: visitPage, visit)
            }
        } else {
            throw BoltError(path, "page \(pageID): invalid page type: \(page.flags): 10")
        }
    }

    private func leafElements(
        _ start: UnsafeRawPointer, count: Int, limit: Int, page id: UInt64, _ visit: (LeafElement) throws(BoltError) -> Void
    ) throws(BoltError) {
        guard Self.pageHeaderSize + count * Self.elementSize <= limit else {
            throw BoltError(path, "page \(id): \(count) elements do not fit")
        }
        for index in 0..<count {
            let element = Self.pageHeaderSize + index * Self.elementSize
            let flags = start.loadUnaligned(fromByteOffset: element, as: UInt32.self).littleEndian
            let position = Int(start.loadUnaligned(fromByteOffset: element + 4, as: UInt32.self).littleEndian)
            let keySize = Int(start.loadUnaligned(fromByteOffset: element + 8, as: UInt32.self).littleEndian)
            let valueSize = Int(start.loadUnaligned(fromByteOffset: element + 12, as: UInt32.self).littleEndian)
            let keyStart = element + position
            guard keyStart >= 0, keyStart + keySize + valueSize <= limit else {
                throw BoltError(path, "page \(id): an element points outside the page")
            }
            let key = Array(UnsafeRawBufferPointer(start: start + keyStart, count: keySize))
            let value = Array(UnsafeRawBufferPointer(start: start + keyStart + keySize, count: valueSize))
            try visit(LeafElement(key: key, value: value, isBucket: flags & 0x01 != 0))
        }
    }

    // MARK: Buckets

    /// A top-level bucket: its name and where its tree starts.
    public struct Bucket: Sendable, Hashable {
        public var name: [UInt8]
        var root: UInt64
        var inline: [UInt8]?
    }

    static func bucketHeader(_ value: [UInt8], path: String, name: [UInt8]) throws(BoltError) -> (UInt64, [UInt8]?) {
        guard value.count >= 16 else {
            throw BoltError(path, "bucket \(String(decoding: name, as: UTF8.self)): header shorter than 16 bytes")
        }
        var root: UInt64 = 0
        for index in 0..<8 { root |= UInt64(value[index]) << (8 * UInt64(index)) }
        return (root, root == 0 ? Array(value[16...]) : nil)
    }

    /// The top-level buckets in name order.
    public func buckets() throws(BoltError) -> [Bucket] {
        var result: [Bucket] = []
        try walk(root: meta.rootPage, inline: nil, visitPage: { _, _ in }) { (element) throws(BoltError) in
            guard element.isBucket else { return }
            let (root, inline) = try Self.bucketHeader(element.value, path: path, name: element.key)
            result.append(Bucket(name: element.key, root: root, inline: inline))
        }
        return result
    }

    /// Every key and value of `bucket` in key order (nested buckets have an empty value).
    public func forEach(in bucket: Bucket, _ body: ([UInt8], [UInt8]) throws(BoltError) -> Void) throws(BoltError) {
        try walk(root: bucket.root, inline: bucket.inline, visitPage: { _, _ in }) { (element) throws(BoltError) in
            try body(element.key, element.isBucket ? [] : element.value)
        }
    }

    // MARK: Consistency

    /// bbolt's `Tx.Check`: every page below the high-water mark is reachable exactly
    /// once or free, and nothing reachable is free. Returns the problems found.
    public func check() -> [String] {
        var problems: [String] = []
        var reachable: [UInt64: UInt64] = [0: 0, 1: 1]
        var freed = Set<UInt64>()
        if meta.freelistPage != Self.noFreelist {
            do {
                let page = try page(meta.freelistPage)
                for id in UInt64(page.id)...UInt64(page.id + UInt64(page.overflow)) { reachable[id] = page.id }
                freed = try freelist(page)
            } catch {
                problems.append(error.message)
            }
        }
        func mark(_ id: UInt64, _ overflow: Int) throws(BoltError) {
            for extra in 0...UInt64(overflow) {
                let page = id + extra
                if reachable[page] != nil { problems.append("page \(page): multiple references") }
                reachable[page] = id
                if freed.contains(page) { problems.append("page \(page): reachable freed") }
            }
        }
        do {
            try walk(root: meta.rootPage, inline: nil, visitPage: mark) { (element) throws(BoltError) in
                guard element.isBucket else { return }
                let (root, inline) = try Self.bucketHeader(element.value, path: path, name: element.key)
                try walkNested(root: root, inline: inline, mark: mark)
            }
        } catch {
            problems.append(error.message)
        }
        if meta.freelistPage != Self.noFreelist {
            for id in 0..<meta.pageCount where reachable[id] == nil && !freed.contains(id) {
                problems.append("page \(id): unreachable unfreed")
            }
        }
        return problems
    }

    private func walkNested(root: UInt64, inline: [UInt8]?, mark: (UInt64, Int) throws(BoltError) -> Void) throws(BoltError) {
        try walk(root: root, inline: inline, visitPage: mark) { (element) throws(BoltError) in
            guard element.isBucket else { return }
            let (child, childInline) = try Self.bucketHeader(element.value, path: path, name: element.key)
            try walkNested(root: child, inline: childInline, mark: mark)
        }
    }

    private func freelist(_ page: Page) throws(BoltError) -> Set<UInt64> {
        var count = page.count
        var start = page.offset + Self.pageHeaderSize
        if count == 0xFFFF {
            count = Int(base.loadUnaligned(fromByteOffset: start, as: UInt64.self).littleEndian)
            start += 8
        }
        guard count >= 0, start + count * 8 <= page.offset + (page.overflow + 1) * pageSize else {
            throw BoltError(path, "page \(page.id): freelist count \(count) does not fit")
        }
        return Set((0..<count).map { base.loadUnaligned(fromByteOffset: start + $0 * 8, as: UInt64.self).littleEndian })
    }
}

/// Why a bbolt file cannot be read, with the file it concerns.
public struct BoltError: Error, Sendable, Hashable, CustomStringConvertible {
    public var path: String
    /// bbolt's own wording where it has one (`file size too small`, `invalid database`).
    public var message: String

    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { message }
}
