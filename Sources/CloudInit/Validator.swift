public import YAML

/// One thing the validator has to say about a cloud-config, where it was written.
public struct Finding: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable { case error, warning, info }

    public var line: Int
    public var kind: Kind
    public var message: String

    public init(line: Int, kind: Kind, message: String) {
        self.line = line
        self.kind = kind
        self.message = message
    }

    /// `line 3: warning: unrecognized key "hostnme"`, coreos-cloudinit's `-validate` format.
    public var description: String { "line \(line): \(kind.rawValue): \(message)" }
}

/// Checks a cloud-config against ``CloudConfigSchema`` the way coreos-cloudinit's
/// `-validate` did: unknown keys, deprecated keys, wrong types, values outside their
/// pattern, undecodable `write_files` content, files under `/usr`. One pass over the tree,
/// so time is linear in the input (the original searched the text for every node's line).
public enum CloudConfigValidator {
    public static let headerMessage = "must be \"#cloud-config\" or begin with \"#!\""

    /// The findings for raw user-data, sorted by line: header recognition first, then
    /// YAML, then the schema. Scripts, Ignition configs and empty input have none.
    public static func validate(userData: [UInt8], limits: YAMLLimits = YAMLLimits()) -> [Finding] {
        switch UserData.recognize(userData) {
        case .empty, .script, .ignition: return []
        case .undecodable(let reason): return [Finding(line: 1, kind: .error, message: reason)]
        case .unrecognized: return [Finding(line: 1, kind: .error, message: headerMessage)]
        case .cloudConfig(let text):
            do {
                let document = try YAMLParser.parse(text, limits: limits)
                return validate(document: document)
            } catch {
                return [Finding(line: max(error.line, 1), kind: .error, message: error.positioned)]
            }
        }
    }

    /// The findings for a parsed cloud-config (nil: an empty document), sorted by line.
    public static func validate(document: YAMLNode?) -> [Finding] {
        guard let document, !document.isNull else { return [] }
        var walker = Walker()
        guard case .mapping = document.kind else {
            return [Finding(line: document.line, kind: .error, message: "the cloud-config must be a mapping of keys, not a \(document.kindName)")]
        }
        walker.checkSection(document, CloudConfigSchema.root)
        walker.checkSemantics(document)
        // Stable: findings on one line keep the order they were found in.
        return walker.findings.enumerated().sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }.map(\.element)
    }
}

extension YAMLError {
    /// The problem with its column, for a report that already names the line.
    public var positioned: String { column > 0 ? "\(message) (column \(column))" : message }
}

extension YAMLNode {
    var kindName: String {
        switch kind {
        case .scalar: isNull ? "null" : "scalar"
        case .sequence: "list"
        case .mapping: "mapping"
        }
    }

    /// Mapping pairs as cloud-config reads them: keys with `-` turned into `_`, and only the
    /// last of several pairs with the same key.
    var effectivePairs: [(name: String, key: YAMLNode, value: YAMLNode)] {
        guard case .mapping(let pairs) = kind else { return [] }
        let named = pairs.map { pair in (name: Self.keyName(pair.key), key: pair.key, value: pair.value) }
        var seen = Set<String>()
        // Walk from the end so the last of several keys is the one kept, then restore order.
        return named.reversed().filter { seen.insert($0.name).inserted }.reversed()
    }

    /// The value of key `name` (`-` and `_` alike), the last one written.
    func child(_ name: String) -> YAMLNode? {
        guard case .mapping(let pairs) = kind else { return nil }
        return pairs.last { Self.keyName($0.key) == name }?.value
    }

    static func keyName(_ key: YAMLNode) -> String {
        switch key.kind {
        case .scalar(let text, _, _): text.replacing("-", with: "_")
        case .sequence: "[…]"
        case .mapping: "{…}"
        }
    }
}

private struct Walker {
    var findings: [Finding] = []

    mutating func report(_ line: Int, _ kind: Finding.Kind, _ message: String) {
        findings.append(Finding(line: line, kind: kind, message: message))
    }

    mutating func checkSection(_ node: YAMLNode, _ section: Section) {
        for (name, key, value) in node.effectivePairs {
            guard let field = section[name] else {
                report(key.line, .warning, "unrecognized key \"\(name)\"")
                continue
            }
            if let reason = field.deprecation { report(key.line, .warning, "deprecated key \"\(name)\" (\(reason))") }
            check(value, field, name: name, line: key.line)
        }
    }

