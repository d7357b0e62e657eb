import Crypto
import Foundation
import Testing

@testable import EtcdServer

@Suite struct JWTTokensTests {
    /// An ES256 key pair in files, as `--auth-token jwt,pub-key=…,priv-key=…` names them.
    private func keyFiles() throws -> (directory: URL, options: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jwt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let key = P256.Signing.PrivateKey()
        try key.pemRepresentation.write(to: directory.appendingPathComponent("key.pem"), atomically: true, encoding: .utf8)
        try key.publicKey.pemRepresentation.write(to: directory.appendingPathComponent("pub.pem"), atomically: true, encoding: .utf8)
        let options = "pub-key=\(directory.path)/pub.pem,priv-key=\(directory.path)/key.pem,sign-method=ES256,ttl=1m30s"
        return (directory, options)
    }

    @Test func signedTokensNameTheirUserUntilTheyExpire() throws {
        let (directory, options) = try keyFiles()
        defer { try? FileManager.default.removeItem(at: directory) }
        let tokens = try JWTTokens(options: options)
        #expect(tokens.lifetime == 90)
        let now = Date()
        let token = try #require(try tokens.token(user: "alice \"quoted\"", revision: 7, now: now))
        let checked = try #require(tokens.check(token, now: now))
        #expect(checked.user == "alice \"quoted\"" && checked.revision == 7)
        #expect(tokens.check(token, now: now + 91) == nil)
        // Forged: a signature character well inside changed (the last one carries padding
        // bits too, which a changed character may touch alone).
        var forged = Array(token)
        let inside = forged.count - 10
        forged[inside] = forged[inside] == "A" ? "B" : "A"
        #expect(tokens.check(String(forged), now: now) == nil)
        #expect(tokens.check("not.a.token", now: now) == nil)
    }

    @Test func badOptionsAreRefusedWithAReason() throws {
        #expect(throws: JWTTokens.Failure.self) { try JWTTokens(options: "sign-method=RS256") }
        #expect(throws: JWTTokens.Failure.self) { try JWTTokens(options: "pub-key=/nonexistent,sign-method=RS256") }
        let (directory, options) = try keyFiles()
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(throws: JWTTokens.Failure.self) { try JWTTokens(options: options.replacingOccurrences(of: "ES256", with: "XX1")) }
        #expect(throws: JWTTokens.Failure.self) { try JWTTokens(options: options.replacingOccurrences(of: "1m30s", with: "10")) }
    }
}
