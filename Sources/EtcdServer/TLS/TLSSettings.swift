import Crypto
import EtcdClient
import Foundation
import NIOSSL
import SwiftASN1
import Synchronization
import X509

/// One side's TLS flags, as etcd has them for clients (`--cert-file`, `--key-file`,
/// `--trusted-ca-file`, `--client-cert-auth`, `--auto-tls`) and for peers (the same with
/// `--peer-`), plus `--cipher-suites` for both.
public struct TLSSettings: Sendable {
    public var certificateFile: String?
    public var keyFile: String?
    public var trustedCAFile: String?
    /// Require and verify a client certificate signed by `trustedCAFile`.
    public var clientCertificateAuth = false
    /// Without certificate files: generate a self-signed one (kept in the data directory).
    public var autoTLS = false
    /// Go's names of the TLS 1.2 cipher suites to allow (empty: the library's defaults).
    public var cipherSuites: [String] = []
    /// `--client-crl-file`: client certificates this list names are refused.
    public var revocationListFile: String?

    public init() {}

    /// Whether this side speaks TLS.
    public var isEnabled: Bool { certificateFile != nil || autoTLS }
}

/// The contexts one side needs: a server's for its listener and a client's for the
/// connections it makes (peers dial peers; a member calls its own and others' client ports).
struct TLSContexts: Sendable {
    let server: NIOSSLContext
    let client: NIOSSLContext
    /// The configuration clients of this side's port use (trusted CA, client certificate).
    let clientFiles: (certificate: String?, key: String?, trustedCA: String?, skipVerify: Bool)
}

struct TLSSetupError: Error, CustomStringConvertible {
    let description: String
}

extension TLSSettings {
    /// Builds the contexts. With `autoTLS` and no files, a self-signed certificate for
    /// `hosts` is made in `fixtures` (or reused from an earlier start), as etcd does; peers
    /// and clients then skip verification of it.
    func contexts(fixtures: String, hosts: [String], applicationProtocols: [String]) throws -> TLSContexts {
        var certificateFile = self.certificateFile
        var keyFile = self.keyFile
        var selfSigned = false
        if certificateFile == nil, autoTLS {
            (certificateFile, keyFile) = try Self.selfSignedCertificate(in: fixtures, hosts: hosts)
            selfSigned = true
        }
        guard let certificateFile, let keyFile else { throw TLSSetupError(description: "TLS needs both a certificate and a key file") }
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw TLSSetupError(description: "cannot load the certificate \(certificateFile) or key \(keyFile): \(error)")
        }
        guard !chain.isEmpty else { throw TLSSetupError(description: "\(certificateFile) holds no certificate") }
        let ciphers = try cipherSuites.map { name -> NIOTLSCipher in
            guard let value = Self.goCipherSuites[name] else {
                throw TLSSetupError(description: "unexpected TLS cipher suite \"\(name)\"")
            }
            return NIOTLSCipher(rawValue: value)
        }

        var server = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        server.minimumTLSVersion = .tlsv12
        server.applicationProtocols = applicationProtocols
        if !ciphers.isEmpty { server.cipherSuiteValues = ciphers }
        if let trustedCAFile { server.trustRoots = .file(trustedCAFile) }
        server.certificateVerification = clientCertificateAuth ? .noHostnameVerification : .none

