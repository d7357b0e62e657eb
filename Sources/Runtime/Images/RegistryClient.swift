import Crypto
import EtcdClient
import Foundation
import Glibc

/// `docker://HOST[:PORT]/NAME[:TAG|@DIGEST]`, split the way Docker does it: the first
/// component is a registry when it has a dot or a port or is `localhost`; otherwise the
/// image is on Docker Hub (`library/` added to one-word names).
public struct RegistryReference: Sendable, Hashable, CustomStringConvertible {
    public var registry: String
    public var repository: String
    /// A tag or a `sha256:` digest.
    public var reference: String

    public init(parsing text: String) throws(RuntimeError) {
        var rest = Substring(text)
        var registry = "registry-1.docker.io"
        if let slash = rest.firstIndex(of: "/") {
            let first = rest[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" {
                registry = String(first)
                rest = rest[rest.index(after: slash)...]
            }
        }
        var reference = "latest"
        if let at = rest.firstIndex(of: "@") {
            reference = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
        } else if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            reference = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
        }
        guard !rest.isEmpty, rest.allSatisfy({ $0.isLowercase || $0.isNumber || "._-/".contains($0) }) else {
            throw RuntimeError("invalid image name in docker://\(text)")
        }
        var repository = String(rest)
        if registry == "registry-1.docker.io" && !repository.contains("/") { repository = "library/" + repository }
        self.registry = registry
        self.repository = repository
        self.reference = reference
    }

    public var description: String {
        registry + "/" + repository + (reference.hasPrefix("sha256:") ? "@" : ":") + reference
    }
}

/// A client of the Docker Registry HTTP API v2 (Distribution): manifests and manifest
/// lists with platform choice, anonymous bearer tokens when the registry challenges,
/// blobs streamed to disk with their digest checked, resumed with `Range` when a partial
/// download is left from an earlier attempt.
public struct RegistryClient: Sendable {
    public var reference: RegistryReference
    /// Plain HTTP (rkt's `--insecure-options=http`).
    public var insecureHTTP: Bool
    /// Called with (what, bytes so far, total) while blobs download.
    public var progress: (@Sendable (String, Int64, Int64) -> Void)?

    public init(reference: RegistryReference, insecureHTTP: Bool, progress: (@Sendable (String, Int64, Int64) -> Void)? = nil) {
        self.reference = reference
        self.insecureHTTP = insecureHTTP
        self.progress = progress
    }

    static let manifestTypes = [
        MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest,
    ].joined(separator: ", ")

    final class TokenBox: @unchecked Sendable {
        var token: String?
    }

    private let tokens = TokenBox()

    var base: String { (insecureHTTP ? "http://" : "https://") + reference.registry }

    /// One GET, with the bearer token dance on a 401 and redirects followed (blob
    /// downloads are often redirected to object storage).
    func get(
        _ url: String, accept: String? = nil, range: Int64? = nil, sink: (@Sendable ([UInt8]) -> Bool)? = nil
    ) async throws(RuntimeError) -> HTTP1Response {
        var target = url
        for _ in 0..<6 {
            let (parsed, pathAndQuery) = try Download.split(target)
            var headers: [(String, String)] = []
            if let accept { headers.append(("Accept", accept)) }
            if let token = tokens.token, target.hasPrefix(base) { headers.append(("Authorization", "Bearer " + token)) }
            if let range, range > 0 { headers.append(("Range", "bytes=\(range)-")) }
            let response: HTTP1Response
            do {
                response = try await HTTP1Exchange.perform(
                    "GET", url: parsed, pathAndQuery: pathAndQuery, headers: headers, dialTimeout: .seconds(10),
                    headerTimeout: .seconds(30), bodySink: sink)
            } catch {
                throw RuntimeError("GET \(target): \(error)")
            }
            switch response.status {
            case 301, 302, 303, 307, 308:
                guard let location = response.header("Location") else { throw RuntimeError("GET \(target): redirect without Location") }
                target = location.hasPrefix("/") ? parsed.origin + location : location
                continue
            case 401 where tokens.token == nil:
                try await authenticate(challenge: response.header("WWW-Authenticate") ?? "", for: target)
                continue
            default:
                return response
            }
        }
        throw RuntimeError("GET \(url): too many redirects")
    }

