/// Keys in byte order, kept in chunks of a few hundred: finding a key is two binary
/// searches, and inserting one moves at most a chunk, where one sorted array would move
/// half the index (4 MB per new key at a million keys).
struct SortedKeys: Sendable, Sequence {
    /// Non-empty chunks, each sorted, each chunk's keys before the next one's.
    private var chunks: [[[UInt8]]] = []
    private(set) var count = 0
    /// A chunk this long splits in two.
    static let splitLength = 512

    /// Where a key is or would be; `chunk == chunks.count` is the end.
    struct Position: Sendable, Comparable {
        var chunk: Int
        var index: Int

        static func < (a: Position, b: Position) -> Bool { (a.chunk, a.index) < (b.chunk, b.index) }
    }

    var end: Position { Position(chunk: chunks.count, index: 0) }

    /// The first position whose key is not before `key`.
    func lowerBound(_ key: [UInt8]) -> Position {
        var low = 0
        var high = chunks.count
        while low < high {
            let middle = (low + high) / 2
            if chunks[middle][chunks[middle].count - 1].lexicographicallyPrecedes(key) { low = middle + 1 } else { high = middle }
        }
        guard low < chunks.count else { return end }
        let chunk = chunks[low]
        var first = 0
        var last = chunk.count
        while first < last {
            let middle = (first + last) / 2
            if chunk[middle].lexicographicallyPrecedes(key) { first = middle + 1 } else { last = middle }
        }
        return Position(chunk: low, index: first)
    }

    func key(at position: Position) -> [UInt8] { chunks[position.chunk][position.index] }

    /// Inserts `key`, which must not be present.
    mutating func insert(_ key: [UInt8]) {
        count += 1
        guard !chunks.isEmpty else {
            chunks = [[key]]
            return
        }
        var position = lowerBound(key)
        if position.chunk == chunks.count {
            position = Position(chunk: chunks.count - 1, index: chunks[chunks.count - 1].count)
        }
        chunks[position.chunk].insert(key, at: position.index)
        if chunks[position.chunk].count >= Self.splitLength {
            let upper = Array(chunks[position.chunk][(Self.splitLength / 2)...])
            chunks[position.chunk].removeLast(upper.count)
            chunks.insert(upper, at: position.chunk + 1)
        }
    }

    /// Appends `key`, which must come after every key present (decoding a snapshot).
    mutating func append(_ key: [UInt8]) {
        count += 1
        if chunks.isEmpty || chunks[chunks.count - 1].count >= Self.splitLength / 2 {
            chunks.append([key])
        } else {
            chunks[chunks.count - 1].append(key)
        }
    }

    mutating func removeAll(where shouldRemove: ([UInt8]) -> Bool) {
        for index in chunks.indices { chunks[index].removeAll(where: shouldRemove) }
        chunks.removeAll { $0.isEmpty }
        count = chunks.reduce(0) { $0 + $1.count }
    }

    /// The keys of `[from, to)` in order.
    func keys(from: Position, to: Position) -> Keys { Keys(chunks: chunks, from: from, to: to) }

    func makeIterator() -> Keys.Iterator { keys(from: Position(chunk: 0, index: 0), to: end).makeIterator() }

    /// A run of keys; it shares the chunks (copy on write) and stays valid however the
    /// index changes afterwards.
    struct Keys: Sendable, Sequence {
        fileprivate let chunks: [[[UInt8]]]
        fileprivate let from: Position
        fileprivate let to: Position

        static let empty = Keys(chunks: [], from: Position(chunk: 0, index: 0), to: Position(chunk: 0, index: 0))

        struct Iterator: IteratorProtocol {
            fileprivate let chunks: [[[UInt8]]]
            fileprivate var position: Position
            fileprivate let to: Position

            mutating func next() -> [UInt8]? {
                guard position < to, position.chunk < chunks.count else { return nil }
                let key = chunks[position.chunk][position.index]
                position.index += 1
                if position.index == chunks[position.chunk].count { position = Position(chunk: position.chunk + 1, index: 0) }
                return key
            }
        }

        func makeIterator() -> Iterator { Iterator(chunks: chunks, position: from, to: to) }
    }
}
