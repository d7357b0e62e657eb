import Testing

@testable import EtcdServer

@Suite struct SlowDiskDetectorTests {
    let start = ContinuousClock.now

    /// Feeds (milliseconds, seconds after start) pairs; the verdict of each.
    func verdicts(_ detector: inout SlowDiskDetector, _ syncs: [(Int, Int)]) -> [Bool] {
        syncs.map { detector.observe(.milliseconds($0.0), at: start + .seconds($0.1)) }
    }

    @Test func aRunOfSlowSyncsMovesLeadershipOnceAHiccupDoesNot() {
        var detector = SlowDiskDetector(threshold: .milliseconds(250))
        detector.consecutive = 3
        // One slow sync between fast ones is a hiccup; three in a row are not.
        #expect(verdicts(&detector, [(900, 0), (2, 0), (300, 0), (300, 0), (300, 1)]) == [false, false, false, false, true])
        // Still slow, but within the cooldown: no second handover until it has passed.
        #expect(verdicts(&detector, [(1000, 2), (1000, 3), (1000, 4), (1000, 12)]) == [false, false, false, true])
    }

    @Test func zeroTurnsItOff() {
        var detector = SlowDiskDetector(threshold: .zero)
        #expect(verdicts(&detector, (0..<10).map { (5000, $0) }).allSatisfy { !$0 })
    }
}
