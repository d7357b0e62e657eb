/// A systemd unit type: the suffix of a unit name.
public enum UnitType: String, Sendable, Hashable, CaseIterable {
    case service, mount, swap, socket, target, device, automount, timer, path, slice, scope
}

/// Why a unit name was refused.
public struct UnitNameError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case empty
        case tooLong(limit: Int)
        case missingSuffix
        case unknownType(String)
        case invalidCharacter(Character)
        case emptyPrefix
        case notATemplate
        case missingInstance
        case invalidEscape
        case notAnAbsoluteNormalizedPath
        case invalidPath
    }

    public var reason: Reason
    public var name: String

    public init(_ reason: Reason, name: String) {
        self.reason = reason
        self.name = name
    }

    public var description: String {
        switch reason {
        case .empty: return "empty unit name"
        case .tooLong(let limit): return "unit name \(name) is longer than \(limit - 1) bytes"
        case .missingSuffix: return "unit name \(name) has no type suffix"
        case .unknownType(let type): return "unit name \(name) has unknown type \"\(type)\""
        case .invalidCharacter(let character):
            return "unit name \(name) contains invalid character \(String(character).debugDescription)"
        case .emptyPrefix: return "unit name \(name) has an empty prefix"
        case .notATemplate: return "\(name) is not a template unit name"
        case .missingInstance: return "unit \(name) is missing the instance name"
        case .invalidEscape: return "\(name.debugDescription) contains an invalid escape sequence"
        case .notAnAbsoluteNormalizedPath: return "\(name.debugDescription) is not an absolute, normalized path"
        case .invalidPath: return "\(name.debugDescription) is not a valid file system path"
        }
    }
}

/// A validated unit name: `prefix[@instance].type` (systemd.unit(5)).
///
/// Three shapes exist: a plain unit (`etcd.service`), a template (`foo@.service`) and an
/// instance of a template (`foo@bar.service`). The first `@` separates prefix and
/// instance; the instance may contain further `@`.
public struct UnitName: Sendable, Hashable, CustomStringConvertible, Comparable {
    /// systemd's UNIT_NAME_MAX: names must be shorter than this many bytes.
    public static let maximumLength = 256

    public let name: String
    public let prefix: String
    /// `nil` for a plain unit, `""` for a template, the instance text otherwise.
    public let instance: String?
    public let type: UnitType

    public init(_ name: String) throws(UnitNameError) {
        if name.isEmpty { throw UnitNameError(.empty, name: name) }
        if name.utf8.count >= Self.maximumLength {
            throw UnitNameError(.tooLong(limit: Self.maximumLength), name: name)
        }
        guard let dot = name.lastIndex(of: ".") else { throw UnitNameError(.missingSuffix, name: name) }
        let suffix = String(name[name.index(after: dot)...])
        guard let type = UnitType(rawValue: suffix) else { throw UnitNameError(.unknownType(suffix), name: name) }
        let stem = name[..<dot]
        let prefix: Substring
        let instance: Substring?
        if let at = stem.firstIndex(of: "@") {
            prefix = stem[..<at]
            instance = stem[stem.index(after: at)...]
        } else {
            prefix = stem
            instance = nil
        }
        if prefix.isEmpty { throw UnitNameError(.emptyPrefix, name: name) }
        if let bad = prefix.first(where: { !UnitNameEscaping.isValidNameCharacter($0) }) {
            throw UnitNameError(.invalidCharacter(bad), name: name)
        }
        if let instance, let bad = instance.first(where: { $0 != "@" && !UnitNameEscaping.isValidNameCharacter($0) }) {
            throw UnitNameError(.invalidCharacter(bad), name: name)
        }
        self.name = name
        self.prefix = String(prefix)
        self.instance = instance.map(String.init)
        self.type = type
    }

    /// Whether `name` is a valid unit name of any shape.
    public static func isValid(_ name: String) -> Bool { (try? UnitName(name)) != nil }

    public var isTemplate: Bool { instance == "" }
    public var isInstance: Bool { instance.map { !$0.isEmpty } ?? false }

    /// The template this instance was made from: `foo@bar.service` → `foo@.service`.
    public var template: UnitName? {
        guard isInstance else { return nil }
        return try? UnitName("\(prefix)@.\(type.rawValue)")
    }

    /// The name without its type suffix: `foo@bar` for `foo@bar.service`.
    public var nameWithoutSuffix: String { String(name[..<(name.lastIndex(of: ".") ?? name.endIndex)]) }

    /// Fills a template with an instance (already escaped): `foo@.service` + `a` → `foo@a.service`.
    public func instantiated(with instance: String) throws(UnitNameError) -> UnitName {
        guard isTemplate else { throw UnitNameError(.notATemplate, name: name) }
        if instance.isEmpty { throw UnitNameError(.missingInstance, name: name) }
        return try UnitName("\(prefix)@\(instance).\(type.rawValue)")
    }

    public var description: String { name }

    public static func < (lhs: UnitName, rhs: UnitName) -> Bool { lhs.name < rhs.name }
}
