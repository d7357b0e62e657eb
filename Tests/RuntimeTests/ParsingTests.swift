import Runtime
import Testing

@Suite struct ParsingTests {
    @Test func imageReferences() {
        #expect(ImageReference(parsing: "oci:/srv/layout:busybox") == .ociLayout(directory: "/srv/layout", tag: "busybox"))
        #expect(ImageReference(parsing: "oci:layout") == .ociLayout(directory: "layout", tag: nil))
        #expect(ImageReference(parsing: "docker-archive:/tmp/b.tar:busybox:latest") == .dockerArchive(file: "/tmp/b.tar", tag: "busybox:latest"))
        #expect(ImageReference(parsing: "docker://localhost:5000/busybox:1") == .registry("localhost:5000/busybox:1"))
        #expect(ImageReference(parsing: "file:///srv/x.aci") == .aciFile("/srv/x.aci"))
        #expect(ImageReference(parsing: "./x.aci") == .aciFile("./x.aci"))
        #expect(ImageReference(parsing: "https://example.com/x.aci") == .aciURL("https://example.com/x.aci"))
        #expect(ImageReference(parsing: "example.com/busybox:1.35.0") == .stored("example.com/busybox:1.35.0"))
        #expect(ImageReference(parsing: "sha512-0123456789ab") == .stored("sha512-0123456789ab"))
    }

    @Test func capabilities() throws {
        #expect(try Capabilities.parse("CAP_CHOWN,net_admin") == 1 << 0 | 1 << 12)
        #expect(throws: RuntimeError.self) { try Capabilities.parse("CAP_FLY") }
        // rkt's default set, as the kernel prints it in CapBnd.
        #expect(String(Capabilities.defaultSet, radix: 16) == "a80425fb")
    }

    @Test func limits() throws {
        #expect(try ResourceLimits.parseMemory("128M") == 128_000_000)
        #expect(try ResourceLimits.parseMemory("1Gi") == 1 << 30)
        #expect(try ResourceLimits.parseMemory("4096") == 4096)
        #expect(throws: RuntimeError.self) { try ResourceLimits.parseMemory("lots") }
        #expect(throws: RuntimeError.self) { try ResourceLimits.parseMemory("-5M") }
        #expect(try ResourceLimits.parseCPU("750m") == 750)
        #expect(try ResourceLimits.parseCPU("2") == 2000)
        #expect(try ResourceLimits.parseCPU("0.5") == 500)
        #expect(throws: RuntimeError.self) { try ResourceLimits.parseCPU("fast") }
    }

    @Test func podUUIDsAndStates() {
        let uuid = PodStore.newUUID()
        let parts = uuid.split(separator: "-")
        #expect(parts.map(\.count) == [8, 4, 4, 4, 12])
        #expect(parts[2].first == "4", "version 4")
        #expect(PodStore.newUUID() != uuid)
        #expect(PodState.run.shown(alive: true) == "running")
        #expect(PodState.run.shown(alive: false) == "exited")
        #expect(PodState.exitedGarbage.rawValue == "exited-garbage")
    }

    @Test func layerPaths() throws {
        #expect(try LayerUnpacker.components(of: "./usr//bin/") == ["usr", "bin"])
        #expect(try LayerUnpacker.components(of: "./") == nil)
        #expect(throws: RuntimeError.self) { try LayerUnpacker.components(of: "a/../../b") }
        #expect(throws: RuntimeError.self) { try LayerUnpacker.components(of: "/etc/passwd") }
    }
}
