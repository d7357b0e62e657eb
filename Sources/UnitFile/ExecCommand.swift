/// A command line of `ExecStart=` and friends (systemd.service(5), "Command lines"),
/// split into words with systemd's quoting rules.
public struct ExecCommand: Sendable, Hashable {
    /// The special prefixes that may precede the executable path.
    public struct Prefixes: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// `-`: a non-zero exit is not a failure.
        public static let ignoreFailure = Prefixes(rawValue: 1 << 0)
        /// `@`: the second word is argv[0], the first is the file to execute.
        public static let customArgv0 = Prefixes(rawValue: 1 << 1)
        /// `+`: run with full privileges, ignoring User=, sandboxing and the like.
        public static let fullPrivileges = Prefixes(rawValue: 1 << 2)
        /// `!`: credentials are applied but not sandboxing that needs privileges.
        public static let noSetuid = Prefixes(rawValue: 1 << 3)
        /// `!!`: like `!`, only on systems without ambient capabilities.
        public static let ambientFallback = Prefixes(rawValue: 1 << 4)
        /// `:`: no environment-variable substitution in the arguments.
        public static let noEnvironmentExpansion = Prefixes(rawValue: 1 << 5)
    }

    public var prefixes: Prefixes
    /// The file to execute: an absolute path, or a bare file name looked up in the
    /// fixed search path when the unit starts.
    public var path: String
    /// The argument vector, argv[0] first (the path, or the `@` override).
    public var arguments: [String]

    public init(prefixes: Prefixes = [], path: String, arguments: [String]) {
        self.prefixes = prefixes
        self.path = path
        self.arguments = arguments
    }

    /// Splits one setting value into commands. Several commands are separated by a
    /// lone `;` word; `\;` is a literal `;` argument. Words are separated by whitespace;
    /// single and double quotes group (also inside a word: `a"b c"` is `ab c`); C escapes
    /// (`\n`, `\t`, `\x41`, `\u00e9`, `\101`, `\s` …) are decoded inside and outside quotes.
    public static func parse(_ value: String) throws(SettingValueError) -> [ExecCommand] {
        var lexer = CommandLineLexer(text: value)
        var commands: [ExecCommand] = []
        var words: [String] = []
        func finish() throws(SettingValueError) {
            if words.isEmpty { return }
            commands.append(try command(from: words, original: value))
            words.removeAll()
        }
        while let token = try lexer.next() {
            switch token {
            case .separator: try finish()
            case .word(let word): words.append(word)
            }
        }
        try finish()
        return commands
    }

    /// Splits a string into words with the same quoting rules, without the command
    /// structure (for `Environment=`-style and fleetctl argument lists).
    public static func splitWords(_ value: String) throws(SettingValueError) -> [String] {
        var lexer = CommandLineLexer(text: value, semicolonSeparates: false)
        var words: [String] = []
        while let token = try lexer.next() {
            if case .word(let word) = token { words.append(word) }
        }
        return words
    }

    private static func command(from words: [String], original: String) throws(SettingValueError) -> ExecCommand {
        func fail(_ detail: String) -> SettingValueError {
            SettingValueError(kind: "command line", value: original, detail: detail)
        }
        var first = Substring(words[0])
        var prefixes: Prefixes = []
        while let character = first.first, "-@+!:".contains(character) {
            switch character {
            case "-": prefixes.insert(.ignoreFailure)
            case "@": prefixes.insert(.customArgv0)
            case "+": prefixes.insert(.fullPrivileges)
            case ":": prefixes.insert(.noEnvironmentExpansion)
            default:
                if prefixes.contains(.noSetuid) {
                    prefixes.remove(.noSetuid)
                    prefixes.insert(.ambientFallback)
                } else if prefixes.contains(.ambientFallback) {
                    throw fail("too many '!' prefixes")
                } else {
                    prefixes.insert(.noSetuid)
                }
            }
            first = first.dropFirst()
        }
        if prefixes.contains(.fullPrivileges) && !prefixes.isDisjoint(with: [.noSetuid, .ambientFallback]) {
            throw fail("'+' cannot be combined with '!' or '!!'")
        }
        let path = String(first)
        if path.isEmpty { throw fail("empty executable path") }
        if path.hasPrefix("/") {
            if !PathSyntax.isNormalized(path) { throw fail("executable path \(path) is not normalized") }
        } else if path.contains("/") || path == "." || path == ".." {
            throw fail("executable path \(path) is neither absolute nor a plain file name")
        }
        var arguments = Array(words.dropFirst())
        if prefixes.contains(.customArgv0) {
            if arguments.isEmpty { throw fail("'@' needs an argv[0] after the path") }
        } else {
            arguments.insert(path, at: 0)
        }
        return ExecCommand(prefixes: prefixes, path: path, arguments: arguments)
    }
}

