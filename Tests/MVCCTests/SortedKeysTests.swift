import MVCC
import Testing
import TestSupport

/// The key index splits into chunks past a few hundred keys: ranges over many chunks,
/// inserts into full chunks and compaction's removals must keep byte order exactly.
@Suite struct SortedKeysTests {
    @Test func rangesOverThousandsOfKeysMatchASortedReference() throws {
        let seed = SeededGenerator.seed(fallback: 0x5EED)
        var generator = SeededGenerator(seed: seed)
        var store = MVCCStore()
        var reference = Set<[UInt8]>()
        func randomKey() -> [UInt8] {
            (0..<Int.random(in: 1...4, using: &generator)).map { _ in UInt8.random(in: 0x61...0x6a, using: &generator) }
        }
        for step in 0..<6000 {
            let key = randomKey()
            if step % 5 == 4 {
                _ = store.deleteRange(DeleteRangeRequest(key: key))
                reference.remove(key)
            } else {
                _ = try store.put(PutRequest(key: key, value: [1]))
                reference.insert(key)
            }
            if step == 4000 { try store.compact(store.currentRevision) }  // tombstoned keys leave the index
        }
        let sorted = reference.sorted { $0.lexicographicallyPrecedes($1) }
        for round in 0..<300 {
            var bounds = [randomKey(), randomKey()].sorted { $0.lexicographicallyPrecedes($1) }
            if round % 10 == 0 { bounds[1] = [0] }
            let expected = sorted.filter { !$0.lexicographicallyPrecedes(bounds[0]) && (bounds[1] == [0] || $0.lexicographicallyPrecedes(bounds[1])) }
            var request = RangeRequest(key: bounds[0], rangeEnd: bounds[1])
            request.keysOnly = true
            let found = try store.range(request).keyValues.map(\.key)
            #expect(found == expected, "seed \(seed) round \(round): [\(bounds[0]), \(bounds[1]))")
        }
        #expect(try store.range(RangeRequest(key: [0], rangeEnd: [0])).count == Int64(sorted.count))
    }
}
