import Foundation
import MVCC
import Testing

@Suite struct ValueLogTests {
    static func value(_ index: Int, size: Int = 100) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: index &* 31 &+ $0) }
    }

    static func scratchDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "valuelog-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func valuesReadBackFromTheBufferAndFromTheFile() throws {
        let directory = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try ValueLog(directory: directory, flushSize: 1000)
        var references: [ValueLog.Reference] = []
        for index in 0..<500 { references.append(log.append(Self.value(index, size: index % 300))) }
        for (index, reference) in references.enumerated() {
            #expect(log.read(reference) == Self.value(index, size: index % 300))
        }
        #expect(log.size == UInt64((0..<500).reduce(0) { $0 + $1 % 300 }))
        // The file is unlinked from the start: nothing in the directory, nothing to clean up.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    @Test func readersOnOtherThreadsSeeEveryAppendedValue() async throws {
        let log = try ValueLog(directory: NSTemporaryDirectory(), flushSize: 4096)
        let written = 4000
        let references = (0..<written).map { log.append(Self.value($0)) }
        await withTaskGroup(of: Int.self) { group in
            for reader in 0..<4 {
                group.addTask {
                    var wrong = 0
                    for index in stride(from: reader, to: written, by: 4) where log.read(references[index]) != Self.value(index) {
                        wrong += 1
                    }
                    return wrong
                }
            }
            group.addTask {
                // Appends go on (and flush) while the readers read.
                for index in 0..<2000 { _ = log.append(Self.value(index + written)) }
                return 0
            }
            for await wrong in group { #expect(wrong == 0) }
        }
    }

    @Test func compactionRepacksAndOldReadViewsKeepTheirValues() throws {
        let log = try ValueLog(directory: NSTemporaryDirectory(), flushSize: 512, repackThreshold: 10_000)
        var store = MVCCStore(values: log)
        for round in 0..<100 {
            for key in 0..<10 { _ = try store.put(PutRequest(key: Array("k\(key)".utf8), value: Self.value(round * 10 + key))) }
        }
        let view = store
        let sizeBefore = store.values.size
        try store.compact(store.currentRevision)
        #expect(store.values !== log, "100 rounds of garbage, 10 live values: repacked")
        #expect(store.values.size == 10 * 100 && sizeBefore == 1000 * 100)
        let all = RangeRequest(key: [0], rangeEnd: [0])
        #expect(try store.range(all).keyValues.map(\.value) == (0..<10).map { Self.value(990 + $0) })
        // A read view taken before the repack still reads the old log, history included.
        var old = all
        old.revision = 2
        #expect(try view.range(old).keyValues.map(\.value) == [Self.value(0)])
    }
}
