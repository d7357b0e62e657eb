import MVCC
import Testing

@Suite struct MVCCSnapshotTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func sampleStore() throws -> MVCCStore {
        var store = MVCCStore()
        var random = SystemRandomNumberGenerator()
        for step in 0..<300 {
            let key = Self.bytes("key\(Int.random(in: 0..<20, using: &random))")
            if step % 7 == 3 {
                _ = store.deleteRange(DeleteRangeRequest(key: key))
            } else {
                var put = PutRequest(key: key, value: Self.bytes("value\(step)"))
                put.lease = step % 5 == 0 ? 42 : 0
                _ = try store.put(put)
            }
            if step == 150 { try store.compact(store.currentRevision - 20) }
        }
        return store
    }

    @Test func aRestoredStoreAnswersLikeTheOriginal() throws {
        let store = try Self.sampleStore()
        let restored = try #require(MVCCStore(decoding: store.encoded()))
        #expect(restored.currentRevision == store.currentRevision)
        #expect(restored.compactedRevision == store.compactedRevision)
        #expect(restored.logicalSize == store.logicalSize)
        #expect(restored.encoded() == store.encoded())
        for revision in [0, store.compactedRevision, store.currentRevision - 3] {
            var all = RangeRequest(key: [0], rangeEnd: [0])
            all.revision = revision
            #expect(try restored.range(all) == store.range(all))
        }
        let from = store.compactedRevision
        #expect(try restored.events(from: from, key: [0], end: [0]) == store.events(from: from, key: [0], end: [0]))
        #expect(restored.encodedHistory(through: 100) == store.encodedHistory(through: 100))
    }

    @Test func damagedBytesAreRefusedNotTrusted() throws {
        let encoded = try Self.sampleStore().encoded()
        for length in stride(from: 0, to: encoded.count, by: max(1, encoded.count / 97)) {
            #expect(MVCCStore(decoding: Array(encoded.prefix(length))) == nil)
        }
        #expect(MVCCStore(decoding: encoded + [0]) == nil)
        var wrongMagic = encoded
        wrongMagic[0] = UInt8(ascii: "X")
        #expect(MVCCStore(decoding: wrongMagic) == nil)
        // Flipped bytes anywhere: refused or decoded, never a crash.
        var random = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var damaged = encoded
            damaged[Int.random(in: 0..<damaged.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
            _ = MVCCStore(decoding: damaged)
        }
    }
}
