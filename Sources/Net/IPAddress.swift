/// Why an address, network or MAC text was refused.
public struct AddressParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public var kind: String
    public var text: String
    public var detail: String

    public init(kind: String, text: String, detail: String) {
        self.kind = kind
        self.text = text
        self.detail = detail
    }

    public var description: String { "invalid \(kind) \(text.debugDescription): \(detail)" }
}

/// What IPv4 and IPv6 addresses share, so networks can be written once.
public protocol IPAddressProtocol: AddressText, Hashable, Comparable {
    associatedtype Bits: FixedWidthInteger & UnsignedInteger & Sendable
    /// 32 or 128.
    static var bitWidth: Int { get }
    /// The address as a big-endian-ordered integer (the first octet is the most significant).
    var bits: Bits { get }
    init(bits: Bits)
    init(parsing text: some StringProtocol) throws(AddressParseError)
}

extension IPAddressProtocol {
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.bits < rhs.bits }

    /// The address `offset` places further on, or nil past the end of the address space.
    public func advanced(by offset: Bits) -> Self? {
        let (sum, overflow) = bits.addingReportingOverflow(offset)
        return overflow ? nil : Self(bits: sum)
    }
}

/// An IPv4 address. Text form: four decimal octets without leading zeros (`10.1.0.1`);
/// leading zeros are refused because other parsers read them as octal.
public struct IPv4Address: IPAddressProtocol, Sendable {
    public static let bitWidth = 32
    public var bits: UInt32

    public init(bits: UInt32) { self.bits = bits }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        bits = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// The four octets, network order.
    public var octets: [UInt8] {
        [
            UInt8(bits >> 24), UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 8),
            UInt8(truncatingIfNeeded: bits),
        ]
    }

    public init(parsing text: some StringProtocol) throws(AddressParseError) {
        func fail(_ detail: String) -> AddressParseError {
            AddressParseError(kind: "IPv4 address", text: String(text), detail: detail)
        }
        var value: UInt32 = 0
        var octetCount = 0
        var current: UInt32 = 0
        var digits = 0
        var leadingZero = false
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if digits == 1 && leadingZero { throw fail("octet with a leading zero") }
                if digits == 0 { leadingZero = byte == UInt8(ascii: "0") }
                current = current * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                if current > 255 { throw fail("octet above 255") }
            case UInt8(ascii: "."):
                if digits == 0 { throw fail("empty octet") }
                octetCount += 1
                if octetCount > 3 { throw fail("more than four octets") }
                value = value << 8 | current
                current = 0
                digits = 0
            default:
                throw fail("unexpected character")
            }
        }
        if digits == 0 || octetCount != 3 { throw fail("expected four octets") }
        self.bits = value << 8 | current
    }

    public var description: String {
        "\(bits >> 24).\(bits >> 16 & 0xFF).\(bits >> 8 & 0xFF).\(bits & 0xFF)"
    }

    public var isLoopback: Bool { bits >> 24 == 127 }
    public var isMulticast: Bool { bits >> 28 == 0xE }
    /// RFC 1918 private ranges.
    public var isPrivate: Bool {
        bits >> 24 == 10 || bits >> 20 == 0xAC1 || bits >> 16 == 0xC0A8
    }
    public var isLinkLocal: Bool { bits >> 16 == 0xA9FE }
    public var isUnspecified: Bool { bits == 0 }

}

/// An IPv6 address. Parses every RFC 4291 text form (`::`, embedded IPv4 in the last
/// 32 bits); formats as RFC 5952 prescribes (lowercase, longest zero run compressed,
/// the first of equal runs, never a single zero group).
public struct IPv6Address: IPAddressProtocol, Sendable {
    public static let bitWidth = 128
    public var bits: UInt128

    public init(bits: UInt128) { self.bits = bits }

    /// The eight 16-bit groups, most significant first.
    public var groups: [UInt16] { (0..<8).map { UInt16(truncatingIfNeeded: bits >> (112 - 16 * $0)) } }

    public init(groups: [UInt16]) {
        precondition(groups.count == 8, "an IPv6 address has eight groups")
        bits = groups.reduce(UInt128(0)) { $0 << 16 | UInt128($1) }
    }

    public init(parsing text: some StringProtocol) throws(AddressParseError) {
        let string = String(text)
        func fail(_ detail: String) -> AddressParseError {
            AddressParseError(kind: "IPv6 address", text: string, detail: detail)
        }
        if string.isEmpty { throw fail("empty") }
        let halves = string.components(separatedByDoubleColon: ())
        if halves.count > 2 { throw fail("more than one '::'") }
        func groups(of part: Substring, allowIPv4Tail: Bool) throws(AddressParseError) -> [UInt16] {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, field) in fields.enumerated() {
                if index == fields.count - 1 && allowIPv4Tail && field.contains(".") {
                    let v4 = try IPv4Address(parsing: field)
                    result.append(UInt16(v4.bits >> 16))
                    result.append(UInt16(truncatingIfNeeded: v4.bits))
                    continue
                }
                guard (1...4).contains(field.utf8.count), let value = UInt16(field, radix: 16),
                    field.utf8.allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "-") })
                else { throw fail("bad group \(String(field).debugDescription)") }
                result.append(value)
            }
            return result
        }
        var all: [UInt16]
        if halves.count == 2 {
            let head = try groups(of: halves[0], allowIPv4Tail: false)
            let tail = try groups(of: halves[1], allowIPv4Tail: true)
            if head.count + tail.count > 7 { throw fail("too many groups around '::'") }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            all = try groups(of: halves[0], allowIPv4Tail: true)
            if all.count != 8 { throw fail("expected eight groups") }
        }
        self.init(groups: all)
    }

    public var description: String {
        let groups = self.groups
        var bestStart = -1
        var bestLength = 0
        var index = 0
        while index < 8 {
            if groups[index] == 0 {
                var end = index
                while end < 8 && groups[end] == 0 { end += 1 }
                if end - index > bestLength {
                    bestStart = index
                    bestLength = end - index
                }
                index = end
            } else {
                index += 1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        func hex(_ range: Range<Int>) -> String {
            range.map { String(groups[$0], radix: 16) }.joined(separator: ":")
        }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    public var isLoopback: Bool { bits == 1 }
    public var isMulticast: Bool { bits >> 120 == 0xFF }
    public var isLinkLocal: Bool { bits >> 118 == 0x3FA }
    public var isUnspecified: Bool { bits == 0 }

}

extension String {
    /// Splits on "::" (at most the pieces around each occurrence).
    fileprivate func components(separatedByDoubleColon: Void) -> [Substring] {
        var pieces: [Substring] = []
        var start = startIndex
        var index = startIndex
        while index < endIndex {
            let next = self.index(after: index)
            if self[index] == ":" && next < endIndex && self[next] == ":" {
                pieces.append(self[start..<index])
                start = self.index(after: next)
                index = start
                continue
            }
            index = next
        }
        pieces.append(self[start..<endIndex])
        return pieces
    }
}

/// Either kind of IP address.
public enum IPAddress: Sendable, Hashable {
    case v4(IPv4Address)
    case v6(IPv6Address)

    public init(parsing text: some StringProtocol) throws(AddressParseError) {
        if text.contains(":") {
            self = .v6(try IPv6Address(parsing: text))
        } else {
            self = .v4(try IPv4Address(parsing: text))
        }
    }

    public var description: String {
        switch self {
        case .v4(let address): return address.description
        case .v6(let address): return address.description
        }
    }

}
