/// One command-line option, in the shape GNU `getopt_long(3)` understands.
public struct OptionSpec: Sendable, Hashable {
    /// Whether the option takes a value.
    public enum Argument: Sendable, Hashable {
        /// A flag: `--path`, `-p`.
        case none
        /// `--suffix=VALUE`, `--suffix VALUE`, `-sVALUE`, `-s VALUE`.
        case required
        /// Only attached: `--color=always` or `-cVALUE`; a separate word is never taken.
        case optional
    }

    /// The long name without dashes (`"suffix"`), if any.
    public var long: String?
    /// The one-letter name (`"u"`), if any.
    public var short: Character?
    public var argument: Argument

    public init(long: String? = nil, short: Character? = nil, argument: Argument = .none) {
        self.long = long
        self.short = short
        self.argument = argument
    }

    /// The name used in messages and as the key in ``ParsedOptions``: the long name when there is one.
    public var key: String { long ?? short.map(String.init) ?? "" }
}

/// A usage error with a message worded as GNU getopt words it.
public struct UsageError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The result of parsing: options in the order given and the remaining operands.
public struct ParsedOptions: Sendable, Hashable {
    /// One occurrence of an option.
    public struct Occurrence: Sendable, Hashable {
        public var key: String
        public var value: String?
    }

    public var occurrences: [Occurrence] = []
    public var operands: [String] = []

    public init() {}

    /// Whether the option appeared at least once.
    public func has(_ key: String) -> Bool { occurrences.contains { $0.key == key } }

    /// The value of the last occurrence (GNU tools let a later option override an earlier one).
    public func last(_ key: String) -> String? { occurrences.last { $0.key == key }?.value }

    /// All values of a repeatable option, in order.
    public func all(_ key: String) -> [String] { occurrences.filter { $0.key == key }.compactMap(\.value) }
}

/// A parser with GNU `getopt_long` semantics: permuted operands, `--` ends options, bundled
/// short flags (`-up`), attached short values (`-n10`), `--long=value`, and unambiguous
/// abbreviations of long names (`--suf=mount`).
public struct OptionParser: Sendable {
    public var specs: [OptionSpec]
    /// When false, the first operand ends option parsing (POSIXLY_CORRECT / `+` optstring).
    public var permute: Bool

    public init(_ specs: [OptionSpec], permute: Bool = true) {
        self.specs = specs
        self.permute = permute
    }

    public func parse(_ arguments: [String]) throws(UsageError) -> ParsedOptions {
        var result = ParsedOptions()
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            index += 1
            if word == "--" {
                result.operands.append(contentsOf: arguments[index...])
                break
            }
            if word.hasPrefix("--") {
                try parseLong(String(word.dropFirst(2)), arguments, &index, into: &result)
            } else if word.hasPrefix("-") && word.count > 1 {
                try parseShortCluster(word, arguments, &index, into: &result)
            } else {
                result.operands.append(word)
                if !permute {
                    result.operands.append(contentsOf: arguments[index...])
                    break
                }
            }
        }
        return result
    }

    private func parseLong(
        _ body: String,
        _ arguments: [String],
        _ index: inout Int,
        into result: inout ParsedOptions
    ) throws(UsageError) {
        let name: Substring
        let attached: String?
        if let equals = body.firstIndex(of: "=") {
            name = body[..<equals]
            attached = String(body[body.index(after: equals)...])
        } else {
            name = Substring(body)
            attached = nil
        }
        let spec = try resolveLong(String(name))
        let longName = spec.long ?? String(name)
        switch spec.argument {
        case .none:
            if attached != nil { throw UsageError("option '--\(longName)' doesn't allow an argument") }
            result.occurrences.append(.init(key: spec.key, value: nil))
        case .optional:
            result.occurrences.append(.init(key: spec.key, value: attached))
        case .required:
            if let attached {
                result.occurrences.append(.init(key: spec.key, value: attached))
            } else if index < arguments.count {
                result.occurrences.append(.init(key: spec.key, value: arguments[index]))
                index += 1
            } else {
                throw UsageError("option '--\(longName)' requires an argument")
            }
        }
    }

    private func resolveLong(_ name: String) throws(UsageError) -> OptionSpec {
        if let exact = specs.first(where: { $0.long == name }) { return exact }
        let candidates = specs.filter { spec in spec.long.map { $0.hasPrefix(name) } ?? false }
        if name.isEmpty || candidates.isEmpty { throw UsageError("unrecognized option '--\(name)'") }
        if candidates.count > 1 {
            let names = candidates.compactMap(\.long).map { "'--\($0)'" }.joined(separator: " ")
            throw UsageError("option '--\(name)' is ambiguous; possibilities: \(names)")
        }
        return candidates[0]
    }

    private func parseShortCluster(
        _ word: String,
        _ arguments: [String],
        _ index: inout Int,
        into result: inout ParsedOptions
    ) throws(UsageError) {
        var rest = Substring(word.dropFirst())
        while let letter = rest.first {
            rest = rest.dropFirst()
            guard let spec = specs.first(where: { $0.short == letter }) else {
                throw UsageError("invalid option -- '\(letter)'")
            }
            switch spec.argument {
            case .none:
                result.occurrences.append(.init(key: spec.key, value: nil))
            case .optional:
                result.occurrences.append(.init(key: spec.key, value: rest.isEmpty ? nil : String(rest)))
                return
            case .required:
                if !rest.isEmpty {
                    result.occurrences.append(.init(key: spec.key, value: String(rest)))
                } else if index < arguments.count {
                    result.occurrences.append(.init(key: spec.key, value: arguments[index]))
                    index += 1
                } else {
                    throw UsageError("option requires an argument -- '\(letter)'")
                }
                return
            }
        }
    }
}
