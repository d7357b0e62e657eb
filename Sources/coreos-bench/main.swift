// Benchmarks of the consensus library and its storage; not part of the shipped binary.
// Usage (contrib/bench/raft.sh runs all three):
//   coreos-bench raft-core [--nodes 3] [--batch 1] [--seconds 3]
//   coreos-bench wal [--dir D] [--proposers 1,16,128] [--seconds 3] [--size 256]
//   coreos-bench recovery [--dir D] [--entries 1000000] [--size 100]
import Glibc
import Raft
import Storage
import Synchronization

func option(_ name: String, _ fallback: String) -> String {
    let arguments = CommandLine.arguments
    guard let position = arguments.firstIndex(of: "--" + name), position + 1 < arguments.count else { return fallback }
    return arguments[position + 1]
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let (whole, fraction) = (ContinuousClock.now - start).components
    return Double(whole) + Double(fraction) / 1e18
}

func fail(_ message: String) -> Never {
    let text = Array("coreos-bench: \(message)\n".utf8)
    _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(1)
}

/// Proposals per second through N in-memory members (no disk, messages handed over
/// directly): the cost of the core itself.
func raftCore() {
    let count = UInt64(option("nodes", "3")) ?? 3
    let batch = Int(option("batch", "1")) ?? 1
    let duration = Double(option("seconds", "3")) ?? 3
    let membership = Membership(voters: Set(1...count))
    var nodes: [NodeID: RaftNode] = [:]
    for id in 1...count {
        nodes[id] = RaftNode(configuration: RaftConfiguration(id: id), state: RaftPersistentState(initialMembership: membership))
    }
    var inbox: [Message] = []
    func pump() {
        var progress = true
        while progress {
            progress = false
            for id in 1...count where nodes[id]!.hasReady {
                let ready = nodes[id]!.ready()
                inbox.append(contentsOf: ready.messages)
                nodes[id]!.advance(ready)
                progress = true
            }
            let messages = inbox
            inbox = []
            for message in messages { nodes[message.to]?.step(message) }
            if !messages.isEmpty { progress = true }
        }
    }
    nodes[1]!.campaign()
    pump()
    guard nodes[1]!.role == .leader else { fail("no leader") }
    let payload = [UInt8](repeating: 7, count: 256)
    var proposed = 0
    let start = ContinuousClock.now
    while seconds(since: start) < duration {
        for _ in 0..<100 {
            for _ in 0..<batch { nodes[1]!.propose(payload) }
            proposed += batch
            pump()
        }
    }
    let elapsed = seconds(since: start)
    let committed = Int(nodes[1]!.commitIndex) - 1
    print("raft-core nodes=\(count) batch=\(batch): \(Int(Double(committed) / elapsed)) proposals/s committed (\(proposed) proposed in \(String(format3(elapsed))) s)")
}

func format3(_ value: Double) -> String {
    let scaled = Int((value * 1000).rounded())
    return "\(scaled / 1000).\(String(repeating: "0", count: 3 - String(scaled % 1000).count))\(scaled % 1000)"
}

/// One `write` + `fdatasync` per append on a plain file: the floor of this disk.
func syncFloor(directory: String, size: Int, duration: Double) -> Double {
    let path = directory + "/floor.dat"
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { fail("cannot create \(path)") }
    defer {
        close(descriptor)
        unlink(path)
    }
    let record = [UInt8](repeating: 1, count: size)
    var count = 0
    let start = ContinuousClock.now
    while seconds(since: start) < duration {
        _ = record.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        fdatasync(descriptor)
        count += 1
    }
    return Double(count) / seconds(since: start)
}

/// Acknowledged appends per second with P concurrent proposers sharing group commits.
func wal() async {
    let directory = option("dir", "/var/tmp/coreos-bench-wal-\(getpid())")
    let proposers = option("proposers", "1,16,128").split(separator: ",").compactMap { Int($0) }
    let duration = Double(option("seconds", "3")) ?? 3
    let size = Int(option("size", "256")) ?? 256
    mkdir(directory, 0o700)
    let floor = syncFloor(directory: directory, size: size, duration: duration)
    print("wal floor (write + fdatasync per append, \(size) B): \(Int(floor)) appends/s")
    var rates: [Int: Double] = [:]
    for count in proposers {
        let path = directory + "/p\(count)"
        let log: DurableLog
        do {
            (log, _) = try DurableLog.open(path: path, initialMembership: Membership(voters: [1]))
        } catch {
            fail("\(error)")
        }
        let next = Counter()
        let syncsBefore = log.syncCount
        let start = ContinuousClock.now
        let acknowledged = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<count {
                group.addTask {
                    var done = 0
                    let payload = [UInt8](repeating: 2, count: size)
                    while seconds(since: start) < duration {
                        let index = next.increment()
                        do {
                            try await log.save(entries: [Entry(term: 1, index: index, data: payload)])
                        } catch {
                            fail("\(error)")
                        }
                        done += 1
                    }
                    return done
                }
            }
            return await group.reduce(0, +)
        }
        let elapsed = seconds(since: start)
        let rate = Double(acknowledged) / elapsed
        rates[count] = rate
        let syncs = log.syncCount - syncsBefore
        print("wal proposers=\(count): \(Int(rate)) acknowledged appends/s, \(syncs) syncs (\(format3(Double(acknowledged) / Double(max(syncs, 1)))) appends per sync), \(format3(rate / floor))x floor")
    }
    if let one = rates[1], let most = proposers.max(), let top = rates[most], most > 1 {
        print("wal group commit: \(most) proposers reach \(format3(top / one))x the 1-proposer rate")
    }
    removeTree(directory)
}

/// Time to open a data directory holding N entries.
func recovery() async {
    let directory = option("dir", "/var/tmp/coreos-bench-recovery-\(getpid())")
    let entries = UInt64(option("entries", "1000000")) ?? 1_000_000
    let size = Int(option("size", "100")) ?? 100
    do {
        do {
            let (log, _) = try DurableLog.open(path: directory, initialMembership: Membership(voters: [1]), segmentBytes: 64 << 20)
            let payload = [UInt8](repeating: 3, count: size)
            var index: UInt64 = 1
            while index <= entries {
                let last = min(index + 9_999, entries)
                try await log.save(entries: (index...last).map { Entry(term: 1, index: $0, data: payload) },
                    hardState: HardState(term: 1, vote: 1, commit: last))
                index = last + 1
            }
        }
        let start = ContinuousClock.now
        let (_, opened) = try DurableLog.open(path: directory)
        let elapsed = seconds(since: start)
        guard opened.state.entries.count == Int(entries) else { fail("recovered \(opened.state.entries.count) entries") }
        print("recovery: opened \(entries) entries of \(size) B in \(format3(elapsed)) s")
    } catch {
        fail("\(error)")
    }
    removeTree(directory)
}

/// The benchmark directories are ours (named with our PID), so rm -rf is safe here.
func removeTree(_ path: String) {
    guard path.hasPrefix("/var/tmp/coreos-bench-") || path.hasPrefix("/tmp/") else { return }
    _ = system("rm -rf '\(path)'")
}

/// A shared index source for the proposers.
final class Counter: Sendable {
    private let value = Mutex<UInt64>(0)
    func increment() -> UInt64 {
        value.withLock {
            $0 += 1
            return $0
        }
    }
}

switch CommandLine.arguments.dropFirst().first {
case "raft-core": raftCore()
case "wal": await wal()
case "recovery": await recovery()
default: fail("usage: coreos-bench raft-core|wal|recovery [options]")
}
