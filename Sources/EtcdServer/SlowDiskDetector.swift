/// Tells when the member's log syncs have become slow for good, not for one hiccup.
///
/// etcd 3.4 keeps a leader whose disk has slowed down: every write then waits for that
/// disk, and throughput falls to the disk's pace while the followers' disks are idle. A
/// leader that sees `consecutive` syncs in a row each take at least `threshold` hands
/// leadership to a caught-up follower instead (`StoreNode`), at most once per `cooldown`.
/// Pure: the caller passes the durations and the time.
struct SlowDiskDetector: Sendable {
    /// A sync at least this long counts as slow. `.zero` turns the detector off.
    var threshold: Duration
    var consecutive = 5
    var cooldown: Duration = .seconds(10)

    private(set) var slowInARow = 0
    private var lastHandover: ContinuousClock.Instant?

    init(threshold: Duration) { self.threshold = threshold }

    /// Records one sync's duration; true when leadership should move now.
    mutating func observe(_ duration: Duration, at now: ContinuousClock.Instant) -> Bool {
        guard threshold > .zero else { return false }
        slowInARow = duration >= threshold ? slowInARow + 1 : 0
        guard slowInARow >= consecutive else { return false }
        if let lastHandover, now - lastHandover < cooldown { return false }
        lastHandover = now
        slowInARow = 0
        return true
    }
}
