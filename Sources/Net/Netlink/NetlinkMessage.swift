/// rtnetlink's numbers (linux/netlink.h, rtnetlink.h, if_link.h, neighbour.h, if_addr.h):
/// kernel ABI, stable across kernel versions.
enum RTNL {
    // Message types.
    static let done: UInt16 = 3
    static let error: UInt16 = 2
    static let newLink: UInt16 = 16
    static let deleteLink: UInt16 = 17
    static let getLink: UInt16 = 18
    static let newAddress: UInt16 = 20
    static let deleteAddress: UInt16 = 21
    static let getAddress: UInt16 = 22
    static let newRoute: UInt16 = 24
    static let deleteRoute: UInt16 = 25
    static let getRoute: UInt16 = 26
    static let newNeighbour: UInt16 = 28
    static let deleteNeighbour: UInt16 = 29
    static let getNeighbour: UInt16 = 30

    // Header flags.
    static let request: UInt16 = 0x1
    static let multi: UInt16 = 0x2
    static let acknowledge: UInt16 = 0x4
    static let dump: UInt16 = 0x300
    static let replace: UInt16 = 0x100
    static let exclusive: UInt16 = 0x200
    static let create: UInt16 = 0x400

    // Address families.
    static let inet: UInt8 = 2
    static let bridge: UInt8 = 7
    static let unspecified: UInt8 = 0

    // Link attributes.
    static let linkAddress: UInt16 = 1
    static let linkName: UInt16 = 3
    static let linkMTU: UInt16 = 4
    static let linkParent: UInt16 = 5
    static let linkInfo: UInt16 = 18
    static let infoKind: UInt16 = 1
    static let infoData: UInt16 = 2
    static let vxlanID: UInt16 = 1
    static let vxlanLink: UInt16 = 3
    static let vxlanLocal: UInt16 = 4
    static let vxlanLearning: UInt16 = 7
    static let vxlanPort: UInt16 = 15
    static let interfaceUp: UInt32 = 0x1

    // Address attributes.
    static let addressAddress: UInt16 = 1
    static let addressLocal: UInt16 = 2

    // Route attributes and values.
    static let routeDestination: UInt16 = 1
    static let routeOutputInterface: UInt16 = 4
    static let routeGateway: UInt16 = 5
    static let routePreferredSource: UInt16 = 7
    static let routeTable: UInt16 = 15
    static let tableMain: UInt8 = 254
    static let protocolBoot: UInt8 = 3
    static let scopeUniverse: UInt8 = 0
    static let scopeLink: UInt8 = 253
    static let typeUnicast: UInt8 = 1
    static let flagOnlink: UInt32 = 0x4

    // Neighbour attributes and values.
    static let neighbourDestination: UInt16 = 1
    static let neighbourHardwareAddress: UInt16 = 2
    static let stateReachable: UInt16 = 0x02
    static let statePermanent: UInt16 = 0x80
    static let flagSelf: UInt8 = 0x02
}

/// A netlink request under construction: the 16-byte header, the family's fixed header,
/// then type-length-value attributes, each padded to 4 bytes.
struct NetlinkRequest {
    private(set) var bytes: [UInt8]

    init(type: UInt16, flags: UInt16, fixedHeader: [UInt8]) {
        bytes = [UInt8](repeating: 0, count: 16)
        Self.store(type, into: &bytes, at: 4)
        Self.store(flags | RTNL.request, into: &bytes, at: 6)
        bytes += fixedHeader
        Self.pad(&bytes)
    }

    mutating func add(_ type: UInt16, _ payload: [UInt8]) {
        var header = [UInt8](repeating: 0, count: 4)
        Self.store(UInt16(4 + payload.count), into: &header, at: 0)
        Self.store(type, into: &header, at: 2)
        bytes += header + payload
        Self.pad(&bytes)
    }

