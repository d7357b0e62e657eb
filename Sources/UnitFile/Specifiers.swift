/// The values `%` specifiers expand to (systemd.unit(5), "Specifiers"). Host values are
/// passed in, so resolution is pure and testable; `nil` makes the specifier an error.
public struct SpecifierContext: Sendable, Hashable {
    public var unit: UnitName
    /// `%H`; `%l` is its first label.
    public var hostname: String?
    /// `%m`: 32 lowercase hex digits.
    public var machineID: String?
    /// `%b`: 32 lowercase hex digits.
    public var bootID: String?

    public init(unit: UnitName, hostname: String? = nil, machineID: String? = nil, bootID: String? = nil) {
        self.unit = unit
        self.hostname = hostname
        self.machineID = machineID
        self.bootID = bootID
    }
}

/// A specifier could not be expanded.
public struct SpecifierError: Error, Hashable, Sendable, CustomStringConvertible {
    public var text: String
    public var specifier: Character
    public var detail: String

    public var description: String { "cannot expand %\(specifier) in \(text.debugDescription): \(detail)" }
}

public enum Specifiers {
    /// Expands `%n %N %p %P %i %I %j %J %f %H %l %m %b %%` in `text`.
    ///
    /// `%i`/`%p`/`%j` are the escaped parts of the unit name; `%I`/`%P`/`%J` unescape them;
    /// `%f` is the unescaped instance (or prefix) as an absolute path. An unknown
    /// specifier is an error; a `%` at the very end is kept, as systemd keeps it.
    public static func resolve(_ text: String, in context: SpecifierContext) throws(SpecifierError) -> String {
        var output = ""
        var iterator = text.makeIterator()
        while let character = iterator.next() {
            guard character == "%" else {
                output.append(character)
                continue
            }
            guard let specifier = iterator.next() else {
                output.append("%")
                break
            }
            output += try value(of: specifier, in: context, text: text)
        }
        return output
    }

    private static func value(of specifier: Character, in context: SpecifierContext, text: String)
        throws(SpecifierError) -> String
    {
        func fail(_ detail: String) -> SpecifierError {
            SpecifierError(text: text, specifier: specifier, detail: detail)
        }
        func unescaped(_ value: String) throws(SpecifierError) -> String {
            do { return try UnitNameEscaping.unescape(value) } catch { throw fail(error.description) }
        }
        let unit = context.unit
        switch specifier {
        case "%": return "%"
        case "n": return unit.name
        case "N": return unit.nameWithoutSuffix
        case "p": return unit.prefix
        case "P": return try unescaped(unit.prefix)
        case "i": return unit.instance ?? ""
        case "I": return try unescaped(unit.instance ?? "")
        case "j": return finalComponent(of: unit.prefix)
        case "J": return try unescaped(finalComponent(of: unit.prefix))
        case "f":
            let source = unit.isInstance ? (unit.instance ?? "") : unit.prefix
            do { return try UnitNameEscaping.unescapePath(source) } catch { throw fail(error.description) }
        case "H":
            guard let hostname = context.hostname else { throw fail("host name unknown") }
            return hostname
        case "l":
            guard let hostname = context.hostname else { throw fail("host name unknown") }
            return String(hostname.prefix { $0 != "." })
        case "m":
            guard let machineID = context.machineID else { throw fail("machine ID unknown") }
            return machineID
        case "b":
            guard let bootID = context.bootID else { throw fail("boot ID unknown") }
            return bootID
        default:
            throw fail("unknown specifier")
        }
    }

    /// The part of a prefix after its last `-` (`%j`), or the whole prefix.
    static func finalComponent(of prefix: String) -> String {
        guard let dash = prefix.lastIndex(of: "-") else { return prefix }
        return String(prefix[prefix.index(after: dash)...])
    }
}
