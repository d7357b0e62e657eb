import MVCC
import TestSupport
import Testing

/// A deliberately naive reference: the list of committed writes, replayed from the start
/// for every read. Slow and obviously right; the store must agree with it exactly.
struct ReferenceModel {
    /// (revision, key, value or nil for a delete), in order.
    var changes: [(revision: Int64, key: [UInt8], value: [UInt8]?)] = []
    var current: Int64 = 1
    var compacted: Int64 = 0

    func state(at revision: Int64) -> [[UInt8]: KeyValue] {
        var state: [[UInt8]: KeyValue] = [:]
        for change in changes where change.revision <= revision {
            if let value = change.value {
                let previous = state[change.key]
                state[change.key] = KeyValue(
                    key: change.key, createRevision: previous?.createRevision ?? change.revision,
                    modRevision: change.revision, version: (previous?.version ?? 0) + 1, value: value)
            } else {
                state[change.key] = nil
            }
        }
        return state
    }

    static func inRange(_ key: [UInt8], _ start: [UInt8], _ end: [UInt8]) -> Bool {
        if end.isEmpty { return key == start }
        if key.lexicographicallyPrecedes(start) { return false }
        return end == [0] || key.lexicographicallyPrecedes(end)
    }

    func range(_ request: RangeRequest) -> Result<RangeResult, MVCCError> {
        if request.revision > current { return .failure(.futureRevision) }
        let revision = request.revision == 0 ? current : request.revision
        if revision < compacted { return .failure(.compacted) }
        var found = state(at: revision).values.filter { Self.inRange($0.key, request.key, request.rangeEnd) }
            .sorted { $0.key.lexicographicallyPrecedes($1.key) }
        let count = Int64(found.count)
        if request.countOnly { found = [] }
        // etcd's quirk: without an explicit sort order or filters, only limit + 1 keys (in
        // key order) are fetched, and a non-key sort target then sorts just those.
        let filters = request.minModRevision != 0 || request.maxModRevision != 0 || request.minCreateRevision != 0
            || request.maxCreateRevision != 0
        if request.sortOrder == .none && !filters && request.limit > 0 { found = Array(found.prefix(Int(request.limit) + 1)) }
        found = found.filter {
            (request.minModRevision == 0 || $0.modRevision >= request.minModRevision)
                && (request.maxModRevision == 0 || $0.modRevision <= request.maxModRevision)
                && (request.minCreateRevision == 0 || $0.createRevision >= request.minCreateRevision)
                && (request.maxCreateRevision == 0 || $0.createRevision <= request.maxCreateRevision)
        }
        var order = request.sortOrder
        if request.sortTarget != .key && order == .none { order = .ascend }
        if order != .none {
            func field(_ kv: KeyValue) -> [UInt8] {
                switch request.sortTarget {
                case .key: return kv.key
                case .value: return kv.value
                case .version: return Self.bigEndian(kv.version)
                case .create: return Self.bigEndian(kv.createRevision)
                case .mod: return Self.bigEndian(kv.modRevision)
                }
            }
            // Insertion sort: stable by construction.
            var sorted: [KeyValue] = []
            for kv in found {
                let position = sorted.firstIndex { existing in
                    order == .ascend
                        ? field(kv).lexicographicallyPrecedes(field(existing))
                        : field(existing).lexicographicallyPrecedes(field(kv))
                } ?? sorted.count
                sorted.insert(kv, at: position)
            }
            found = sorted
        }
        var more = false
        if request.limit > 0 && found.count > Int(request.limit) {
            found = Array(found.prefix(Int(request.limit)))
            more = true
        }
        if request.keysOnly { found = found.map { var kv = $0; kv.value = []; return kv } }
        return .success(RangeResult(keyValues: found, more: more, count: count, revision: current))
    }

    static func bigEndian(_ value: Int64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: UInt64(bitPattern: value) >> (8 * (7 - UInt64($0)))) }
    }

    /// Applies a list of puts (value) and deletes (nil) as one revision, if any changes.
    mutating func write(_ operations: [(key: [UInt8], end: [UInt8], value: [UInt8]?)]) {
        var state = self.state(at: current)
        var any = false
        let revision = current + 1
        for operation in operations {
            if let value = operation.value {
                changes.append((revision, operation.key, value))
                state[operation.key] = KeyValue(key: operation.key, createRevision: 0, modRevision: 0, version: 0, value: value)
                any = true
            } else {
                for key in state.keys.sorted(by: { $0.lexicographicallyPrecedes($1) })
                where Self.inRange(key, operation.key, operation.end) {
                    changes.append((revision, key, nil))
                    state[key] = nil
                    any = true
                }
            }
        }
        if any { current = revision }
    }
}

