#if canImport(Glibc)
    import Glibc
#endif

/// One journal entry's fields, copied out of sd-journal into one reusable buffer (one copy
/// per entry, no allocation per field), plus its metadata.
public struct JournalEntry: Sendable {
    /// The items `FIELD=VALUE`, back to back, in the entry's order.
    public private(set) var storage: [UInt8] = []
    /// Each item's start, the offset of its `=`, and its end in `storage`.
    public private(set) var items: [(start: Int, equals: Int, end: Int)] = []
    public var realtime: UInt64 = 0
    public var monotonic: UInt64 = 0
    public var boot = BootID(bytes: [UInt8](repeating: 0, count: 16))
    public var cursor = ""

    public init() {}

    /// An entry from `(name, value)` pairs (tests, and formatters fed without sd-journal).
    public init(fields: [(String, [UInt8])], realtime: UInt64, monotonic: UInt64, boot: BootID, cursor: String) {
        for (name, value) in fields { append(item: Array(name.utf8) + [0x3D] + value) }
        self.realtime = realtime
        self.monotonic = monotonic
        self.boot = boot
        self.cursor = cursor
    }

    mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        items.removeAll(keepingCapacity: true)
    }

    mutating func append(item: UnsafeRawBufferPointer) {
        guard let equals = item.firstIndex(of: 0x3D) else { return }
        let start = storage.count
        storage.append(contentsOf: item)
        items.append((start, start + equals, storage.count))
    }

    mutating func append(item: [UInt8]) {
        item.withUnsafeBytes { append(item: $0) }
    }

    public var count: Int { items.count }

    public func name(_ index: Int) -> ArraySlice<UInt8> { storage[items[index].start..<items[index].equals] }
    public func value(_ index: Int) -> ArraySlice<UInt8> { storage[items[index].equals + 1..<items[index].end] }

    /// Whether item `index` is named `field` (lengths first, then the bytes).
    public func isNamed(_ index: Int, _ field: [UInt8]) -> Bool {
        let item = items[index]
        guard item.equals - item.start == field.count else { return false }
        return storage.withUnsafeBufferPointer { bytes in
            field.withUnsafeBufferPointer { memcmp(bytes.baseAddress! + item.start, $0.baseAddress!, field.count) == 0 }
        }
    }

    /// The first value of `field`, nil when the entry has none.
    public func value(of field: [UInt8]) -> ArraySlice<UInt8>? {
        for index in items.indices where isNamed(index, field) { return value(index) }
        return nil
    }

    /// The index in `fields` of each item's name (nil for names not listed), in one pass
    /// that compares lengths before bytes.
    public func firstItems(named fields: [[UInt8]]) -> [Int?] {
        var found = [Int?](repeating: nil, count: fields.count)
        for index in items.indices {
            let length = items[index].equals - items[index].start
            for slot in fields.indices where found[slot] == nil && fields[slot].count == length && isNamed(index, fields[slot]) {
                found[slot] = index
                break
            }
        }
        return found
    }
}

extension SystemJournal {
    /// Copies the current entry into `entry` (reusing its buffers). The cursor, which
    /// sd-journal formats with printf, only when asked for.
    public func load(into entry: inout JournalEntry, withCursor: Bool) throws(JournalError) {
        entry.removeAll()
        forEachField { entry.append(item: $0) }
        entry.realtime = try realtime()
        let (monotonic, boot) = try monotonic()
        entry.monotonic = monotonic
        entry.boot = boot
        entry.cursor = withCursor ? try cursor() : ""
    }
}
