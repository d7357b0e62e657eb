/// etcd's multi-version key-value model as a pure, synchronous value: every write
/// transaction that changes something gets the next main revision, each change in it a
/// sub-revision; reads at any revision since the last compaction; tombstones end a key's
/// generation. Semantics, validation and error texts follow etcd 3.4 (mvcc and
/// etcdserver's apply), so responses compare byte for byte once encoded.
public struct MVCCStore: Sendable {
    /// One change of a key: a value, or a tombstone (`stored == nil`). Its key is the
    /// history's and its mod revision is `main`, so neither is repeated here.
    struct Change: Sendable {
        var main: Int64
        var sub: Int64
        var stored: Stored?
    }

    /// A revision's metadata, and where its value is in `values`.
    struct Stored: Sendable {
        var createRevision: Int64
        var version: Int64
        var lease: Int64
        var value: ValueLog.Reference
    }

    /// Keys in byte order (binary-searched); their histories, oldest change first.
    var keys = SortedKeys()
    var histories: [[UInt8]: [Change]] = [:]
    /// The newest revision; 1 for an empty store, as etcd.
    public internal(set) var currentRevision: Int64 = 1
    /// Reads below this revision fail; 0 until the first compaction.
    public internal(set) var compactedRevision: Int64 = 0
    /// Bytes the kept history holds: keys and values of every revision not yet compacted
    /// away, plus a fixed cost per revision (the index entry). The quota is checked
    /// against this, so compaction gives space back at once (etcd's needs a defragment).
    public internal(set) var logicalSize = 0
    /// The fixed part of a revision's cost in `logicalSize`.
    public static let revisionOverhead = 48
    /// Where the values are (the index only holds references).
    public internal(set) var values: ValueLog
    /// Bytes of values that kept revisions refer to; the rest of `values` is garbage that
    /// compaction left and a repack drops.
    var liveValueBytes: UInt64 = 0
    /// Whether write events carry the key's previous state (`Event.previous`). Reading it
    /// costs a value read per put or delete; a server with no watcher turns it off, and a
    /// request's own `prev_kv` is answered either way.
    public var eventsCarryPrevious = true

    public init(values: ValueLog = ValueLog()) {
        self.values = values
    }

    /// The key-value a stored revision stands for, its value read from the log unless
    /// `withValue` is false (keys-only reads, which never touch the log).
    func keyValue(_ key: [UInt8], _ main: Int64, _ stored: Stored, withValue: Bool = true) -> KeyValue {
        KeyValue(
            key: key, createRevision: stored.createRevision, modRevision: main, version: stored.version,
            value: withValue ? values.read(stored.value) : [], lease: stored.lease)
    }

    // MARK: Reads

    public func range(_ request: RangeRequest) throws(MVCCError) -> RangeResult {
        try range(request, current: currentRevision)
    }

    /// Range as etcdserver applies it: fetch (everything when sorting or filtering, else
    /// one more than the limit), filter on mod and create revisions, sort, then cut to the
    /// limit and set `more`. `current` is the revision the reader stands at (inside a write
    /// transaction, the one it is writing); the result carries it, whatever revision was
    /// read, as etcd's header does.
    func range(_ request: RangeRequest, current: Int64) throws(MVCCError) -> RangeResult {
        if request.revision > current { throw .futureRevision }
        let revision = request.revision <= 0 ? current : request.revision
        if revision < compactedRevision { throw .compacted }
        let filtering = request.sortOrder != .none || request.minModRevision != 0 || request.maxModRevision != 0
            || request.minCreateRevision != 0 || request.maxCreateRevision != 0
        var fetchLimit = filtering ? 0 : Int(request.limit)
        if fetchLimit > 0 { fetchLimit += 1 }
        // Metadata first; values are read only for what is returned (or sorted by value).
        var found: [KeyValue] = []
        var count: Int64 = 0
        let readValues = !request.keysOnly || request.sortTarget == .value
        for key in keysIn(request.key, request.rangeEnd) {
            guard let (main, stored) = self.stored(of: key, at: revision) else { continue }
            count += 1
            if request.countOnly || (fetchLimit > 0 && found.count >= fetchLimit) { continue }
            if !filtering || passes(request, main, stored) {
                found.append(keyValue(key, main, stored, withValue: readValues))
            }
        }
        var order = request.sortOrder
        // Results come in key order; any other target sorts ascending unless told otherwise.
        if request.sortTarget != .key && order == .none { order = .ascend }
        if order != .none {
            let ascending: (KeyValue, KeyValue) -> Bool
            switch request.sortTarget {
            case .key: ascending = { $0.key.lexicographicallyPrecedes($1.key) }
            case .version: ascending = { $0.version < $1.version }
            case .create: ascending = { $0.createRevision < $1.createRevision }
            case .mod: ascending = { $0.modRevision < $1.modRevision }
            case .value: ascending = { $0.value.lexicographicallyPrecedes($1.value) }
            }
            found = Self.stableSorted(found, by: order == .ascend ? ascending : { ascending($1, $0) })
        }
        var more = false
        if request.limit > 0 && found.count > Int(request.limit) {
            found.removeLast(found.count - Int(request.limit))
            more = true
        }
        if request.keysOnly { found = found.map { var copy = $0; copy.value = []; return copy } }
        return RangeResult(keyValues: found, more: more, count: count, revision: current)
    }

