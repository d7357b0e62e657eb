import EtcdClient
import Foundation

/// The v2 discovery protocol, member side (`--discovery https://host/TOKEN`): register
/// under the token, read the wanted size, wait until that many members registered; the
/// first `size` by creation index are the initial cluster. Works against the public
/// service's code (Debian's `etcd-discovery` over etcd 3.4 with v2) and against
/// `coreos etcd discovery`.
struct DiscoveryClient {
    /// The token URL (`http[s]://host[:port]/TOKEN`).
    let url: HTTPURL
    let memberID: UInt64
    /// How long to keep trying while the service is unreachable or the cluster incomplete.
    var timeout: Duration = .seconds(600)
    var log: @Sendable (String) -> Void = { _ in }

    enum Outcome: Equatable {
        /// `--initial-cluster` text for the cluster this member belongs to.
        case joined(initialCluster: String)
        /// Complete without this member: the registered members' `name=peerURL` values.
        case full(registered: String)
    }

    struct Registration: Decodable {
        var key: String
        var value: String?
        var createdIndex: UInt64
        var dir: Bool?
    }

    private struct Answer: Decodable {
        var action: String?
        var node: Node?
        var errorCode: Int?
        var message: String?
    }

    private struct Node: Decodable {
        var key: String
        var value: String?
        var createdIndex: UInt64?
        var nodes: [Registration]?
    }

    init(url text: String, memberID: UInt64) throws(EtcdServerError) {
        do {
            url = try HTTPURL(parsing: text)
        } catch {
            throw EtcdServerError("invalid --discovery URL \(text): \(error.message)")
        }
        guard url.path.count > 1 else { throw EtcdServerError("invalid --discovery URL \(text): no token in the path") }
        self.memberID = memberID
    }

    private var selfKeyName: String { String(memberID, radix: 16) }

    /// Registers `value` (`name=peerURL,…`) and waits for the cluster to be complete.
    func join(value: String) async throws -> Outcome {
        let deadline = ContinuousClock.now + timeout
        let size = try await retrying(until: deadline) { try await self.size() }
        if size % 2 == 0 {
            log("discovery: the cluster size \(size) is even: it tolerates no more failures than \(size - 1) members")
        }
        var (registered, index) = try await retrying(until: deadline) { try await self.registrations() }
        if registered.contains(where: { $0.key.hasSuffix("/" + selfKeyName) }) {
            throw EtcdServerError("discovery: found duplicate id")
        }
        if registered.count >= size {
            return .full(registered: Self.initialCluster(registered.prefix(size)))
        }
        try await retrying(until: deadline) { try await self.register(value) }
        log("discovery: registered as \(selfKeyName) at \(url)")
        while true {
            (registered, index) = try await retrying(until: deadline) { try await self.registrations() }
            let first = registered.prefix(size)
            if registered.count >= size {
                guard first.contains(where: { $0.key.hasSuffix("/" + selfKeyName) }) else {
                    return .full(registered: Self.initialCluster(first))
                }
                log("discovery: found \(size - 1) peer(s), cluster complete")
                return .joined(initialCluster: Self.initialCluster(first))
            }
            log("discovery: found \(registered.count - 1) peer(s), waiting for \(size - registered.count) more")
            guard ContinuousClock.now < deadline else { throw EtcdServerError("discovery: timed out waiting for \(size) members") }
            // A change after the listing wakes us; a dropped wait just lists again.
            _ = try? await exchange("GET", "?wait=true&recursive=true&waitIndex=\(index + 1)", headerTimeout: .seconds(60))
        }
    }

    /// The peer URLs of the cluster under the token once it is complete, without
    /// registering: what a proxy started with `--discovery` serves.
    func clusterPeerURLs() async throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        let size = try await retrying(until: deadline) { try await self.size() }
        while true {
            let (registered, index) = try await retrying(until: deadline) { try await self.registrations() }
            if registered.count >= size {
                return Self.initialCluster(registered.prefix(size)).split(separator: ",").compactMap { item in
                    item.firstIndex(of: "=").map { String(item[item.index(after: $0)...]) }
                }
            }
            log("discovery: found \(registered.count) of \(size) members, waiting for the cluster to be complete")
            guard ContinuousClock.now < deadline else { throw EtcdServerError("discovery: timed out waiting for \(size) members") }
            _ = try? await exchange("GET", "?wait=true&recursive=true&waitIndex=\(index + 1)", headerTimeout: .seconds(60))
        }
    }

    private static func initialCluster(_ registered: ArraySlice<Registration>) -> String {
        registered.compactMap(\.value).joined(separator: ",")
    }

    /// `_config/size`.
    private func size() async throws -> Int {
        let (status, answer, _) = try await exchange("GET", "/_config/size")
        if status == 404 { throw EtcdServerError("discovery: size key not found") }
        guard status == 200, let text = answer.node?.value, let size = Int(text), size > 0 else {
            throw Transient("discovery: unexpected answer for the size (HTTP \(status))")
        }
        return size
    }

    /// The members registered so far, oldest first, and the index of the listing.
    private func registrations() async throws -> ([Registration], UInt64) {
        let (status, answer, index) = try await exchange("GET", "")
        guard status == 200 else { throw Transient("discovery: listing the registrations: HTTP \(status)") }
        let nodes = (answer.node?.nodes ?? []).filter { $0.dir != true && !($0.key.split(separator: "/").last ?? "").hasPrefix("_") }
        return (nodes.sorted { $0.createdIndex < $1.createdIndex }, index)
    }

    private func register(_ value: String) async throws {
        let body = "value=" + (value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value)
        let (status, answer, _) = try await exchange(
            "PUT", "/\(selfKeyName)?prevExist=false", body: Array(body.utf8),
            headers: [("Content-Type", "application/x-www-form-urlencoded")])
        if status == 412 || answer.errorCode == 105 { throw EtcdServerError("discovery: found duplicate id") }
        guard status == 201 || status == 200 else { throw Transient("discovery: registering: HTTP \(status) \(answer.message ?? "")") }
    }

    private struct Transient: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Runs `body` until it succeeds, retrying transport trouble with backoff (0.5 s up to
    /// 8 s) until `deadline`; an `EtcdServerError` is final.
    private func retrying<Result>(until deadline: ContinuousClock.Instant, _ body: () async throws -> Result) async throws -> Result {
        var delay = Duration.milliseconds(500)
        while true {
            do {
                return try await body()
            } catch let error as EtcdServerError {
                throw error
            } catch {
                guard ContinuousClock.now + delay < deadline else {
                    throw EtcdServerError("discovery: \(url) did not answer in time: \(error)")
                }
                log("discovery: error connecting to \(url.origin), retrying in \(delay): \(error)")
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(8))
            }
        }
    }

    /// One request under the token; returns the status, the decoded v2 answer and the
    /// `X-Etcd-Index` header (0 when absent).
    private func exchange(
        _ method: String, _ suffix: String, body: [UInt8]? = nil, headers: [(String, String)] = [],
        headerTimeout: Duration = .seconds(10)
    ) async throws -> (Int, Answer, UInt64) {
        let response = try await HTTP1Exchange.perform(
            method, url: url, pathAndQuery: url.path + suffix, headers: headers, body: body, dialTimeout: .seconds(5),
            headerTimeout: headerTimeout, maxBodyBytes: 4 << 20)
        let answer = (try? JSONDecoder().decode(Answer.self, from: Data(response.body))) ?? Answer()
        return (response.status, answer, response.header("X-Etcd-Index").flatMap { UInt64($0) } ?? 0)
    }
}
