import CloudInit
import Foundation
import Testing
import YAML

@testable import Cluster
@testable import Node

/// The plan `coreos node` makes of a cloud-config's service sections, as NodeCommand reads them.
func plan(_ userData: [UInt8], role: NodePlan.Role, machineID: String) throws -> NodePlan {
    let config = CloudConfig(document: try YAMLParser.parse(userData))
    var inputs = NodePlan.Inputs(dataDirectory: "/var/lib/coreos", runDirectory: "/run", machineID: machineID)
    inputs.role = role
    for variable in config.etcd2.variables { inputs.etcd[variable.name] = variable.value }
    for variable in config.fleet.variables { inputs.fleet[variable.name] = variable.value }
    for variable in config.flannel.variables { inputs.flannel[variable.name] = variable.value }
    return try NodePlan(inputs)
}

@Suite struct ClusterLayoutTests {
    @Test func coresComeFirstWithAddressesOnTheBridgeAndNamesWithinLinkLimits() throws {
        let layout = try ClusterLayout.make(name: "lab", size: 3, workers: 2, mode: .namespaces)
        #expect(layout.nodes.map(\.name) == ["core1", "core2", "core3", "worker1", "worker2"])
        #expect(layout.nodes.map(\.address) == ["10.77.0.11", "10.77.0.12", "10.77.0.13", "10.77.0.14", "10.77.0.15"])
        #expect(layout.hostAddress == "10.77.0.1")
        #expect(layout.nodes.allSatisfy { $0.clientPort == 2379 && $0.peerPort == 2380 })
        #expect(layout.initialCluster == "core1=http://10.77.0.11:2380,core2=http://10.77.0.12:2380,core3=http://10.77.0.13:2380")
        #expect(layout.nodes[3].namespace == "coreos-lab-worker1")
        // Linux link names are at most 15 bytes: the longest name and index still fit.
        let longest = try ClusterLayout.make(name: "abcdefgh", size: 7, workers: 20, mode: .namespaces)
        #expect(longest.nodes.allSatisfy { $0.hostLink.utf8.count <= 15 })
        #expect(longest.bridge.utf8.count <= 15)
    }

    @Test func loopbackNodesGetTheirOwnPorts() throws {
        let layout = try ClusterLayout.make(name: "local", size: 3, workers: 1, mode: .loopback, basePort: 30000)
        #expect(layout.nodes.map(\.clientPort) == [30000, 30010, 30020, 30030])
        #expect(layout.nodes.map(\.peerPort) == [30001, 30011, 30021, 30031])
        #expect(layout.nodes.allSatisfy { $0.address == "127.0.0.1" })
    }

    @Test func machineIDsSayRoleAndNumberAndDifferBetweenClusters() throws {
        let one = try ClusterLayout.make(name: "one", size: 2, workers: 2, mode: .namespaces)
        let two = try ClusterLayout.make(name: "two", size: 2, workers: 2, mode: .namespaces)
        #expect(one.nodes.map { String($0.machineID.prefix(8)) } == ["c0000001", "c0000002", "d0000001", "d0000002"])
        #expect(one.nodes.allSatisfy { $0.machineID.count == 32 && $0.machineID.allSatisfy(\.isHexDigit) })
        #expect(Set(one.nodes.map(\.machineID)).isDisjoint(with: two.nodes.map(\.machineID)))
        #expect(one == (try ClusterLayout.make(name: "one", size: 2, workers: 2, mode: .namespaces)))
    }

    @Test(arguments: [
        ("Upper", 3, 0, "vxlan", "10.77.0", "name"), ("waytoolongname", 3, 0, "vxlan", "10.77.0", "name"),
        ("a", 0, 0, "vxlan", "10.77.0", "--size"), ("a", 8, 0, "vxlan", "10.77.0", "--size"),
        ("a", 3, -1, "vxlan", "10.77.0", "--workers"), ("a", 3, 0, "gre", "10.77.0", "--backend"),
        ("a", 3, 0, "vxlan", "10.77", "--subnet"), ("a", 3, 0, "vxlan", "10.777.0", "--subnet"),
    ])
    func badShapesAreRefusedSayingWhichFlag(name: String, size: Int, workers: Int, backend: String, subnet: String, word: String) {
        #expect {
            _ = try ClusterLayout.make(name: name, size: size, workers: workers, mode: .namespaces, backend: backend, subnetPrefix: subnet)
        } throws: { error in
            (error as? ClusterError)?.message.contains(word) == true
        }
    }

    @Test func cloudConfigsAreValidAndGiveTheNodeItsSettings() throws {
        var layout = try ClusterLayout.make(name: "lab", size: 3, workers: 1, mode: .namespaces)
        for discovery in [nil, "http://10.77.0.1:8087/0123abcd"] {
            layout.discoveryURL = discovery
            for node in layout.nodes {
                let text = ClusterCloudConfig.render(layout, node: node)
                let findings = CloudConfigValidator.validate(userData: Array(text.utf8))
                #expect(findings.isEmpty, "\(node.name): \(findings)")
                let plan = try plan(Array(text.utf8), role: node.role == .core ? .core : .worker, machineID: node.machineID)
                let etcd = plan.services[0].environment
                #expect(etcd["ETCD_DISCOVERY"] == discovery)
                #expect(etcd["ETCD_INITIAL_CLUSTER"] == (discovery == nil ? layout.initialCluster : nil))
                let fleet = plan.services[2].environment
                #expect(fleet["FLEET_PUBLIC_IP"] == node.address)
                #expect(fleet["FLEET_METADATA"] == "role=\(node.role.rawValue),node=\(node.name)")
                #expect(plan.services[1].environment["FLANNELD_IFACE"] == node.address)
                switch node.role {
                case .core:
                    #expect(etcd["ETCD_NAME"] == node.name)
                    // flannel and fleet talk to the member on the node's own address.
                    #expect(fleet["FLEET_ETCD_SERVERS"] == node.clientURL)
                case .worker:
                    #expect(etcd["ETCD_PROXY"] == "on")
                    #expect(fleet["FLEET_ETCD_SERVERS"] == "http://127.0.0.1:2379")
                }
            }
        }
    }

    @Test func loopbackConfigsHaveNoFlannelSection() throws {
        let layout = try ClusterLayout.make(name: "local", size: 1, workers: 1, mode: .loopback)
        for node in layout.nodes {
            let text = ClusterCloudConfig.render(layout, node: node)
            #expect(!text.contains("flannel"))
            #expect(CloudConfigValidator.validate(userData: Array(text.utf8)).isEmpty)
        }
    }
}

