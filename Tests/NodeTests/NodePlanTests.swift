import Testing

@testable import Node

@Suite struct NodePlanTests {
    func inputs() -> NodePlan.Inputs {
        NodePlan.Inputs(dataDirectory: "/var/lib/coreos", runDirectory: "/run", machineID: "m1")
    }

    @Test func aSingleNodeRunsEtcdFlannelFleetInOrder() throws {
        let plan = try NodePlan(inputs())
        #expect(plan.services.map(\.name) == ["etcd", "flannel", "fleet"])
        #expect(plan.services[0].environment["ETCD_DATA_DIR"] == "/var/lib/coreos/etcd")
        #expect(plan.services[0].readiness == .http(host: "127.0.0.1", port: 2379, path: "/health"))
        #expect(plan.services[1].environment["FLANNELD_SUBNET_FILE"] == "/run/flannel/subnet.env")
        #expect(plan.services[1].preparation.first?.last == NodePlan.defaultNetworkConfig)
        #expect(plan.services[2].environment["FLEET_MACHINE_ID"] == "m1")
        #expect(plan.services[2].environment["FLEET_LISTEN"] == "unix:///run/fleet.sock")
        #expect(plan.services[2].readiness == .unixSocket("/run/fleet.sock"))
    }

    @Test func cloudConfigSettingsWinOverDefaults() throws {
        var given = inputs()
        given.etcd = ["ETCD_LISTEN_CLIENT_URLS": "http://0.0.0.0:4001", "ETCD_DATA_DIR": "/data/etcd"]
        given.fleet = ["FLEET_METADATA": "role=core"]
        let plan = try NodePlan(given)
        #expect(plan.services[0].environment["ETCD_DATA_DIR"] == "/data/etcd")
        #expect(plan.services[0].readiness == .http(host: "127.0.0.1", port: 4001, path: "/health"))
        #expect(plan.services[1].environment["FLANNELD_ETCD_ENDPOINTS"] == "http://127.0.0.1:4001")
        #expect(plan.services[2].environment["FLEET_METADATA"] == "role=core")
        #expect(plan.services[2].environment["FLEET_ETCD_SERVERS"] == "http://127.0.0.1:4001")
    }

    @Test func aWorkerProxiesAndNeedsTheCluster() throws {
        var given = inputs()
        given.role = .worker
        #expect(throws: NodePlan.Failure.self) { try NodePlan(given) }
        given.etcd = ["ETCD_INITIAL_CLUSTER": "m1=http://10.0.0.1:2380"]
        let plan = try NodePlan(given)
        #expect(plan.services[0].environment["ETCD_PROXY"] == "on")
        #expect(plan.services[1].preparation.isEmpty)
        #expect(plan.services[2].environment["FLEET_METADATA"] == "role=worker")
    }

    @Test func withoutFlannelTheNodeSaysWhy() throws {
        var given = inputs()
        given.flannelUnavailable = "not running as root"
        let plan = try NodePlan(given)
        #expect(plan.services.map(\.name) == ["etcd", "fleet"])
        #expect(plan.notes.first?.contains("not running as root") == true)
    }
}

@Suite struct SystemdUnitsTests {
    @Test func unitsInStartOrderWithSettingsInDropIns() throws {
        var inputs = NodePlan.Inputs(dataDirectory: "/var/lib/coreos", runDirectory: "/run", machineID: "m1")
        inputs.fleet = ["FLEET_METADATA": "role=core,name=a b"]
        let files = SystemdUnits.files(for: try NodePlan(inputs), binary: "/usr/bin/coreos")
        #expect(files.map(\.path) == [
            "etcd.service", "etcd.service.d/20-cloudinit.conf", "flanneld.service", "flanneld.service.d/20-cloudinit.conf",
            "fleet.service", "fleet.service.d/20-cloudinit.conf",
        ])
        let flannel = files[2].content
        #expect(flannel.contains("Type=notify\n") && flannel.contains("After=etcd.service"))
        #expect(flannel.contains("ExecStartPre=-/usr/bin/coreos flannel network create"))
        #expect(flannel.contains(#""{\"Network\":\"10.5.0.0/16\",\"Backend\":{\"Type\":\"vxlan\"}}""#))
        #expect(files[4].content.contains("After=etcd.service flanneld.service\n"))
        #expect(files[4].content.contains("ExecStart=/usr/bin/coreos fleet\n"))
        #expect(files[5].content.contains(#"Environment="FLEET_METADATA=role=core,name=a b""#))
        #expect(files[1].content.contains("Environment=ETCD_DATA_DIR=/var/lib/coreos/etcd\n"))
    }
}
