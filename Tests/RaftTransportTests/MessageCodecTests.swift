import Raft
import RaftTransport
import TestSupport
import Testing

@Suite struct MessageCodecTests {
    static func randomMessage(_ generator: inout SeededGenerator) -> Message {
        var message = Message(
            Message.Kind(rawValue: UInt8.random(in: 0...13, using: &generator))!, from: generator.next() % 9 + 1,
            to: generator.next() % 9 + 1, term: generator.next() % 100)
        message.logTerm = generator.next() % 100
        message.index = generator.next()
        message.commit = generator.next() % 1000
        message.reject = Bool.random(using: &generator)
        message.rejectHint = generator.next() % 1000
        message.context = (0..<Int.random(in: 0...8, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for index in 0..<Int.random(in: 0...5, using: &generator) {
            message.entries.append(
                Entry(
                    term: 3, index: UInt64(index + 1), kind: Bool.random(using: &generator) ? .normal : .configurationChange,
                    data: (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }))
        }
        if Bool.random(using: &generator) {
            message.snapshotChunk = SnapshotChunk(
                metadata: SnapshotMetadata(index: 9, term: 2, membership: Membership(voters: [1, 2, 3], learners: [4])),
                offset: 4, totalSize: 12, data: [1, 2, 3, 4])
        }
        return message
    }

    @Test func roundTripsEveryKindAndRejectsDamagedFrames() {
        var generator = SeededGenerator(seed: SeededGenerator.seed(fallback: 42))
        for _ in 0..<2000 {
            let message = Self.randomMessage(&generator)
            let bytes = MessageCodec.encode(message)
            #expect(MessageCodec.decode(bytes[...]) == message)
            // Truncated frames never decode; random flips decode to something or nothing, never trap.
            #expect(MessageCodec.decode(bytes.dropLast()) == nil)
            var damaged = bytes
            damaged[Int.random(in: 0..<damaged.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
            _ = MessageCodec.decode(damaged[...])
        }
    }
}
