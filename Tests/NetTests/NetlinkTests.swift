import Testing

@testable import Net

@Suite struct NetlinkMessageTests {
    @Test func requestsArePaddedAndSized() {
        var request = NetlinkRequest(type: RTNL.newRoute, flags: RTNL.acknowledge, fixedHeader: [1, 2, 3])
        request.add(RTNL.routeDestination, [10, 5, 0, 0])
        request.add(RTNL.linkName, string: "flannel.1")
        let message = request.message(sequence: 7)
        #expect(message.count % 4 == 0)
        #expect(NetlinkReply.read(UInt32.self, message[...], 0) == UInt32(message.count))
        #expect(NetlinkReply.read(UInt16.self, message[...], 4) == RTNL.newRoute)
        #expect(NetlinkReply.read(UInt16.self, message[...], 6) == RTNL.acknowledge | RTNL.request)
        #expect(NetlinkReply.read(UInt32.self, message[...], 8) == 7)
        let replies = NetlinkReply.split(message[...])
        #expect(replies?.count == 1)
        let attributes = replies?.first?.attributes(after: 4) ?? [:]
        #expect(attributes[RTNL.routeDestination].map(Array.init) == [10, 5, 0, 0])
        #expect(attributes[RTNL.linkName].map(Array.init) == Array("flannel.1".utf8) + [0])
    }

    @Test func nestedAttributesCarryTheirLengthAndFlag() {
        var request = NetlinkRequest(type: RTNL.newLink, flags: 0, fixedHeader: [])
        request.nest(RTNL.linkInfo) { info in
            info.add(RTNL.infoKind, string: "vxlan")
            info.nest(RTNL.infoData) { data in data.add(RTNL.vxlanID, uint32: 1) }
        }
        let message = request.message(sequence: 1)
        let outer = NetlinkReply.attributes(message[16...])
        let info = NetlinkReply.attributes(outer[RTNL.linkInfo] ?? [])
        #expect(info[RTNL.infoKind].map(Array.init) == Array("vxlan".utf8) + [0])
        let data = NetlinkReply.attributes(info[RTNL.infoData] ?? [])
        #expect(data[RTNL.vxlanID].map { NetlinkReply.read(UInt32.self, $0, $0.startIndex) } == 1)
        // The nested flag (0x8000) is set on the wire and masked when read.
        #expect(NetlinkReply.read(UInt16.self, message[...], 18) & 0x8000 != 0)
    }

    @Test func truncatedOrLyingRepliesAreRejected() {
        var request = NetlinkRequest(type: RTNL.newLink, flags: 0, fixedHeader: [0, 0, 0, 0])
        request.add(RTNL.linkName, string: "eth0")
        let message = request.message(sequence: 1)
        #expect(NetlinkReply.split(message.dropLast(4)) == nil)
        var lying = message
        lying[0] = 0xFF
        #expect(NetlinkReply.split(lying[...]) == nil)
        // An attribute whose length runs past the end is ignored, not read out of bounds.
        #expect(NetlinkReply.attributes([0xFF, 0x00, 0x03, 0x00, 1, 2][...]).isEmpty)
    }

    @Test func readsThisNamespacesLoopback() throws {
        let netlink = try RouteNetlink()
        let loopback = try netlink.link(named: "lo")
        #expect(loopback?.index == 1)
        #expect(try netlink.link(named: "nosuchdev9") == nil)
        #expect(try netlink.links().contains { $0.name == "lo" })
        #expect(try netlink.addresses().contains { $0.address == IPv4Address(127, 0, 0, 1) && $0.prefixLength == 8 })
        #expect(try netlink.routeGet(IPv4Address(127, 0, 0, 1)).index == 1)
    }
}