    /// `Bearer realm="…",service="…",scope="…"`: an anonymous token from the realm.
    func authenticate(challenge: String, for url: String) async throws(RuntimeError) {
        guard challenge.lowercased().hasPrefix("bearer ") else {
            throw RuntimeError("\(url): the registry wants \(challenge.isEmpty ? "credentials" : challenge); only anonymous bearer tokens are supported")
        }
        var fields: [String: String] = [:]
        let body = challenge.dropFirst(7)
        var index = body.startIndex
        while index < body.endIndex {
            guard let equals = body[index...].firstIndex(of: "=") else { break }
            let key = body[index..<equals].trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: ",")))
            var valueStart = body.index(after: equals)
            var value = ""
            if valueStart < body.endIndex, body[valueStart] == "\"" {
                valueStart = body.index(after: valueStart)
                let end = body[valueStart...].firstIndex(of: "\"") ?? body.endIndex
                value = String(body[valueStart..<end])
                index = end < body.endIndex ? body.index(after: end) : end
            } else {
                let end = body[valueStart...].firstIndex(of: ",") ?? body.endIndex
                value = String(body[valueStart..<end])
                index = end
            }
            fields[key] = value
        }
        guard let realm = fields["realm"] else { throw RuntimeError("\(url): bearer challenge without a realm") }
        var query: [String] = []
        for key in ["service", "scope"] {
            if let value = fields[key] {
                query.append(key + "=" + (value.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? value))
            }
        }
        let tokenURL = realm + (query.isEmpty ? "" : (realm.contains("?") ? "&" : "?") + query.joined(separator: "&"))
        let response = try await get(tokenURL)
        guard response.status == 200,
            let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
            let token = (object["token"] as? String) ?? (object["access_token"] as? String)
        else { throw RuntimeError("token from \(realm): status \(response.status)") }
        tokens.token = token
    }

    /// The manifest for this machine: manifest lists and indexes resolved by platform.
    /// Returns the manifest's bytes and digest.
    public func manifest() async throws(RuntimeError) -> (bytes: [UInt8], digest: String) {
        var reference = reference.reference
        for _ in 0..<4 {
            let url = base + "/v2/" + self.reference.repository + "/manifests/" + reference
            let response = try await get(url, accept: Self.manifestTypes)
            guard response.status == 200 else {
                throw RuntimeError("\(self.reference): manifest \(reference): status \(response.status)\(Self.errorText(response))")
            }
            guard response.body.count <= 4 << 20 else { throw RuntimeError("\(self.reference): manifest larger than 4 MiB") }
            var hash = SHA256()
            hash.update(data: response.body)
            let digest = "sha256:" + TarStream.hex(hash.finalize())
            if reference.hasPrefix("sha256:"), reference != digest {
                throw RuntimeError("\(self.reference): manifest digest \(digest), asked for \(reference)")
            }
            let type = response.header("Content-Type")?.split(separator: ";").first.map(String.init)
            let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
            let isIndex = MediaType.isIndex(type) || MediaType.isIndex(object?["mediaType"] as? String) || object?["manifests"] != nil
            guard isIndex else { return (response.body, digest) }
            let index = try JSONCoding.decode(OCIIndex.self, from: response.body, what: "\(self.reference) index")
            reference = try ImageStore.choosePlatform(index.manifests, in: self.reference.description).digest
        }
        throw RuntimeError("\(reference): indexes nested too deep")
    }

    /// Downloads a blob to `path` (appending to what is there), checking its digest.
    public func download(_ descriptor: OCIDescriptor, to path: String) async throws(RuntimeError) {
        let descriptorNumber = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptorNumber >= 0 else { throw RuntimeError("create \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptorNumber) }
        var info = stat()
        fstat(descriptorNumber, &info)
        var have = Int64(info.st_size)
        if have > descriptor.size {
            ftruncate(descriptorNumber, 0)
            have = 0
        }
        let state = DownloadState(descriptor: descriptorNumber, have: have, limit: descriptor.size, name: descriptor.digest, progress: progress)
        if have < descriptor.size {
            let url = base + "/v2/" + reference.repository + "/blobs/" + descriptor.digest
            let response = try await get(url, range: have, sink: { bytes in state.append(bytes) })
            if let failure = state.failure { throw RuntimeError("\(descriptor.digest): \(failure)") }
            switch response.status {
            case 206: break
            case 200 where have > 0:
                // The registry ignored Range and sent it all again: start over.
                ftruncate(descriptorNumber, 0)
                try await download(descriptor, to: path)
                return
            case 200: break
            default: throw RuntimeError("\(descriptor.digest): status \(response.status)\(Self.errorText(response))")
            }
        }
        guard try Self.digest(of: path) == descriptor.digest else {
            unlink(path)
            throw RuntimeError("\(descriptor.digest): the downloaded blob does not match its digest")
        }
    }

    static func digest(of path: String) throws(RuntimeError) -> String {
        let stream = try TarStream.raw(path: path)
        return try stream.finish().stored
    }

    static func errorText(_ response: HTTP1Response) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
            let errors = object["errors"] as? [[String: Any]], let first = errors.first
        else { return "" }
        return ": " + [first["code"] as? String, first["message"] as? String].compactMap { $0 }.joined(separator: " ")
    }
}

