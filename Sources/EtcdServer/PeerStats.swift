import Raft

/// What `/v2/stats/self` and `/v2/stats/leader` report of Raft traffic: appends sent and
/// received and, on a leader, each follower's acknowledgements and round-trip times (from
/// an append or heartbeat to its answer). Pure: the node feeds it messages and times.
struct PeerStats: Sendable {
    struct Follower: Sendable {
        var success: UInt64 = 0
        var fail: UInt64 = 0
        var current: Double = 0
        var minimum: Double = 0
        var maximum: Double = 0
        private var count: Double = 0
        private(set) var average: Double = 0
        private var sumOfSquares: Double = 0

        var standardDeviation: Double { count > 1 ? (sumOfSquares / count).squareRoot() : 0 }

        /// One round trip, in seconds (Welford's running mean and variance).
        mutating func record(_ seconds: Double) {
            current = seconds
            minimum = count == 0 ? seconds : min(minimum, seconds)
            maximum = max(maximum, seconds)
            count += 1
            let delta = seconds - average
            average += delta / count
            sumOfSquares += delta * (seconds - average)
        }
    }

    private(set) var receivedAppends: UInt64 = 0
    private(set) var sentAppends: UInt64 = 0
    private(set) var followers: [NodeID: Follower] = [:]
    /// When the oldest unanswered append or heartbeat to each follower left.
    private var outstanding: [NodeID: ContinuousClock.Instant] = [:]

    mutating func sent(_ messages: [Message], at now: ContinuousClock.Instant) {
        for message in messages where message.kind == .append || message.kind == .heartbeat {
            if message.kind == .append { sentAppends += 1 }
            if outstanding[message.to] == nil { outstanding[message.to] = now }
        }
    }

    mutating func received(_ message: Message, at now: @autoclosure () -> ContinuousClock.Instant) {
        switch message.kind {
        case .append:
            receivedAppends += 1
        case .appendResponse, .heartbeatResponse:
            var follower = followers[message.from] ?? Follower()
            if message.reject { follower.fail += 1 } else { follower.success += 1 }
            if let sent = outstanding.removeValue(forKey: message.from) {
                let elapsed = now() - sent
                follower.record(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            }
            followers[message.from] = follower
        default:
            break
        }
    }

    /// A new term of leadership starts counting afresh.
    mutating func forgetFollowers() {
        followers = [:]
        outstanding = [:]
    }
}
