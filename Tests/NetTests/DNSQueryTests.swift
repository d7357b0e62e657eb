import Net
import Testing

@Suite struct DNSQueryTests {
    /// An answer as a resolver sends it: the question, then SRV records whose names point
    /// back into the question (compression), sorted by priority then weight.
    @Test func parsesSRVAnswersWithCompression() throws {
        let id: UInt16 = 0x1234
        var message = try DNSQuery.srvQuery(name: "_etcd-server._tcp.example.test", id: id)
        message[2] = 0x81
        message[3] = 0x80
        message[7] = 2  // two answers
        func record(priority: UInt16, weight: UInt16, port: UInt16, target: String) -> [UInt8] {
            var data: [UInt8] = [UInt8(priority >> 8), UInt8(priority & 0xff), UInt8(weight >> 8), UInt8(weight & 0xff)]
            data += [UInt8(port >> 8), UInt8(port & 0xff)]
            for label in target.split(separator: ".") {
                data.append(UInt8(label.utf8.count))
                data += Array(label.utf8)
            }
            data.append(0)
            // Owner name: a pointer to the question's name at offset 12.
            return [0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, UInt8(data.count >> 8), UInt8(data.count & 0xff)] + data
        }
        message += record(priority: 10, weight: 5, port: 2380, target: "b.example.test")
        message += record(priority: 0, weight: 10, port: 2381, target: "a.example.test")
        let records = try DNSQuery.parseSRVAnswer(message, id: id)
        #expect(records == [
            SRVRecord(priority: 0, weight: 10, port: 2381, target: "a.example.test"),
            SRVRecord(priority: 10, weight: 5, port: 2380, target: "b.example.test"),
        ])
        // A name error is no records; another query's answer is refused.
        var missing = try DNSQuery.srvQuery(name: "x.test", id: 7)
        missing[3] = 0x83
        #expect(try DNSQuery.parseSRVAnswer(missing, id: 7).isEmpty)
        #expect(throws: DNSError.self) { try DNSQuery.parseSRVAnswer(message, id: 99) }
    }

    /// Hostile answers (truncated, pointer loops, lengths past the end) give an error,
    /// never a trap: every prefix and many random mutations of a valid answer.
    @Test func hostileAnswersAreRefusedNotTrapped() throws {
        var message = try DNSQuery.srvQuery(name: "_etcd-server._tcp.example.test", id: 1)
        message[7] = 1
        message += [0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, 9, 0, 1, 0, 1, 9, 0x29, 0xc0, 12, 0]
        for length in 0..<message.count { _ = try? DNSQuery.parseSRVAnswer(Array(message.prefix(length)), id: 1) }
        var loop = message
        loop[loop.count - 3] = 0xc0
        loop[loop.count - 2] = UInt8(loop.count - 3)
        #expect(throws: DNSError.self) { try DNSQuery.parseSRVAnswer(loop, id: 1) }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var mutated = message
            for _ in 0..<3 { mutated[Int.random(in: 2..<mutated.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
            _ = try? DNSQuery.parseSRVAnswer(mutated, id: 1)
        }
    }

    @Test func nameserversAndQueries() throws {
        #expect(DNSQuery.nameservers(resolvConf: "# x\nnameserver 10.0.0.1\nsearch a\nnameserver\t127.0.0.53\n") == ["10.0.0.1", "127.0.0.53"])
        #expect(throws: DNSError.self) { try DNSQuery.srvQuery(name: "a..b", id: 1) }
        #expect(throws: DNSError.self) { try DNSQuery.srvQuery(name: String(repeating: "x", count: 64) + ".test", id: 1) }
        #expect(DNSQuery.ipv4Addresses(of: "127.0.0.1") == ["127.0.0.1"])
    }
}
