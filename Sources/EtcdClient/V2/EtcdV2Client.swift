import GoFormat

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A client for etcd's v2 HTTP API (`/v2/keys`, `/v2/members`), for discovery, old data
/// layouts and `etcdctl` with `ETCDCTL_API=2`. Requests go to the endpoints in order until
/// one answers, as Go's client/v2 does.
public struct EtcdV2Client: Sendable {
    public var endpoints: [HTTPURL]
    public var tls: EtcdTLSConfiguration?
    /// Per request: how long to wait for the response head (etcdctl `--timeout`).
    public var headerTimeout: Duration?
    public var dialTimeout: Duration
    /// Sent as HTTP basic authentication.
    public var credentials: (user: String, password: String)?
    /// Called with the `curl` line of each request (etcdctl `--debug`).
    public var requestLog: (@Sendable (String) -> Void)?

    public init(
        endpoints: [HTTPURL], tls: EtcdTLSConfiguration? = nil, headerTimeout: Duration? = .seconds(1),
        dialTimeout: Duration = .seconds(30), credentials: (user: String, password: String)? = nil
    ) {
        self.endpoints = endpoints
        self.tls = tls
        self.headerTimeout = headerTimeout
        self.dialTimeout = dialTimeout
        self.credentials = credentials
    }

    // MARK: Keys

    public func get(_ key: String, recursive: Bool = false, sorted: Bool = false, quorum: Bool = false)
        async throws(EtcdV2Error) -> EtcdV2Response
    {
        var query: [(String, String)] = []
        if quorum { query.append(("quorum", "true")) }
        if recursive { query.append(("recursive", "true")) }
        if sorted { query.append(("sorted", "true")) }
        return try await keysRequest("GET", key: key, query: query)
    }

    /// Writes `value` (or makes a directory) under the conditions in `options`.
    public func set(_ key: String, value: String, options: EtcdV2SetOptions = EtcdV2SetOptions())
        async throws(EtcdV2Error) -> EtcdV2Response
    {
        var query: [(String, String)] = []
        if options.directory { query.append(("dir", "true")) }
        switch options.existence {
        case .ignore: break
        case .mustExist: query.append(("prevExist", "true"))
        case .mustNotExist: query.append(("prevExist", "false"))
        }
        if let previousIndex = options.previousIndex, previousIndex != 0 { query.append(("prevIndex", String(previousIndex))) }
        if let previousValue = options.previousValue, !previousValue.isEmpty { query.append(("prevValue", previousValue)) }
        if options.refresh { query.append(("refresh", "true")) }
        if let ttl = options.ttl, ttl > 0 { query.append(("ttl", String(ttl))) }
        let body = options.directory ? nil : FormEncoding.encode([("value", value)])
        return try await keysRequest("PUT", key: key, query: query, form: body)
    }

    /// Creates `key` only if it does not exist (error 105 otherwise).
    public func create(_ key: String, value: String, ttl: Int64? = nil) async throws(EtcdV2Error) -> EtcdV2Response {
        try await set(key, value: value, options: EtcdV2SetOptions(ttl: ttl, existence: .mustNotExist))
    }

    /// Replaces the value only if it is still `previousValue` and/or at `previousIndex`
    /// (error 101 otherwise).
    public func compareAndSwap(_ key: String, value: String, previousValue: String? = nil, previousIndex: UInt64? = nil)
        async throws(EtcdV2Error) -> EtcdV2Response
    {
        try await set(key, value: value, options: EtcdV2SetOptions(previousValue: previousValue, previousIndex: previousIndex))
    }

    /// Creates a key with a unique, increasing name under `directory` (POST).
    public func createInOrder(_ directory: String, value: String, ttl: Int64? = nil) async throws(EtcdV2Error)
        -> EtcdV2Response
    {
        var form: [(String, String)] = [("value", value)]
        if let ttl, ttl > 0 { form.append(("ttl", String(ttl))) }
        return try await keysRequest("POST", key: directory, query: [], form: FormEncoding.encode(form))
    }