    private func passes(_ request: RangeRequest, _ main: Int64, _ stored: Stored) -> Bool {
        !(request.maxModRevision != 0 && main > request.maxModRevision)
            && !(request.minModRevision != 0 && main < request.minModRevision)
            && !(request.maxCreateRevision != 0 && stored.createRevision > request.maxCreateRevision)
            && !(request.minCreateRevision != 0 && stored.createRevision < request.minCreateRevision)
    }

    private static func stableSorted(_ values: [KeyValue], by precedes: (KeyValue, KeyValue) -> Bool) -> [KeyValue] {
        values.enumerated().sorted { a, b in
            if precedes(a.element, b.element) { return true }
            if precedes(b.element, a.element) { return false }
            return a.offset < b.offset
        }.map(\.element)
    }

    /// The key's revision at `revision` (its mod revision and metadata), nil when absent or
    /// deleted then; no value is read.
    func stored(of key: [UInt8], at revision: Int64) -> (main: Int64, stored: Stored)? {
        guard let history = histories[key] else { return nil }
        var low = 0
        var high = history.count
        while low < high {
            let middle = (low + high) / 2
            if history[middle].main <= revision { low = middle + 1 } else { high = middle }
        }
        guard low > 0, let stored = history[low - 1].stored else { return nil }
        return (history[low - 1].main, stored)
    }

    /// Keys of `[key, end)` in order (`end` empty: just `key`; `end == [0]`: from `key` on).
    func keysIn(_ key: [UInt8], _ end: [UInt8]) -> SortedKeys.Keys {
        let start = keys.lowerBound(key)
        if end.isEmpty {
            guard start < keys.end, keys.key(at: start) == key else { return .empty }
            return keys.keys(from: start, to: SortedKeys.Position(chunk: start.chunk, index: start.index + 1))
        }
        if end == [0] { return keys.keys(from: start, to: keys.end) }
        guard key.lexicographicallyPrecedes(end) else { return .empty }
        return keys.keys(from: start, to: keys.lowerBound(end))
    }

    // MARK: Writes

    /// A write transaction in progress: one main revision for all its changes.
    struct WriteContext {
        var revision: Int64
        var sub: Int64 = 0
        var events: [Event] = []
        /// What each change did, so a failing transaction can take its changes back.
        var undo: [(key: [UInt8], newKey: Bool, change: Change)] = []
    }

    public mutating func put(_ request: PutRequest, leaseExists: (Int64) -> Bool = { _ in true })
        throws(MVCCError) -> WriteOutcome<KeyValue?>
    {
        var context = WriteContext(revision: currentRevision + 1)
        let previous = try apply(request, &context, leaseExists: leaseExists)
        return finish(context, previous)
    }

    public mutating func deleteRange(_ request: DeleteRangeRequest) -> WriteOutcome<DeleteResult> {
        var context = WriteContext(revision: currentRevision + 1)
        let result = apply(request, &context)
        return finish(context, result)
    }

    /// Compares at the current revision, then runs one branch as a single write.
    public mutating func txn(_ request: TxnRequest, maxOperations: Int = 128, leaseExists: (Int64) -> Bool = { _ in true })
        throws(MVCCError) -> WriteOutcome<TxnResult>
    {
        try Self.validate(request, maxOperations: maxOperations)
        try checkLeases(request, leaseExists: leaseExists)
        var context = WriteContext(revision: currentRevision + 1)
        do {
            let result = try apply(request, &context, leaseExists: leaseExists)
            return finish(context, result)
        } catch {
            // A failing operation (ignore_value on a missing key, a future revision)
            // leaves nothing behind. (Undone change by change: a copy of the store kept
            // for the purpose made every transaction copy the whole key index.)
            rollBack(context)
            throw error
        }
    }

