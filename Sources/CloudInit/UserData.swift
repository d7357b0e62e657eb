import Foundation

/// What a piece of user-data is, decided in coreos-cloudinit's order: gzip is unpacked
/// first, then empty input, `#!` scripts, Ignition configs and `#cloud-config` are told apart.
public enum UserData: Sendable, Hashable {
    case empty
    /// A script to run; the bytes as given (after gunzip).
    case script([UInt8])
    /// An Ignition config: not ours to apply.
    case ignition
    /// A cloud-config document (the whole text, header included; not necessarily UTF-8,
    /// which is the YAML parser's to report).
    case cloudConfig([UInt8])
    /// Gzip'ed data that does not inflate.
    case undecodable(String)
    /// None of the above: the header is wrong.
    case unrecognized

    public static func recognize(_ input: [UInt8]) -> UserData {
        var bytes = input
        if ContentEncoding.isGzip(bytes) {
            do {
                bytes = try ContentEncoding.gunzip(bytes, limit: ContentEncoding.maxDecodedBytes)
            } catch {
                return .undecodable("user-data cannot be decompressed: \(error)")
            }
        }
        if bytes.isEmpty { return .empty }
        if bytes.starts(with: [UInt8(ascii: "#"), UInt8(ascii: "!")]) { return .script(bytes) }
        if isIgnition(bytes) { return .ignition }
        let firstLine = bytes.prefix { $0 != UInt8(ascii: "\n") }
        let trimmed = firstLine.reversed().drop { isSpace($0) }.reversed()
        if trimmed.elementsEqual("#cloud-config".utf8) { return .cloudConfig(bytes) }
        return .unrecognized
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0d).contains(byte)
    }

    /// A JSON object with `ignitionVersion` or `ignition.version` at its top level.
    static func isIgnition(_ bytes: [UInt8]) -> Bool {
        guard let first = bytes.first(where: { !isSpace($0) }), first == UInt8(ascii: "{"),
            let members = JSONText.object(bytes)
        else { return false }
        if members["ignitionVersion"] != nil { return true }
        if let ignition = members["ignition"] as? [String: Any], ignition["version"] != nil { return true }
        return false
    }
}

/// JSON documents that datasources and Ignition detection read.
enum JSONText {
    /// The top-level object, or nil when the text is not a JSON object.
    static func object(_ bytes: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }
}

/// The addresses a datasource knows, substituted for `$public_ipv4` and friends.
public struct MetadataAddresses: Sendable, Hashable {
    public var publicIPv4: String?
    public var privateIPv4: String?
    public var publicIPv6: String?
    public var privateIPv6: String?

    public init(publicIPv4: String? = nil, privateIPv4: String? = nil, publicIPv6: String? = nil, privateIPv6: String? = nil) {
        self.publicIPv4 = publicIPv4
        self.privateIPv4 = privateIPv4
        self.publicIPv6 = publicIPv6
        self.privateIPv6 = privateIPv6
    }

    /// Addresses the metadata lacks come from `COREOS_PUBLIC_IPV4` and the like.
    public func fillingGaps(from environment: [String: String]) -> MetadataAddresses {
        func pick(_ own: String?, _ name: String) -> String? {
            if let own, !own.isEmpty { return own }
            return environment[name].flatMap { $0.isEmpty ? nil : $0 }
        }
        return MetadataAddresses(
            publicIPv4: pick(publicIPv4, "COREOS_PUBLIC_IPV4"), privateIPv4: pick(privateIPv4, "COREOS_PRIVATE_IPV4"),
            publicIPv6: pick(publicIPv6, "COREOS_PUBLIC_IPV6"), privateIPv6: pick(privateIPv6, "COREOS_PRIVATE_IPV6"))
    }

    /// `COREOS_*` name and value of every address that is set, in a fixed order.
    public var environment: [(name: String, value: String)] {
        [
            ("COREOS_PUBLIC_IPV4", publicIPv4), ("COREOS_PRIVATE_IPV4", privateIPv4),
            ("COREOS_PUBLIC_IPV6", publicIPv6), ("COREOS_PRIVATE_IPV6", privateIPv6),
        ].compactMap { name, value in value.flatMap { $0.isEmpty ? nil : (name, $0) } }
    }
}

/// `$public_ipv4`, `$private_ipv4`, `$public_ipv6`, `$private_ipv6` replaced in the raw
/// user-data before it is parsed, with coreos-cloudinit's rules: `\$name` stays `$name`
/// (the backslash dropped), an unknown address becomes the empty string, `${…}` and
/// upper-case names are left alone, and a name followed by more letters still matches
/// (`$public_ipv4_x`). One pass, so the result never grows more than the values' length
/// times the number of variables.
public enum VariableSubstitution {
    public static func apply(_ text: [UInt8], addresses: MetadataAddresses) -> [UInt8] {
        let variables: [([UInt8], String)] = [
            (Array("$public_ipv4".utf8), addresses.publicIPv4 ?? ""),
            (Array("$private_ipv4".utf8), addresses.privateIPv4 ?? ""),
            (Array("$public_ipv6".utf8), addresses.publicIPv6 ?? ""),
            (Array("$private_ipv6".utf8), addresses.privateIPv6 ?? ""),
        ]
        var output: [UInt8] = []
        output.reserveCapacity(text.count)
        var index = 0
        // Upstream ran one regular expression per variable that consumed the character
        // before `$`; so right after a replaced variable the same variable is not replaced
        // (`$v$v$v` gives `value $v value`), while a different one is.
        var replacedEndingHere: (end: Int, variable: Int)? = nil
        while index < text.count {
            let byte = text[index]
            guard byte == UInt8(ascii: "$"), let variable = variables.firstIndex(where: { text[index...].starts(with: $0.0) })
            else {
                output.append(byte)
                index += 1
                continue
            }
            let (name, value) = variables[variable]
            if index > 0 && text[index - 1] == UInt8(ascii: "\\") {
                output.removeLast()
                output += name
            } else if let replaced = replacedEndingHere, replaced.end == index, replaced.variable == variable {
                output += name
            } else {
                output += value.utf8
                replacedEndingHere = (index + name.count, variable)
            }
            index += name.count
        }
        return output
    }
}
