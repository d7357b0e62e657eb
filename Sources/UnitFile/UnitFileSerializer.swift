extension UnitFile {
    /// The file as text: `[Section]` headers, `Key=Value` lines, a blank line between
    /// sections. Parsing the result gives back this model (positions aside).
    ///
    /// - Throws: ``UnitFileError`` with reason `.notSerializable` when a name or value
    ///   cannot be expressed in unit-file syntax (a newline, surrounding whitespace, a
    ///   key with `=`, a value ending in an unescaped backslash, which would continue
    ///   the line). Models produced by the parser always serialize.
    public func serialized() throws(UnitFileError) -> String {
        var text = ""
        for (index, section) in sections.enumerated() {
            try Self.checkSectionName(section)
            if index > 0 { text += "\n" }
            text += "[\(section.name)]\n"
            for entry in section.entries {
                try Self.check(entry)
                text += entry.key
                text += "="
                text += entry.value
                text += "\n"
            }
        }
        return text
    }

    private static func checkSectionName(_ section: Section) throws(UnitFileError) {
        let name = section.name.utf8
        if name.isEmpty
            || name.contains(where: { $0 == UInt8(ascii: "[") || $0 == UInt8(ascii: "]") || $0 == 0x0A || $0 == 0 })
        {
            throw UnitFileError(
                .notSerializable("section name \(section.name.debugDescription)"), line: section.line, column: 1)
        }
    }

    private static func check(_ entry: Entry) throws(UnitFileError) {
        let key = entry.key
        let value = entry.value
        func fail(_ what: String) -> UnitFileError {
            UnitFileError(.notSerializable(what), line: entry.line, column: 1)
        }
        if key.isEmpty || key.utf8.contains(where: { $0 == UInt8(ascii: "=") || $0 == 0x0A || $0 == 0 })
            || hasOuterWhitespace(key)
        {
            throw fail("key \(key.debugDescription)")
        }
        if let first = key.first, first == "#" || first == ";" || first == "[" || first == "." {
            throw fail("key \(key.debugDescription)")
        }
        if value.utf8.contains(where: { $0 == 0x0A || $0 == 0 }) || hasOuterWhitespace(value) {
            throw fail("value of \(key) \(value.debugDescription)")
        }
        var trailingBackslashes = 0
        for byte in value.utf8.reversed() {
            guard byte == UInt8(ascii: "\\") else { break }
            trailingBackslashes += 1
        }
        if trailingBackslashes % 2 == 1 { throw fail("value of \(key) ends in a backslash") }
    }

    private static func hasOuterWhitespace(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, let last = text.unicodeScalars.last else { return false }
        return isWhitespaceScalar(first) || isWhitespaceScalar(last)
    }

    private static func isWhitespaceScalar(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII && isUnitWhitespace(UInt8(scalar.value))
    }
}
