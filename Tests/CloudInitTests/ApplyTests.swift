import CloudInit
import Foundation
import Testing

/// A temporary machine root with the account files useradd needs; removed afterwards.
final class ScratchRoot {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "cloudinit-root-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let files = FileManager.default
        try files.createDirectory(atPath: path + "/etc", withIntermediateDirectories: true)
        try files.createDirectory(atPath: path + "/home/core", withIntermediateDirectories: true)
        try "root:x:0:0:root:/root:/bin/bash\ncore:x:500:500:CoreOS Admin:/home/core:/bin/bash\n".write(
            toFile: path + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\nwheel:x:10:\ncore:x:500:\n".write(toFile: path + "/etc/group", atomically: true, encoding: .utf8)
        try "root:*:19000:0:99999:7:::\ncore:*:19000:0:99999:7:::\n".write(toFile: path + "/etc/shadow", atomically: true, encoding: .utf8)
        try "root:*::\nwheel:*::\ncore:!::\n".write(toFile: path + "/etc/gshadow", atomically: true, encoding: .utf8)
        chmod(path + "/etc/shadow", 0o600)
        chmod(path + "/etc/gshadow", 0o600)
        chown(path + "/home/core", 500, 500)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Every file and link under the root: path → `mode uid:gid content` or `-> target`.
    func tree() -> [String: String] {
        var result: [String: String] = [:]
        guard let walker = FileManager.default.enumerator(atPath: path) else { return [:] }
        while let relative = walker.nextObject() as? String {
            let full = path + "/" + relative
            var info = stat()
            guard lstat(full, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFLNK:
                result["/" + relative] = "-> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: full)) ?? "?")
            case S_IFREG:
                let content = (try? String(contentsOfFile: full, encoding: .utf8)) ?? "<binary>"
                result["/" + relative] = String(info.st_mode & 0o7777, radix: 8) + " \(info.st_uid):\(info.st_gid) " + content
            default: continue
            }
        }
        return result
    }

    func apply(_ text: String, metadata: Metadata = Metadata(), environment: [String: String] = [:]) throws(ProvisioningError) -> [String] {
        var options = ProvisioningOptions()
        options.root = TargetRoot(path)
        options.commandSink = .queueFile
        options.environment = environment
        var log: [String] = []
        try Provisioner.apply(userData: Array(text.utf8), metadata: metadata, options: options) { log.append($0) }
        return log
    }
}

@Suite(.serialized) struct ApplyTests {
    static let accountFiles: Set<String> = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"]