        var client = TLSConfiguration.makeClientConfiguration()
        client.minimumTLSVersion = .tlsv12
        client.certificateChain = chain.map { .certificate($0) }
        client.privateKey = .privateKey(key)
        if let trustedCAFile {
            client.trustRoots = .file(trustedCAFile)
            client.certificateVerification = .noHostnameVerification
        } else {
            // A self-signed certificate (auto TLS) cannot be verified: etcd skips it too.
            client.certificateVerification = .none
        }
        do {
            return TLSContexts(
                server: try NIOSSLContext(configuration: server), client: try NIOSSLContext(configuration: client),
                clientFiles: (certificateFile, keyFile, trustedCAFile, selfSigned || trustedCAFile == nil))
        } catch {
            throw TLSSetupError(description: "TLS setup failed: \(error)")
        }
    }

    /// etcd's auto TLS: an ECDSA P-256 certificate valid for a year, for the hosts of the
    /// listen URLs, written as `cert.pem` and `key.pem` (made once, then reused).
    static func selfSignedCertificate(in directory: String, hosts: [String]) throws -> (String, String) {
        let certificatePath = directory + "/cert.pem"
        let keyPath = directory + "/key.pem"
        let files = FileManager.default
        if files.fileExists(atPath: certificatePath), files.fileExists(atPath: keyPath) { return (certificatePath, keyPath) }
        try files.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let privateKey = P256.Signing.PrivateKey()
        let now = Date()
        let subject = try DistinguishedName { OrganizationName("etcd") }
        var names: [GeneralName] = []
        for host in Set(hosts + ["localhost", "127.0.0.1"]).sorted() {
            if let address = IPv4Address(host) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(address.bytes))))
            } else {
                names.append(.dnsName(host))
            }
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            SubjectAlternativeNames(names)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(privateKey.publicKey),
            notValidBefore: now - 60, notValidAfter: now + 365 * 86_400, issuer: subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: Certificate.PrivateKey(privateKey))
        let certificatePEM = try certificate.serializeAsPEM().pemString + "\n"
        try Data(certificatePEM.utf8).write(to: URL(fileURLWithPath: certificatePath))
        try Data((privateKey.pemRepresentation + "\n").utf8).write(to: URL(fileURLWithPath: keyPath))
        chmod(keyPath, 0o600)
        return (certificatePath, keyPath)
    }

    /// Go's `crypto/tls` names of TLS 1.2 suites and their IANA numbers.
    static let goCipherSuites: [String: UInt16] = [
        "TLS_RSA_WITH_AES_128_CBC_SHA": 0x002F, "TLS_RSA_WITH_AES_256_CBC_SHA": 0x0035,
        "TLS_RSA_WITH_AES_128_GCM_SHA256": 0x009C, "TLS_RSA_WITH_AES_256_GCM_SHA384": 0x009D,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": 0xC009, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": 0xC00A,
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": 0xC013, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": 0xC014,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": 0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": 0xC02C,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": 0xC02F, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": 0xC030,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": 0xCCA8, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": 0xCCA9,
    ]
}

/// The common name of a certificate's subject (etcd takes it as the user name of a
/// client that sends no token).
func commonName(of certificate: NIOSSLCertificate) -> String? {
    guard let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else { return nil }
    for relativeName in parsed.subject {
        for attribute in relativeName where attribute.type == .RDNAttributeType.commonName {
            return String(describing: attribute.value)
        }
    }
    return nil
}

/// The common name of the first certificate in a PEM file (nil when it has none); throws
/// when the file is not a certificate. etcd's grpc-proxy refuses a client certificate with
/// a common name, which members would take as a user name.
public func commonName(ofCertificateFile path: String) throws -> String? {
    guard let first = try NIOSSLCertificate.fromPEMFile(path).first else { return nil }
    let name = commonName(of: first)
    return name?.isEmpty == true ? nil : name
}

/// A dotted IPv4 address.
private struct IPv4Address {
    let bytes: [UInt8]

    init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard let value = UInt8(part) else { return nil }
            bytes.append(value)
        }
        self.bytes = bytes
    }
}

/// TLS for the calls a member makes itself: to client ports (its own, for the lock and
/// election services; the leader's, to pass on a membership change) and to peer ports (a
/// joining member asks for the member list). Set once at start.
enum MemberTLS {
    static let clientPorts = Mutex<EtcdTLSConfiguration?>(nil)
    static let peerPorts = Mutex<EtcdTLSConfiguration?>(nil)

    /// The TLS for a call to a client port: only for https ones (a member may serve plain
    /// HTTP on one URL and TLS on another).
    static func forClientPort(secure: Bool) -> EtcdTLSConfiguration? {
        secure ? clientPorts.withLock { $0 } : nil
    }

    static func configuration(_ files: (certificate: String?, key: String?, trustedCA: String?, skipVerify: Bool))
        -> EtcdTLSConfiguration
    {
        EtcdTLSConfiguration(
            trustedCAFile: files.trustedCA, certificateFile: files.certificate, keyFile: files.key, insecureSkipVerify: files.skipVerify)
    }
}