    mutating func add(_ type: UInt16, uint32 value: UInt32) { add(type, Self.encode(value)) }
    mutating func add(_ type: UInt16, uint8 value: UInt8) { add(type, [value]) }
    mutating func add(_ type: UInt16, string: String) { add(type, Array(string.utf8) + [0]) }

    /// Adds a nested attribute whose content `body` writes.
    mutating func nest(_ type: UInt16, _ body: (inout NetlinkRequest) -> Void) {
        let start = bytes.count
        bytes += [0, 0, 0, 0]
        Self.store(type | 0x8000, into: &bytes, at: start + 2)
        body(&self)
        Self.store(UInt16(bytes.count - start), into: &bytes, at: start)
    }

    /// The finished message with its length and sequence number filled in.
    func message(sequence: UInt32) -> [UInt8] {
        var message = bytes
        Self.store(UInt32(message.count), into: &message, at: 0)
        Self.store(sequence, into: &message, at: 8)
        return message
    }

    static func encode<Value: FixedWidthInteger>(_ value: Value) -> [UInt8] {
        withUnsafeBytes(of: value) { Array($0) }
    }

    static func store<Value: FixedWidthInteger>(_ value: Value, into bytes: inout [UInt8], at offset: Int) {
        withUnsafeBytes(of: value) { raw in
            for (index, byte) in raw.enumerated() { bytes[offset + index] = byte }
        }
    }

    private static func pad(_ bytes: inout [UInt8]) {
        while bytes.count % 4 != 0 { bytes.append(0) }
    }
}

/// One message of a kernel reply.
struct NetlinkReply {
    var type: UInt16
    var flags: UInt16
    var sequence: UInt32
    /// The bytes after the 16-byte header.
    var payload: ArraySlice<UInt8>

    /// Splits a datagram into its messages; nil when it is malformed.
    static func split(_ datagram: ArraySlice<UInt8>) -> [NetlinkReply]? {
        var replies: [NetlinkReply] = []
        var offset = datagram.startIndex
        while datagram.endIndex - offset >= 16 {
            let length = Int(read(UInt32.self, datagram, offset))
            guard length >= 16, offset + length <= datagram.endIndex else { return nil }
            replies.append(
                NetlinkReply(
                    type: read(UInt16.self, datagram, offset + 4), flags: read(UInt16.self, datagram, offset + 6),
                    sequence: read(UInt32.self, datagram, offset + 8),
                    payload: datagram[(offset + 16)..<(offset + length)]))
            offset += (length + 3) & ~3
        }
        return replies
    }

    /// The attributes after a fixed header of `fixedLength` bytes, by type (nested and
    /// byte-order flag bits cleared). Later duplicates win; rtnetlink sends none we use.
    func attributes(after fixedLength: Int) -> [UInt16: ArraySlice<UInt8>] {
        NetlinkReply.attributes(payload.dropFirst(fixedLength))
    }

    static func attributes(_ bytes: ArraySlice<UInt8>) -> [UInt16: ArraySlice<UInt8>] {
        var result: [UInt16: ArraySlice<UInt8>] = [:]
        var offset = bytes.startIndex
        while bytes.endIndex - offset >= 4 {
            let length = Int(read(UInt16.self, bytes, offset))
            let type = read(UInt16.self, bytes, offset + 2) & 0x3FFF
            guard length >= 4, offset + length <= bytes.endIndex else { break }
            result[type] = bytes[(offset + 4)..<(offset + length)]
            offset += (length + 3) & ~3
        }
        return result
    }

    static func read<Value: FixedWidthInteger>(_: Value.Type, _ bytes: ArraySlice<UInt8>, _ offset: Int) -> Value {
        var value = Value.zero
        withUnsafeMutableBytes(of: &value) { raw in
            for index in 0..<MemoryLayout<Value>.size where offset + index < bytes.endIndex {
                raw[index] = bytes[offset + index]
            }
        }
        return value
    }
}
