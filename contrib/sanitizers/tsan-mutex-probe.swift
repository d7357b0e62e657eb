// Four threads add to a counter only inside `Mutex.withLock`. Built with
// `swiftc -sanitize=thread tsan-mutex-probe.swift`, it prints 40000 (the lock works) and,
// with the Swift 6 toolchain of these machines, a ThreadSanitizer "Swift access race":
// Synchronization's Mutex locks through atomics and futexes inside the uninstrumented
// standard library, so TSan never sees the lock. Reports whose racing accesses are all
// inside `withLock` closures are this, not a race of ours.
import Dispatch
import Synchronization

final class Counter: Sendable { let value = Mutex(0) }
let counter = Counter()
let group = DispatchGroup()
for _ in 0..<4 {
    DispatchQueue.global().async(group: group) {
        for _ in 0..<10_000 { counter.value.withLock { $0 += 1 } }
    }
}
group.wait()
print(counter.value.withLock { $0 })
