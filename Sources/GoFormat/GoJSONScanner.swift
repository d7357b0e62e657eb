/// A syntax check of JSON text that fails where Go's `encoding/json` fails and with its
/// words (`invalid character 'n' looking for beginning of object key string`,
/// `unexpected EOF`), so an HTTP API fed the same bad body answers as a Go server does. It
/// also splits a body into its top-level values, as Go's `json.Decoder` reads a stream of
/// them, and notes the string values of chosen object keys (for base64 checks).
public struct GoJSONScanner {
    public struct SyntaxError: Error, Equatable, CustomStringConvertible {
        public let message: String
        public let offset: Int
        public var description: String { message }
    }

    /// A string value found under one of the keys asked for: its text without quotes
    /// (escapes left as they are).
    public struct NotedString: Equatable, Sendable {
        public let key: String
        public let text: String
    }

    private let bytes: [UInt8]
    private var index = 0
    private let notedKeys: Set<String>
    public private(set) var noted: [NotedString] = []

    private init(_ bytes: [UInt8], notedKeys: Set<String>) {
        self.bytes = bytes
        self.notedKeys = notedKeys
    }

    /// The top-level values of `bytes`, each as its byte range, and the string values of
    /// `notedKeys` anywhere inside them (`"*"`: of every key).
    public static func values(in bytes: [UInt8], noting notedKeys: Set<String> = []) throws(SyntaxError)
        -> (values: [Range<Int>], noted: [NotedString])
    {
        var scanner = GoJSONScanner(bytes, notedKeys: notedKeys)
        var values: [Range<Int>] = []
        while true {
            scanner.skipSpace()
            guard scanner.index < bytes.count else { return (values, scanner.noted) }
            let start = scanner.index
            try scanner.value()
            values.append(start..<scanner.index)
        }
    }

    // MARK: Grammar

    private mutating func skipSpace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    private func fail(_ context: String) -> SyntaxError {
        guard index < bytes.count else { return SyntaxError(message: "unexpected EOF", offset: index) }
        return SyntaxError(message: "invalid character \(Self.quoteChar(bytes[index])) \(context)", offset: index)
    }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func value() throws(SyntaxError) {
        skipSpace()
        switch current ?? 0 {
        case UInt8(ascii: "{"): try object()
        case UInt8(ascii: "["): try array()
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: throw fail("looking for beginning of value")
        }
    }

