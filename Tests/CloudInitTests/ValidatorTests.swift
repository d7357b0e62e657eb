import Glibc
import CloudInit
import Testing
import TestSupport
import YAML

@Suite struct ValidatorTests {
    static func findings(_ text: String) -> [String] {
        CloudConfigValidator.validate(userData: Array(text.utf8)).map(\.description)
    }

    @Test func aCleanConfigHasNoFindings() {
        let text = """
            #cloud-config
            hostname: node1
            ssh_authorized_keys: ["ssh-rsa AAAA a@b"]
            manage_etc_hosts: localhost
            users:
              - name: core
                passwd: $6$x$y
                groups: [wheel, docker]
                no-create-home: yes
                shell: /bin/bash
            write_files:
              - path: /etc/motd
                permissions: 0644
                owner: root:root
                content: hi
              - path: /etc/b64
                encoding: b64
                content: aGVsbG8K
            coreos:
              etcd2: {name: n1, heartbeat_interval: 100, proxy: "off", debug: true}
              fleet: {metadata: "region=x", engine_reconcile_interval: 2, verbosity: 1}
              flannel: {interface: eth1, ip_masq: true}
              locksmith: {window_start: Thu 04:00, window_length: 1h30m}
              update: {reboot-strategy: etcd-lock, group: stable}
              oem: {id: x, name: X}
              units:
                - name: a.service
                  command: reload-or-try-restart
                  enable: on
                  drop-ins: [{name: 10.conf, content: "[Service]\\n"}]

            """
        #expect(Self.findings(text) == [])
    }

