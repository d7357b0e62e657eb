import Glibc

/// One SRV record (RFC 2782).
public struct SRVRecord: Sendable, Hashable {
    public var priority: UInt16
    public var weight: UInt16
    public var port: UInt16
    /// The target host, without the trailing dot.
    public var target: String

    public init(priority: UInt16, weight: UInt16, port: UInt16, target: String) {
        self.priority = priority
        self.weight = weight
        self.port = port
        self.target = target
    }
}

public struct DNSError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// DNS SRV lookups over UDP to the resolvers of `/etc/resolv.conf` (what etcd's
/// `--discovery-srv` needs and glibc's getaddrinfo cannot do). The message parser is pure
/// and bounds-checked: a hostile answer gives an error, never a trap.
public enum DNSQuery {
    /// The `nameserver` lines of a resolv.conf text (port 53).
    public static func nameservers(resolvConf text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0] == "nameserver" else { return nil }
            return String(words[1])
        }
    }

    /// A query for `name` of type SRV (33), class IN, recursion desired.
    public static func srvQuery(name: String, id: UInt16) throws(DNSError) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xff), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        let absolute = name.hasSuffix(".") ? String(name.dropLast()) : name
        for label in absolute.split(separator: ".", omittingEmptySubsequences: false) {
            let utf8 = Array(label.utf8)
            guard !utf8.isEmpty, utf8.count < 64 else { throw DNSError("invalid DNS name \(name)") }
            bytes.append(UInt8(utf8.count))
            bytes += utf8
        }
        bytes += [0, 0, 33, 0, 1]
        return bytes
    }

    /// The SRV records of an answer to query `id`. A name error (NXDOMAIN) is an empty list.
    public static func parseSRVAnswer(_ message: [UInt8], id: UInt16) throws(DNSError) -> [SRVRecord] {
        guard message.count >= 12 else { throw DNSError("short DNS answer") }
        guard UInt16(message[0]) << 8 | UInt16(message[1]) == id else { throw DNSError("DNS answer for another query") }
        let rcode = message[3] & 0x0f
        if rcode == 3 { return [] }
        guard rcode == 0 else { throw DNSError("DNS server answered with error code \(rcode)") }
        let questions = Int(message[4]) << 8 | Int(message[5])
        let answers = Int(message[6]) << 8 | Int(message[7])
        var offset = 12
        for _ in 0..<questions {
            _ = try readName(message, &offset)
            offset += 4
        }
        var records: [SRVRecord] = []
        for _ in 0..<answers {
            _ = try readName(message, &offset)
            guard offset + 10 <= message.count else { throw DNSError("truncated DNS record") }
            let type = UInt16(message[offset]) << 8 | UInt16(message[offset + 1])
            let length = Int(message[offset + 8]) << 8 | Int(message[offset + 9])
            offset += 10
            guard offset + length <= message.count else { throw DNSError("truncated DNS record data") }
            if type == 33 {
                guard length >= 7 else { throw DNSError("short SRV record") }
                func u16(_ at: Int) -> UInt16 { UInt16(message[at]) << 8 | UInt16(message[at + 1]) }
                var targetOffset = offset + 6
                let target = try readName(message, &targetOffset)
                records.append(SRVRecord(priority: u16(offset), weight: u16(offset + 2), port: u16(offset + 4), target: target))
            }
            offset += length
        }
        return records.sorted { ($0.priority, $1.weight, $0.target) < ($1.priority, $0.weight, $1.target) }
    }

    /// A possibly compressed name at `offset` (moved past it); at most 16 jumps.
    static func readName(_ message: [UInt8], _ offset: inout Int) throws(DNSError) -> String {
        var labels: [String] = []
        var position = offset
        var jumped = false
        var jumps = 0
        while true {
            guard position < message.count else { throw DNSError("truncated DNS name") }
            let length = Int(message[position])
            if length == 0 {
                if !jumped { offset = position + 1 }
                return labels.joined(separator: ".")
            }
            if length & 0xc0 == 0xc0 {
                guard position + 1 < message.count, jumps < 16 else { throw DNSError("bad DNS name pointer") }
                if !jumped { offset = position + 2 }
                position = (length & 0x3f) << 8 | Int(message[position + 1])
                jumped = true
                jumps += 1
                continue
            }
            guard length < 64, position + 1 + length <= message.count else { throw DNSError("bad DNS label") }
            labels.append(String(decoding: message[(position + 1)..<(position + 1 + length)], as: UTF8.self))
            position += 1 + length
        }
    }

    /// Asks each resolver of `/etc/resolv.conf` in turn (2 s each) for `name`'s SRV records.
    public static func lookupSRV(_ name: String, resolvConf path: String = "/etc/resolv.conf") throws(DNSError) -> [SRVRecord] {
        var text = ""
        if let file = fopen(path, "r") {
            defer { fclose(file) }
            var buffer = [CChar](repeating: 0, count: 1024)
            while fgets(&buffer, Int32(buffer.count), file) != nil {
                text += String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        let servers = nameservers(resolvConf: text)
        guard !servers.isEmpty else { throw DNSError("no nameserver in \(path)") }
        var failures: [String] = []
        for server in servers {
            do throws(DNSError) {
                return try ask(server: server, name: name)
            } catch {
                failures.append("\(server): \(error)")
            }
        }
        throw DNSError("lookup \(name) failed: \(failures.joined(separator: "; "))")
    }

    private static func ask(server: String, name: String) throws(DNSError) -> [SRVRecord] {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(53).bigEndian
        guard inet_pton(AF_INET, server, &address.sin_addr) == 1 else { throw DNSError("nameserver \(server) is not IPv4") }
        let socketDescriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socketDescriptor >= 0 else { throw DNSError("socket: \(String(cString: strerror(errno)))") }
        defer { close(socketDescriptor) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(socketDescriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw DNSError("connect: \(String(cString: strerror(errno)))") }
        let id = UInt16.random(in: 1...UInt16.max)
        let query = try srvQuery(name: name, id: id)
        guard send(socketDescriptor, query, query.count, 0) == query.count else { throw DNSError("send: \(String(cString: strerror(errno)))") }
        var answer = [UInt8](repeating: 0, count: 4096)
        // Answers to other queries (late ones) are skipped until the timeout.
        while true {
            let received = recv(socketDescriptor, &answer, answer.count, 0)
            guard received > 0 else { throw DNSError("no answer: \(String(cString: strerror(errno)))") }
            let message = Array(answer.prefix(received))
            if message.count >= 2, UInt16(message[0]) << 8 | UInt16(message[1]) != id { continue }
            return try parseSRVAnswer(message, id: id)
        }
    }

    /// The IPv4 addresses of `host` through the system resolver (a literal gives itself).
    public static func ipv4Addresses(of host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0 else { return [] }
        defer { freeaddrinfo(result) }
        var addresses: [String] = []
        var cursor = result
        while let entry = cursor {
            if let socketAddress = entry.pointee.ai_addr {
                var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
                socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                    var address = pointer.pointee.sin_addr
                    _ = inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
                }
                let address = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !addresses.contains(address) { addresses.append(address) }
            }
            cursor = entry.pointee.ai_next
        }
        return addresses
    }
}
