/// The log as one member holds it: a snapshot point, the entries after it, how far they
/// are on disk (`stableIndex`), committed and applied.
struct RaftLog: Sendable {
    private(set) var snapshotIndex: LogIndex
    private(set) var snapshotTerm: Term
    /// Entries at `snapshotIndex + 1 ...`.
    private(set) var entries: [Entry]
    /// Entries up to here are persisted.
    var stableIndex: LogIndex
    var committed: LogIndex
    /// Committed entries up to here were handed to the host.
    var applied: LogIndex
    /// The last committed index handed out in a Ready not yet advanced.
    var applying: LogIndex

    init(snapshot: SnapshotMetadata?, entries: [Entry], committed: LogIndex) {
        snapshotIndex = snapshot?.index ?? 0
        snapshotTerm = snapshot?.term ?? 0
        self.entries = entries.filter { $0.index > (snapshot?.index ?? 0) }
        stableIndex = self.entries.last?.index ?? snapshotIndex
        self.committed = max(committed, snapshotIndex)
        applied = snapshotIndex
        applying = snapshotIndex
    }

    var firstIndex: LogIndex { snapshotIndex + 1 }
    var lastIndex: LogIndex { entries.last?.index ?? snapshotIndex }
    var lastTerm: Term { term(at: lastIndex) ?? 0 }

    /// The term of the entry at `index`; nil if compacted away or beyond the end.
    func term(at index: LogIndex) -> Term? {
        if index == snapshotIndex { return snapshotTerm }
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - snapshotIndex - 1)].term
    }

    func matches(index: LogIndex, term: Term) -> Bool { self.term(at: index) == term }

    /// Whether a candidate whose log ends at (`index`, `term`) is at least as up to date.
    func isUpToDate(index: LogIndex, term: Term) -> Bool {
        term > lastTerm || (term == lastTerm && index >= lastIndex)
    }

    /// Entries in `from..<to` (clamped to what exists), stopping after `maxBytes` (at least one).
    func entries(from: LogIndex, to: LogIndex, maxBytes: Int = .max) -> [Entry] {
        guard from > snapshotIndex, from < to, from <= lastIndex else { return [] }
        let end = min(to, lastIndex + 1)
        var result: [Entry] = []
        var bytes = 0
        for index in from..<end {
            let entry = entries[Int(index - snapshotIndex - 1)]
            bytes += entry.byteSize
            if !result.isEmpty && bytes > maxBytes { break }
            result.append(entry)
        }
        return result
    }

    var unstableEntries: [Entry] { entries(from: stableIndex + 1, to: lastIndex + 1) }

    /// The leader's own append: entries already carry their term and index.
    mutating func append(_ newEntries: [Entry]) {
        guard let first = newEntries.first else { return }
        if first.index <= lastIndex { truncate(from: first.index) }
        entries.append(contentsOf: newEntries)
    }

    private mutating func truncate(from index: LogIndex) {
        entries.removeLast(Int(lastIndex - index + 1))
        stableIndex = min(stableIndex, index - 1)
    }

    /// A follower's append after (`index`, `term`): nil when the log does not contain
    /// that entry; else the new last index of what the leader sent. Entries already
    /// present with the same term are kept (the message may be old), a conflict
    /// truncates from the first differing index.
    mutating func maybeAppend(after index: LogIndex, term: Term, entries newEntries: [Entry], leaderCommit: LogIndex)
        -> LogIndex?
    {
        guard matches(index: index, term: term) else { return nil }
        let lastNew = index + LogIndex(newEntries.count)
        for (offset, entry) in newEntries.enumerated() where entry.index > snapshotIndex {
            if let existing = self.term(at: entry.index) {
                if existing == entry.term { continue }
                // A sender that contradicts a committed entry is broken or hostile:
                // refuse the message rather than lose committed data.
                guard entry.index > committed else { return nil }
                truncate(from: entry.index)
            }
            entries.append(contentsOf: newEntries[offset...])
            break
        }
        commit(to: min(leaderCommit, lastNew))
        return lastNew
    }

    mutating func commit(to index: LogIndex) {
        if index > committed { committed = min(index, lastIndex) }
    }

    /// For a rejected append at `index`: the largest index ≤ `index` whose term is ≤ `term`,
    /// so the other side can skip a whole conflicting term at once.
    func conflictHint(index: LogIndex, term: Term) -> LogIndex {
        var candidate = min(index, lastIndex)
        while candidate > snapshotIndex, let found = self.term(at: candidate), found > term { candidate -= 1 }
        return candidate
    }

    /// Replaces everything with a snapshot received from the leader.
    mutating func restore(_ metadata: SnapshotMetadata) {
        snapshotIndex = metadata.index
        snapshotTerm = metadata.term
        entries = []
        stableIndex = metadata.index
        committed = metadata.index
        applied = metadata.index
        applying = metadata.index
    }

    /// Drops entries up to `index` (which the host covered with a snapshot).
    mutating func compact(upTo index: LogIndex) {
        guard index > snapshotIndex, index <= applied, let term = term(at: index) else { return }
        entries.removeFirst(Int(index - snapshotIndex))
        snapshotIndex = index
        snapshotTerm = term
    }

    /// Committed entries not yet handed to the host, up to `maxBytes`.
    func nextCommitted(maxBytes: Int) -> [Entry] {
        entries(from: max(applying, snapshotIndex) + 1, to: committed + 1, maxBytes: maxBytes)
    }
}

