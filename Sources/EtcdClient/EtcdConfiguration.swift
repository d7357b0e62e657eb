/// One etcd client endpoint: `127.0.0.1:2379`, `http://10.0.0.1:2379`, `https://etcd.local:2379`.
public struct EtcdEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// Whether the URL asked for TLS (`https://`); TLS is also used when certificates are configured.
    public var secure: Bool

    public init(host: String, port: Int, secure: Bool = false) {
        self.host = host
        self.port = port
        self.secure = secure
    }

    /// Parses what etcdctl accepts in `--endpoints`: `host:port`, or a URL with `http`,
    /// `https`, `unix` or `unixs` scheme. A missing port is 2379.
    public init(parsing text: String) throws(EtcdError) {
        var rest = Substring(text)
        var secure = false
        if let schemeEnd = Self.schemeSeparator(in: rest) {
            let scheme = rest[..<schemeEnd.lowerBound].lowercased()
            switch scheme {
            case "http": secure = false
            case "https": secure = true
            default: throw EtcdError(.invalidArgument, "unsupported endpoint scheme \"\(scheme)\" in \(text)")
            }
            rest = rest[schemeEnd.upperBound...]
        }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        let (host, port) = try Self.splitHostPort(rest, defaultPort: 2379, in: text)
        self.init(host: String(host), port: port, secure: secure)
    }

    /// `host`, `host:port`, `[v6]` or `[v6]:port`, with the port checked; `text` names the
    /// whole input in errors.
    static func splitHostPort(_ rest: Substring, defaultPort: Int, in text: String) throws(EtcdError) -> (String, Int) {
        var host = rest
        var port = defaultPort
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw EtcdError(.invalidArgument, "invalid endpoint \(text)") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()) else { throw EtcdError(.invalidArgument, "invalid port in \(text)") }
                port = value
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let value = Int(rest[rest.index(after: colon)...]) else {
                throw EtcdError(.invalidArgument, "invalid port in \(text)")
            }
            port = value
        }
        guard !host.isEmpty, (1...65535).contains(port) else { throw EtcdError(.invalidArgument, "invalid endpoint \(text)") }
        return (String(host), port)
    }

    private static func schemeSeparator(in text: Substring) -> Range<Substring.Index>? {
        var index = text.startIndex
        while index < text.endIndex {
            if text[index...].hasPrefix("://") { return index..<text.index(index, offsetBy: 3) }
            index = text.index(after: index)
        }
        return nil
    }

    /// `host:port`, as etcdctl prints endpoints in `endpoint status`.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// TLS settings for client connections (etcdctl's `--cacert --cert --key --insecure-skip-tls-verify`).
public struct EtcdTLSConfiguration: Sendable, Hashable {
    /// PEM bundle of trusted CAs; the system roots when nil.
    public var trustedCAFile: String?
    /// PEM client certificate and key, for servers that require client certificates.
    public var certificateFile: String?
    public var keyFile: String?
    public var insecureSkipVerify: Bool

    public init(trustedCAFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, insecureSkipVerify: Bool = false) {
        self.trustedCAFile = trustedCAFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.insecureSkipVerify = insecureSkipVerify
    }
}

/// How to reach a cluster.
public struct EtcdClientConfiguration: Sendable {
    public var endpoints: [EtcdEndpoint]
    /// How long a call waits for a connection before failing (etcdctl `--dial-timeout`, 2 s).
    public var dialTimeout: Duration
    /// Deadline for a unary call once connected (etcdctl `--command-timeout`, 5 s). Streams
    /// (watch, keep-alive, snapshot) have no deadline.
    public var requestTimeout: Duration
    public var tls: EtcdTLSConfiguration?
    /// User name and password: the client authenticates once and refreshes the token when
    /// the server says it is invalid.
    public var credentials: (user: String, password: String)?
    /// A token obtained elsewhere, sent as it is (a server acting for its caller).
    public var token: String?

    public init(
        endpoints: [EtcdEndpoint] = [EtcdEndpoint(host: "127.0.0.1", port: 2379)],
        dialTimeout: Duration = .seconds(2),
        requestTimeout: Duration = .seconds(5),
        tls: EtcdTLSConfiguration? = nil,
        credentials: (user: String, password: String)? = nil
    ) {
        self.endpoints = endpoints
        self.dialTimeout = dialTimeout
        self.requestTimeout = requestTimeout
        self.tls = tls
        self.credentials = credentials
    }
}