    public func delete(_ key: String, options: EtcdV2DeleteOptions = EtcdV2DeleteOptions()) async throws(EtcdV2Error)
        -> EtcdV2Response
    {
        var query: [(String, String)] = []
        if options.directory { query.append(("dir", "true")) }
        if let previousIndex = options.previousIndex, previousIndex != 0 { query.append(("prevIndex", String(previousIndex))) }
        if let previousValue = options.previousValue, !previousValue.isEmpty { query.append(("prevValue", previousValue)) }
        if options.recursive { query.append(("recursive", "true")) }
        return try await keysRequest("DELETE", key: key, query: query)
    }

    /// Waits for the next change of `key` (or below it, when `recursive`) at or after
    /// `waitIndex`; nil waits for the next change from now.
    public func waitForChange(_ key: String, waitIndex: UInt64? = nil, recursive: Bool = false)
        async throws(EtcdV2Error) -> EtcdV2Response
    {
        var query: [(String, String)] = []
        if recursive { query.append(("recursive", "true")) }
        query.append(("wait", "true"))
        if let waitIndex, waitIndex > 0 { query.append(("waitIndex", String(waitIndex))) }
        while true {
            do {
                return try await keysRequest("GET", key: key, query: query)
            } catch .unexpected(let text) where text == Self.emptyBody {
                // The server ends an idle long poll with an empty body: ask again.
                try Task.checkCancellation(or: .unexpected("context canceled"))
                continue
            }
        }
    }

    /// A watcher that resumes after each event, as client/v2's `Watcher`: the first wait
    /// starts after `afterIndex` (from now when 0).
    public func watcher(_ key: String, afterIndex: UInt64 = 0, recursive: Bool = false) -> EtcdV2Watcher {
        EtcdV2Watcher(client: self, key: key, nextIndex: afterIndex > 0 ? afterIndex + 1 : nil, recursive: recursive)
    }

    // MARK: Members

    public func members() async throws(EtcdV2Error) -> [EtcdV2Member] {
        struct Listing: Decodable { var members: [EtcdV2Member]? }
        let response = try await request("GET", path: "/v2/members")
        guard response.status == 200 else { throw Self.membersError(response) }
        return try Self.decode(Listing.self, response.body).members ?? []
    }

    public func leader() async throws(EtcdV2Error) -> EtcdV2Member {
        let response = try await request("GET", path: "/v2/members/leader")
        guard response.status == 200 else { throw Self.membersError(response) }
        return try Self.decode(EtcdV2Member.self, response.body)
    }

    /// Adds a member that will join from `peerURL`; it is listed unstarted until it does.
    public func addMember(peerURLs: [String]) async throws(EtcdV2Error) -> EtcdV2Member {
        let body = try Self.peerURLsBody(peerURLs)
        let response = try await request("POST", path: "/v2/members", body: body, contentType: "application/json")
        guard response.status == 201 else { throw Self.membersError(response) }
        return try Self.decode(EtcdV2Member.self, response.body)
    }

    public func removeMember(id: String) async throws(EtcdV2Error) {
        let response = try await request("DELETE", path: "/v2/members/" + id)
        guard response.status == 204 else { throw Self.membersError(response) }
    }

    public func updateMember(id: String, peerURLs: [String]) async throws(EtcdV2Error) {
        let body = try Self.peerURLsBody(peerURLs)
        let response = try await request("PUT", path: "/v2/members/" + id, body: body, contentType: "application/json")
        guard response.status == 204 else { throw Self.membersError(response) }
    }

    /// Replaces the endpoints with the client URLs the cluster publishes (client/v2's
    /// `Sync`), so later requests fail over to members not named on the command line.
    public mutating func sync() async throws(EtcdV2Error) {
        let urls = try await members().flatMap(\.clientURLs).compactMap { try? HTTPURL(parsing: $0) }
        guard !urls.isEmpty else { throw .invalidArgument("client: no endpoints available") }
        var seen = Set<HTTPURL>()
        endpoints = urls.filter { seen.insert($0).inserted }
    }

