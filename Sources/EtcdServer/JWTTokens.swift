import Crypto
import CryptoExtras
import Foundation
import SwiftASN1
import X509

/// etcd's `--auth-token jwt,pub-key=…,priv-key=…,sign-method=…,ttl=…`: a token is signed
/// claims (`exp`, `revision`, `username`), checked on any member by its signature and
/// expiry; nothing goes through the log. As with etcd 3.4, a token made before a later
/// auth change still names its user; the permissions checked are the current ones.
struct JWTTokens: Sendable {
    private let method: String
    private let sign: (@Sendable (Data) throws -> Data)?
    private let verify: @Sendable (_ signature: Data, _ signed: Data) -> Bool
    let lifetime: TimeInterval

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Parses etcd's option string (after `jwt,`).
    init(options: String) throws {
        var settings: [String: String] = [:]
        for option in options.split(separator: ",") {
            let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw Failure(description: "invalid auth token option \"\(option)\"") }
            settings[parts[0]] = parts[1]
        }
        guard let method = settings["sign-method"] else { throw Failure(description: "jwt: sign-method is required") }
        guard let publicPath = settings["pub-key"] else { throw Failure(description: "jwt: pub-key is required") }
        self.method = method
        lifetime = try settings["ttl"].map(Self.goDuration) ?? 300
        func pem(_ path: String) throws -> String {
            do {
                return try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw Failure(description: "jwt: cannot read \(path): \(error)")
            }
        }
        // etcd takes the public key from a certificate as well (its e2e suite signs with the
        // server's key and verifies with server.crt).
        var publicPEM = try pem(publicPath)
        if publicPEM.contains("-----BEGIN CERTIFICATE-----") {
            do {
                let certificate = try Certificate(pemEncoded: publicPEM)
                publicPEM = try certificate.publicKey.serializeAsPEM().pemString
            } catch {
                throw Failure(description: "jwt: cannot read the public key of the certificate \(publicPath): \(error)")
            }
        }
        let privatePEM = try settings["priv-key"].map(pem)
        do {
            switch method {
            case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
                let padding: _RSA.Signing.Padding = method.hasPrefix("PS") ? .PSS : .insecurePKCS1v1_5
                let bits = Int(method.dropFirst(2)) ?? 256
                let publicKey = try _RSA.Signing.PublicKey(pemRepresentation: publicPEM)
                verify = { signature, signed in
                    publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: Self.digest(signed, bits), padding: padding)
                }
                sign = try privatePEM.map { text in
                    let privateKey = try _RSA.Signing.PrivateKey(pemRepresentation: text)
                    return { data in try privateKey.signature(for: Self.digest(data, bits), padding: padding).rawRepresentation }
                }
            case "ES256":
                let publicKey = try P256.Signing.PublicKey(pemRepresentation: publicPEM)
                verify = { signature, signed in
                    guard let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
                    return publicKey.isValidSignature(parsed, for: SHA256.hash(data: signed))
                }
                sign = try privatePEM.map { text in
                    let privateKey = try P256.Signing.PrivateKey(pemRepresentation: text)
                    return { data in try privateKey.signature(for: SHA256.hash(data: data)).rawRepresentation }
                }
            case "ES384":
                let publicKey = try P384.Signing.PublicKey(pemRepresentation: publicPEM)
                verify = { signature, signed in
                    guard let parsed = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
                    return publicKey.isValidSignature(parsed, for: SHA384.hash(data: signed))
                }
                sign = try privatePEM.map { text in
                    let privateKey = try P384.Signing.PrivateKey(pemRepresentation: text)
                    return { data in try privateKey.signature(for: SHA384.hash(data: data)).rawRepresentation }
                }
            default:
                throw Failure(description: "jwt: unsupported sign-method \"\(method)\" (RS256/384/512, PS256/384/512, ES256, ES384)")
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "jwt: cannot load the keys: \(error)")
        }
    }

    private static func digest(_ data: Data, _ bits: Int) -> any Digest {
        switch bits {
        case 384: SHA384.hash(data: data)
        case 512: SHA512.hash(data: data)
        default: SHA256.hash(data: data)
        }
    }

    /// A signed token for `user` at auth revision `revision`; nil when this member has no
    /// private key (it can check tokens, not make them).
    func token(user: String, revision: UInt64, now: Date = Date()) throws -> String? {
        guard let sign else { return nil }
        let header = Self.base64URL(Data(#"{"alg":"\#(method)","typ":"JWT"}"#.utf8))
        let expiry = Int64(now.timeIntervalSince1970 + lifetime)
        let claims = Self.base64URL(Data(#"{"exp":\#(expiry),"revision":\#(revision),"username":\#(Self.quoted(user))}"#.utf8))
        let signed = header + "." + claims
        return signed + "." + Self.base64URL(try sign(Data(signed.utf8)))
    }

    /// The user and auth revision a valid, unexpired token names; nil otherwise.
    func check(_ token: String, now: Date = Date()) -> (user: String, revision: UInt64)? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let signature = Self.fromBase64URL(parts[2]), let claimsData = Self.fromBase64URL(parts[1]),
            verify(signature, Data("\(parts[0]).\(parts[1])".utf8)),
            let claims = try? JSONSerialization.jsonObject(with: claimsData) as? [String: Any],
            let user = claims["username"] as? String, let expiry = (claims["exp"] as? NSNumber)?.doubleValue,
            expiry > now.timeIntervalSince1970
        else { return nil }
        return (user, (claims["revision"] as? NSNumber)?.uint64Value ?? 0)
    }

    private static func quoted(_ text: String) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: [text])) ?? Data("[\"\"]".utf8), as: UTF8.self)
            .dropFirst().dropLast().description
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func fromBase64URL(_ text: Substring) -> Data? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard)
    }

    /// Go's `time.ParseDuration` for the units a TTL uses (`10m`, `300s`, `1h30m`, `500ms`).
    static func goDuration(_ text: String) throws -> TimeInterval {
        var total: TimeInterval = 0
        var number = ""
        var index = text.startIndex
        guard !text.isEmpty else { throw Failure(description: "jwt: empty ttl") }
        while index < text.endIndex {
            let character = text[index]
            if character.isNumber || character == "." {
                number.append(character)
                index = text.index(after: index)
                continue
            }
            var unit = String(character)
            index = text.index(after: index)
            if unit == "m", index < text.endIndex, text[index] == "s" {
                unit = "ms"
                index = text.index(after: index)
            }
            guard let value = Double(number) else { throw Failure(description: "jwt: invalid ttl \"\(text)\"") }
            switch unit {
            case "h": total += value * 3600
            case "m": total += value * 60
            case "s": total += value
            case "ms": total += value / 1000
            default: throw Failure(description: "jwt: invalid ttl \"\(text)\"")
            }
            number = ""
        }
        guard number.isEmpty else { throw Failure(description: "jwt: invalid ttl \"\(text)\" (missing unit)") }
        return total
    }
}
