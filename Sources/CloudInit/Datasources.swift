import EtcdClient
import Glibc
import Platform

/// What a datasource delivered: the user-data (possibly empty) and what it knows of the machine.
public struct DatasourceResult: Sendable, Hashable {
    public var source: String
    public var userData: [UInt8]
    public var metadata: Metadata
}

/// Why a datasource failed for good (a missing datasource is not a failure: it is polled).
public struct DatasourceError: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// Polling again cannot help.
    public var isPermanent = false
}

/// Where user-data comes from, as coreos-cloudinit's `--from-*` flags name them.
public enum Datasource: Sendable, Hashable, CustomStringConvertible {
    case file(String)
    case url(String)
    /// An OpenStack config drive mounted at this directory.
    case configDrive(String)
    /// An EC2-style metadata service at this base URL (`http://169.254.169.254/`).
    case ec2Metadata(String)
    /// `cloud-config-url=` on the kernel command line (the file read is usually /proc/cmdline).
    case procCmdline(String)

    /// The largest user-data accepted from any source.
    public static let maxUserDataBytes = 32 << 20

    public var description: String {
        switch self {
        case .file(let path): "file \(path)"
        case .url(let url): "url \(url)"
        case .configDrive(let path): "config drive \(path)"
        case .ec2Metadata(let url): "metadata service \(url)"
        case .procCmdline(let path): "kernel command line (\(path))"
        }
    }

    /// One attempt: nil when the source is not there yet (poll again), a result when it is.
    public func attempt() async throws(DatasourceError) -> DatasourceResult? {
        switch self {
        case .file(let path):
            guard let bytes = Self.readFile(path) else { return nil }
            guard bytes.count <= Self.maxUserDataBytes else {
                throw DatasourceError(description: "\(path) is larger than \(Self.maxUserDataBytes) bytes", isPermanent: true)
            }
            return DatasourceResult(source: description, userData: bytes, metadata: Metadata())
        case .url(let url):
            guard let body = try await Self.get(url) else {
                // 404: the service is there and has no user-data for us.
                return DatasourceResult(source: description, userData: [], metadata: Metadata())
            }
            return DatasourceResult(source: description, userData: body, metadata: Metadata())
        case .configDrive(let root):
            return try configDrive(root)
        case .ec2Metadata(let base):
            return try await ec2(base.hasSuffix("/") ? base : base + "/")
        case .procCmdline(let path):
            guard let bytes = Self.readFile(path) else { return nil }
            let words = String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
            guard let word = words.last(where: { $0.hasPrefix("cloud-config-url=") }) else {
                throw DatasourceError(description: "no cloud-config-url= on the kernel command line (\(path))", isPermanent: true)
            }
            guard var result = try await Datasource.url(String(word.dropFirst("cloud-config-url=".count))).attempt() else {
                return nil
            }
            result.source = description
            return result
        }
    }

    private func configDrive(_ root: String) throws(DatasourceError) -> DatasourceResult? {
        var info = stat()
        guard stat(root, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return nil }
        let userData = Self.readFile(root + "/openstack/latest/user_data") ?? []
        var metadata = Metadata()
        if let bytes = Self.readFile(root + "/openstack/latest/meta_data.json") {
            guard let object = JSONText.object(bytes) else {
                throw DatasourceError(description: "\(root)/openstack/latest/meta_data.json is not a JSON object", isPermanent: true)
            }
            metadata.hostname = object["hostname"] as? String ?? ""
            if let keys = object["public_keys"] as? [String: Any] {
                metadata.sshPublicKeys = keys.keys.sorted().compactMap { keys[$0] as? String }
            }
        }
        if let bytes = Self.readFile(root + "/ec2/2009-04-04/meta-data.json"), let object = JSONText.object(bytes) {
            metadata.addresses.privateIPv4 = object["local-ipv4"] as? String
            metadata.addresses.publicIPv4 = object["public-ipv4"] as? String
        }
        return DatasourceResult(source: description, userData: userData, metadata: metadata)
    }