/// Where a blob's bytes go while they arrive (on the event loop).
final class DownloadState: @unchecked Sendable {
    let descriptor: Int32
    var have: Int64
    let limit: Int64
    let name: String
    let progress: (@Sendable (String, Int64, Int64) -> Void)?
    var failure: String?

    init(descriptor: Int32, have: Int64, limit: Int64, name: String, progress: (@Sendable (String, Int64, Int64) -> Void)?) {
        self.descriptor = descriptor
        self.have = have
        self.limit = limit
        self.name = name
        self.progress = progress
    }

    func append(_ bytes: [UInt8]) -> Bool {
        guard failure == nil else { return false }
        guard have + Int64(bytes.count) <= limit else {
            failure = "more bytes than the \(limit) its descriptor says"
            return false
        }
        let written = bytes.withUnsafeBytes { ImageStore.writeAll(descriptor, $0) }
        guard written else {
            failure = "write: \(String(cString: strerror(errno)))"
            return false
        }
        have += Int64(bytes.count)
        progress?(name, have, limit)
        return true
    }
}

/// Plain downloads (ACIs and their signatures by URL): redirects followed, the body
/// streamed to a file, at most 16 GiB.
enum Download {
    /// The URL and the request target (`/path?query`) to send for it.
    static func split(_ target: String) throws(RuntimeError) -> (HTTPURL, String) {
        do {
            return try HTTPURL.withRequestTarget(parsing: target)
        } catch {
            throw RuntimeError("invalid URL \(target)")
        }
    }

    /// False when the server answers 404.
    static func file(_ url: String, to path: String, progress: (@Sendable (String, Int64, Int64) -> Void)?) async throws(RuntimeError) -> Bool {
        var target = url
        for _ in 0..<6 {
            let (parsed, pathAndQuery) = try Download.split(target)
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw RuntimeError("create \(path): \(String(cString: strerror(errno)))") }
            defer { close(descriptor) }
            let state = DownloadState(descriptor: descriptor, have: 0, limit: 16 << 30, name: url, progress: progress)
            let response: HTTP1Response
            do {
                response = try await HTTP1Exchange.perform(
                    "GET", url: parsed, pathAndQuery: pathAndQuery, dialTimeout: .seconds(10), headerTimeout: .seconds(30),
                    bodySink: { state.append($0) })
            } catch {
                throw RuntimeError("GET \(target): \(error)")
            }
            if let failure = state.failure { throw RuntimeError("GET \(target): \(failure)") }
            switch response.status {
            case 200..<300: return true
            case 404: return false
            case 301, 302, 303, 307, 308:
                guard let location = response.header("Location") else { throw RuntimeError("GET \(target): redirect without Location") }
                target = location.hasPrefix("/") ? parsed.origin + location : location
            default:
                throw RuntimeError("GET \(target): status \(response.status)")
            }
        }
        throw RuntimeError("GET \(url): too many redirects")
    }
}