@Suite struct MVCCModelTests {
    static let alphabet: [[UInt8]] = ["a", "ab", "b", "ba", "c", "d", "e"].map { Array($0.utf8) }

    static func randomRange(_ generator: inout SeededGenerator, current: Int64) -> RangeRequest {
        var request = RangeRequest(key: generator.pick(alphabet))
        switch Int.random(in: 0..<3, using: &generator) {
        case 0: break
        case 1: request.rangeEnd = [0]
        default: request.rangeEnd = generator.pick(alphabet)
        }
        if Bool.random(using: &generator) { request.limit = Int64.random(in: 0...4, using: &generator) }
        if Int.random(in: 0..<4, using: &generator) == 0 { request.revision = Int64.random(in: 0...(current + 1), using: &generator) }
        request.sortOrder = generator.pick([.none, .none, .ascend, .descend])
        request.sortTarget = generator.pick([.key, .key, .version, .create, .mod, .value])
        request.keysOnly = Int.random(in: 0..<5, using: &generator) == 0
        request.countOnly = Int.random(in: 0..<6, using: &generator) == 0
        if Int.random(in: 0..<5, using: &generator) == 0 { request.minModRevision = Int64.random(in: 1...(current + 1), using: &generator) }
        if Int.random(in: 0..<5, using: &generator) == 0 { request.maxCreateRevision = Int64.random(in: 1...(current + 1), using: &generator) }
        return request
    }

    /// Values in memory, and in a file with a flush every few values and a repack after
    /// compactions (the store's file is unlinked, so nothing is left behind).
    @Test(arguments: ["memory", "file"]) func randomHistoriesAgreeWithTheReferenceModel(values: String) throws {
        let seed = SeededGenerator.seed(fallback: 0xE7CD)
        var generator = SeededGenerator(seed: seed)
        for round in 0..<200 {
            var store = MVCCStore(
                values: values == "memory" ? ValueLog() : try ValueLog(directory: "/tmp", flushSize: 16, repackThreshold: 64))
            var model = ReferenceModel()
            for step in 0..<150 {
                let context = "seed \(seed) round \(round) step \(step) (replay: COREOS_TEST_SEED=\(seed))"
                switch Int.random(in: 0..<10, using: &generator) {
                case 0..<4:
                    let key = generator.pick(Self.alphabet)
                    let value = Array("v\(step)".utf8)
                    let outcome = try store.put(PutRequest(key: key, value: value))
                    model.write([(key, [], value)])
                    #expect(outcome.revision == model.current, "\(context)")
                case 4..<6:
                    let key = generator.pick(Self.alphabet)
                    let end: [UInt8] = Bool.random(using: &generator) ? [] : generator.pick(Self.alphabet + [[0]])
                    let outcome = store.deleteRange(DeleteRangeRequest(key: key, rangeEnd: end))
                    let before = model.current
                    model.write([(key, end, nil)])
                    #expect(outcome.revision == model.current, "\(context)")
                    #expect((outcome.value.deleted > 0) == (model.current > before), "\(context)")
                case 6:
                    // A txn: compare one key's version, then put/delete distinct keys.
                    let key = generator.pick(Self.alphabet)
                    let version = Int64.random(in: 0...3, using: &generator)
                    let keys = Self.alphabet.shuffled(using: &generator)
                    let then: [Operation] = [.put(PutRequest(key: keys[0], value: Array("t\(step)".utf8))), .deleteRange(DeleteRangeRequest(key: keys[1]))]
                    let otherwise: [Operation] = [.put(PutRequest(key: keys[2], value: Array("e\(step)".utf8)))]
                    let outcome = try store.txn(TxnRequest(compare: [Compare(key: key, .equal, .version(version))], success: then, failure: otherwise))
                    let actualVersion = model.state(at: model.current)[key]?.version ?? 0
                    #expect(outcome.value.succeeded == (actualVersion == version), "\(context)")
                    if actualVersion == version {
                        model.write([(keys[0], [], Array("t\(step)".utf8)), (keys[1], [], nil)])
                    } else {
                        model.write([(keys[2], [], Array("e\(step)".utf8))])
                    }
                    #expect(outcome.revision == model.current, "\(context)")
                case 7 where Int.random(in: 0..<4, using: &generator) == 0:
                    let target = Int64.random(in: 0...(model.current + 1), using: &generator)
                    do {
                        try store.compact(target)
                        #expect(target > model.compacted && target <= model.current, "\(context)")
                        model.compacted = target
                    } catch {
                        #expect(error == (target > model.current ? .futureRevision : .compacted), "\(context)")
                    }
                default:
                    let request = Self.randomRange(&generator, current: model.current)
                    let expected = model.range(request)
                    let actual = Result { () throws(MVCCError) in try store.range(request) }
                    #expect(actual == expected, "\(context): \(request)")
                }
            }
        }
    }
}
