import CloudInit
import Testing
import TestSupport
import YAML

/// Generated and mutated inputs: the parsers must answer (a result or a typed error) for
/// every one, with findings in order and lines inside the document.
@Suite struct FuzzTests {
    static let seed = SeededGenerator.seed(fallback: 0xC10D_1417)

    static let sample = Array(
        """
        #cloud-config
        hostname: node1
        ssh_authorized_keys: ["ssh-rsa AAAA a@b"]
        users:
          - name: core
            groups: [wheel]
        write_files:
          - path: /etc/a
            permissions: '0644'
            encoding: b64
            content: aGVsbG8K
        coreos:
          etcd2: {name: n1, proxy: "on", heartbeat_interval: 100}
          units:
            - name: a.service
              command: start
              content: |
                [Service]
                ExecStart=/bin/true
        base: &b {x: [1, 2, {y: *b}]}

        """.utf8)

    static let alphabet: [UInt8] = Array(" \n\t:-[]{},&*!|>'\"#%@`?<=~0aZ\\$\u{7f}".utf8) + [0x00, 0xc3, 0xa9, 0xff, 0xfe, 0x1f, 0x8b]

    static func mutate(_ input: [UInt8], using generator: inout SeededGenerator) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...8, using: &generator) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &generator)
            switch Int.random(in: 0..<5, using: &generator) {
            case 0 where !bytes.isEmpty: bytes.remove(at: position)
            case 1: bytes.insert(generator.pick(alphabet), at: position)
            case 2 where !bytes.isEmpty: bytes[position] = generator.pick(alphabet)
            case 3 where bytes.count > 4:
                // Duplicate a slice: repeated keys, nested structures.
                let end = min(bytes.count, position + Int.random(in: 1...40, using: &generator))
                bytes.insert(contentsOf: bytes[position..<end], at: position)
            default:
                let end = min(bytes.count, position + Int.random(in: 1...20, using: &generator))
                bytes.removeSubrange(position..<end)
            }
        }
        return bytes
    }

    @Test func mutatedConfigsAlwaysGetAnOrderedAnswer() {
        var generator = SeededGenerator(seed: Self.seed)
        for round in 0..<1000 {
            let input = Self.mutate(Self.sample, using: &generator)
            let findings = CloudConfigValidator.validate(userData: input)
            let lines = input.count { $0 == UInt8(ascii: "\n") } + 2
            #expect(findings.map(\.line) == findings.map(\.line).sorted(), "seed \(Self.seed) round \(round)")
            #expect(findings.allSatisfy { $0.line >= 1 && $0.line <= lines }, "seed \(Self.seed) round \(round): \(findings)")
        }
    }

    @Test func randomBytesNeverEscapeTheParser() {
        var generator = SeededGenerator(seed: Self.seed &+ 1)
        for _ in 0..<1000 {
            let count = Int.random(in: 0...200, using: &generator)
            let input = (0..<count).map { _ in generator.pick(Self.alphabet) }
            do {
                _ = try YAMLParser.parse(input)
            } catch {
                #expect(error.line >= 0 && !error.message.isEmpty)
            }
        }
    }

    @Test func substitutionLeavesTextWithoutVariablesAlone() {
        var generator = SeededGenerator(seed: Self.seed &+ 2)
        let addresses = MetadataAddresses(publicIPv4: "1.2.3.4", privateIPv4: "10.0.0.1")
        for _ in 0..<2000 {
            let text = (0..<Int.random(in: 0...80, using: &generator)).map { _ in generator.pick(Array("ab$_\\pubic_iv4 \n".utf8)) }
            let result = VariableSubstitution.apply(text, addresses: addresses)
            let hasVariable = String(decoding: text, as: UTF8.self).contains("$public_ipv4") || String(decoding: text, as: UTF8.self).contains("$private_ipv4")
            if !hasVariable { #expect(result == text) }
            // Every variable escaped: only the backslashes go.
            let escaped = Array(String(decoding: text, as: UTF8.self).replacing("$", with: "\\$").utf8)
            let unescaped = VariableSubstitution.apply(escaped, addresses: addresses)
            #expect(!String(decoding: unescaped, as: UTF8.self).contains("1.2.3.4") || String(decoding: text, as: UTF8.self).contains("1.2.3.4"))
        }
    }

    @Test func base64RoundTrips() throws {
        var generator = SeededGenerator(seed: Self.seed &+ 3)
        for _ in 0..<500 {
            let bytes = (0..<Int.random(in: 0...100, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(try ContentEncoding.base64(base64(bytes)) == bytes)
        }
    }
}
