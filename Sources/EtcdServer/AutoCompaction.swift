/// etcd's `--auto-compaction-mode` / `--auto-compaction-retention`, as a pure policy that
/// the leader consults on a timer (no clock inside: times come in as arguments).
///
/// - `periodic`: keep `retention` of history. Every `checkInterval` (a tenth of the
///   retention, at most an hour, at least a second) the current revision is sampled; the
///   store is compacted to the newest sample at least `retention` old.
/// - `revision`: keep the last `retention` revisions, checked every 5 minutes as etcd.
public struct AutoCompaction: Sendable, Equatable {
    public enum Mode: Sendable, Equatable {
        case periodic(Duration)
        case revision(Int64)
    }

    public let mode: Mode
    private var samples: [(at: Duration, revision: Int64)] = []

    public init(mode: Mode) { self.mode = mode }

    public static func == (lhs: AutoCompaction, rhs: AutoCompaction) -> Bool { lhs.mode == rhs.mode }

    /// Parses the two flags as etcd does: periodic retention is a Go duration or a whole
    /// number of hours; revision retention a count. Zero or absent retention: off (nil).
    /// `parseDuration` is Go's `time.ParseDuration` (the command layer has it).
    public static func parse(mode: String?, retention: String?, parseDuration: (String) -> Duration?)
        throws(EtcdServerError) -> AutoCompaction?
    {
        let text = retention ?? "0"
        switch mode ?? "periodic" {
        case "periodic":
            let period: Duration
            if let hours = Int64(text) {
                period = .seconds(hours * 3600)
            } else if let parsed = parseDuration(text) {
                period = parsed
            } else {
                throw EtcdServerError("invalid auto-compaction-retention \"\(text)\" (expected a duration or hours)")
            }
            return period > .zero ? AutoCompaction(mode: .periodic(period)) : nil
        case "revision":
            guard let count = Int64(text), count >= 0 else {
                throw EtcdServerError("invalid auto-compaction-retention \"\(text)\" (expected a revision count)")
            }
            return count > 0 ? AutoCompaction(mode: .revision(count)) : nil
        case let other:
            throw EtcdServerError("unknown auto-compaction-mode \"\(other)\" (expected periodic or revision)")
        }
    }

    public var checkInterval: Duration {
        switch mode {
        case .periodic(let retention): max(min(retention / 10, .seconds(3600)), .seconds(1))
        case .revision: .seconds(300)
        }
    }

    /// Called every `checkInterval` with the time since start and the store's revisions;
    /// returns the revision to compact to, if any.
    public mutating func check(at now: Duration, currentRevision: Int64, compactedRevision: Int64) -> Int64? {
        let target: Int64?
        switch mode {
        case .revision(let keep):
            target = currentRevision - keep
        case .periodic(let retention):
            samples.append((now, currentRevision))
            let old = samples.lastIndex { now - $0.at >= retention }
            target = old.map { samples[$0].revision }
            if let old { samples.removeFirst(old) }
        }
        guard let target, target > compactedRevision, target > 1 else { return nil }
        return target
    }
}

