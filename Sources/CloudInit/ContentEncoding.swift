import CLinux
import Glibc

/// Why `write_files` content or user-data could not be decoded.
public struct DecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
}

/// The `encoding:` of a `write_files` entry, and gzip'ed user-data.
public enum ContentEncoding {
    /// Decoded content larger than this is refused: cloud-config carries configuration,
    /// and a 10 KB gzip bomb must not take a gigabyte.
    public static let maxDecodedBytes = 16 << 20

    /// The bytes `content` stands for under `encoding` (empty: the text itself).
    public static func decode(_ content: String, encoding: String) throws(DecodingError) -> [UInt8] {
        switch encoding {
        case "": return Array(content.utf8)
        case "b64", "base64": return try base64(content)
        case "gz", "gzip": return try gunzip(Array(content.utf8))
        case "gz+b64", "gz+base64", "gzip+b64", "gzip+base64": return try gunzip(base64(content))
        default: throw DecodingError(description: "unsupported encoding \"\(encoding)\"")
        }
    }

    /// Standard base64 with padding, as Go's `base64.StdEncoding` reads it: line breaks
    /// (`\r`, `\n`) are skipped, anything else outside the alphabet is an error.
    public static func base64(_ text: String) throws(DecodingError) -> [UInt8] {
        let symbols = text.utf8.filter { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }
        guard symbols.count % 4 == 0 else {
            throw DecodingError(description: "illegal base64 data: length is not a multiple of 4")
        }
        var output: [UInt8] = []
        output.reserveCapacity(symbols.count / 4 * 3)
        var index = 0
        while index < symbols.count {
            let isLast = index + 4 == symbols.count
            var quantum: UInt32 = 0
            var padding = 0
            for position in 0..<4 {
                let byte = symbols[index + position]
                // `=` only closes the last quantum: `xx==` or `xxx=`.
                if byte == UInt8(ascii: "="), isLast, position == 3 || position == 2 && symbols[index + 3] == byte {
                    padding += 1
                    quantum <<= 6
                    continue
                }
                guard padding == 0, let value = sextet(byte) else {
                    throw DecodingError(description: "illegal base64 data at input byte \(index + position)")
                }
                quantum = quantum << 6 | UInt32(value)
            }
            output.append(UInt8(truncatingIfNeeded: quantum >> 16))
            if padding < 2 { output.append(UInt8(truncatingIfNeeded: quantum >> 8)) }
            if padding < 1 { output.append(UInt8(truncatingIfNeeded: quantum)) }
            index += 4
        }
        return output
    }

    private static func sextet(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }

    /// True when `bytes` start with gzip's magic number.
    public static func isGzip(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b }

    /// Inflates gzip data, refusing more than `limit` bytes of output.
    public static func gunzip(_ bytes: [UInt8], limit: Int = maxDecodedBytes) throws(DecodingError) -> [UInt8] {
        var output: UnsafeMutablePointer<UInt8>?
        var length = 0
        let status = bytes.withUnsafeBufferPointer { coreos_gunzip($0.baseAddress, $0.count, limit, &output, &length) }
        defer { free(output) }
        switch status {
        case 0: return output.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? []
        case -2: throw DecodingError(description: "gzip data expands to more than \(limit) bytes")
        case -3: throw DecodingError(description: "out of memory while inflating gzip data")
        default: throw DecodingError(description: "not valid gzip data")
        }
    }
}
