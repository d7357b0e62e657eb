/// String escaping for unit names, byte for byte as `systemd-escape(1)` does it.
///
/// Kept as-is: ASCII letters, digits, `:`, `_` and `.` (except a leading `.`); `/`
/// becomes `-`; every other byte, including `-`, `\` and each byte of a non-ASCII
/// character, becomes `\xNN` with lowercase hex.
public enum UnitNameEscaping {
    /// Characters allowed in the prefix of a unit name (systemd's VALID_CHARS).
    static func isValidNameCharacter(_ character: Character) -> Bool {
        guard let ascii = character.asciiValue else { return false }
        return isValidNameByte(ascii)
    }

    static func isValidNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: ":"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "\\"):
            return true
        default:
            return false
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func appendEscaped(_ byte: UInt8, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\\"))
        output.append(UInt8(ascii: "x"))
        output.append(hexDigits[Int(byte >> 4)])
        output.append(hexDigits[Int(byte & 0xF)])
    }

    /// `systemd-escape STRING`.
    public static func escape(_ text: String) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count)
        for (offset, byte) in text.utf8.enumerated() {
            if offset == 0 && byte == UInt8(ascii: ".") {
                appendEscaped(byte, to: &output)
            } else if byte == UInt8(ascii: "/") {
                output.append(UInt8(ascii: "-"))
            } else if byte == UInt8(ascii: "-") || byte == UInt8(ascii: "\\") || !isValidNameByte(byte) {
                appendEscaped(byte, to: &output)
            } else {
                output.append(byte)
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// `systemd-escape --path PATH`: the path is simplified (duplicate slashes and `.`
    /// components dropped), `/` becomes `-`, and leading and trailing slashes are removed
    /// before escaping. Paths with `..` components cannot be escaped.
    public static func escapePath(_ path: String) throws(UnitNameError) -> String {
        let simplified = PathSyntax.simplify(path)
        if simplified.isEmpty || simplified == "/" { return "-" }
        guard PathSyntax.isNormalized(simplified) else {
            throw UnitNameError(.notAnAbsoluteNormalizedPath, name: path)
        }
        var trimmed = Substring(simplified)
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        while trimmed.hasPrefix("/") { trimmed = trimmed.dropFirst() }
        return escape(String(trimmed))
    }

    /// `systemd-escape --unescape STRING`: `-` becomes `/`, `\xNN` becomes that byte;
    /// any other backslash is an error. A `\x00` is refused rather than truncating the result.
    public static func unescape(_ text: String) throws(UnitNameError) -> String {
        let bytes = Array(text.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "-") {
                output.append(UInt8(ascii: "/"))
                index += 1
            } else if byte == UInt8(ascii: "\\") {
                guard index + 3 < bytes.count,
                    bytes[index + 1] == UInt8(ascii: "x"),
                    let high = hexValue(bytes[index + 2]),
                    let low = hexValue(bytes[index + 3])
                else { throw UnitNameError(.invalidEscape, name: text) }
                let value = high << 4 | low
                if value == 0 { throw UnitNameError(.invalidEscape, name: text) }
                output.append(value)
                index += 4
            } else {
                output.append(byte)
                index += 1
            }
        }
        guard let result = String(validating: output, as: UTF8.self) else {
            throw UnitNameError(.invalidEscape, name: text)
        }
        return result
    }

    /// `systemd-escape --unescape --path STRING`: `-` alone is `/`; otherwise the unescaped
    /// text gets a leading `/` and must be a normalized path without leading or trailing slash.
    public static func unescapePath(_ text: String) throws(UnitNameError) -> String {
        if text.isEmpty { throw UnitNameError(.invalidPath, name: text) }
        if text == "-" { return "/" }
        let unescaped = try unescape(text)
        if unescaped.hasPrefix("/") || unescaped.hasSuffix("/") { throw UnitNameError(.invalidPath, name: text) }
        let path = "/" + unescaped
        guard PathSyntax.isNormalized(path) else { throw UnitNameError(.notAnAbsoluteNormalizedPath, name: text) }
        return path
    }

    /// `systemd-escape --template=foo@.service STRING`.
    public static func instance(of template: UnitName, escaping text: String) throws(UnitNameError) -> UnitName {
        try template.instantiated(with: escape(text))
    }

    /// `systemd-escape --mangle STRING`: turn what a user typed into a unit name. Absolute
    /// paths under /dev and /sys become `.device` units, other absolute paths `.mount`
    /// units; a valid unit name is kept; anything else is escaped (keeping `@`, `-` and
    /// `\`) and gets `.service` unless it already ends in a unit type. The result must be
    /// a valid unit name (a leading `@` or an over-long name is refused).
    public static func mangle(_ text: String, suffix: UnitType = .service) throws(UnitNameError) -> String {
        if text.isEmpty { throw UnitNameError(.empty, name: text) }
        if UnitName.isValid(text) { return text }
        var mangled: String
        if text.hasPrefix("/") {
            let type: UnitType = (text.hasPrefix("/dev/") || text.hasPrefix("/sys/")) ? .device : .mount
            mangled = try escapePath(text) + "." + type.rawValue
        } else {
            var output: [UInt8] = []
            for byte in text.utf8 {
                if byte == UInt8(ascii: "/") {
                    output.append(UInt8(ascii: "-"))
                } else if byte == UInt8(ascii: "@") || isValidNameByte(byte) {
                    output.append(byte)
                } else {
                    appendEscaped(byte, to: &output)
                }
            }
            mangled = String(decoding: output, as: UTF8.self)
            let hasTypeSuffix =
                mangled.lastIndex(of: ".").map {
                    UnitType(rawValue: String(mangled[mangled.index(after: $0)...])) != nil
                } ?? false
            if !hasTypeSuffix { mangled += "." + suffix.rawValue }
        }
        _ = try UnitName(mangled)
        return mangled
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// Path checks as systemd's path-util defines them.
enum PathSyntax {
    static let pathMax = 4096
    static let nameMax = 255

    /// Drops duplicate slashes, `.` components and trailing slashes; keeps `..`.
    /// `"./a"` → `"a"`, `"/a//b/"` → `"/a/b"`, `"/."` → `"/"`.
    static func simplify(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        let components = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        let joined = components.joined(separator: "/")
        if absolute { return "/" + joined }
        if joined.isEmpty && !path.isEmpty { return "." }
        return joined
    }

    /// A non-empty path within PATH_MAX whose components fit NAME_MAX.
    static func isValid(_ path: String) -> Bool {
        if path.isEmpty || path.utf8.count >= pathMax { return false }
        return path.split(separator: "/").allSatisfy { $0.utf8.count <= nameMax }
    }

    /// Valid, with no `.` or `..` components and no `//`.
    static func isNormalized(_ path: String) -> Bool {
        guard isValid(path) else { return false }
        if path.contains("//") { return false }
        return !path.split(separator: "/").contains { $0 == "." || $0 == ".." }
    }

    static func isAbsolute(_ path: String) -> Bool { path.hasPrefix("/") }
}
