import Net
import Testing

@testable import Flannel

@Suite struct SubnetAllocatorTests {
    let config: FlannelConfig
    let me = IPv4Address(192, 168, 0, 1)

    init() throws { config = try FlannelConfig(json: #"{"Network": "10.5.0.0/16"}"#) }

    private func net(_ text: String) throws -> IPv4Network { try IPv4Network(parsing: text) }

    @Test func reusesThisHostsLease() throws {
        let mine = SubnetLeaseView(subnet: try net("10.5.9.0/24"), publicIP: me)
        let decision = try SubnetAllocator.decide(
            config: config, leases: [SubnetLeaseView(subnet: try net("10.5.1.0/24"), publicIP: IPv4Address(192, 168, 0, 2)), mine],
            publicIP: me, previous: try net("10.5.3.0/24"), random: { _ in 0 })
        #expect(decision == .reuse(mine))
    }

    @Test func anIncompatibleLeaseIsReplacedAndThePreviousSubnetPreferred() throws {
        let old = SubnetLeaseView(subnet: try net("10.5.9.0/25"), publicIP: me)
        let decision = try SubnetAllocator.decide(
            config: config, leases: [old], publicIP: me, previous: try net("10.5.3.0/24"), random: { _ in 0 })
        #expect(decision == .create(try net("10.5.3.0/24"), deleteFirst: try net("10.5.9.0/25")))
    }

    @Test func aPreviousSubnetHeldByAnotherHostIsNotTaken() throws {
        let other = SubnetLeaseView(subnet: try net("10.5.3.0/24"), publicIP: IPv4Address(192, 168, 0, 2))
        let decision = try SubnetAllocator.decide(config: config, leases: [other], publicIP: me, previous: try net("10.5.3.0/24"), random: { _ in 2 })
        // Free from SubnetMin (10.5.1.0) on, skipping 10.5.3.0: index 2 is 10.5.4.0.
        #expect(decision == .create(try net("10.5.4.0/24"), deleteFirst: nil))
    }

    @Test func reservationsAreRespectedAndTheFirstHundredFreeAreCandidates() throws {
        let reserved = SubnetLeaseView(subnet: try net("10.5.1.0/24"), publicIP: IPv4Address(10, 0, 0, 9), isReservation: true)
        var seen = 0
        _ = try SubnetAllocator.decide(config: config, leases: [reserved], publicIP: me, previous: nil) { count in
            seen = count
            return 0
        }
        #expect(seen == 100)
        let first = try SubnetAllocator.decide(config: config, leases: [reserved], publicIP: me, previous: nil, random: { _ in 0 })
        #expect(first == .create(try net("10.5.2.0/24"), deleteFirst: nil))
    }

    @Test func aFullNetworkIsOutOfSubnets() throws {
        let tiny = try FlannelConfig(json: #"{"Network": "10.5.0.0/28"}"#)  // /30 subnets: 10.5.0.4, .8, .12
        let taken = try ["10.5.0.4/30", "10.5.0.8/30", "10.5.0.12/30"].map { SubnetLeaseView(subnet: try net($0), publicIP: IPv4Address(1, 1, 1, 1)) }
        #expect(throws: SubnetAllocator.Failure(message: "out of subnets")) {
            try SubnetAllocator.decide(config: tiny, leases: taken, publicIP: me, previous: nil, random: { _ in 0 })
        }
    }
}

@Suite struct SubnetOwnershipTests {
    let config: FlannelConfig
    let sharedIP = IPv4Address(192, 168, 0, 1)

    init() throws { config = try FlannelConfig(json: #"{"Network": "10.5.0.0/16"}"#) }

    @Test func aLeaseWithMyPublicIPButAnotherVTEPIsNotMine() throws {
        let other = SubnetLeaseView(subnet: try IPv4Network(parsing: "10.5.7.0/24"), publicIP: sharedIP, hostIdentity: "0a:00:00:00:00:01")
        let decision = try SubnetAllocator.decide(
            config: config, leases: [other], publicIP: sharedIP, previous: nil, identity: "0a:00:00:00:00:02", random: { _ in 0 })
        #expect(decision == .create(try IPv4Network(parsing: "10.5.1.0/24"), deleteFirst: nil))
    }

    @Test func myVTEPFindsMyLeaseAfterAReboot() throws {
        let other = SubnetLeaseView(subnet: try IPv4Network(parsing: "10.5.7.0/24"), publicIP: sharedIP, hostIdentity: "0a:00:00:00:00:01")
        let mine = SubnetLeaseView(subnet: try IPv4Network(parsing: "10.5.9.0/24"), publicIP: sharedIP, hostIdentity: "0a:00:00:00:00:02")
        let decision = try SubnetAllocator.decide(
            config: config, leases: [other, mine], publicIP: sharedIP, previous: nil, identity: "0a:00:00:00:00:02",
            random: { _ in 0 })
        #expect(decision == .reuse(mine))
    }

    @Test func thePreviousSubnetWinsOverAnotherLeaseWithMyPublicIP() throws {
        let first = SubnetLeaseView(subnet: try IPv4Network(parsing: "10.5.7.0/24"), publicIP: sharedIP)
        let second = SubnetLeaseView(subnet: try IPv4Network(parsing: "10.5.9.0/24"), publicIP: sharedIP)
        let decision = try SubnetAllocator.decide(
            config: config, leases: [first, second], publicIP: sharedIP, previous: try IPv4Network(parsing: "10.5.9.0/24"),
            random: { _ in 0 })
        #expect(decision == .reuse(second))
    }
}
