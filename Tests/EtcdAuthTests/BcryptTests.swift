import Testing

@testable import EtcdAuth

@Suite struct BcryptTests {
    /// Hashes made by python3-bcrypt (OpenBSD's implementation), as etcd's Go bcrypt makes them.
    static let vectors: [(password: String, hash: String)] = [
        ("", "$2a$04$cZ6vvtDrwmlYAGrm10WtveUQVA9CRAHwkm9FjDwyGXGQghO4THO9C"),
        ("password", "$2a$05$eobYkIIvhMaozJzsQT4C1uONRPFiKaH7nx.rSKCV8/rexa/iKpeVK"),
        (String(repeating: "a", count: 80), "$2a$04$7bsyoo36Ln1y52IplfQWz.QRB1bxwz9CyS3E6sa5Hpj14FjiSqYdy"),
    ]

    @Test func verifiesHashesMadeElsewhere() {
        for vector in Self.vectors {
            #expect(Bcrypt.verify(Array(vector.password.utf8), against: vector.hash), "\(vector.hash)")
            #expect(!Bcrypt.verify(Array(("x" + vector.password).utf8), against: vector.hash))
        }
    }

    @Test func reproducesAHashFromItsSalt() throws {
        let hash = Self.vectors[1].hash
        let salt = try #require(Bcrypt.decode(hash.dropFirst(7).prefix(22), count: 16))
        #expect(try Bcrypt.hash(Array("password".utf8), salt: salt, cost: 5) == hash)
    }

    @Test func roundTripsAndRefusesBadInput() throws {
        let hash = try Bcrypt.hash(Array("s3cret".utf8), cost: 4)
        #expect(hash.hasPrefix("$2a$04$") && hash.count == 60)
        #expect(Bcrypt.verify(Array("s3cret".utf8), against: hash))
        #expect(!Bcrypt.verify(Array("s3cret".utf8), against: "$2a$04$short"))
        #expect(!Bcrypt.verify(Array("s3cret".utf8), against: ""))
        #expect(throws: Bcrypt.Failure.costOutOfRange(3)) { try Bcrypt.hash([], cost: 3) }
    }
}
