/// Limits applied while parsing. Defaults follow systemd: a logical line (after joining
/// continuations) may be 1 MiB long.
public struct UnitFileLimits: Sendable, Hashable {
    public var maxFileBytes: Int
    public var maxLineBytes: Int

    public init(maxFileBytes: Int = 16 << 20, maxLineBytes: Int = 1 << 20) {
        self.maxFileBytes = maxFileBytes
        self.maxLineBytes = maxLineBytes
    }

    public static let `default` = UnitFileLimits()
}

extension UnitFile {
    /// Parses unit-file text.
    ///
    /// Rules (systemd.syntax(7)): lines are stripped of surrounding whitespace; empty lines
    /// and lines whose first non-blank character is `#` or `;` are ignored, also between
    /// continuation lines; a line ending in an unescaped backslash continues on the next
    /// line, the backslash becoming a space; `[Name]` opens a section; every other line is
    /// `Key=Value`. Where systemd only warns and skips a line (no `=`, an assignment before
    /// any section) this parser reports an error, because a silently dropped line in a unit
    /// submitted to a cluster is a bug waiting to happen.
    ///
    /// - Parameters:
    ///   - text: the file content. Invalid UTF-8 and NUL bytes are rejected.
    ///   - file: a name for error messages.
    ///   - limits: size bounds; parsing is linear in the input.
    public init(parsing text: some Collection<UInt8>, file: String? = nil, limits: UnitFileLimits = .default)
        throws(UnitFileError)
    {
        let bytes = Array(text)
        var parser = UnitFileParser(bytes: bytes, file: file, limits: limits)
        self = try parser.parse()
    }

    /// Parses unit-file text given as a Swift string.
    public init(parsing text: String, file: String? = nil, limits: UnitFileLimits = .default) throws(UnitFileError) {
        try self.init(parsing: Array(text.utf8), file: file, limits: limits)
    }
}

private let newline = UInt8(ascii: "\n")
private let carriageReturn = UInt8(ascii: "\r")
private let backslash = UInt8(ascii: "\\")

@inline(__always) func isUnitWhitespace(_ byte: UInt8) -> Bool {
    byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
}

private struct UnitFileParser {
    let bytes: [UInt8]
    let file: String?
    let limits: UnitFileLimits

    init(bytes: [UInt8], file: String?, limits: UnitFileLimits) {
        self.bytes = bytes
        self.file = file
        self.limits = limits
    }

    func error(_ reason: UnitFileError.Reason, line: Int, column: Int = 1) -> UnitFileError {
        UnitFileError(reason, file: file, line: line, column: column)
    }

    mutating func parse() throws(UnitFileError) -> UnitFile {
        if bytes.count > limits.maxFileBytes {
            throw error(.fileTooLarge(limit: limits.maxFileBytes), line: 1)
        }
        try validateEncoding()
        var start = 0
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }

