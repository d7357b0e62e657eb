/// bcrypt password hashes (`$2a$`/`$2b$`, as etcd and Go's `x/crypto/bcrypt` store them):
/// Blowfish keyed expensively with the password and a salt, then used to encrypt
/// "OrpheanBeholderScryDoubt" 64 times. A hash made by etcd verifies here and the reverse.
public enum Bcrypt {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case malformedHash
        case costOutOfRange(Int)

        public var description: String {
            switch self {
            case .malformedHash: "not a bcrypt hash"
            case .costOutOfRange(let cost): "bcrypt cost \(cost) is outside 4...31"
            }
        }
    }

    public static let defaultCost = 10

    /// A new hash of `password` with a random salt.
    public static func hash(_ password: [UInt8], cost: Int = defaultCost) throws(Failure) -> String {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return try hash(password, salt: salt, cost: cost)
    }

    /// The hash of `password` with a given 16-byte salt.
    public static func hash(_ password: [UInt8], salt: [UInt8], cost: Int) throws(Failure) -> String {
        guard (4...31).contains(cost) else { throw .costOutOfRange(cost) }
        guard salt.count == 16 else { throw .malformedHash }
        let digest = rawHash(password, salt: salt, cost: cost)
        let costText = cost < 10 ? "0\(cost)" : "\(cost)"
        return "$2a$\(costText)$" + encode(salt) + encode(Array(digest.prefix(23)))
    }

    /// Whether `password` is the one `hash` was made from. Compares in constant time.
    public static func verify(_ password: [UInt8], against hash: String) -> Bool {
        let parts = hash.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].isEmpty, ["2a", "2b", "2y"].contains(parts[1]), let cost = Int(parts[2]),
            (4...31).contains(cost), parts[3].utf8.count == 53,
            let salt = decode(parts[3].prefix(22), count: 16)
        else { return false }
        let expected = Array(parts[3].utf8.suffix(31))
        let digest = Array(encode(Array(rawHash(password, salt: salt, cost: cost).prefix(23))).utf8)
        guard digest.count == expected.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(digest, expected) { difference |= a ^ b }
        return difference == 0
    }

    /// The cost a hash was made with.
    public static func cost(of hash: String) -> Int? {
        let parts = hash.split(separator: "$", omittingEmptySubsequences: false)
        return parts.count == 4 ? Int(parts[2]) : nil
    }

    // MARK: The algorithm

    private static func rawHash(_ password: [UInt8], salt: [UInt8], cost: Int) -> [UInt8] {
        // $2a$/$2b$: the key is the password with its NUL terminator, at most 72 bytes.
        let key = Array((password + [0]).prefix(72))
        var cipher = Blowfish()
        cipher.expandKey(key, salt: salt)
        for _ in 0..<(1 << cost) {
            cipher.expandKey(key, salt: nil)
            cipher.expandKey(salt, salt: nil)
        }
        var text: [UInt32] = [0x4F72_7068, 0x6561_6E42, 0x6568_6F6C, 0x6465_7253, 0x6372_7944, 0x6F75_6274]
        for _ in 0..<64 {
            for block in stride(from: 0, to: 6, by: 2) {
                (text[block], text[block + 1]) = cipher.encrypt(text[block], text[block + 1])
            }
        }
        return text.flatMap { word in [UInt8(word >> 24), UInt8(truncatingIfNeeded: word >> 16), UInt8(truncatingIfNeeded: word >> 8), UInt8(truncatingIfNeeded: word)] }
    }

    private static let alphabet = Array("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// bcrypt's base64: its own alphabet, no padding.
    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let first = bytes[index]
            output.append(alphabet[Int(first >> 2)])
            var carry = (first & 0x03) << 4
            guard index + 1 < bytes.count else {
                output.append(alphabet[Int(carry)])
                break
            }
            let second = bytes[index + 1]
            output.append(alphabet[Int(carry | second >> 4)])
            carry = (second & 0x0F) << 2
            guard index + 2 < bytes.count else {
                output.append(alphabet[Int(carry)])
                break
            }
            let third = bytes[index + 2]
            output.append(alphabet[Int(carry | third >> 6)])
            output.append(alphabet[Int(third & 0x3F)])
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func decode(_ text: Substring, count: Int) -> [UInt8]? {
        var values: [UInt8] = []
        for character in text.utf8 {
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            values.append(UInt8(value))
        }
        var bytes: [UInt8] = []
        var index = 0
        while index < values.count, bytes.count < count {
            let a = values[index], b = index + 1 < values.count ? values[index + 1] : 0
            bytes.append(a << 2 | b >> 4)
            guard bytes.count < count, index + 2 < values.count else { break }
            let c = values[index + 2]
            bytes.append(b << 4 | c >> 2)
            guard bytes.count < count, index + 3 < values.count else { break }
            bytes.append(c << 6 | values[index + 3])
            index += 4
        }
        return bytes.count == count ? bytes : nil
    }
}

/// Blowfish with bcrypt's expensive key schedule.
struct Blowfish {
    private var p = BlowfishConstants.p
    private var s = BlowfishConstants.s

    @inline(__always)
    private func f(_ x: UInt32) -> UInt32 {
        let a = s[Int(x >> 24)], b = s[256 + Int((x >> 16) & 0xFF)]
        let c = s[512 + Int((x >> 8) & 0xFF)], d = s[768 + Int(x & 0xFF)]
        return ((a &+ b) ^ c) &+ d
    }

    func encrypt(_ left: UInt32, _ right: UInt32) -> (UInt32, UInt32) {
        var l = left, r = right
        for round in stride(from: 0, to: 16, by: 2) {
            l ^= p[round]
            r ^= f(l)
            r ^= p[round + 1]
            l ^= f(r)
        }
        return (r ^ p[17], l ^ p[16])
    }

    /// Mixes `key` into the subkeys, then re-derives them all by encryption, XORing in
    /// `salt` words along the way when there is one (bcrypt's `ExpandKey`).
    mutating func expandKey(_ key: [UInt8], salt: [UInt8]?) {
        var keyPosition = 0
        for index in 0..<18 { p[index] ^= Self.word(key, &keyPosition) }
        var saltPosition = 0
        var l: UInt32 = 0, r: UInt32 = 0
        func next(_ cipher: Blowfish) {
            if let salt {
                l ^= Self.word(salt, &saltPosition)
                r ^= Self.word(salt, &saltPosition)
            }
            (l, r) = cipher.encrypt(l, r)
        }
        for index in stride(from: 0, to: 18, by: 2) {
            next(self)
            p[index] = l
            p[index + 1] = r
        }
        for index in stride(from: 0, to: 1024, by: 2) {
            next(self)
            s[index] = l
            s[index + 1] = r
        }
    }

    /// The next four bytes of `bytes`, cycling, big-endian.
    private static func word(_ bytes: [UInt8], _ position: inout Int) -> UInt32 {
        var word: UInt32 = 0
        for _ in 0..<4 {
            word = word << 8 | UInt32(bytes[position])
            position = (position + 1) % bytes.count
        }
        return word
    }
}