    @Test func everyKindOfFindingWithItsLine() {
        let text = """
            #cloud-config
            hostnme: x
            coreos:
              etcd2:
                proxy: maybe
                heartbeat_interval: fast
                ca_file: /x
              units:
                - name: a.service
                  command: jump
                - oops
              update:
                reboot_strategy: best-effort
              write_files: []
            write_files:
              - path: /usr/lib/x
                encoding: base64
                content: "!!"
              - path: /etc/y
                permissions: 999
            users:
              - name: u
                groups: wheel
                coreos_ssh_import_url: http://x
            manage_etc_hosts:
            """
        #expect(
            Self.findings(text) == [
                "line 2: warning: unrecognized key \"hostnme\"",
                "line 5: error: invalid value maybe",
                "line 6: warning: incorrect type for \"heartbeat_interval\" (want int)",
                "line 7: warning: deprecated key \"ca_file\" (ca_file obsoleted by trusted_ca_file and client_cert_auth)",
                "line 10: error: invalid value jump",
                "line 11: warning: incorrect type for \"units[1]\" (want struct)",
                "line 13: error: invalid value best-effort",
                "line 14: warning: unrecognized key \"write_files\"",
                "line 14: info: write_files doesn't belong under coreos",
                "line 16: error: file cannot be written to a read-only filesystem",
                "line 18: error: content cannot be decoded as \"base64\"",
                "line 20: error: invalid value 999",
                "line 23: warning: incorrect type for \"groups\" (want []string)",
                "line 24: warning: deprecated key \"coreos_ssh_import_url\" (trying to fetch from a remote endpoint introduces too many intermittent errors)",
                "line 25: warning: incorrect type for \"manage_etc_hosts\" (want string)",
            ])
    }

    @Test func headersAndRecognition() {
        let bad = ["line 1: error: must be \"#cloud-config\" or begin with \"#!\""]
        #expect(Self.findings("") == [])
        #expect(Self.findings("#!/bin/sh\necho hi\n") == [])
        #expect(Self.findings("#! /bin/bash\n") == [])
        #expect(Self.findings("{\"ignition\": {\"version\": \"2.0.0\"}}") == [])
        #expect(Self.findings("{\"ignitionVersion\": 1}") == [])
        #expect(Self.findings("{\"other\": 1}") == bad)
        #expect(Self.findings("#cloud-config  \t\r\nhostname: a\r\nusers:\r\n  - name: b\r\n") == [])
        #expect(Self.findings("# cloud-config\n") == bad)
        #expect(Self.findings("\u{FEFF}#cloud-config\n") == bad)
        #expect(Self.findings("#cloud-config-archive\n") == bad)
        #expect(Self.findings("hostname: a\n") == bad)
        #expect(Self.findings("#cloud-config\n") == [])
        #expect(Self.findings("#cloud-config\n~\n") == [])
        #expect(Self.findings("#cloud-config\n- a\n- b\n") == ["line 2: error: the cloud-config must be a mapping of keys, not a list"])
        #expect(Self.findings("#cloud-config\njust text\n") == ["line 2: error: the cloud-config must be a mapping of keys, not a scalar"])
        // Only the first document counts, as upstream.
        #expect(Self.findings("#cloud-config\nhostname: a\n---\nbogus: 1\n") == [])
    }

    @Test func gzipUserDataIsUnpackedFirst() {
        // "#cloud-config\nhostnme: a\n", gzip -n.
        let packed = gzip(Array("#cloud-config\nhostnme: a\n".utf8))
        #expect(CloudConfigValidator.validate(userData: packed).map(\.description) == ["line 2: warning: unrecognized key \"hostnme\""])
        #expect(CloudConfigValidator.validate(userData: [0x1f, 0x8b, 1, 2, 3]).first?.kind == .error)
    }

    @Test func yamlErrorsAreOneBasedWithColumn() {
        #expect(Self.findings("#cloud-config\nhostname: [a\n") == ["line 3: error: did not find expected ',' or ']' (column 1)"])
        #expect(Self.findings("#cloud-config\na: b: c\n") == ["line 2: error: mapping values are not allowed in this context (column 5)"])
        #expect(Self.findings("#cloud-config\nhostname: a\n\u{1}\n").first?.hasPrefix("line 3: error:") == true)
        let invalidUTF8 = Array("#cloud-config\nhostname: ".utf8) + [0xff, 0xfe, 0x0a]
        #expect(CloudConfigValidator.validate(userData: invalidUTF8).first?.description.contains("line 2: error:") == true)
    }

    @Test func dashesAndDuplicatesAndMerges() {
        #expect(Self.findings("#cloud-config\nwrite-files:\n  - path: /a\n    permissions: '0644'\n") == [])
        // The last of two keys wins, dash or not; only it is checked.
        #expect(Self.findings("#cloud-config\ncoreos:\n  update:\n    reboot-strategy: bogus\n    reboot_strategy: 'off'\n") == [])
        #expect(
            Self.findings("#cloud-config\nbase: &b {name: x}\ncoreos:\n  units:\n    - <<: *b\n      command: start\n")
                == ["line 2: warning: unrecognized key \"base\""])
    }

    @Test func typesFollowYAML11() {
        #expect(Self.findings("#cloud-config\ncoreos:\n  units: [{name: a.service, enable: 'yes'}]\n") == [
            "line 3: warning: incorrect type for \"enable\" (want bool)"
        ])
        #expect(Self.findings("#cloud-config\ncoreos:\n  etcd2: {election_timeout: 0x10, snapshot_count: 1_000}\n") == [])
        #expect(Self.findings("#cloud-config\ncoreos:\n  etcd2: {election_timeout: 1.5}\n") == [
            "line 3: warning: incorrect type for \"election_timeout\" (want int)"
        ])
        #expect(Self.findings("#cloud-config\nhostname: 0123\nusers: [{name: 1.10}]\n") == [])
        #expect(Self.findings("#cloud-config\nhostname: {a: 1}\n") == ["line 2: warning: incorrect type for \"hostname\" (want string)"])
        #expect(Self.findings("#cloud-config\nssh_authorized_keys: [[a]]\n") == [
            "line 2: warning: incorrect type for \"ssh_authorized_keys[0]\" (want string)"
        ])
    }

    @Test func permissionsAndWindowPatterns() {
        for good in ["644", "0644", "1777", "01777", "755"] {
            #expect(Self.findings("#cloud-config\nwrite_files: [{path: /a, permissions: '\(good)'}]\n") == [], "\(good)")
        }
        for bad in ["64", "0888", "11777", "rw-r--r--"] {
            #expect(Self.findings("#cloud-config\nwrite_files: [{path: /a, permissions: '\(bad)'}]\n") == ["line 2: error: invalid value \(bad)"])
        }
        for good in ["04:00", "Thu 04:00", "sun 0:0", "23:59", "Mon 0023:0059"] {
            #expect(Self.findings("#cloud-config\ncoreos: {locksmith: {window_start: '\(good)'}}\n") == [], "\(good)")
        }
        for bad in ["24:00", "Thursday 04:00", "4", "12:60"] {
            #expect(Self.findings("#cloud-config\ncoreos: {locksmith: {window_start: '\(bad)'}}\n").count == 1, "\(bad)")
        }
        for good in ["1h", "1h30m", "-1.5h", ".5s"] {
            #expect(Self.findings("#cloud-config\ncoreos: {locksmith: {window_length: '\(good)'}}\n") == [], "\(good)")
        }
        for bad in ["1", "1H", "h1"] {
            #expect(Self.findings("#cloud-config\ncoreos: {locksmith: {window_length: '\(bad)'}}\n").count == 1, "\(bad)")
        }
    }

    @Test func usrPathsAsUpstreamComputesThem() {
        for path in ["/usr/x", "/usrlocal/x", "/var/../usr/x", "/usr/share/oem/x"] {
            #expect(Self.findings("#cloud-config\nwrite_files: [{path: '\(path)'}]\n").count == 1, "\(path)")
        }
        for path in ["/usr", "/etc/usr/x", "usr/x"] {
            #expect(Self.findings("#cloud-config\nwrite_files: [{path: '\(path)'}]\n") == [], "\(path)")
        }
        #expect(Self.findings("#cloud-config\nwrite_files: [{content: x}]\n") == ["line 2: error: write_files[0] has no path"])
    }

    @Test func discoveryURLOfTheOldEtcdSection() {
        let findings = Self.findings("#cloud-config\ncoreos:\n  etcd:\n    discovery: not a url\n")
        #expect(findings.contains("line 4: warning: discovery URL is not valid"))
        #expect(findings.contains { $0.hasPrefix("line 3: warning: deprecated key \"etcd\"") })
    }
}

func gzip(_ bytes: [UInt8]) -> [UInt8] { ExternalTools.gzip(bytes) }