        var result = UnitFile()
        var continuation: [UInt8]? = nil
        var continuationLine = 0
        var lineNumber = 0
        var position = start
        while position < bytes.count || continuation != nil {
            if position >= bytes.count {
                // A file ending inside a continuation: systemd parses what it collected.
                if let pending = continuation {
                    continuation = nil
                    try handle(logicalLine: pending, line: continuationLine, into: &result)
                }
                break
            }
            lineNumber += 1
            let lineEnd = bytes[position...].firstIndex(of: newline) ?? bytes.count
            var physical = bytes[position..<lineEnd]
            position = lineEnd + 1
            if physical.last == carriageReturn { physical = physical.dropLast() }
            if physical.count > limits.maxLineBytes {
                throw error(.lineTooLong(limit: limits.maxLineBytes), line: lineNumber, column: limits.maxLineBytes + 1)
            }
            let firstNonBlank = physical.first { !isUnitWhitespace($0) }
            if firstNonBlank == UInt8(ascii: "#") || firstNonBlank == UInt8(ascii: ";") { continue }

            var logical: [UInt8]
            if var pending = continuation {
                continuation = nil  // leaves `pending` uniquely referenced, so the append is in place
                if pending.count + physical.count > limits.maxLineBytes {
                    throw error(.lineTooLong(limit: limits.maxLineBytes), line: lineNumber)
                }
                pending.append(contentsOf: physical)
                logical = pending
            } else {
                logical = Array(physical)
                continuationLine = lineNumber
            }
            if endsInUnescapedBackslash(logical) {
                logical[logical.count - 1] = 0x20
                continuation = logical
                continue
            }
            try handle(logicalLine: logical, line: continuationLine, into: &result)
        }
        return result
    }

    /// True when the last byte is a backslash that is not itself escaped (an odd run).
    func endsInUnescapedBackslash(_ line: [UInt8]) -> Bool {
        var run = 0
        var index = line.count - 1
        while index >= 0 && line[index] == backslash {
            run += 1
            index -= 1
        }
        return run % 2 == 1
    }

    func handle(logicalLine raw: [UInt8], line: Int, into result: inout UnitFile) throws(UnitFileError) {
        guard let first = raw.firstIndex(where: { !isUnitWhitespace($0) }) else { return }
        let last = raw.lastIndex(where: { !isUnitWhitespace($0) }) ?? first
        let content = raw[first...last]
        let column = first + 1
        if content.first == UInt8(ascii: "[") {
            guard content.count >= 2, content.last == UInt8(ascii: "]") else {
                throw error(.invalidSectionHeader, line: line, column: column)
            }
            let name = content.dropFirst().dropLast()
            if name.isEmpty { throw error(.emptySectionName, line: line, column: column) }
            if name.contains(UInt8(ascii: "[")) || name.contains(UInt8(ascii: "]")) {
                throw error(.invalidSectionHeader, line: line, column: column)
            }
            result.sections.append(.init(name: String(decoding: name, as: UTF8.self), line: line))
            return
        }
        if content.first == UInt8(ascii: ".") {
            let word = content.prefix { !isUnitWhitespace($0) }
            throw error(.unsupportedDirective(String(decoding: word, as: UTF8.self)), line: line, column: column)
        }
        guard let equals = content.firstIndex(of: UInt8(ascii: "=")) else {
            throw error(.missingEquals, line: line, column: column)
        }
        let key = trimmed(content[content.startIndex..<equals])
        if key.isEmpty { throw error(.emptyKey, line: line, column: column) }
        guard !result.sections.isEmpty else {
            throw error(.assignmentOutsideSection, line: line, column: column)
        }
        let value = trimmed(content[(equals + 1)...])
        result.sections[result.sections.count - 1].entries.append(
            .init(key: String(decoding: key, as: UTF8.self), value: String(decoding: value, as: UTF8.self), line: line))
    }

    func trimmed(_ slice: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        guard let first = slice.firstIndex(where: { !isUnitWhitespace($0) }) else { return [] }
        let last = slice.lastIndex(where: { !isUnitWhitespace($0) }) ?? first
        return slice[first...last]
    }

    /// Rejects NUL bytes and malformed UTF-8 (overlong forms, surrogates, values above
    /// U+10FFFF, truncated sequences), reporting the first offending byte's position.
    func validateEncoding() throws(UnitFileError) {
        if let offset = UTF8Validation.firstInvalidOffset(in: bytes, rejectingNUL: true) {
            let (line, column) = position(of: offset)
            throw error(bytes[offset] == 0 ? .nulByte : .invalidUTF8, line: line, column: column)
        }
    }

    func position(of offset: Int) -> (line: Int, column: Int) {
        var line = 1
        var lineStart = 0
        for index in 0..<offset where bytes[index] == newline {
            line += 1
            lineStart = index + 1
        }
        return (line, offset - lineStart + 1)
    }
}

/// A strict UTF-8 validator that says where the input goes wrong.
enum UTF8Validation {
    /// The offset of the first byte that is not part of valid UTF-8 (or is NUL when
    /// `rejectingNUL`), or nil if the whole input is valid.
    static func firstInvalidOffset(in bytes: [UInt8], rejectingNUL: Bool) -> Int? {
        var index = 0
        let count = bytes.count
        while index < count {
            let lead = bytes[index]
            if lead < 0x80 {
                if lead == 0 && rejectingNUL { return index }
                index += 1
                continue
            }
            let length: Int
            var lowerBound: UInt8 = 0x80
            var upperBound: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0:
                length = 3
                lowerBound = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED:
                length = 3
                upperBound = 0x9F
            case 0xF0:
                length = 4
                lowerBound = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4:
                length = 4
                upperBound = 0x8F
            default: return index
            }
            if index + length > count { return index }
            let second = bytes[index + 1]
            if second < lowerBound || second > upperBound { return index }
            for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 { return index }
            index += length
        }
        return nil
    }
}
