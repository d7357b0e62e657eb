import Foundation
import Testing

@testable import FleetDaemon

@Suite struct FleetConfigurationTests {
    private func file(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "fleet-conf-\(UInt32.random(in: 0...UInt32.max)).conf"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func fileThenEnvironmentThenFlags() throws {
        let path = try file(
            """
            # fleet.conf.sample's forms
            etcd_servers=["http://10.0.0.1:2379","http://10.0.0.2:2379"]
            public_ip="10.0.0.9"
            metadata="region=us-west,az=us-west-1"
            agent_ttl=45s
            etcd_request_timeout=2.5

            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let configuration = try FleetConfiguration.load(
            arguments: ["--config", path, "--machine-id=abc", "--agent_ttl", "10s", "--disable_engine"],
            environment: ["FLEET_PUBLIC_IP": "10.0.0.10", "FLEET_ENGINE_RECONCILE_INTERVAL": "5", "FLEET_AGENT_TTL": "20s"])
        #expect(configuration.etcdServers == ["http://10.0.0.1:2379", "http://10.0.0.2:2379"])
        #expect(configuration.publicIP == "10.0.0.10")
        #expect(configuration.metadata == ["region": "us-west", "az": "us-west-1"])
        #expect(configuration.agentTTL == .seconds(10))
        #expect(configuration.engineReconcileInterval == .seconds(5))
        #expect(configuration.etcdRequestTimeout == .milliseconds(2500))
        #expect(configuration.disableEngine)
        #expect(configuration.machineID == "abc")
    }

    @Test func errorsNameTheFileLineOrVariable() throws {
        let path = try file("etcd_servers=http://a:2379\nbogus_option=1\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: FleetConfiguration.Failure(message: "\(path):2: unknown option bogus_option")) {
            try FleetConfiguration.load(arguments: ["--config", path, "--machine-id", "x"], environment: [:])
        }
        #expect(throws: FleetConfiguration.Failure(message: "FLEET_AGENT_TTL: agent_ttl: invalid duration 30 parsecs")) {
            try FleetConfiguration.load(arguments: ["--config", "/nonexistent", "--machine-id", "x"], environment: ["FLEET_AGENT_TTL": "30 parsecs"])
        }
        #expect(throws: FleetConfiguration.Failure(message: "metadata must be key=value pairs separated by commas, got \"role\"")) {
            try FleetConfiguration.load(arguments: ["--config", "/nonexistent", "--machine-id", "x", "--metadata", "role"], environment: [:])
        }
        #expect(throws: FleetConfiguration.Failure(message: "flag needs an argument: -listen")) {
            try FleetConfiguration.load(arguments: ["--config", "/nonexistent", "--machine-id", "x", "--listen"], environment: [:])
        }
    }

    @Test func httpsListenersNeedACertificate() throws {
        #expect(throws: FleetConfiguration.Failure(message: "listen: an https:// address needs api_certfile and api_keyfile")) {
            try FleetConfiguration.load(
                arguments: ["--config", "/nonexistent", "--machine-id", "x", "--listen", "https://127.0.0.1:1", "--api_certfile", "c.pem"],
                environment: [:])
        }
        let configuration = try FleetConfiguration.load(
            arguments: ["--config", "/nonexistent", "--machine-id", "x", "--listen", "unix:///run/f.sock,https://127.0.0.1:1"],
            environment: ["FLEET_API_CERTFILE": "c.pem", "FLEET_API_KEYFILE": "k.pem", "FLEET_API_CAFILE": "ca.pem"])
        #expect(configuration.apiCertFile == "c.pem" && configuration.apiKeyFile == "k.pem" && configuration.apiCAFile == "ca.pem")
        #expect(try FleetDaemon.listenAddress("https://127.0.0.1:1").secure)
        #expect(try !FleetDaemon.listenAddress("http://127.0.0.1:1").secure)
    }

    @Test func goDurations() throws {
        #expect(try FleetConfiguration.duration("1m30s", "k") == .seconds(90))
        #expect(try FleetConfiguration.duration("500ms", "k") == .milliseconds(500))
        #expect(try FleetConfiguration.duration("2h", "k") == .seconds(7200))
        #expect(throws: FleetConfiguration.Failure.self) { try FleetConfiguration.duration("5 minutes", "k") }
    }

    @Test func unitNamesAreCheckedAsFleetChecksThem() {
        #expect(FleetAPI.validate(name: "hello.service") == nil)
        #expect(FleetAPI.validate(name: "foo@1.service") == nil)
        #expect(FleetAPI.validate(name: "") == "unit name cannot be empty")
        #expect(FleetAPI.validate(name: "noext") == "unit name must contain \".\"")
        #expect(FleetAPI.validate(name: "trailing.") == "unit name cannot end in \".\"")
        #expect(FleetAPI.validate(name: "x.bogus") == "invalid unit type: \"bogus\"")
        #expect(FleetAPI.validate(name: "sp ace.service") == "invalid character ' ' in unit name")
        #expect(FleetAPI.validate(name: "@x.service") == "unit name cannot start in \"@\"")
        #expect(FleetAPI.validate(name: String(repeating: "a", count: 260) + ".service") == "unit name exceeds maximum length (256)")
    }
}
