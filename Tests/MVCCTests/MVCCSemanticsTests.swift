import MVCC
import Testing

/// etcd 3.4's behaviour on the cases clients notice.
@Suite struct MVCCSemanticsTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func revisionsVersionsAndGenerationsFollowEtcd() throws {
        var store = MVCCStore()
        #expect(store.currentRevision == 1)
        #expect(try store.put(PutRequest(key: Self.bytes("k"), value: Self.bytes("1"))).revision == 2)
        #expect(try store.put(PutRequest(key: Self.bytes("k"), value: Self.bytes("2"))).revision == 3)
        var current = try store.range(RangeRequest(key: Self.bytes("k"))).keyValues[0]
        #expect((current.createRevision, current.modRevision, current.version) == (2, 3, 2))
        // A delete ends the generation; the next put starts over at version 1.
        #expect(store.deleteRange(DeleteRangeRequest(key: Self.bytes("k"))).revision == 4)
        #expect(store.deleteRange(DeleteRangeRequest(key: Self.bytes("k"))).revision == 4)  // nothing deleted: no revision
        _ = try store.put(PutRequest(key: Self.bytes("k"), value: Self.bytes("3")))
        current = try store.range(RangeRequest(key: Self.bytes("k"))).keyValues[0]
        #expect((current.createRevision, current.modRevision, current.version) == (5, 5, 1))
        // Reading the past reports the current revision in the header, as etcd.
        var old = RangeRequest(key: Self.bytes("k"))
        old.revision = 3
        let past = try store.range(old)
        #expect(past.revision == 5 && past.keyValues[0].value == Self.bytes("2"))
        old.revision = 4
        #expect(try store.range(old).keyValues.isEmpty)
        old.revision = 6
        #expect(throws: MVCCError.futureRevision) { try store.range(old) }
    }

    /// Without watchers the server drops previous states from events; a request's own
    /// prev_kv, ignore_value and the events' current states are unaffected.
    @Test func eventsWithoutPreviousStatesStillAnswerPrevKV() throws {
        var store = MVCCStore()
        store.eventsCarryPrevious = false
        _ = try store.put(PutRequest(key: Self.bytes("k"), value: Self.bytes("1")))
        var put = PutRequest(key: Self.bytes("k"), value: Self.bytes("2"))
        put.previousKeyValue = true
        let outcome = try store.put(put)
        #expect(outcome.value?.value == Self.bytes("1"))
        #expect(outcome.events.map(\.previous) == [nil] && outcome.events[0].keyValue.value == Self.bytes("2"))
        var keep = PutRequest(key: Self.bytes("k"), value: [])
        keep.ignoreValue = true
        #expect(try store.put(keep).events[0].keyValue.value == Self.bytes("2"))
        var delete = DeleteRangeRequest(key: Self.bytes("k"))
        delete.previousKeyValues = true
        let deleted = store.deleteRange(delete)
        #expect(deleted.value.previous.map(\.value) == [Self.bytes("2")] && deleted.events.map(\.previous) == [nil])
        store.eventsCarryPrevious = true
        _ = try store.put(PutRequest(key: Self.bytes("k"), value: Self.bytes("3")))
        #expect(try store.put(PutRequest(key: Self.bytes("k"), value: Self.bytes("4"))).events[0].previous?.value == Self.bytes("3"))
    }

    @Test func logicalSizeCountsKeptHistoryAndShrinksOnCompaction() throws {
        var store = MVCCStore()
        let overhead = MVCCStore.revisionOverhead
        _ = try store.put(PutRequest(key: Self.bytes("key"), value: [UInt8](repeating: 1, count: 100)))
        _ = try store.put(PutRequest(key: Self.bytes("key"), value: [UInt8](repeating: 2, count: 10)))
        #expect(store.logicalSize == (3 + 100 + overhead) + (3 + 10 + overhead))
        _ = store.deleteRange(DeleteRangeRequest(key: Self.bytes("key")))
        #expect(store.logicalSize == (3 + 100 + overhead) + (3 + 10 + overhead) + (3 + overhead))
        // Compacting at the delete drops the key's whole history.
        try store.compact(store.currentRevision)
        #expect(store.logicalSize == 0)
        _ = try store.put(PutRequest(key: Self.bytes("a"), value: Self.bytes("1")))
        _ = try store.put(PutRequest(key: Self.bytes("a"), value: Self.bytes("22")))
        try store.compact(store.currentRevision)
        #expect(store.logicalSize == 1 + 2 + overhead)
    }

    @Test func compactionKeepsTheBoundaryRevisionReadable() throws {
        var store = MVCCStore()
        for value in 1...5 { _ = try store.put(PutRequest(key: Self.bytes("k"), value: Self.bytes("\(value)"))) }
        try store.compact(4)
        var request = RangeRequest(key: Self.bytes("k"))
        request.revision = 4
        #expect(try store.range(request).keyValues[0].value == Self.bytes("3"))
        request.revision = 3
        #expect(throws: MVCCError.compacted) { try store.range(request) }
        #expect(throws: MVCCError.compacted) { try store.compact(4) }
        #expect(throws: MVCCError.futureRevision) { try store.compact(7) }
        #expect(MVCCError.compacted.description == "etcdserver: mvcc: required revision has been compacted")
    }

    @Test func txnIsOneRevisionAndSeesItsOwnWrites() throws {
        var store = MVCCStore()
        let outcome = try store.txn(
            TxnRequest(
                compare: [Compare(key: Self.bytes("x"), .equal, .version(0))],
                success: [
                    .put(PutRequest(key: Self.bytes("x"), value: Self.bytes("1"))),
                    .range(RangeRequest(key: Self.bytes("x"))),
                    .txn(TxnRequest(success: [.put(PutRequest(key: Self.bytes("y"), value: Self.bytes("2")))])),
                ]))
        #expect(outcome.value.succeeded)
        #expect(outcome.revision == 2)
        guard case .range(let seen) = outcome.value.responses[1] else { Issue.record("no range"); return }
        #expect(seen.keyValues.map(\.value) == [Self.bytes("1")])
        #expect(seen.revision == 2)
        #expect(try store.range(RangeRequest(key: Self.bytes("y"))).keyValues[0].modRevision == 2)
        #expect(outcome.events.count == 2)
        // A value compare on a missing key fails; other targets see zeros.
        let missing = try store.txn(TxnRequest(compare: [Compare(key: Self.bytes("nope"), .notEqual, .value([]))]))
        #expect(!missing.value.succeeded)
        let zero = try store.txn(TxnRequest(compare: [Compare(key: Self.bytes("nope"), .equal, .create(0))]))
        #expect(zero.value.succeeded)
        #expect(zero.revision == 2)
    }

    @Test func txnValidationMatchesEtcd() throws {
        var store = MVCCStore()
        let put = { (key: String) in Operation.put(PutRequest(key: Self.bytes(key), value: [])) }
        #expect(throws: MVCCError.duplicateKey) { try store.txn(TxnRequest(success: [put("a"), put("a")])) }
        #expect(throws: MVCCError.duplicateKey) {
            try store.txn(TxnRequest(success: [.deleteRange(DeleteRangeRequest(key: Self.bytes("a"), rangeEnd: Self.bytes("c"))), put("b")]))
        }
        // The same key in the two branches of a nested txn is allowed: only one runs.
        _ = try store.txn(TxnRequest(success: [.txn(TxnRequest(success: [put("a")], failure: [put("a")]))]))
        #expect(throws: MVCCError.duplicateKey) {
            try store.txn(TxnRequest(success: [put("a"), .txn(TxnRequest(success: [put("a")]))]))
        }
        #expect(throws: MVCCError.tooManyOperations) {
            try store.txn(TxnRequest(success: (0..<129).map { put("k\($0)") }))
        }
        #expect(throws: MVCCError.keyNotFound) {
            var request = PutRequest(key: Self.bytes("missing"), value: [])
            request.ignoreValue = true
            _ = try store.put(request)
        }
        #expect(throws: MVCCError.leaseNotFound) {
            _ = try store.put(PutRequest(key: Self.bytes("l"), value: [], lease: 7)) { _ in false }
        }
        // A failed txn leaves nothing behind.
        let before = store.currentRevision
        var ignoring = PutRequest(key: Self.bytes("missing"), value: [])
        ignoring.ignoreValue = true
        #expect(throws: MVCCError.keyNotFound) { try store.txn(TxnRequest(success: [put("z"), .put(ignoring)])) }
        #expect(store.currentRevision == before)
        #expect(try store.range(RangeRequest(key: Self.bytes("z"))).keyValues.isEmpty)
        // ... also when it deleted and rewrote existing keys first: each is as it was.
        _ = try store.put(PutRequest(key: Self.bytes("kept"), value: Self.bytes("1")))
        let kept = try store.range(RangeRequest(key: Self.bytes("kept"))).keyValues
        let all = try store.range(RangeRequest(key: [0], rangeEnd: [0])).keyValues
        let size = store.logicalSize
        #expect(throws: MVCCError.keyNotFound) {
            try store.txn(
                TxnRequest(success: [
                    .deleteRange(DeleteRangeRequest(key: Self.bytes("kept"))), put("new1"), put("new2"),
                    .txn(TxnRequest(success: [put("new3"), .put(ignoring)])),
                ]))
        }
        #expect(try store.range(RangeRequest(key: Self.bytes("kept"))).keyValues == kept)
        #expect(try store.range(RangeRequest(key: [0], rangeEnd: [0])).keyValues == all)
        #expect(store.logicalSize == size)
        // And the store goes on writing at the next revision.
        let next = try store.put(PutRequest(key: Self.bytes("new1"), value: Self.bytes("x")))
        #expect(next.revision == store.currentRevision)
        #expect(try store.range(RangeRequest(key: Self.bytes("new1"))).keyValues.first?.createRevision == next.revision)
    }
}