    @Test func aFullConfigWritesExactlyTheExpectedTree() throws {
        let root = try ScratchRoot()
        let before = root.tree()
        let packed = base64(gzip(Array("#!/bin/sh\necho packed\n".utf8)))
        _ = try root.apply(
            """
            #cloud-config
            hostname: node1
            ssh_authorized_keys:
              - "  ssh-ed25519 AAAAC3 admin@example  "
            write_files:
              - path: /etc/motd
                content: "welcome to $private_ipv4\\n"
                permissions: '0600'
                owner: core:core
              - path: opt/bin/hello
                encoding: gzip+base64
                content: \(packed)
                permissions: 0755
            manage_etc_hosts: localhost
            coreos:
              etcd2:
                name: node1
                advertise-client-urls: http://$public_ipv4:2379
                initial-cluster: "node1=http://$private_ipv4:2380"
                heartbeat_interval: 100
                debug: true
                election_timeout: 0
              fleet:
                metadata: "region=eu,disk=ssd"
                engine_reconcile_interval: 2.5
              flannel:
                interface: $private_ipv4
                ip_masq: true
              locksmith:
                window_start: Thu 04:00
              update:
                reboot-strategy: etcd-lock
                group: beta
              oem:
                id: test
                name: Test "OEM"
                version_id: 1.0
              units:
                - name: hello.service
                  enable: true
                  command: start
                  content: |
                    [Service]
                    ExecStart=/opt/bin/hello
                    [Install]
                    WantedBy=multi-user.target
                  drop_ins:
                    - name: 10-nice.conf
                      content: "[Service]\\nNice=5\\n"
                - name: docker.service
                  mask: true
                - name: 10-eth0.network
                  content: "[Match]\\nName=eth0\\n"

            """,
            metadata: Metadata(hostname: "ignored-because-user-data-names-it", sshPublicKeys: ["ssh-rsa META meta@cloud"]),
            environment: ["COREOS_PUBLIC_IPV4": "203.0.113.29", "COREOS_PRIVATE_IPV4": "10.0.0.5"])
        var after = root.tree()
        for file in Self.accountFiles { #expect(after.removeValue(forKey: file) == before[file]) }
        let expected: [String: String] = [
            "/etc/hostname": "644 0:0 node1\n",
            "/home/core/.ssh/authorized_keys.d/coreos-cloudinit": "600 500:500 ssh-ed25519 AAAAC3 admin@example\nssh-rsa META meta@cloud\n",
            "/home/core/.ssh/authorized_keys": "600 500:500 ssh-ed25519 AAAAC3 admin@example\nssh-rsa META meta@cloud\n",
            "/etc/motd": "600 500:500 welcome to 10.0.0.5\n",
            "/opt/bin/hello": "755 0:0 #!/bin/sh\necho packed\n",
            "/etc/oem-release": "644 0:0 ID=test\nVERSION_ID=1.0\nNAME=\"Test \\\"OEM\\\"\"\nHOME_URL=\"\"\nBUG_REPORT_URL=\"\"\n",
            "/etc/coreos/update.conf": "644 0:0 GROUP=beta\nREBOOT_STRATEGY=etcd-lock\n",
            "/etc/hosts": "644 0:0 127.0.0.1 node1\n",
            "/run/flannel/options.env": "644 0:0 FLANNELD_IP_MASQ=true\nFLANNELD_IFACE=10.0.0.5",
            "/etc/environment": "644 0:0 COREOS_PUBLIC_IPV4=203.0.113.29\nCOREOS_PRIVATE_IPV4=10.0.0.5\n",
            "/etc/systemd/system/hello.service": "644 0:0 [Service]\nExecStart=/opt/bin/hello\n[Install]\nWantedBy=multi-user.target\n",
            "/etc/systemd/system/hello.service.d/10-nice.conf": "644 0:0 [Service]\nNice=5\n",
            "/etc/systemd/system/multi-user.target.wants/hello.service": "-> /etc/systemd/system/hello.service",
            "/etc/systemd/system/docker.service": "-> /dev/null",
            "/etc/systemd/network/10-eth0.network": "644 0:0 [Match]\nName=eth0\n",
            "/run/systemd/system/etcd2.service.d/20-cloudinit.conf":
                "644 0:0 [Service]\nEnvironment=\"ETCD_ADVERTISE_CLIENT_URLS=http://203.0.113.29:2379\"\nEnvironment=\"ETCD_DEBUG=true\"\n"
                + "Environment=\"ETCD_HEARTBEAT_INTERVAL=100\"\nEnvironment=\"ETCD_INITIAL_CLUSTER=node1=http://10.0.0.5:2380\"\n"
                + "Environment=\"ETCD_NAME=node1\"\n",
            "/run/systemd/system/fleet.service.d/20-cloudinit.conf":
                "644 0:0 [Service]\nEnvironment=\"FLEET_ENGINE_RECONCILE_INTERVAL=2.5\"\nEnvironment=\"FLEET_METADATA=region=eu,disk=ssd\"\n",
            "/run/systemd/system/locksmithd.service.d/20-cloudinit.conf":
                "644 0:0 [Service]\nEnvironment=\"REBOOT_WINDOW_START=Thu 04:00\"\n",
            "/run/coreos/cloudinit/unit-commands":
                "644 0:0 daemon-reload\nrestart systemd-networkd.service\nstart hello.service\nrestart locksmithd.service\nrestart update-engine.service\n",
        ]
        #expect(after.count == expected.count, "\(Set(after.keys).symmetricDifference(expected.keys))")
        for (path, content) in expected { #expect(after[path] == content, "\(path)") }
    }

    @Test func usersAreCreatedThroughTheShadowTools() throws {
        let root = try ScratchRoot()
        _ = try root.apply(
            """
            #cloud-config
            users:
              - name: alice
                gecos: Alice A
                passwd: $6$salt$hash
                groups: [wheel]
                homedir: /srv/alice
                ssh-authorized-keys: [ssh-rsa ALICE]
              - name: svc
                system: true
                no-create-home: true
                shell: /usr/sbin/nologin
              - name: core
                passwd: $6$new$core
              - gecos: nameless users are skipped
            """)
        let tree = root.tree()
        let passwd = tree["/etc/passwd"] ?? ""
        #expect(passwd.contains("alice:x:1000:") && passwd.contains(":Alice A:/srv/alice:/bin/bash\n"), "\(passwd)")
        #expect(passwd.contains("svc:x:") && passwd.contains(":/usr/sbin/nologin\n"))
        let shadow = tree["/etc/shadow"] ?? ""
        #expect(shadow.contains("alice:$6$salt$hash:"))
        #expect(shadow.contains("core:$6$new$core:"))
        #expect((tree["/etc/group"] ?? "").contains("wheel:x:10:alice"))
        #expect(tree["/srv/alice/.ssh/authorized_keys"]?.hasSuffix(" ssh-rsa ALICE\n") == true)
        #expect(tree.keys.contains { $0.hasPrefix("/home/svc") } == false)
    }

    @Test func anInvalidConfigWritesNothing() throws {
        let root = try ScratchRoot()
        let before = root.tree()
        for text in [
            "#cloud-config\nhostname: a\nwrite_files:\n  - path: /etc/a\n    content: x\n  - path: /etc/b\n    encoding: b64\n    content: '!!'\n",
            "#cloud-config\nhostname: a\nmanage_etc_hosts: yes-please\n",
            "#cloud-config\nhostname: a\ncoreos:\n  units:\n    - name: no-suffix\n",
            "#cloud-config\nhostname: a\ncoreos:\n  units:\n    - name: a.service\n      content: \"[Service\\n\"\n",
            "#cloud-config\nhostname: a\ncoreos: {update: {reboot_strategy: best-effort}}\n",
            "#cloud-config\nhostname: [a\n",
            "not a cloud-config\n",
        ] {
            #expect(throws: ProvisioningError.self, "\(text)") { try root.apply(text) }
            #expect(root.tree() == before, "\(text)")
        }
    }

    @Test func unknownKeysAreReportedButDoNotBlock() throws {
        let root = try ScratchRoot()
        let log = try root.apply("#cloud-config\nhostname: n2\nsudo: ALL\n")
        #expect(log.contains("line 3: warning: unrecognized key \"sudo\""))
        #expect(root.tree()["/etc/hostname"] == "644 0:0 n2\n")
    }

    @Test func existingFilesAreMergedNotReplaced() throws {
        let root = try ScratchRoot()
        try FileManager.default.createDirectory(atPath: root.path + "/etc/coreos", withIntermediateDirectories: true)
        try "GROUP=stable\n# keep me\nSERVER=https://old\n".write(toFile: root.path + "/etc/coreos/update.conf", atomically: true, encoding: .utf8)
        try "PATH=/bin\nCOREOS_PUBLIC_IPV4=1.1.1.1\n".write(toFile: root.path + "/etc/environment", atomically: true, encoding: .utf8)
        _ = try root.apply(
            "#cloud-config\ncoreos:\n  update:\n    group: alpha\n    reboot-strategy: 'off'\n",
            environment: ["COREOS_PUBLIC_IPV4": "2.2.2.2", "COREOS_PRIVATE_IPV6": "fd00::1"])
        let tree = root.tree()
        #expect(tree["/etc/coreos/update.conf"] == "644 0:0 GROUP=alpha\n# keep me\nSERVER=https://old\nREBOOT_STRATEGY=off\n")
        #expect(tree["/etc/environment"] == "644 0:0 PATH=/bin\nCOREOS_PUBLIC_IPV4=2.2.2.2\nCOREOS_PRIVATE_IPV6=fd00::1\n")
        #expect(tree["/run/systemd/system/locksmithd.service"] == "-> /dev/null")
        #expect(tree["/run/coreos/cloudinit/unit-commands"] == "644 0:0 daemon-reload\nstop locksmithd.service\nrestart update-engine.service\n")
    }

    @Test func scriptsAreSavedAndRunWithTheirStatus() throws {
        let root = try ScratchRoot()
        let marker = root.path + "/ran"
        let log = try root.apply("#!/bin/sh\necho \"ran with $private_ipv4\" > \(marker)\necho said-something\n", environment: ["COREOS_PRIVATE_IPV4": "10.9.9.9"])
        #expect(log.contains("script: said-something"))
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == "ran with 10.9.9.9\n")
        let scripts = try FileManager.default.contentsOfDirectory(atPath: root.path + "/var/lib/coreos-cloudinit/scripts")
        #expect(scripts.count == 1)
        #expect(throws: ProvisioningError.self) { try root.apply("#!/bin/sh\nexit 3\n") }
        do {
            _ = try root.apply("#!/bin/sh\nexit 3\n")
        } catch {
            #expect(error.message.contains("exited with status 3"))
        }
    }

    @Test func ignitionAndEmptyInputApplyNoConfig() throws {
        let root = try ScratchRoot()
        let before = root.tree()
        let log = try root.apply("{\"ignition\": {\"version\": \"3.0.0\"}}")
        #expect(log == ["Detected an Ignition config. Exiting..."])
        _ = try root.apply("")
        #expect(root.tree() == before)
        _ = try root.apply("", metadata: Metadata(hostname: "from-metadata"))
        #expect(root.tree()["/etc/hostname"] == "644 0:0 from-metadata\n")
    }
}
