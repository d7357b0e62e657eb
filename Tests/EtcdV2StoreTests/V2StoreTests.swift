import EtcdV2Store
import Testing

/// etcd 3.4's v2 store semantics, driven without clocks: each call carries its time.
@Suite struct V2StoreTests {
    let t0: V2Store.Time = 1_795_000_000_000

    @Test func setGetAndDirectories() throws {
        var store = V2Store()
        let set = try store.set("/a/b", value: "1", now: t0)
        #expect(set.action == .set && set.index == 1 && set.prevNode == nil)
        #expect(V2JSON.event(set) == "{\"action\":\"set\",\"node\":{\"key\":\"/a/b\",\"value\":\"1\",\"modifiedIndex\":1,\"createdIndex\":1}}\n")
        let replaced = try store.set("a/b/", value: "2", now: t0)
        #expect(replaced.prevNode?.value == "1" && replaced.node.createdIndex == 2)
        // The parent was made a directory; listing it shows the file.
        let listing = try store.get("/a", now: t0)
        #expect(V2JSON.event(listing) == "{\"action\":\"get\",\"node\":{\"key\":\"/a\",\"dir\":true,\"nodes\":[{\"key\":\"/a/b\",\"value\":\"2\",\"modifiedIndex\":2,\"createdIndex\":2}],\"modifiedIndex\":1,\"createdIndex\":1}}\n")
        // A file is not a directory, a directory not a file.
        #expect(throws: V2Error(.notDirectory, cause: "/a/b", index: 2)) { try store.set("/a/b/c", value: "x", now: t0) }
        #expect(throws: V2Error(.notFile, cause: "/a", index: 2)) { try store.set("/a", value: "x", now: t0) }
        #expect(throws: V2Error(.keyNotFound, cause: "/nothing", index: 2)) { try store.get("/nothing", now: t0) }
        #expect(throws: V2Error(.rootReadOnly, cause: "/", index: 2)) { try store.set("/", value: "x", now: t0) }
        // Hidden names are left out of listings, not out of reads.
        _ = try store.set("/a/_hidden", value: "h", now: t0)
        #expect(try store.get("/a", now: t0).node.nodes?.count == 1)
        #expect(try store.get("/a/_hidden", now: t0).node.value == "h")
        // The root has no key; recursive and sorted listings.
        _ = try store.set("/a/c/d", value: "4", now: t0)
        let root = try store.get("/", recursive: true, sorted: true, now: t0)
        #expect(root.node.key == nil && root.node.nodes?.first?.nodes?.map(\.key) == ["/a/b", "/a/c"])
        #expect(root.node.nodes?.first?.nodes?.last?.nodes?.first?.key == "/a/c/d")
    }