@Suite struct ClusterStatusTableTests {
    @Test func oneRowPerNodeInFixedColumnsAndASummary() throws {
        let layout = try ClusterLayout.make(name: "lab", size: 3, workers: 1, mode: .namespaces)
        var seen: [String: NodeObservation] = [:]
        for node in layout.nodes {
            var observation = NodeObservation()
            observation.processRunning = node.name != "core3"
            observation.etcd = node.name == "core1" ? "leader" : node.name == "core2" ? "member" : node.role == .worker ? "proxy" : "-"
            observation.machinePresent = node.name != "core3"
            observation.subnet = node.name == "worker1" ? "10.5.7.0/24" : "-"
            observation.units = node.name == "worker1" ? ["httpd.service:active", "client.service:activating"] : []
            seen[node.name] = observation
        }
        let text = ClusterStatusTable.render(layout, observations: seen, etcdNote: nil)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 6)
        #expect(lines[0].split(separator: " ").map(String.init) == ClusterStatusTable.columns)
        #expect(lines[1].split(separator: " ").map(String.init) == ["core1", "core", "running", "10.77.0.11", "leader", "c0000001", "present", "-", "-"])
        #expect(lines[3].split(separator: " ").map(String.init) == ["core3", "core", "stopped", "10.77.0.13", "-", "c0000003", "absent", "-", "-"])
        #expect(
            lines[4].split(separator: " ").map(String.init)
                == ["worker1", "worker", "running", "10.77.0.14", "proxy", "d0000001", "present", "10.5.7.0/24", "httpd.service:active,client.service:activating"])
        // Columns line up: every cell of a column starts where its header does.
        let start = lines[0].range(of: "SUBNET")!.lowerBound.utf16Offset(in: lines[0])
        #expect(lines[4].range(of: "10.5.7.0/24")!.lowerBound.utf16Offset(in: lines[4]) == start)
        #expect(lines[5] == "cluster lab: 3/4 nodes running, etcd 2/3 members (leader core1), fleet 3 machines")
    }
}

/// contrib/examples/cloud-config: every example is valid and gives the node it is meant
/// for a plan (a master an etcd member, a worker a proxy to the masters).
@Suite struct ExampleCloudConfigTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("contrib/examples/cloud-config").path

    @Test func everyExampleIsValidAndPlansItsRole() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory).filter { $0.hasSuffix(".yml") }.sorted()
        #expect(files == ["master-discovery.yml", "master-static.yml", "worker-discovery.yml", "worker-static.yml"])
        for file in files {
            let raw = try #require(FileManager.default.contents(atPath: Self.directory + "/" + file))
            let text = VariableSubstitution.apply(Array(raw), addresses: MetadataAddresses(publicIPv4: "10.0.0.21", privateIPv4: "10.0.0.21"))
            #expect(CloudConfigValidator.validate(userData: text).isEmpty, "\(file)")
            #expect(!String(decoding: text, as: UTF8.self).contains("$private_ipv4"))
            let plan = try plan(text, role: file.hasPrefix("worker") ? .worker : .core, machineID: "0123")
            let etcd = plan.services[0].environment
            #expect(plan.services[2].environment["FLEET_PUBLIC_IP"] == "10.0.0.21")
            #expect(plan.services[1].environment["FLANNELD_IFACE"] == "10.0.0.21")
            if file.hasPrefix("worker") {
                #expect(etcd["ETCD_PROXY"] == "on")
                #expect(plan.services[2].environment["FLEET_METADATA"] == "role=worker")
            } else {
                #expect(etcd["ETCD_ADVERTISE_CLIENT_URLS"] == "http://10.0.0.21:2379")
                #expect(etcd["ETCD_NAME"] == (file.contains("discovery") ? "0123" : "core1"))
            }
            #expect((etcd["ETCD_DISCOVERY"] != nil) == file.contains("discovery"))
        }
    }
}
