import Foundation
import Testing

@testable import EtcdServer

@Suite struct ServerLogTests {
    /// A log into a fresh file, and what it wrote.
    private func written(_ format: ServerLog.Format, level: ServerLog.Level = .info, _ body: (ServerLog) -> Void) throws -> [String] {
        let path = NSTemporaryDirectory() + "server-log-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = try ServerLog.open(format: format, level: level, outputs: [.file(path)])
        body(log)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n").map(String.init)
    }

    @Test func capnslogLinesAsEtcdWritesThem() throws {
        let lines = try written(.capnslog) { log in
            log.info("etcdserver", "published {Name:a ClientURLs:[http://x:1]} to cluster 1f", caller: "etcdserver/server.go:2069")
            log.log(.notice, "embed", "serving insecure client requests on 127.0.0.1:2379, this is strongly discouraged!", caller: "")
            log.log(.debug, "embed", "not shown at info", caller: "")
        }
        #expect(lines.count == 2)
        // `2006-01-02 15:04:05.000000 I | package: text`
        let pattern = #/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6} ([A-Z]) \| ([a-z/]+): (.*)$/#
        let first = try #require(lines[0].wholeMatch(of: pattern))
        #expect(first.1 == "I" && first.2 == "etcdserver")
        #expect(first.3 == "published {Name:a ClientURLs:[http://x:1]} to cluster 1f")
        #expect(try #require(lines[1].wholeMatch(of: pattern)).1 == "N")
    }

    @Test func zapLinesAreJSONWithEtcdsFields() throws {
        let lines = try written(.zap, level: .debug) { log in
            log.info(
                "etcdserver/api", "enabled capabilities for version 3.4", caller: "api/capability.go:76",
                message: "enabled capabilities for version", ["cluster-version": "3.4", "n": .int(3), "urls": .strings(["a", "b<"])])
            log.log(.warning, "auth", "simple token is not cryptographically signed", caller: "auth/store.go:1380")
        }
        #expect(lines.count == 2)
        let object = try #require(JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(object["level"] as? String == "info")
        #expect(object["msg"] as? String == "enabled capabilities for version")
        #expect(object["caller"] as? String == "api/capability.go:76")
        #expect(object["cluster-version"] as? String == "3.4")
        #expect(object["n"] as? Int == 3)
        #expect(object["urls"] as? [String] == ["a", "b<"])
        #expect((object["ts"] as? String)?.wholeMatch(of: #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/#) != nil)
        #expect(lines[0].contains(#""b\u003c""#), "Go's HTML-safe escaping")
        let warning = try #require(JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
        #expect(warning["level"] as? String == "warn")
        #expect(warning["msg"] as? String == "simple token is not cryptographically signed")
    }

    @Test func levelsAndOutputsFromEtcdsFlags() throws {
        #expect(ServerLog.Level(flag: "warn") == .warning)
        #expect(ServerLog.Level(flag: "panic") == .fatal)
        #expect(ServerLog.Level(flag: "verbose") == nil)
        #expect(ServerLog.Output(flag: "default") == .standardError)
        #expect(ServerLog.Output(flag: "stdout") == .standardOutput)
        #expect(ServerLog.Output(flag: "/var/log/etcd.log") == .file("/var/log/etcd.log"))
        #expect(throws: ServerLog.LogError.self) {
            try ServerLog.open(format: .zap, level: .info, outputs: [.file("/nonexistent-directory/etcd.log")])
        }
    }
}

@Suite struct EtcdConfigFileTests {
    @Test func flagNamesNestedTLSAndLists() throws {
        let text = """
            name: 'infra1'
            data-dir:
            listen-client-urls: http://127.0.0.1:2379,https://10.0.0.1:2379
            enable-v2: true
            log-outputs: [stderr, /var/log/etcd.log]
            client-transport-security:
              cert-file: /etc/etcd/server.crt
              client-cert-auth: true
              crl-file: /etc/etcd/client.crl
            peer-transport-security:
              key-file: /etc/etcd/peer.key
              auto-tls: false
              crl-file:
            """
        let settings = try EtcdConfigFile.settings(Array(text.utf8), path: "etcd.yml")
        #expect(settings["name"] == "infra1")
        #expect(settings["data-dir"] == nil, "an empty value keeps etcd's default")
        #expect(settings["listen-client-urls"] == "http://127.0.0.1:2379,https://10.0.0.1:2379")
        #expect(settings["enable-v2"] == "true")
        #expect(settings["log-outputs"] == "stderr,/var/log/etcd.log")
        #expect(settings["cert-file"] == "/etc/etcd/server.crt")
        #expect(settings["client-cert-auth"] == "true")
        #expect(settings["client-crl-file"] == "/etc/etcd/client.crl")
        #expect(settings["peer-key-file"] == "/etc/etcd/peer.key")
        #expect(settings["peer-auto-tls"] == "false")
        #expect(settings["peer-crl-file"] == nil)
    }

    @Test func badFilesAreRefusedWithTheirLine() {
        for text in ["name: [unclosed", "- a list\n- not a mapping", "name:\n  nested: mapping"] {
            #expect(throws: EtcdConfigFile.ParseError.self) { try EtcdConfigFile.settings(Array(text.utf8), path: "bad.yml") }
        }
        #expect((try? EtcdConfigFile.settings([], path: "empty.yml")) == [:])
    }
}

@Suite struct RevocationListTests {
    /// Made with `openssl ca -gencrl` after revoking the certificate with serial 0x1000.
    static let pem = """
        -----BEGIN X509 CRL-----
        MIHAMGkCAQEwCgYIKoZIzj0EAwIwEjEQMA4GA1UEAwwHdGVzdC1jYRcNMjYxMjA4
        MDIwMzUzWhcNMzYxMjA1MDIwMzUzWjAVMBMCAhAAFw0yNjEyMDgwMjAzNTNaoA8w
        DTALBgNVHRQEBAICEAEwCgYIKoZIzj0EAwIDRwAwRAIgF8o/YBYlCqAEQ8RygJHX
        3rjPgZq/KTV6NkqhYqZehJkCIFZemdS+4xUyJT4su9X3CSgSC2ym6f0145toeNUF
        kuDe
        -----END X509 CRL-----
        """

    @Test func revokedSerialsFromPEMAndDER() throws {
        let list = try RevocationList(bytes: Array(Self.pem.utf8))
        #expect(list.serials == [[0x10, 0x00]])
        let base64 = Self.pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        let der = try #require(Data(base64Encoded: base64))
        #expect(try RevocationList(bytes: Array(der)).serials == list.serials)
    }

    @Test func whatIsNoCRLIsRefused() {
        for bytes: [UInt8] in [[], [0x30, 0x03, 0x02, 0x01, 0x01], Array("-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----".utf8)] {
            #expect(throws: RevocationList.ParseError.self) { try RevocationList(bytes: bytes) }
        }
    }
}