    /// `GET <url>/health`: whether the member there reports itself healthy.
    public func health(at url: HTTPURL) async throws(EtcdV2Error) -> Bool {
        let response: HTTP1Response
        do {
            response = try await HTTP1Exchange.perform(
                "GET", url: url, pathAndQuery: url.path + "/health", tls: tls, dialTimeout: dialTimeout)
        } catch {
            throw .unexpected("Get \(url)/health: \(error)")
        }
        struct Health: Decodable { var health: String? }
        struct BoolHealth: Decodable { var health: Bool? }
        if let text = try? JSONDecoder().decode(Health.self, from: Data(response.body)) { return text.health == "true" }
        if let flag = try? JSONDecoder().decode(BoolHealth.self, from: Data(response.body)) { return flag.health == true }
        throw .unexpected("invalid character in health response")
    }

    // MARK: Plumbing

    static let emptyBody = "client: response is invalid json. The endpoint is probably not valid etcd cluster endpoint."

    func keysRequest(_ method: String, key: String, query: [(String, String)], form: String? = nil)
        async throws(EtcdV2Error) -> EtcdV2Response
    {
        let response = try await request(
            method, path: Self.keysPath(key), query: query, body: form.map { Array($0.utf8) },
            contentType: form == nil ? nil : "application/x-www-form-urlencoded")
        let index = response.header("X-Etcd-Index").flatMap { UInt64($0) } ?? 0
        switch response.status {
        case 200, 201:
            guard !response.body.isEmpty else { throw .unexpected(Self.emptyBody) }
            struct Body: Decodable {
                var action: String
                var node: EtcdV2Node?
                var prevNode: EtcdV2Node?
            }
            let body = try Self.decode(Body.self, response.body)
            return EtcdV2Response(
                action: body.action, node: body.node ?? EtcdV2Node(key: key), previousNode: body.prevNode, index: index)
        default:
            struct Failure: Decodable {
                var errorCode: Int
                var message: String
                var cause: String?
                var index: UInt64?
            }
            guard let failure = try? JSONDecoder().decode(Failure.self, from: Data(response.body)) else {
                throw .unexpected("unexpected response status \(response.status)")
            }
            throw .store(code: failure.errorCode, message: failure.message, cause: failure.cause ?? "", index: failure.index ?? 0)
        }
    }

    /// Sends the request to each endpoint in turn until one answers without a server error.
    func request(
        _ method: String, path: String, query: [(String, String)] = [], body: [UInt8]? = nil, contentType: String? = nil
    ) async throws(EtcdV2Error) -> HTTP1Response {
        var headers: [(String, String)] = []
        if let contentType { headers.append(("Content-Type", contentType)) }
        if let credentials {
            headers.append(("Authorization", "Basic " + Data("\(credentials.user):\(credentials.password)".utf8).base64EncodedString()))
        }
        let queryText = query.isEmpty ? "" : "?" + FormEncoding.encode(query)
        let isWait = query.contains { $0.0 == "wait" }
        var errors: [String] = []
        for endpoint in endpoints {
            let pathAndQuery = Self.joinPath(endpoint.path, path) + queryText
            if let requestLog {
                var line = "curl -X \(method) \(endpoint.origin)\(pathAndQuery)"
                if let body { line += " -d \(GoJSONString.quote(String(decoding: body, as: UTF8.self)))" }
                requestLog(line)
            }
            do {
                let response = try await HTTP1Exchange.perform(
                    method, url: endpoint, pathAndQuery: pathAndQuery, headers: headers, body: body, tls: tls,
                    dialTimeout: dialTimeout, headerTimeout: isWait ? nil : headerTimeout)
                if response.status == 500 || response.status == 503 {
                    errors.append("client: etcd member \(endpoint.origin) has no leader")
                    continue
                }
                if response.status / 100 == 5 {
                    errors.append("client: etcd member \(endpoint.origin) returns server error [\(Self.statusText(response.status))]")
                    continue
                }
                return response
            } catch .headerTimeout {
                errors.append("client: endpoint \(endpoint.origin) exceeded header timeout")
            } catch {
                errors.append(error.description)
            }
            if Task.isCancelled { throw .unexpected("context canceled") }
        }
        throw .cluster(errors)
    }

    static func statusText(_ status: Int) -> String {
        switch status {
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 504: return "Gateway Timeout"
        default: return "status \(status)"
        }
    }

