/// A flag of Go's standard `flag` package as urfave/cli declares it (etcdctl v2, flanneld):
/// one or more names (`recursive, r`), a kind, a default and a usage line.
public struct GoFlag: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case bool
        case string
        case int
        case duration
    }

    /// The first name is the long one; the others are aliases (`["recursive", "r"]`).
    public var names: [String]
    public var kind: Kind
    /// The default as urfave/cli shows it (`0`, `2s`, `"simple"`); nil prints no default.
    public var shownDefault: String?
    public var usage: String
    /// urfave/cli's placeholder: a back-quoted word in the usage, else `value`.
    public var placeholder: String?

    public init(_ names: [String], _ kind: Kind, default shownDefault: String? = nil, placeholder: String? = nil, _ usage: String) {
        self.names = names
        self.kind = kind
        self.shownDefault = shownDefault
        self.placeholder = placeholder
        self.usage = usage
    }

    public var name: String { names[0] }

    /// The row urfave/cli prints in an OPTIONS list, before and after its tab stop:
    /// `--ttl value`, `--recursive, -r`, `-p`.
    public var helpColumns: (left: String, right: String) {
        let spelled = names.map { $0.count == 1 ? "-\($0)" : "--\($0)" }
        var left = spelled[0]
        if kind != .bool { left += " " + (placeholder ?? "value") }
        if spelled.count > 1 {
            let rest = spelled.dropFirst().map { kind != .bool ? "\($0) \(placeholder ?? "value")" : $0 }
            left += ", " + rest.joined(separator: ", ")
        }
        var right = usage
        if let shownDefault { right += " (default: \(shownDefault))" }
        return (left, right)
    }
}

/// The result of a Go `flag` parse: values by canonical name and the remaining arguments.
public struct GoFlagResult: Sendable {
    public var values: [String: String] = [:]
    public var arguments: [String] = []

    public func isSet(_ name: String) -> Bool { values[name] != nil }
    public func string(_ name: String) -> String? { values[name] }
    public func bool(_ name: String) -> Bool { values[name].flatMap(GoValues.parseBool) ?? false }
    public func int(_ name: String) -> Int { values[name].flatMap { Int($0) } ?? 0 }
}

/// Go's `flag.FlagSet.Parse`: `-name`, `--name`, `-name=value`, `-name value` (not for
/// booleans); parsing stops at the first non-flag argument, at `-` and after `--`.
/// Error texts are Go's.
public struct GoFlagParser: Sendable {
    public var flags: [GoFlag]

    public init(_ flags: [GoFlag]) { self.flags = flags }

    public func flag(named name: String) -> GoFlag? { flags.first { $0.names.contains(name) } }

    public func parse(_ arguments: [String]) throws(UsageError) -> GoFlagResult {
        var result = GoFlagResult()
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            guard word.count >= 2, word.hasPrefix("-") else { break }
            index += 1
            if word == "--" { break }
            var body = word.dropFirst()
            if body.hasPrefix("-") { body = body.dropFirst() }
            if body.isEmpty || body.hasPrefix("-") || body.hasPrefix("=") {
                throw UsageError("bad flag syntax: \(word)")
            }
            var name = String(body)
            var value: String?
            if let equals = body.firstIndex(of: "=") {
                name = String(body[..<equals])
                value = String(body[body.index(after: equals)...])
            }
            guard let flag = flag(named: name) else {
                throw UsageError("flag provided but not defined: -\(name)")
            }
            if flag.kind == .bool {
                let text = value ?? "true"
                guard GoValues.parseBool(text) != nil else {
                    throw UsageError("invalid boolean value \"\(text)\" for -\(name): parse error")
                }
                result.values[flag.name] = text
                continue
            }
            if value == nil {
                guard index < arguments.count else { throw UsageError("flag needs an argument: -\(name)") }
                value = arguments[index]
                index += 1
            }
            let text = value ?? ""
            switch flag.kind {
            case .int:
                guard Int(text) != nil else { throw UsageError("invalid value \"\(text)\" for flag -\(name): parse error") }
            case .duration:
                guard GoValues.parseDuration(text) != nil else {
                    throw UsageError("invalid value \"\(text)\" for flag -\(name): parse error")
                }
            case .string, .bool:
                break
            }
            result.values[flag.name] = text
        }
        result.arguments = Array(arguments[index...])
        return result
    }

    /// urfave/cli 1.22 moves a command's flags (and the word after a flag without `=`,
    /// unless it is a flag itself) ahead of its operands, so `set /k v --ttl 5` works. A
    /// `--` moves to the front of the operands, and nothing after it moves; so without a
    /// flag before it, Go's parser swallows that `--`.
    public func reorder(_ arguments: [String]) -> [String] {
        var moved: [String] = []
        var remaining: [String] = []
        var nextMayBeValue = false
        for (index, word) in arguments.enumerated() {
            if nextMayBeValue && !isDeclaredFlag(word) {
                nextMayBeValue = false
                moved.append(word)
            } else if word == "--" {
                remaining = ["--"] + remaining + arguments[(index + 1)...]
                break
            } else if isDeclaredFlag(word) {
                moved.append(word)
                nextMayBeValue = !word.contains("=")
            } else {
                remaining.append(word)
            }
        }
        return moved + remaining
    }

    private func isDeclaredFlag(_ word: String) -> Bool {
        guard word.hasPrefix("-"), word.count >= 2 else { return false }
        var body = word.dropFirst()
        if body.hasPrefix("-") { body = body.dropFirst() }
        let name = body.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return flag(named: name) != nil
    }

    /// The OPTIONS rows aligned the way Go's tabwriter (padding 2) aligns them, each
    /// prefixed by `indent`.
    public static func helpRows(_ flags: [GoFlag], indent: String = "   ") -> [String] {
        let columns = flags.map(\.helpColumns)
        let width = (columns.map { $0.left.count }.max() ?? 0) + 2
        return columns.map { column in
            indent + column.left + String(repeating: " ", count: width - column.left.count) + column.right
        }
    }
}
