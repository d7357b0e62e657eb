import Foundation
import NIOSSL
import SwiftASN1
import X509

/// The serial numbers an X.509 certificate revocation list names (`--client-crl-file`): a
/// client certificate among them is refused, as etcd refuses it. As etcd, the list is read
/// once at start and its signature is not checked (it comes from the administrator's disk).
public struct RevocationList: Sendable, Equatable {
    public private(set) var serials: Set<[UInt8]> = []

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// A CRL in PEM (`-----BEGIN X509 CRL-----`) or DER.
    public init(contentsOf path: String) throws(ParseError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ParseError(description: "cannot read the CRL file \(path)")
        }
        try self.init(bytes: Array(data), path: path)
    }

    public init(bytes: [UInt8], path: String = "CRL") throws(ParseError) {
        var der = bytes
        if let text = String(bytes: bytes, encoding: .utf8), text.contains("-----BEGIN X509 CRL-----") {
            do {
                der = try PEMDocument(pemString: text).derBytes
            } catch {
                throw ParseError(description: "\(path): not a PEM CRL: \(error)")
            }
        }
        do {
            serials = try Self.revokedSerials(der)
        } catch let error as ParseError {
            throw ParseError(description: "\(path): \(error.description)")
        } catch {
            throw ParseError(description: "\(path): not a DER CRL: \(error)")
        }
    }

    /// CertificateList ::= SEQUENCE { tbsCertList SEQUENCE { [version INTEGER],
    /// signature AlgorithmIdentifier, issuer Name, thisUpdate Time, [nextUpdate Time],
    /// [revokedCertificates SEQUENCE OF SEQUENCE { userCertificate INTEGER, … }], [0] … }, … }
    private static func revokedSerials(_ der: [UInt8]) throws -> Set<[UInt8]> {
        let root = try DER.parse(der)
        guard case .constructed(let outer) = root.content, let tbs = outer.first(where: { _ in true }),
            case .constructed(let fields) = tbs.content
        else { throw ParseError(description: "not a certificate list") }
        var sequencesSeen = 0
        var serials: Set<[UInt8]> = []
        for field in fields where field.identifier == .sequence {
            sequencesSeen += 1
            // The first two sequences are the signature algorithm and the issuer.
            guard sequencesSeen == 3, case .constructed(let entries) = field.content else { continue }
            for entry in entries {
                guard case .constructed(let parts) = entry.content, let serial = parts.first(where: { _ in true }),
                    serial.identifier == .integer, case .primitive(let bytes) = serial.content
                else { throw ParseError(description: "a revoked entry has no serial number") }
                serials.insert(normalized(bytes))
            }
        }
        return serials
    }

    private static func normalized(_ bytes: some Collection<UInt8>) -> [UInt8] {
        Array(bytes.drop { $0 == 0 })
    }

    /// Whether `certificate` (a verified client certificate) is revoked.
    func revokes(_ certificate: NIOSSLCertificate) -> Bool {
        guard !serials.isEmpty, let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else {
            return false
        }
        return serials.contains(Self.normalized(parsed.serialNumber.bytes))
    }
}