    private mutating func object() throws(SyntaxError) {
        index += 1
        skipSpace()
        if current == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            guard current == UInt8(ascii: "\"") else { throw fail("looking for beginning of object key string") }
            let key = try string()
            skipSpace()
            guard current == UInt8(ascii: ":") else { throw fail("after object key") }
            index += 1
            skipSpace()
            let valueStart = index
            try value()
            if notedKeys.contains(key) || notedKeys.contains("*"), bytes[valueStart] == UInt8(ascii: "\"") {
                noted.append(NotedString(key: key, text: String(decoding: bytes[(valueStart + 1)..<(index - 1)], as: UTF8.self)))
            }
            skipSpace()
            switch current {
            case UInt8(ascii: ","):
                index += 1
                skipSpace()
            case UInt8(ascii: "}"):
                index += 1
                return
            default:
                throw fail("after object key:value pair")
            }
        }
    }

    private mutating func array() throws(SyntaxError) {
        index += 1
        skipSpace()
        if current == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            try value()
            skipSpace()
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                return
            default: throw fail("after array element")
            }
        }
    }

    /// A string; returns its raw text (for keys, which are plain names in practice).
    private mutating func string() throws(SyntaxError) -> String {
        let start = index + 1
        index += 1
        while let byte = current {
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: bytes[start..<(index - 1)], as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                guard let escape = current else { throw fail("") }
                if escape == UInt8(ascii: "u") {
                    for _ in 0..<4 {
                        index += 1
                        guard let hex = current, Self.isHex(hex) else { throw fail("in \\u hexadecimal character escape") }
                    }
                } else if !Array("\"\\/bfnrt".utf8).contains(escape) {
                    throw fail("in string escape code")
                }
                index += 1
            case 0..<0x20:
                throw fail("in string literal")
            default:
                index += 1
            }
        }
        throw fail("")
    }

    private mutating func number() throws(SyntaxError) {
        if current == UInt8(ascii: "-") {
            index += 1
            guard let digit = current, Self.isDigit(digit) else { throw fail("in numeric literal") }
        }
        if current == UInt8(ascii: "0") {
            index += 1
        } else {
            while let digit = current, Self.isDigit(digit) { index += 1 }
        }
        if current == UInt8(ascii: ".") {
            index += 1
            guard let digit = current, Self.isDigit(digit) else { throw fail("after decimal point in numeric literal") }
            while let digit = current, Self.isDigit(digit) { index += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard let digit = current, Self.isDigit(digit) else { throw fail("in exponent of numeric literal") }
            while let digit = current, Self.isDigit(digit) { index += 1 }
        }
    }

    private mutating func literal(_ word: String) throws(SyntaxError) {
        let letters = Array(word.utf8)
        index += 1
        for letter in letters.dropFirst() {
            guard current == letter else {
                throw fail("in literal \(word) (expecting \(Self.quoteChar(letter)))")
            }
            index += 1
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
    private static func isHex(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }

    /// Go's `quoteChar`: a byte in single quotes, escaped as `strconv.Quote` escapes it.
    static func quoteChar(_ byte: UInt8) -> String {
        switch byte {
        case UInt8(ascii: "'"): return #"'\''"#
        case UInt8(ascii: "\""): return #"'"'"#
        case 0x07: return #"'\a'"#
        case 0x08: return #"'\b'"#
        case 0x0C: return #"'\f'"#
        case 0x0A: return #"'\n'"#
        case 0x0D: return #"'\r'"#
        case 0x09: return #"'\t'"#
        case 0x0B: return #"'\v'"#
        case UInt8(ascii: "\\"): return #"'\\'"#
        case 0..<0x20, 0x7F: return "'\\x" + hex2(byte) + "'"
        case 0x80..<0xA0: return "'\\u00" + hex2(byte) + "'"
        default: return "'" + String(Character(Unicode.Scalar(byte))) + "'"
        }
    }

    private static func hex2(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }

    /// Go's error for a quoted 64-bit integer whose text is not a number: its JSON decoder
    /// parses the text inside the quotes, so it fails as the scanner does on it. nil when
    /// the text is a number.
    public static func quotedNumberError(_ text: String) -> String? {
        let inner = Array(text.utf8)
        var scanner = GoJSONScanner(inner, notedKeys: [])
        do {
            guard let first = inner.first, first == UInt8(ascii: "-") || isDigit(first) else {
                try scanner.value()
                return "json: cannot unmarshal \(text) into a number"
            }
            try scanner.number()
            return scanner.index == inner.count ? nil : scanner.fail("after top-level value").message
        } catch {
            return error.message
        }
    }

    /// Go's `base64.StdEncoding` check of a JSON `[]byte` value: nil when it decodes, else
    /// `illegal base64 data at input byte N` as Go words it.
    public static func base64Error(_ text: String) -> String? {
        let characters = Array(text.utf8)
        func isAlphabet(_ byte: UInt8) -> Bool {
            isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
        }
        var position = 0
        while position < characters.count {
            let byte = characters[position]
            if byte == UInt8(ascii: "=") {
                // Padding only ends a final quantum of two or three characters.
                let inQuantum = position % 4
                let padding = characters[position...].prefix { $0 == UInt8(ascii: "=") }.count
                let valid = (inQuantum == 2 && padding == 2 || inQuantum == 3 && padding == 1) && position + padding == characters.count
                return valid ? nil : "illegal base64 data at input byte \(inQuantum < 2 ? position - inQuantum : position)"
            }
            if byte == 0x0A || byte == 0x0D {  // Go skips newlines
                position += 1
                continue
            }
            guard isAlphabet(byte) else { return "illegal base64 data at input byte \(position)" }
            position += 1
        }
        let remainder = characters.filter { $0 != 0x0A && $0 != 0x0D }.count % 4
        return remainder == 0 ? nil : "illegal base64 data at input byte \(characters.count - remainder)"
    }
}