    /// Takes back a failed transaction's changes, newest first. Values it appended stay in
    /// the value log unreferenced, as compacted ones do until the log is repacked.
    private mutating func rollBack(_ context: WriteContext) {
        var newKeys = Set<[UInt8]>()
        for entry in context.undo.reversed() {
            histories[entry.key]?.removeLast()
            logicalSize -= Self.cost(entry.change, key: entry.key)
            liveValueBytes -= UInt64(entry.change.stored?.value.count ?? 0)
            if entry.newKey {
                histories[entry.key] = nil
                newKeys.insert(entry.key)
            }
        }
        if !newKeys.isEmpty { keys.removeAll { newKeys.contains($0) } }
    }

    /// `record` for a write in progress: remembered for `rollBack`.
    private mutating func record(_ change: Change, for key: [UInt8], _ context: inout WriteContext) {
        context.undo.append((key, histories[key] == nil, change))
        record(change, for: key)
    }

    private func checkLeases(_ request: TxnRequest, leaseExists: (Int64) -> Bool) throws(MVCCError) {
        for operation in request.success + request.failure {
            switch operation {
            case .put(let put) where put.lease != 0 && !leaseExists(put.lease): throw .leaseNotFound
            case .txn(let nested): try checkLeases(nested, leaseExists: leaseExists)
            default: break
            }
        }
    }

    private mutating func finish<Value>(_ context: WriteContext, _ value: Value) -> WriteOutcome<Value> {
        if context.sub > 0 { currentRevision = context.revision }
        return WriteOutcome(value: value, revision: currentRevision, events: context.events)
    }

    /// What the transaction sees: its own earlier writes included.
    private func readRevision(_ context: WriteContext) -> Int64 { context.sub > 0 ? context.revision : currentRevision }

    private mutating func apply(_ request: PutRequest, _ context: inout WriteContext, leaseExists: (Int64) -> Bool)
        throws(MVCCError) -> KeyValue?
    {
        guard !request.key.isEmpty else { throw .emptyKey }
        let found = stored(of: request.key, at: readRevision(context))
        if (request.ignoreValue || request.ignoreLease) && found == nil { throw .keyNotFound }
        let lease = request.ignoreLease ? (found?.stored.lease ?? 0) : request.lease
        if lease != 0 && !request.ignoreLease && !leaseExists(lease) { throw .leaseNotFound }
        let previous =
            request.previousKeyValue || eventsCarryPrevious ? found.map { keyValue(request.key, $0.main, $0.stored) } : nil
        let value = request.ignoreValue ? (previous?.value ?? found.map { values.read($0.stored.value) } ?? []) : request.value
        let stored = Stored(
            createRevision: found?.stored.createRevision ?? context.revision, version: (found?.stored.version ?? 0) + 1,
            lease: lease, value: request.ignoreValue ? found?.stored.value ?? .empty : values.append(value))
        record(Change(main: context.revision, sub: context.sub, stored: stored), for: request.key, &context)
        context.sub += 1
        let written = KeyValue(
            key: request.key, createRevision: stored.createRevision, modRevision: context.revision, version: stored.version,
            value: value, lease: lease)
        context.events.append(Event(kind: .put, keyValue: written, previous: eventsCarryPrevious ? previous : nil))
        return request.previousKeyValue ? previous : nil
    }

    private mutating func apply(_ request: DeleteRangeRequest, _ context: inout WriteContext) -> DeleteResult {
        let revision = readRevision(context)
        let doomed = keysIn(request.key, request.rangeEnd).compactMap { key in stored(of: key, at: revision).map { (key, $0) } }
        var previous: [KeyValue] = []
        for (key, found) in doomed {
            record(Change(main: context.revision, sub: context.sub, stored: nil), for: key, &context)
            context.sub += 1
            let before = request.previousKeyValues || eventsCarryPrevious ? keyValue(key, found.main, found.stored) : nil
            if request.previousKeyValues, let before { previous.append(before) }
            let tombstone = KeyValue(key: key, createRevision: 0, modRevision: context.revision, version: 0, value: [])
            context.events.append(Event(kind: .delete, keyValue: tombstone, previous: eventsCarryPrevious ? before : nil))
        }
        return DeleteResult(deleted: Int64(doomed.count), previous: previous)
    }