    /// Type first (a mismatch stops the descent, as upstream), then the value's pattern.
    mutating func check(_ value: YAMLNode, _ field: Field, name: String, line: Int) {
        guard Self.isCompatible(value, field.type) else {
            report(line, .warning, "incorrect type for \"\(name)\" (want \(field.type.humanName))")
            return
        }
        switch field.type {
        case .string:
            if let rule = field.rule, let text = value.text, !text.isEmpty, !rule.accepts(text) {
                report(line, .error, "invalid value \(text)")
            }
        case .bool, .int, .float:
            break
        case .stringList:
            guard case .sequence(let items) = value.kind else { return }
            for (index, item) in items.enumerated() where !Self.isCompatible(item, .string) {
                report(item.line, .warning, "incorrect type for \"\(name)[\(index)]\" (want string)")
            }
        case .structure(let section):
            checkSection(value, section)
        case .structureList(let section):
            guard case .sequence(let items) = value.kind else { return }
            for (index, item) in items.enumerated() {
                guard case .mapping = item.kind else {
                    report(item.line, .warning, "incorrect type for \"\(name)[\(index)]\" (want struct)")
                    continue
                }
                checkSection(item, section)
            }
        }
    }

    static func isCompatible(_ node: YAMLNode, _ type: ValueType) -> Bool {
        switch (type, node.kind) {
        case (.structure, .mapping), (.stringList, .sequence), (.structureList, .sequence): return true
        case (_, .mapping), (_, .sequence): return false
        default: break
        }
        switch (type, node.resolved) {
        case (.string, .null): return false
        case (.string, _): return true
        case (.bool, .bool): return true
        case (.int, .int): return true
        // An integer is a fine float64 (`engine_reconcile_interval: 2`); upstream warned.
        case (.float, .float), (.float, .int): return true
        default: return false
        }
    }

    /// The checks that look at values together rather than one key at a time.
    mutating func checkSemantics(_ root: YAMLNode) {
        if case .sequence(let files)? = root.child("write_files")?.kind {
            for (index, file) in files.enumerated() { checkFile(file, index: index) }
        }
        if let coreos = root.child("coreos"), case .mapping = coreos.kind {
            if let pair = coreos.effectivePairs.last(where: { $0.name == "write_files" }) {
                report(pair.key.line, .info, "write_files doesn't belong under coreos")
            }
            if let discovery = coreos.child("etcd")?.child("discovery")?.text, !Self.isRequestURI(discovery) {
                let line = coreos.child("etcd")?.effectivePairs.last { $0.name == "discovery" }?.key.line ?? coreos.line
                report(line, .warning, "discovery URL is not valid")
            }
            if case .sequence(let units)? = coreos.child("units")?.kind {
                for (index, unit) in units.enumerated() {
                    guard case .mapping = unit.kind else { continue }
                    if (unit.child("name")?.text ?? "").isEmpty {
                        report(unit.line, .error, "units[\(index)] has no name")
                    }
                }
            }
        }
    }

    mutating func checkFile(_ file: YAMLNode, index: Int) {
        guard case .mapping = file.kind else { return }
        let pairs = file.effectivePairs
        func keyLine(_ name: String) -> Int { pairs.last { $0.name == name }?.key.line ?? file.line }
        if let path = file.child("path")?.text, !path.isEmpty {
            if PathText.directory(of: PathText.clean(path)).hasPrefix("/usr") {
                report(keyLine("path"), .error, "file cannot be written to a read-only filesystem")
            }
        } else {
            report(file.line, .error, "write_files[\(index)] has no path")
        }
        if let encoding = file.child("encoding")?.text {
            let content = file.child("content")?.text ?? ""
            do {
                _ = try ContentEncoding.decode(content, encoding: encoding)
            } catch {
                report(keyLine("content"), .error, "content cannot be decoded as \"\(encoding)\"")
            }
        }
    }

    /// Go's `url.ParseRequestURI`: an absolute URL (`scheme:…`) or an absolute path.
    static func isRequestURI(_ text: String) -> Bool {
        if text.hasPrefix("/") { return true }
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else { return false }
        let scheme = text[..<colon]
        guard let first = scheme.first, first.isASCII, first.isLetter else { return false }
        return scheme.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }
            && !text.contains(" ")
    }
}

/// Path arithmetic on text, as Go's `path` package does it (no file system).
public enum PathText {
    /// `path.Clean`: no `.`, no `..` past the root, no doubled or trailing slashes.
    public static func clean(_ path: String) -> String {
        guard !path.isEmpty else { return "." }
        let rooted = path.hasPrefix("/")
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            switch part {
            case ".": continue
            case "..":
                if let last = parts.last, last != ".." { parts.removeLast() } else if !rooted { parts.append(part) }
            default: parts.append(part)
            }
        }
        let joined = parts.joined(separator: "/")
        return rooted ? "/" + joined : (joined.isEmpty ? "." : joined)
    }

    /// `path.Dir`: everything before the last slash, cleaned.
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return clean(String(path[...slash]))
    }
}
