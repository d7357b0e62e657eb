import Testing

@testable import Fleet

@Suite struct FleetUnitTests {
    @Test func parsesEveryXFleetOptionWithSpecifiers() throws {
        let unit = try FleetUnit(
            name: "web@8080.service",
            text: """
                [Service]
                ExecStart=/bin/web %i
                [X-Fleet]
                MachineOf=%p-discovery@%i.service
                MachineMetadata="region=us-east-1" "disk=ssd"
                MachineMetadata=region=us-west-1
                Conflicts=%p@*.service
                X-Conflicts=db*.service

                """)
        let requirements = unit.requirements
        #expect(requirements.machineOf == ["web-discovery@8080.service"])
        #expect(requirements.metadata == ["region": ["us-east-1", "us-west-1"], "disk": ["ssd"]])
        #expect(requirements.conflicts == ["web@*.service", "db*.service"])
        #expect(!requirements.isGlobal)
        #expect(unit.hash.count == 40)
    }

    @Test func refusesWhatFleetRefuses() {
        func error(_ name: String, _ fleet: String) -> String? {
            do {
                _ = try FleetUnit(name: name, text: "[Service]\nExecStart=/bin/true\n[X-Fleet]\n" + fleet)
                return nil
            } catch {
                return error.message
            }
        }
        #expect(error("a.service", "Bogus=1\n") == "unrecognized requirement Bogus in [X-Fleet]")
        #expect(error("a.service", "Global=true\nMachineID=abc\n") == "Global may only be combined with MachineMetadata and Conflicts")
        #expect(error("a.service", "Replaces=b.service\nConflicts=c.service\n") == "Replaces cannot be combined with Conflicts")
        #expect(error("a.service", "Global=maybe\n") == "Global wants a boolean, got \"maybe\"")
        #expect(error("a.service", "MachineMetadata=justakey\n") == "MachineMetadata wants key=value, got \"justakey\"")
        #expect(error("a.service", "MachineOf=a.service\n") == "MachineOf cannot name the unit itself")
        #expect(error("a@.device", "") != nil)
        #expect(error("no-suffix", "") != nil)
        #expect(error("a.service", "Global=yes\nMachineMetadata=role=core\nConflicts=x*\n") == nil)
    }

    @Test func theHashNamesTheContent() throws {
        let one = try FleetUnit(name: "a.service", text: "[Service]\nExecStart=/bin/a\n")
        let same = try FleetUnit(name: "b.service", text: "[Service]\nExecStart=/bin/a\n")
        let other = try FleetUnit(name: "a.service", text: "[Service]\nExecStart=/bin/b\n")
        #expect(one.hash == same.hash && one.hash != other.hash)
        #expect(FleetUnit.hash(of: "") == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    }

    @Test func globsFollowGosPathMatch() {
        #expect(Glob.matches("web@*.service", "web@1.service"))
        #expect(!Glob.matches("web@*.service", "web.service"))
        #expect(Glob.matches("db?.service", "db1.service"))
        #expect(Glob.matches("db[0-9].service", "db7.service"))
        #expect(!Glob.matches("db[!0-9].service", "db7.service"))
        #expect(Glob.matches("*", "anything.service"))
        #expect(!Glob.matches("a[", "a["))
    }
}