    private mutating func apply(_ request: TxnRequest, _ context: inout WriteContext, leaseExists: (Int64) -> Bool)
        throws(MVCCError) -> TxnResult
    {
        let revision = readRevision(context)
        let succeeded = request.compare.allSatisfy { evaluate($0, at: revision) }
        var responses: [OperationResult] = []
        for operation in succeeded ? request.success : request.failure {
            switch operation {
            case .range(let range):
                responses.append(.range(try self.range(range, current: readRevision(context))))
            case .put(let put):
                responses.append(.put(previous: try apply(put, &context, leaseExists: leaseExists)))
            case .deleteRange(let delete):
                responses.append(.deleteRange(apply(delete, &context)))
            case .txn(let nested):
                responses.append(.txn(try apply(nested, &context, leaseExists: leaseExists)))
            }
        }
        return TxnResult(succeeded: succeeded, responses: responses)
    }

    static func cost(_ change: Change, key: [UInt8]) -> Int {
        key.count + (change.stored?.value.count ?? 0) + revisionOverhead
    }

    /// Adds a change to the index; `change`'s value is already in `values`.
    mutating func record(_ change: Change, for key: [UInt8]) {
        logicalSize += Self.cost(change, key: key)
        liveValueBytes += UInt64(change.stored?.value.count ?? 0)
        if histories[key] == nil {
            keys.insert(key)
            histories[key] = [change]
        } else {
            histories[key]!.append(change)
        }
    }

    /// etcd's compare: every key of the range must satisfy it; a missing key has version,
    /// create and mod revision 0 and lease 0, and fails any value comparison.
    func evaluate(_ compare: Compare, at revision: Int64) -> Bool {
        let revisions: [(main: Int64, stored: Stored)?]
        if compare.rangeEnd.isEmpty {
            revisions = [stored(of: compare.key, at: revision)]
        } else {
            let found = keysIn(compare.key, compare.rangeEnd).compactMap { stored(of: $0, at: revision) }
            revisions = found.isEmpty ? [nil] : found
        }
        return revisions.allSatisfy { found in
            let order: Int
            switch compare.target {
            case .value(let expected):
                guard let found else { return false }
                let value = values.read(found.stored.value)
                order = value == expected ? 0 : (value.lexicographicallyPrecedes(expected) ? -1 : 1)
            case .version(let expected): order = Self.order(found?.stored.version ?? 0, expected)
            case .create(let expected): order = Self.order(found?.stored.createRevision ?? 0, expected)
            case .mod(let expected): order = Self.order(found?.main ?? 0, expected)
            case .lease(let expected): order = Self.order(found?.stored.lease ?? 0, expected)
            }
            switch compare.result {
            case .equal: return order == 0
            case .notEqual: return order != 0
            case .greater: return order > 0
            case .less: return order < 0
            }
        }
    }

    private static func order(_ a: Int64, _ b: Int64) -> Int { a == b ? 0 : (a < b ? -1 : 1) }

    // MARK: History

    /// Every change to keys of `[key, end)` at or after `revision`, in revision order, with
    /// the previous value of each (for a watcher starting in the past).
    public func events(from revision: Int64, key: [UInt8], end: [UInt8]) throws(MVCCError) -> [Event] {
        if revision < compactedRevision { throw .compacted }
        var found: [(main: Int64, sub: Int64, event: Event)] = []
        for name in keysIn(key, end) {
            guard let history = histories[name] else { continue }
            for (position, change) in history.enumerated() where change.main >= revision {
                let before = position > 0 ? history[position - 1] : nil
                let previous = before.flatMap { before in before.stored.map { keyValue(name, before.main, $0) } }
                let event: Event
                if let stored = change.stored {
                    event = Event(kind: .put, keyValue: keyValue(name, change.main, stored), previous: previous)
                } else {
                    event = Event(
                        kind: .delete, keyValue: KeyValue(key: name, createRevision: 0, modRevision: change.main, version: 0, value: []),
                        previous: previous)
                }
                found.append((change.main, change.sub, event))
            }
        }
        return found.sorted { ($0.main, $0.sub) < ($1.main, $1.sub) }.map(\.event)
    }

    // MARK: Compaction

