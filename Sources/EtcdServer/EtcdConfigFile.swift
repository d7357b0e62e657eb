import YAML

/// etcd 3.4's `--config-file`: a YAML mapping whose keys are the server's flag names, with
/// the TLS settings of each side nested under `client-transport-security` and
/// `peer-transport-security` (the peer's without their `peer-` prefix). Read into the
/// same flag-name → text settings the command line gives, so one path applies both.
public enum EtcdConfigFile {
    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The settings the file sets; a key whose value is empty or null is left at its default.
    public static func settings(_ bytes: [UInt8], path: String) throws(ParseError) -> [String: String] {
        let root: YAMLNode?
        do {
            root = try YAMLParser.parse(bytes)
        } catch {
            throw ParseError(description: "error unmarshaling config file \(path): \(error)")
        }
        guard let root, !root.isNull else { return [:] }
        guard case .mapping(let pairs) = root.kind else {
            throw ParseError(description: "config file \(path): line \(root.line): the document is not a mapping of flag names")
        }
        var settings: [String: String] = [:]
        for pair in pairs {
            guard case .scalar(let key, _, _) = pair.key.kind else {
                throw ParseError(description: "config file \(path): line \(pair.key.line): a key is not a name")
            }
            switch key {
            case "client-transport-security", "peer-transport-security":
                guard !pair.value.isNull else { continue }
                guard case .mapping(let nested) = pair.value.kind else {
                    throw ParseError(description: "config file \(path): line \(pair.value.line): \(key) is not a mapping")
                }
                let prefix = key == "peer-transport-security" ? "peer-" : ""
                for item in nested {
                    guard case .scalar(let name, _, _) = item.key.kind else { continue }
                    if let value = try text(item.value, key: key + "." + name, path: path) {
                        // `crl-file` nests as well; its flag is client-crl-file / peer-crl-file.
                        settings[name == "crl-file" ? (prefix.isEmpty ? "client-" : prefix) + name : prefix + name] = value
                    }
                }
            default:
                if let value = try text(pair.value, key: key, path: path) { settings[key] = value }
            }
        }
        return settings
    }

    /// A scalar as written, a sequence as its items joined by commas (as the flag takes them).
    private static func text(_ node: YAMLNode, key: String, path: String) throws(ParseError) -> String? {
        if node.isNull { return nil }
        switch node.kind {
        case .scalar(let value, _, _):
            return value
        case .sequence(let items):
            var values: [String] = []
            for item in items {
                guard case .scalar(let value, _, _) = item.kind else {
                    throw ParseError(description: "config file \(path): line \(item.line): \(key) must list plain values")
                }
                values.append(value)
            }
            return values.isEmpty ? nil : values.joined(separator: ",")
        case .mapping:
            throw ParseError(description: "config file \(path): line \(node.line): \(key) must be a value, not a mapping")
        }
    }
}