/// The word splitter behind ``ExecCommand``. Works on Unicode scalars so that escapes
/// producing non-ASCII text stay valid UTF-8.
struct CommandLineLexer {
    enum Token: Equatable {
        case word(String)
        case separator
    }

    let scalars: [Unicode.Scalar]
    let original: String
    let semicolonSeparates: Bool
    var index = 0

    init(text: String, semicolonSeparates: Bool = true) {
        self.scalars = Array(text.unicodeScalars)
        self.original = text
        self.semicolonSeparates = semicolonSeparates
    }

    private func fail(_ detail: String) -> SettingValueError {
        SettingValueError(kind: "command line", value: original, detail: detail)
    }

    private static func isSeparator(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r"
    }

    private func wordEnds(at position: Int) -> Bool {
        position >= scalars.count || Self.isSeparator(scalars[position])
    }

    mutating func next() throws(SettingValueError) -> Token? {
        while index < scalars.count && Self.isSeparator(scalars[index]) { index += 1 }
        guard index < scalars.count else { return nil }
        if semicolonSeparates {
            if scalars[index] == ";" && wordEnds(at: index + 1) {
                index += 1
                return .separator
            }
            if scalars[index] == "\\" && index + 1 < scalars.count && scalars[index + 1] == ";"
                && wordEnds(at: index + 2)
            {
                index += 2
                return .word(";")
            }
        }
        var word = String.UnicodeScalarView()
        var quote: Unicode.Scalar? = nil
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "\\" {
                // Escapes are decoded the same way inside and outside quotes.
                word.append(try unescape())
                continue
            }
            index += 1
            if let open = quote {
                if scalar == open { quote = nil } else { word.append(scalar) }
            } else if Self.isSeparator(scalar) {
                break
            } else if scalar == "'" || scalar == "\"" {
                quote = scalar
            } else {
                word.append(scalar)
            }
        }
        if quote != nil { throw fail("unterminated quote") }
        return .word(String(word))
    }

    /// Decodes the escape starting at the backslash at `index` (systemd's cunescape_one).
    private mutating func unescape() throws(SettingValueError) -> Unicode.Scalar {
        index += 1
        guard index < scalars.count else { throw fail("trailing backslash") }
        let code = scalars[index]
        index += 1
        switch code {
        case "a": return "\u{07}"
        case "b": return "\u{08}"
        case "f": return "\u{0C}"
        case "n": return "\n"
        case "r": return "\r"
        case "t": return "\t"
        case "v": return "\u{0B}"
        case "\\", "\"", "'": return code
        case "s": return " "
        case "x": return try hexadecimal(digits: 2)
        case "u": return try hexadecimal(digits: 4)
        case "U": return try hexadecimal(digits: 8)
        case "0"..."7":
            var value = code.value - 0x30
            for _ in 0..<2 {
                guard index < scalars.count, ("0"..."7").contains(scalars[index]) else {
                    throw fail("octal escape needs three digits")
                }
                value = value * 8 + scalars[index].value - 0x30
                index += 1
            }
            guard value != 0, let scalar = Unicode.Scalar(value) else { throw fail("invalid octal escape") }
            return scalar
        default:
            throw fail("unknown escape \\\(code)")
        }
    }

    private mutating func hexadecimal(digits: Int) throws(SettingValueError) -> Unicode.Scalar {
        var value: UInt32 = 0
        for _ in 0..<digits {
            guard index < scalars.count, scalars[index].isASCII, let digit = UInt32(String(scalars[index]), radix: 16)
            else { throw fail("escape needs \(digits) hexadecimal digits") }
            value = value << 4 | digit
            index += 1
        }
        // \x escapes a byte; only ASCII bytes can stand alone in valid UTF-8 text.
        if digits == 2 && value >= 0x80 { throw fail("\\x escape above 0x7f would not be valid UTF-8") }
        guard value != 0, let scalar = Unicode.Scalar(value) else { throw fail("invalid escape value") }
        return scalar
    }
}