/// Bounded window of appends in flight to one follower: counts and bytes.
struct Inflights: Sendable {
    private var items: [(index: LogIndex, bytes: Int)] = []
    private var head = 0
    private(set) var bytes = 0
    let maxCount: Int
    let maxBytes: Int

    init(maxCount: Int, maxBytes: Int) {
        self.maxCount = maxCount
        self.maxBytes = maxBytes
    }

    var count: Int { items.count - head }
    var isFull: Bool { count >= maxCount || bytes >= maxBytes }

    mutating func add(index: LogIndex, bytes size: Int) {
        items.append((index, size))
        bytes += size
    }

    /// Frees everything up to and including `index`.
    mutating func free(upTo index: LogIndex) {
        while head < items.count && items[head].index <= index {
            bytes -= items[head].bytes
            head += 1
        }
        if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
    }

    /// Frees the oldest slot: a heartbeat answer shows the follower is there, so one more
    /// append may go out even if an earlier one was lost.
    mutating func freeFirst() {
        guard head < items.count else { return }
        free(upTo: items[head].index)
    }

    mutating func reset() {
        items = []
        head = 0
        bytes = 0
    }
}

/// The leader's view of one follower.
struct Progress: Sendable {
    enum State: Sendable, Hashable {
        /// One append at a time until the match point is found.
        case probe
        /// Optimistic pipelining within the inflight bounds.
        case replicate
        /// A snapshot is on its way; nothing else is sent.
        case snapshot(index: LogIndex, sentAtTick: Int)
    }

    var match: LogIndex = 0
    var next: LogIndex
    var state: State = .probe
    /// In probe state: an append is out and unanswered.
    var probeSent = false
    var recentActive = false
    var inflights: Inflights

    init(next: LogIndex, maxInflight: Int, maxInflightBytes: Int) {
        self.next = next
        inflights = Inflights(maxCount: maxInflight, maxBytes: maxInflightBytes)
    }

    var isPaused: Bool {
        switch state {
        case .probe: return probeSent
        case .replicate: return inflights.isFull
        case .snapshot: return true
        }
    }

    mutating func becomeProbe() {
        if case .snapshot(let index, _) = state {
            next = max(match + 1, index + 1)
        } else {
            next = match + 1
        }
        state = .probe
        probeSent = false
        inflights.reset()
    }

    mutating func becomeReplicate() {
        state = .replicate
        next = match + 1
        inflights.reset()
    }

    /// An acknowledgement up to `index`; false if it says nothing new.
    mutating func update(match index: LogIndex) -> Bool {
        var advanced = false
        if index > match {
            match = index
            advanced = true
            probeSent = false
        }
        next = max(next, index + 1)
        return advanced
    }

    /// A rejection of the append after `rejected`, with the follower's hint; false when stale.
    mutating func decrease(rejected: LogIndex, hint: LogIndex) -> Bool {
        if case .replicate = state {
            guard rejected > match else { return false }
            next = match + 1
            return true
        }
        guard next - 1 == rejected else { return false }
        next = max(min(rejected, hint + 1), 1)
        probeSent = false
        return true
    }
}