    private func ec2(_ base: String) async throws(DatasourceError) -> DatasourceResult? {
        // The service is there when its version directory answers.
        guard (try? await Self.get(base + "2009-04-04/meta-data/")) != nil else { return nil }
        let userData = try await Self.get(base + "2009-04-04/user-data") ?? []
        var metadata = Metadata()
        func text(_ path: String) async throws(DatasourceError) -> String? {
            try await Self.get(base + "2009-04-04/meta-data/" + path).map { String(decoding: $0, as: UTF8.self).trimmingSpaces }
        }
        metadata.hostname = try await text("hostname")?.split(separator: " ").first.map(String.init) ?? ""
        metadata.addresses.privateIPv4 = try await text("local-ipv4")
        metadata.addresses.publicIPv4 = try await text("public-ipv4")
        if let listing = try await text("public-keys/") {
            for line in listing.split(separator: "\n") {
                guard let index = line.split(separator: "=").first else { continue }
                if let key = try await text("public-keys/\(index)/openssh-key"), !key.isEmpty { metadata.sshPublicKeys.append(key) }
            }
        }
        return DatasourceResult(source: description, userData: userData, metadata: metadata)
    }

    static func readFile(_ path: String) -> [UInt8]? {
        FileSystem.contents(atPath: path, limit: maxUserDataBytes)
    }

    /// GET with the body; nil for 404. Other failures (refused, 5xx) throw and are retried
    /// by the poller.
    static func get(_ text: String) async throws(DatasourceError) -> [UInt8]? {
        let url: HTTPURL
        let pathAndQuery: String
        do {
            (url, pathAndQuery) = try HTTPURL.withRequestTarget(parsing: text)
        } catch {
            throw DatasourceError(description: "invalid URL \(text): \(error)", isPermanent: true)
        }
        let response: HTTP1Response
        do {
            response = try await HTTP1Exchange.perform(
                "GET", url: url, pathAndQuery: pathAndQuery, dialTimeout: .seconds(5), headerTimeout: .seconds(10))
        } catch {
            throw DatasourceError(description: "GET \(text): \(error)")
        }
        switch response.status {
        case 200..<300:
            guard response.body.count <= maxUserDataBytes else {
                throw DatasourceError(description: "GET \(text): more than \(maxUserDataBytes) bytes")
            }
            return response.body
        case 404: return nil
        default: throw DatasourceError(description: "GET \(text): status \(response.status)")
        }
    }
}

/// Polls datasources concurrently until one delivers: each is retried with a backoff that
/// doubles from 100 ms to `maxBackoff`, and the whole wait ends at `timeout`. A source that
/// fails for good (a kernel command line without `cloud-config-url=`) stops being polled.
public enum DatasourcePoller {
    enum Outcome: Sendable {
        case delivered(DatasourceResult)
        case gaveUp
        case timedOut
    }

    public static func first(
        of sources: [Datasource], timeout: Duration = .seconds(300), maxBackoff: Duration = .seconds(30),
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) async -> DatasourceResult? {
        await withTaskGroup(of: Outcome.self) { group in
            for source in sources {
                group.addTask {
                    var backoff = Duration.milliseconds(100)
                    while !Task.isCancelled {
                        do throws(DatasourceError) {
                            if let result = try await source.attempt() { return .delivered(result) }
                        } catch {
                            log("\(source): \(error)")
                            if error.isPermanent { return .gaveUp }
                        }
                        try? await Task.sleep(for: backoff)
                        backoff = min(backoff * 2, maxBackoff)
                    }
                    return .gaveUp
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return .timedOut
            }
            var givenUp = 0
            for await outcome in group {
                switch outcome {
                case .delivered(let result):
                    group.cancelAll()
                    return result
                case .timedOut:
                    group.cancelAll()
                    return nil
                case .gaveUp:
                    givenUp += 1
                    if givenUp == sources.count {
                        group.cancelAll()
                        return nil
                    }
                }
            }
            return nil
        }
    }
}