    /// Forgets history before `revision`: reads below it fail from now on. Each key keeps
    /// its value as of `revision` (unless that is a tombstone) and everything after.
    public mutating func compact(_ revision: Int64) throws(MVCCError) {
        if revision <= compactedRevision { throw .compacted }
        if revision > currentRevision { throw .futureRevision }
        compactedRevision = revision
        var emptied: Set<[UInt8]> = []
        for (key, history) in histories {
            guard let keep = history.lastIndex(where: { $0.main <= revision }) else { continue }
            var trimmed = Array(history[keep...])
            if trimmed.first?.stored == nil { trimmed.removeFirst() }
            for change in history.prefix(history.count - trimmed.count) {
                logicalSize -= Self.cost(change, key: key)
                liveValueBytes -= UInt64(change.stored?.value.count ?? 0)
            }
            if trimmed.isEmpty {
                emptied.insert(key)
            } else if trimmed.count != history.count {
                histories[key] = trimmed
            }
        }
        if !emptied.isEmpty {
            for key in emptied { histories[key] = nil }
            keys.removeAll { emptied.contains($0) }
        }
        let size = values.size
        let garbage = size > liveValueBytes ? size - liveValueBytes : 0
        if garbage > values.repackThreshold && garbage > liveValueBytes { repackValues() }
    }

    /// Copies the live values into a fresh log. Read views holding the old log keep it
    /// (and its file) until they are done.
    mutating func repackValues() {
        let fresh = values.successor()
        for key in keys {
            guard var history = histories[key] else { continue }
            for position in history.indices {
                guard let stored = history[position].stored else { continue }
                history[position].stored?.value = fresh.append(values.read(stored.value))
            }
            histories[key] = history
        }
        values = fresh
    }

    // MARK: Validation

    /// etcd's checks of a txn before it is proposed: at most `maxOperations` compares and
    /// operations per branch (nested included), and no key written twice in one outcome
    /// (a put inside a delete's range counts).
    public static func validate(_ request: TxnRequest, maxOperations: Int) throws(MVCCError) {
        try checkCounts(request, maxOperations: maxOperations)
        _ = try writtenKeys(request.success)
        _ = try writtenKeys(request.failure)
    }

    private static func checkCounts(_ request: TxnRequest, maxOperations: Int) throws(MVCCError) {
        if request.compare.count > maxOperations || request.success.count > maxOperations
            || request.failure.count > maxOperations
        {
            throw .tooManyOperations
        }
        for operation in request.success + request.failure {
            switch operation {
            case .range(let range) where range.key.isEmpty: throw .emptyKey
            case .put(let put) where put.key.isEmpty: throw .emptyKey
            case .deleteRange(let delete) where delete.key.isEmpty: throw .emptyKey
            case .txn(let nested): try checkCounts(nested, maxOperations: maxOperations)
            default: break
            }
        }
    }

    /// Puts and deleted ranges of one branch, refusing overlaps as etcd's checkIntervals.
    private static func writtenKeys(_ operations: [Operation]) throws(MVCCError) -> (puts: Set<[UInt8]>, deletes: [([UInt8], [UInt8])]) {
        var deletes: [([UInt8], [UInt8])] = []
        for case .deleteRange(let delete) in operations { deletes.append((delete.key, delete.rangeEnd)) }
        var puts: Set<[UInt8]> = []
        for case .txn(let nested) in operations {
            let then = try writtenKeys(nested.success)
            let otherwise = try writtenKeys(nested.failure)
            for key in then.puts {
                if puts.contains(key) || covers(deletes, key) { throw .duplicateKey }
                puts.insert(key)
            }
            for key in otherwise.puts {
                // The same key in both branches is fine: only one of them runs.
                if puts.contains(key) && !then.puts.contains(key) { throw .duplicateKey }
                if covers(deletes, key) { throw .duplicateKey }
                puts.insert(key)
            }
            deletes += then.deletes + otherwise.deletes
        }
        for case .put(let put) in operations {
            if puts.contains(put.key) || covers(deletes, put.key) { throw .duplicateKey }
            puts.insert(put.key)
        }
        return (puts, deletes)
    }

    private static func covers(_ ranges: [([UInt8], [UInt8])], _ key: [UInt8]) -> Bool {
        ranges.contains { start, end in
            if end.isEmpty { return start == key }
            if start.lexicographicallyPrecedes(key) == false && start != key { return false }
            if end == [0] { return true }
            return key.lexicographicallyPrecedes(end)
        }
    }

    /// Keys with any history (for tests and status).
    public var keyCount: Int { keys.count }

    /// Keys that exist now (their newest change is not a tombstone): etcd's
    /// `etcd_debugging_mvcc_keys_total`.
    public var liveKeyCount: Int { histories.values.reduce(0) { $0 + ($1.last?.stored == nil ? 0 : 1) } }
}