    static func membersError(_ response: HTTP1Response) -> EtcdV2Error {
        struct Failure: Decodable { var message: String }
        if let failure = try? JSONDecoder().decode(Failure.self, from: Data(response.body)) {
            return .members(failure.message)
        }
        return .unexpected("unexpected status code \(response.status)")
    }

    static func peerURLsBody(_ peerURLs: [String]) throws(EtcdV2Error) -> [UInt8] {
        for url in peerURLs { try validatePeerURL(url) }
        return Array(("{\"peerURLs\":[" + peerURLs.map(GoJSONString.quote).joined(separator: ",") + "]}").utf8)
    }

    /// The checks etcd's `types.NewURLs` makes before a member request is sent.
    public static func validatePeerURL(_ text: String) throws(EtcdV2Error) {
        guard let schemeEnd = text.firstRange(of: "://") else {
            throw .invalidArgument("URL scheme must be http, https, unix, or unixs: \(text)")
        }
        let scheme = text[..<schemeEnd.lowerBound]
        guard ["http", "https", "unix", "unixs"].contains(scheme) else {
            throw .invalidArgument("URL scheme must be http, https, unix, or unixs: \(text)")
        }
        let rest = text[schemeEnd.upperBound...]
        let host = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let hasPort: Bool
        if host.hasPrefix("[") {
            hasPort = host.contains("]:")
        } else {
            hasPort = host.split(separator: ":", omittingEmptySubsequences: false).count == 2
        }
        guard hasPort else { throw .invalidArgument("URL address does not have the form \"host:port\": \(text)") }
        if rest.dropFirst(host.count).contains(where: { $0 != "/" }) {
            throw .invalidArgument("URL must not contain a path: \(text)")
        }
    }

    static func decode<Value: Decodable>(_ type: Value.Type, _ body: [UInt8]) throws(EtcdV2Error) -> Value {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch {
            throw .unexpected(emptyBody)
        }
    }

    /// `/v2/keys` + the key, cleaned as Go's `path.Join` cleans it, keeping a trailing slash.
    static func keysPath(_ key: String) -> String {
        var parts: [Substring] = []
        for part in key.split(separator: "/") {
            if part == "." { continue }
            if part == ".." {
                _ = parts.popLast()
                continue
            }
            parts.append(part)
        }
        var path = "/v2/keys" + (parts.isEmpty ? "" : "/" + parts.joined(separator: "/"))
        if key.hasSuffix("/") && !parts.isEmpty { path += "/" }
        return PathEscaping.escape(path)
    }

    static func joinPath(_ base: String, _ path: String) -> String {
        guard !base.isEmpty, base != "/" else { return path }
        return (base.hasSuffix("/") ? String(base.dropLast()) : base) + path
    }
}

/// Waits for changes one after another, resuming after the last event it returned.
public struct EtcdV2Watcher: Sendable {
    let client: EtcdV2Client
    let key: String
    var nextIndex: UInt64?
    let recursive: Bool

    public mutating func next() async throws(EtcdV2Error) -> EtcdV2Response {
        let response = try await client.waitForChange(key, waitIndex: nextIndex, recursive: recursive)
        nextIndex = response.node.modifiedIndex + 1
        return response
    }
}

extension Task where Success == Never, Failure == Never {
    static func checkCancellation(or error: EtcdV2Error) throws(EtcdV2Error) {
        if Task.isCancelled { throw error }
    }
}

/// `application/x-www-form-urlencoded`, as Go's `url.Values.Encode` writes it.
enum FormEncoding {
    static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { escape($0.0) + "=" + escape($0.1) }.joined(separator: "&")
    }

    static func escape(_ text: String) -> String {
        var output = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                output.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " "): output += "+"
            default: output += PathEscaping.percent(byte)
            }
        }
        return output
    }
}

/// Go's `url.URL.EscapedPath` for the characters keys contain.
enum PathEscaping {
    static func escape(_ path: String) -> String {
        var output = ""
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "+"), UInt8(ascii: ","),
                UInt8(ascii: "/"), UInt8(ascii: ":"), UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: "@"):
                output.unicodeScalars.append(Unicode.Scalar(byte))
            default: output += percent(byte)
            }
        }
        return output
    }

    static func percent(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return "%" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 15)])
    }
}
