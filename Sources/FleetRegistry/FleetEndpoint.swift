public import EtcdClient

/// Where a fleetd answers: `unix:///var/run/fleet.sock` (fleet's default), a bare socket
/// path, `http://host:port`, or `https://host:port` (with `tls` for the CA and a client
/// certificate).
public struct FleetEndpoint: Sendable, Hashable, CustomStringConvertible {
    public let url: HTTPURL
    public let socketPath: String?
    public let tls: EtcdTLSConfiguration?

    public init(_ text: String, tls: EtcdTLSConfiguration? = nil) throws {
        self.tls = tls
        if text.hasPrefix("unix://") || text.hasPrefix("/") {
            socketPath = text.hasPrefix("unix://") ? String(text.dropFirst(7)) : text
            url = HTTPURL(secure: false, host: "domain-sock", port: 80)
        } else {
            socketPath = nil
            url = try HTTPURL(parsing: text)
        }
    }

    public var description: String { socketPath.map { "unix://" + $0 } ?? url.origin }

    /// One request; `bodySink` receives the body as it arrives (and the returned response
    /// then holds none).
    public func perform(
        _ method: String, _ pathAndQuery: String, body: [UInt8]? = nil, contentType: String? = nil, timeout: Duration? = nil,
        bodySink: (@Sendable ([UInt8]) -> Bool)? = nil
    ) async throws(HTTP1Failure) -> HTTP1Response {
        var headers: [(String, String)] = []
        if let contentType { headers.append(("Content-Type", contentType)) }
        return try await HTTP1Exchange.perform(
            method, url: url, pathAndQuery: pathAndQuery, headers: headers, body: body, tls: url.secure ? tls : nil, dialTimeout: .seconds(5), headerTimeout: timeout,
            bodySink: bodySink, unixSocket: socketPath)
    }
}
