import Foundation
import Raft
import Storage
import Testing

/// The data directory on a real file system: recovery, torn tails, corruption, locking,
/// snapshots and group commit.
@Suite struct DurableLogTests {
    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "coreos-storage-" + UUID().uuidString
        return path
    }

    static let members = Membership(voters: [1, 2, 3])

    static func entries(_ range: ClosedRange<UInt64>, term: Term = 1, size: Int = 10) -> [Entry] {
        range.map { Entry(term: term, index: $0, data: Array(repeating: UInt8($0 & 0xFF), count: size)) }
    }

    @Test func savedEntriesAndHardStateSurviveReopen() async throws {
        let path = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let (log, opened) = try DurableLog.open(path: path, initialMembership: Self.members)
            #expect(opened.state.entries.isEmpty)
            try await log.save(entries: Self.entries(1...100), hardState: HardState(term: 1, vote: 2, commit: 90))
            // A follower's log is cut and rewritten from index 95.
            try await log.save(entries: Self.entries(95...97, term: 2), hardState: HardState(term: 2, vote: 3, commit: 96))
            log.drain()
        }
        let (_, reopened) = try DurableLog.open(path: path)
        #expect(reopened.state.hardState == HardState(term: 2, vote: 3, commit: 96))
        #expect(reopened.state.entries.map(\.index) == Array(1...97))
        #expect(reopened.state.entries.last?.term == 2)
        #expect(reopened.state.entries[93].term == 1)
        #expect(reopened.state.initialMembership == Self.members)
        #expect(reopened.truncatedTail == nil)
    }

    @Test func aSecondProcessCannotOpenTheDirectoryAndAnEmptyOneStaysSmall() throws {
        let path = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (first, _) = try DurableLog.open(path: path, initialMembership: Self.members)
        #expect(throws: StorageError.self) { try DurableLog.open(path: path) }
        _ = first
        var total = 0
        for name in try FileManager.default.subpathsOfDirectory(atPath: path) {
            let attributes = try FileManager.default.attributesOfItem(atPath: path + "/" + name)
            total += (attributes[.size] as? Int) ?? 0
        }
        #expect(total < 16 << 20)
        #expect(FileManager.default.fileExists(atPath: path + "/VERSION"))
    }

    @Test func aNewDirectoryNeedsItsMembersAndAForeignVersionIsRefused() throws {
        let path = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: StorageError.self) { try DurableLog.open(path: path) }
        try? FileManager.default.removeItem(atPath: path)
        do { _ = try DurableLog.open(path: path, initialMembership: Self.members) }
        try "9\n".write(toFile: path + "/VERSION", atomically: true, encoding: .utf8)
        #expect {
            try DurableLog.open(path: path)
        } throws: { error in
            (error as? StorageError)?.message.contains("format version 9 is not supported") == true
        }
    }

    static func onlySegment(_ path: String) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: path + "/wal").filter { $0.hasSuffix(".wal") }.sorted()
        return path + "/wal/" + names[names.count - 1]
    }

    /// A new data directory at `path` holding `entries`, closed again.
    static func write(_ entries: [Entry], to path: String) async throws {
        let (log, _) = try DurableLog.open(path: path, initialMembership: Self.members)
        try await log.save(entries: entries)
        log.drain()
    }

    /// Where the records of a segment end: segments are allocated ahead, zeros after.
    static func writtenEnd(_ segment: String) throws -> Int {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: segment))
        return (bytes.lastIndex { $0 != 0 } ?? -1) + 1
    }

    @Test func aTornLastRecordIsCutOffAndReported() async throws {
        let path = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await Self.write(Self.entries(1...50), to: path)
        let segment = try Self.onlySegment(path)
        let end = try Self.writtenEnd(segment)
        // The crash interrupted the last write: its last bytes never reached the disk.
        let handle = try #require(FileHandle(forUpdatingAtPath: segment))
        try handle.seek(toOffset: UInt64(end - 7))
        try handle.write(contentsOf: Data(count: 7))
        try handle.close()
        let (log, reopened) = try DurableLog.open(path: path)
        #expect(reopened.state.entries.map(\.index) == Array(1...49))
        #expect(reopened.truncatedTail?.contains(segment) == true)
        // Appending after the cut works and survives.
        try await log.save(entries: Self.entries(50...51))
        _ = log
    }

    @Test func appendsContinueWhereTheRecordsEndNotAtTheAllocatedSize() async throws {
        let path = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await Self.write(Self.entries(1...10), to: path)
        let segment = try Self.onlySegment(path)
        let allocated = try FileManager.default.attributesOfItem(atPath: segment)[.size] as! Int
        #expect(try Self.writtenEnd(segment) < allocated)
        do {
            let (log, reopened) = try DurableLog.open(path: path)
            #expect(reopened.truncatedTail == nil)
            #expect(reopened.state.entries.map(\.index) == Array(1...10))
            try await log.save(entries: Self.entries(11...20))
            log.drain()
        }
        let (_, again) = try DurableLog.open(path: path)
        #expect(again.truncatedTail == nil)
        #expect(again.state.entries.map(\.index) == Array(1...20))
    }

    @Test func aFlippedByteBeforeTheTailIsRefusedWithFileAndOffset() async throws {
        let path = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await Self.write(Self.entries(1...50), to: path)
        let segment = try Self.onlySegment(path)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: segment))
        bytes[try Self.writtenEnd(segment) / 2] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: segment))
        #expect {
            try DurableLog.open(path: path)
        } throws: { error in
            guard let storage = error as? StorageError else { return false }
            return storage.path == segment && storage.offset != nil && storage.message.contains("checksum")
        }
        // Refusing changed nothing: the damaged file is still all there.
        #expect(try Data(contentsOf: URL(fileURLWithPath: segment)).count == bytes.count)
    }

    @Test func syncedEntriesSurviveLosingWhatFollowedThem() async throws {
        let path = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let segment: String
        do {
            let (log, _) = try DurableLog.open(path: path, initialMembership: Self.members)
            try await log.save(entries: Self.entries(1...20))
            segment = try Self.onlySegment(path)
            log.drain()
        }
        // Unsynced garbage after the acknowledged records (a write the crash cut): zeros
        // and then a partial header.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: segment))
        handle.seekToEndOfFile()
        handle.write(Data([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0]))
        try handle.close()
        let (_, reopened) = try DurableLog.open(path: path)
        #expect(reopened.state.entries.map(\.index) == Array(1...20))
    }

    @Test func snapshotsCompactTheLogAndAreWrittenAtomically() async throws {
        let path = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let (log, _) = try DurableLog.open(path: path, initialMembership: Self.members, segmentBytes: 4096)
            try await log.save(entries: Self.entries(1...400, size: 40))
            #expect(log.segmentCount > 3)
            let snapshot = Snapshot(
                metadata: SnapshotMetadata(index: 300, term: 1, membership: Self.members), data: Array("state".utf8))
            try await log.saveSnapshot(snapshot)
            #expect(log.segmentCount < 4)
            log.drain()
        }
        // A temporary file from a crash in the middle of a later snapshot is ignored.
        try Data("half".utf8).write(to: URL(fileURLWithPath: path + "/snap/0000000000000001-0000000000000190.snap.tmp"))
        let (_, reopened) = try DurableLog.open(path: path)
        #expect(reopened.state.snapshot?.metadata.index == 300)
        #expect(reopened.state.snapshot?.data == Array("state".utf8))
        #expect(reopened.state.entries.first?.index == 301)
        #expect(reopened.state.entries.last?.index == 400)
        #expect(!FileManager.default.fileExists(atPath: path + "/snap/0000000000000001-0000000000000190.snap.tmp"))
    }

    @Test func aSnapshotWithTheHardStateLeavesOnlyANewSegment() async throws {
        let path = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let (log, _) = try DurableLog.open(path: path, initialMembership: Self.members)
            try await log.save(entries: Self.entries(1...50, size: 40), hardState: HardState(term: 3, vote: 1, commit: 50))
            #expect(log.segmentCount == 1)
            let snapshot = Snapshot(
                metadata: SnapshotMetadata(index: 50, term: 1, membership: Self.members), data: Array("state".utf8))
            try await log.saveSnapshot(snapshot, hardState: HardState(term: 3, vote: 1, commit: 50))
            // The old segment held only covered entries: it is gone, the new one remains.
            #expect(log.segmentCount == 1)
            try await log.save(entries: Self.entries(51...55, size: 40), hardState: HardState(term: 3, vote: 1, commit: 55))
            log.drain()
        }
        let (_, reopened) = try DurableLog.open(path: path)
        #expect(reopened.state.snapshot?.metadata.index == 50)
        #expect(reopened.state.hardState == HardState(term: 3, vote: 1, commit: 55))
        #expect(reopened.state.entries.map(\.index) == Array(51...55))
    }

    @Test func concurrentSavesShareSyncs() async throws {
        let path = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (log, _) = try DurableLog.open(path: path, initialMembership: Self.members)
        let before = log.syncCount
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<64 {
                group.addTask {
                    for round in 0..<10 {
                        let index = UInt64(1 + writer * 10 + round)
                        try await log.save(entries: [Entry(term: 1, index: index, data: [1, 2, 3])])
                    }
                }
            }
            try await group.waitForAll()
        }
        // 640 acknowledged saves; far fewer syncs.
        #expect(log.syncCount - before < 640)
    }
}