    @Test func createUpdateAndCompareAndSwap() throws {
        var store = V2Store()
        _ = try store.create("/k", value: "v", now: t0)
        #expect(throws: V2Error(.nodeExists, cause: "/k", index: 1)) { try store.create("/k", value: "w", now: t0) }
        let updated = try store.update("/k", value: "w", ttl: nil, now: t0)
        #expect(updated.action == .update && updated.node.createdIndex == 1 && updated.node.modifiedIndex == 2)
        #expect(throws: V2Error(.keyNotFound, cause: "/none", index: 2)) { try store.update("/none", value: "x", ttl: nil, now: t0) }
        #expect(throws: V2Error(.compareFailed, cause: "[x != w]", index: 2)) {
            try store.compareAndSwap("/k", previousValue: "x", previousIndex: nil, value: "y", ttl: nil, now: t0)
        }
        #expect(throws: V2Error(.compareFailed, cause: "[9 != 2]", index: 2)) {
            try store.compareAndSwap("/k", previousValue: nil, previousIndex: 9, value: "y", ttl: nil, now: t0)
        }
        #expect(throws: V2Error(.compareFailed, cause: "[x != w] [9 != 2]", index: 2)) {
            try store.compareAndSwap("/k", previousValue: "x", previousIndex: 9, value: "y", ttl: nil, now: t0)
        }
        let swapped = try store.compareAndSwap("/k", previousValue: "w", previousIndex: 2, value: "y", ttl: nil, now: t0)
        #expect(swapped.action == .compareAndSwap && swapped.node.value == "y" && swapped.prevNode?.value == "w")
        // In-order keys: the next index, zero-padded to 20 digits.
        let queued = try store.create("/queue", value: "job", inOrder: true, now: t0)
        #expect(queued.node.key == "/queue/00000000000000000004")
    }

    @Test func deletes() throws {
        var store = V2Store()
        _ = try store.set("/d/f", value: "1", now: t0)
        #expect(throws: V2Error(.notFile, cause: "/d", index: 1)) { try store.delete("/d", now: t0) }
        #expect(throws: V2Error(.directoryNotEmpty, cause: "/d", index: 1)) { try store.delete("/d", directory: true, now: t0) }
        #expect(throws: V2Error(.compareFailed, cause: "[0 != 1]", index: 1)) {
            try store.compareAndDelete("/d/f", previousValue: "0", previousIndex: nil, now: t0)
        }
        let gone = try store.delete("/d", recursive: true, now: t0)
        #expect(V2JSON.event(gone) == "{\"action\":\"delete\",\"node\":{\"key\":\"/d\",\"dir\":true,\"modifiedIndex\":2,\"createdIndex\":1},\"prevNode\":{\"key\":\"/d\",\"dir\":true,\"modifiedIndex\":1,\"createdIndex\":1}}\n")
        // As etcd: the first missing name is the cause, a file on the way is 104.
        #expect(throws: V2Error(.keyNotFound, cause: "/d", index: 2)) { try store.get("/d/f", now: t0) }
        _ = try store.set("/file", value: "x", now: t0)
        #expect(throws: V2Error(.notDirectory, cause: "/file", index: 3)) { try store.get("/file/below", now: t0) }
    }

    @Test func ttlsExpireThroughTheStoreIndex() throws {
        var store = V2Store()
        let set = try store.set("/t", value: "v", ttl: 5, now: t0 + 250)
        #expect(set.node.ttl == 5)
        #expect(V2JSON.rfc3339(t0 + 5250) == "2026-11-18T11:06:45.25Z")
        #expect(V2JSON.rfc3339(-86_401_000) == "1969-12-30T23:59:59Z")
        #expect(try store.get("/t", now: t0 + 1250).node.ttl == 4)
        #expect(store.nextExpiration == t0 + 5250)
        #expect(store.expire(now: t0 + 5000).isEmpty)
        // Refresh: a new TTL, the same value, no event for watchers.
        let refreshed = try store.update("/t", value: nil, ttl: 10, refresh: true, now: t0 + 5000)
        #expect(refreshed.node.value == "v" && refreshed.node.ttl == 10 && store.history.count == 1)
        let expired = store.expire(now: t0 + 15_000)
        #expect(expired.map(\.action) == [.expire] && expired.first?.index == 3)
        #expect(throws: V2Error.self) { try store.get("/t", now: t0 + 15_000) }
        // An update without a TTL makes a key permanent again.
        _ = try store.set("/p", value: "v", ttl: 1, now: t0)
        _ = try store.update("/p", value: "w", ttl: nil, now: t0)
        #expect(store.expire(now: t0 + 60_000).isEmpty)
    }

    @Test func watchHistory() throws {
        var store = V2Store()
        for index in 1...1005 { _ = try store.set("/w/\(index % 3)", value: "\(index)", now: t0) }
        #expect(store.history.count == V2Store.historyCapacity && store.history.first?.index == 6)
        #expect(throws: V2Error(.eventIndexCleared, cause: "the requested history has been cleared [6/5]", index: 1005)) {
            try store.event(since: 5, key: "/w", recursive: true)
        }
        #expect(try store.event(since: 1000, key: "/w/1", recursive: false)?.index == 1000)
        #expect(try store.event(since: 1000, key: "/w", recursive: false) == nil)
        #expect(try store.event(since: 1001, key: "/w", recursive: true)?.index == 1001)
        #expect(try store.event(since: 1006, key: "/w", recursive: true) == nil)
        // Deleting a directory tells the watchers of keys inside it.
        _ = try store.delete("/w", recursive: true, now: t0)
        #expect(try store.event(since: 1006, key: "/w/2", recursive: false)?.action == .delete)
    }

    /// A long random run: the store never traps, and a replica fed the same operations
    /// (as members apply the same entries) ends equal.
    @Test func randomOperationsAreDeterministic() {
        var generator = SeededGenerator(seed: 42)
        var first = V2Store()
        var second = V2Store()
        let keys = ["/a", "/a/b", "/a/b/c", "/d", "/d/e", "/_h", "/q"]
        for step in 0..<3000 {
            let key = keys[Int.random(in: 0..<keys.count, using: &generator)]
            let now = t0 + Int64(step) * 100
            let choice = Int.random(in: 0..<8, using: &generator)
            for index in 0..<2 {
                var store = index == 0 ? first : second
                switch choice {
                case 0: _ = try? store.set(key, value: "\(step)", ttl: step % 5 == 0 ? 2 : nil, now: now)
                case 1: _ = try? store.create(key, value: "\(step)", inOrder: step % 2 == 0, now: now)
                case 2: _ = try? store.update(key, value: "\(step)", ttl: nil, now: now)
                case 3: _ = try? store.compareAndSwap(key, previousValue: "\(step - 1)", previousIndex: nil, value: "x", ttl: nil, now: now)
                case 4: _ = try? store.delete(key, recursive: step % 3 == 0, now: now)
                case 5: _ = try? store.set(key, value: "", directory: true, now: now)
                case 6: _ = store.expire(now: now)
                default: _ = try? store.get(key, recursive: true, now: now)
                }
                if index == 0 { first = store } else { second = store }
            }
        }
        #expect(first == second)
        #expect(first.currentIndex > 0)
    }
}

@Suite struct V2RequestTests {
    @Test func requestsAndSnapshotsRoundTrip() throws {
        var request = V2Request(.compareAndSwap, key: "/k", value: "v", now: 1_795_000_000_000)
        request.ttl = 30
        request.previousIndex = 7
        request.refresh = true
        #expect(V2Request(decoding: request.encoded()) == request)
        #expect(V2Request(decoding: Array(request.encoded().dropLast())) == nil)
        #expect(V2Request(decoding: [99, 0]) == nil)
        var store = V2Store()
        _ = store.apply(V2Request(.set, key: "/a/b", value: "1", now: 0))
        var withTTL = V2Request(.set, key: "/t", value: "2", now: 0)
        withTTL.ttl = 5
        _ = store.apply(withTTL)
        guard case .failure(let error) = store.apply(V2Request(.create, key: "/a/b", value: "x", now: 0)) else {
            Issue.record("create over an existing key must fail")
            return
        }
        #expect(error.code == .nodeExists)
        let copy = try #require(V2Store(decoding: store.encoded()))
        #expect(try copy.get("/", recursive: true, now: 0) == store.get("/", recursive: true, now: 0))
        #expect(copy.currentIndex == store.currentIndex && copy.nextExpiration == 5000)
        // Damaged snapshots are refused, never trapped on.
        let bytes = store.encoded()
        for length in 0..<bytes.count { #expect(V2Store(decoding: Array(bytes.prefix(length))) == nil) }
        guard case .success(let expired) = store.apply(V2Request(.expire, key: "/", now: 6000)) else { return }
        #expect(expired.map(\.node.key) == ["/t"])
    }
}

struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
